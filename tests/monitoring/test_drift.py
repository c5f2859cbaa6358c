"""Comparing profiles: drift is found in exactly the shifted features of a synthetic stream,
too few rows give insufficient_data (never no_drift), unshifted data keeps its false alarms
under the configured level at 10^2, 10^4 and 10^6 rows, negligible shifts of a huge sample are
not flagged, data-quality issues are named, and reports round-trip through JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelyard.domain.drift import DriftConfig, DriftReport, FeatureDrift, Verdict
from modelyard.errors import InvalidInput
from modelyard.monitoring.drift import Context, compare
from modelyard.monitoring.pairs import CategoricalPair
from modelyard.monitoring.profile import Profile

SHIFTED = {"f1": "mean +0.2 sd", "f4": "sd x1.5", "f6": "10% mixture at +3 sd", "c2": "shares"}


def stream(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """Eight numeric and three categorical features; with ``shifted``, those in SHIFTED move."""
    rng = np.random.default_rng(seed)
    columns = {f"f{i}": rng.normal(10 * i, 1 + i, rows) for i in range(8)}
    columns["f7"] = rng.poisson(4, rows).astype(float)
    columns["c0"] = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    columns["c1"] = rng.choice(["x", "y"], rows)
    columns["c2"] = rng.choice(["p", "q", "r", "s"], rows, p=[0.4, 0.3, 0.2, 0.1])
    frame = pd.DataFrame(columns)
    if shifted:
        frame["f1"] += 0.2 * 2
        frame["f4"] = 40 + (frame["f4"] - 40) * 1.5
        mixed = rng.random(rows) < 0.1
        frame.loc[mixed, "f6"] += 3 * 7
        frame["c2"] = rng.choice(["p", "q", "r", "s"], rows, p=[0.25, 0.3, 0.25, 0.2])
    return frame


@pytest.fixture(scope="module")
def baseline() -> Profile:
    frame = stream(100_000, 1, shifted=False)
    return Profile.from_frame(frame, predictions=frame["f0"] * 2)


def test_drift_is_found_in_exactly_the_shifted_features(baseline: Profile) -> None:
    current = stream(50_000, 2, shifted=True)
    report = compare(baseline, Profile.from_frame(current, predictions=current["f0"] * 2))
    assert sorted(report.drifted) == sorted(SHIFTED)
    assert report.drifted_share == pytest.approx(4 / 11)
    assert report.verdict is Verdict.NO_DRIFT  # 4 of 11 is below the default share of 0.5
    drifted = compare(baseline, Profile.from_frame(current), DriftConfig(drift_share=0.3))
    assert drifted.verdict is Verdict.DRIFT
    for feature in report.features:
        assert feature.baseline_rows == 100_000 and feature.current_rows == 50_000
        assert feature.effect is not None and feature.p_value is not None
        assert feature.test == ("jensen_shannon" if feature.kind == "categorical" else "ks")
        assert {s.test for s in feature.stats} >= {feature.test}
    (prediction,) = report.predictions
    assert prediction.name == "prediction" and prediction.verdict is Verdict.NO_DRIFT


def test_too_few_rows_is_insufficient_data_never_no_drift(baseline: Profile) -> None:
    current = Profile.from_frame(stream(99, 3, shifted=True))
    report = compare(baseline, current)
    assert report.verdict is Verdict.INSUFFICIENT_DATA and report.drifted_share is None
    assert {f.verdict for f in report.features} == {Verdict.INSUFFICIENT_DATA}
    assert all(f.effect is None and f.current_rows == 99 for f in report.features)
    assert report.scores() == {}  # no score at all: an alarm sees no data, not a zero
    nothing = compare(baseline, Profile.from_frame(stream(0, 3, shifted=False)))
    assert nothing.verdict is Verdict.INSUFFICIENT_DATA and nothing.quality == ()
    # The rule is per feature: a column with few present values is insufficient on its own.
    sparse = stream(5_000, 4, shifted=False)
    sparse.loc[sparse.index[50:], "f3"] = np.nan
    mixed = compare(baseline, Profile.from_frame(sparse), DriftConfig(min_rows=100))
    verdicts = {f.name: f.verdict for f in mixed.features}
    assert verdicts["f3"] is Verdict.INSUFFICIENT_DATA
    assert set(verdicts.values()) == {Verdict.INSUFFICIENT_DATA, Verdict.NO_DRIFT}
    assert mixed.drifted_share == 0.0 and mixed.verdict is Verdict.NO_DRIFT


def test_a_feature_whose_values_vanished_drifts_and_counts_in_the_share(
    baseline: Profile,
) -> None:
    """An upstream breakage sends a feature empty: every value missing in a window of
    thousands of rows. No statistic compares values with none, but the feature did not go
    quiet for want of data: it drifts, with no effect size, and counts in the share."""
    current = stream(5_000, 7, shifted=False)
    current["f3"] = np.nan
    current["c0"] = None
    report = compare(baseline, Profile.from_frame(current), DriftConfig(drift_share=0.15))
    by_name = {f.name: f for f in report.features}
    for name in ("f3", "c0"):
        vanished = by_name[name]
        assert vanished.verdict is Verdict.DRIFT, name
        assert (vanished.baseline_rows, vanished.current_rows) == (100_000, 0)
        assert vanished.effect is None and vanished.p_value is None
    assert sorted(report.drifted) == ["c0", "f3"]
    assert report.drifted_share == pytest.approx(2 / 11)
    assert report.verdict is Verdict.DRIFT
    scores = report.scores()
    assert scores["drift.share"] == pytest.approx(2 / 11)
    assert "drift.feature.f3" not in scores, "no effect size: no score, not a made-up one"
    assert ("completeness", "f3") in {(q.check, q.column) for q in report.quality}
    # Too few rows in the window to tell: still insufficient, not drift.
    few = compare(baseline, Profile.from_frame(current.iloc[:50]))
    assert {f.name: f.verdict for f in few.features}["f3"] is Verdict.INSUFFICIENT_DATA
    # A column missing from the data vanished as much as one sent empty: a file that lost
    # most of its features does not read no_drift on the few left.
    lost = stream(5_000, 7, shifted=False)[["f0", "c0"]]
    gone = compare(baseline, Profile.from_frame(lost))
    verdicts = {f.name: f.verdict for f in gone.features}
    assert verdicts.pop("f0") is verdicts.pop("c0") is Verdict.NO_DRIFT
    assert set(verdicts.values()) == {Verdict.DRIFT}, verdicts
    assert all(
        f.current_rows == 0 and f.effect is None for f in gone.features if f.name in verdicts
    )
    assert gone.verdict is Verdict.DRIFT and gone.drifted_share == pytest.approx(9 / 11)
    few_lost = compare(baseline, Profile.from_frame(lost.iloc[:50]))
    assert {f.verdict for f in few_lost.features} == {Verdict.INSUFFICIENT_DATA}
    # A text column with one value that is not text has its values (its lengths are not
    # kept, so no length test): insufficient, never vanished.
    notes = pd.DataFrame({"note": [f"note number {i}" for i in range(5_000)]})
    mixed = pd.DataFrame({"note": [*notes["note"][:500], 1]})
    text = compare(Profile.from_frame(notes), Profile.from_frame(mixed))
    assert text.features[0].kind == "text"
    assert text.features[0].verdict is Verdict.INSUFFICIENT_DATA, text.features[0]


@pytest.mark.parametrize(("rows", "seeds"), [(100, 30), (10_000, 5), (1_000_000, 1)])
def test_false_alarms_stay_under_the_configured_level(
    baseline: Profile, rows: int, seeds: int
) -> None:
    config = DriftConfig(alpha=0.05)
    flagged = []
    for seed in range(10, 10 + seeds):
        report = compare(baseline, Profile.from_frame(stream(rows, seed, shifted=False)), config)
        assert report.drifted_share is not None
        flagged.append(report.drifted_share)
    assert float(np.mean(flagged)) < config.alpha


def test_a_negligible_shift_of_a_million_rows_is_significant_but_not_drift() -> None:
    rng = np.random.default_rng(5)
    base = Profile.from_frame(pd.DataFrame({"x": rng.normal(0, 1, 1_000_000)}))
    current = Profile.from_frame(pd.DataFrame({"x": rng.normal(0.02, 1, 1_000_000)}))
    (feature,) = compare(base, current).features
    assert feature.p_value is not None and feature.p_value < 1e-6  # significant...
    assert feature.effect is not None and feature.effect < feature.threshold  # ...but small
    assert feature.verdict is Verdict.NO_DRIFT


def test_data_quality_issues_are_named(baseline: Profile) -> None:
    current = stream(2_000, 6, shifted=False).drop(columns=["f5"])
    current["extra"] = 1.0
    current.loc[current.index[:400], "f2"] = np.nan  # 20 % missing, none in the baseline
    current["c1"] = np.where(np.arange(2_000) < 100, "z", current["c1"])
    current["f3"] = current["f3"].astype(str)  # numbers became text
    report = compare(baseline, Profile.from_frame(current))
    issues = {(q.check, q.column) for q in report.quality}
    assert issues == {
        ("missing_column", "f5"),
        ("extra_column", "extra"),
        ("completeness", "f2"),
        ("new_categories", "c1"),
        ("type_change", "f3"),
    }
    by_name = {f.name: f for f in report.features}
    assert by_name["f5"].verdict is Verdict.DRIFT  # gone from 2,000 rows: vanished
    assert by_name["f3"].verdict is Verdict.INSUFFICIENT_DATA
    new = next(q for q in report.quality if q.check == "new_categories")
    assert "'z'" in new.message and new.current == ["z"]


def test_reports_round_trip_through_json_and_give_alarm_scores(baseline: Profile) -> None:
    current = stream(20_000, 7, shifted=True)
    report = compare(
        baseline,
        Profile.from_frame(current, predictions=current["f0"] * 2),
        context=Context("api", "blue", "churn:3"),
    )
    data = json.loads(json.dumps(report.to_dict()))
    again = DriftReport.from_dict(data)
    assert again == report
    scores = report.scores()
    assert scores["drift.share"] == report.drifted_share
    assert scores["drift.feature.f1"] == next(f.effect for f in report.features if f.name == "f1")
    assert "drift.prediction" in scores and len(scores) == 11 + 2
    assert FeatureDrift.from_dict(report.features[0].to_dict()) == report.features[0]


def test_config_is_validated_and_round_trips() -> None:
    config = DriftConfig(min_rows=10, thresholds={"ks": 0.05})
    assert config.thresholds["ks"] == 0.05 and config.thresholds["psi"] == 0.1
    assert DriftConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidInput, match="unknown drift setting bogus"):
        DriftConfig.from_dict({"bogus": 1})
    with pytest.raises(InvalidInput, match="'chi_square' cannot test numeric columns"):
        DriftConfig(numeric_test="chi_square")
    with pytest.raises(InvalidInput, match="no drift statistic named energy"):
        DriftConfig(thresholds={"energy": 0.1})
    with pytest.raises(InvalidInput, match="alpha must be in"):
        DriftConfig(alpha=0)
    with pytest.raises(InvalidInput, match="min_rows"):
        DriftConfig(min_rows=0)


@pytest.mark.parametrize("test", ["ks", "jensen_shannon", "chi_square"])
def test_a_threshold_its_statistic_never_reaches_is_refused(test: str) -> None:
    """KS, the Jensen-Shannon distance (base 2) and Cramer's V are never above 1: a threshold
    of 2 was taken, and a schedule with it never called drift, however far the data moved."""
    with pytest.raises(InvalidInput, match=rf"^the {test} threshold must be from 0 to 1 "):
        DriftConfig(thresholds={test: 1.5})
    assert DriftConfig(thresholds={test: 1.0}).thresholds[test] == 1.0
    # PSI and Wasserstein have no upper end.
    assert DriftConfig(thresholds={"psi": 25.0, "wasserstein": 40.0}).thresholds["psi"] == 25.0


def test_another_deciding_statistic(baseline: Profile) -> None:
    current = Profile.from_frame(stream(50_000, 8, shifted=True))
    report = compare(baseline, current, DriftConfig(numeric_test="wasserstein"))
    f1 = next(f for f in report.features if f.name == "f1")
    assert f1.test == "wasserstein" and f1.threshold == 0.1 and f1.noise is None
    assert f1.verdict is Verdict.DRIFT  # a 0.2 sd shift: 0.2 baseline sds of transport


def test_a_boolean_baseline_column_compares_with_its_numeric_captured_form() -> None:
    """Training tables hold booleans; requests carry them as 1.0/0.0: the two are compared,
    not reported as a type change."""
    rng = np.random.default_rng(5)
    trained = pd.DataFrame({"member": rng.random(20_000) < 0.3, "x": rng.normal(size=20_000)})
    baseline = Profile.from_frame(trained)

    def served(share: float) -> Profile:
        rows = pd.DataFrame(
            {"member": (rng.random(5_000) < share).astype(float), "x": rng.normal(size=5_000)}
        )
        return Profile.from_frame(rows)

    same = compare(baseline, served(0.3))
    member = next(f for f in same.features if f.name == "member")
    assert member.verdict is Verdict.NO_DRIFT and member.kind == "numeric"
    assert not [q for q in same.quality if q.check == "type_change"]
    moved = compare(baseline, served(0.6))
    assert moved.drifted == ["member"]


@pytest.fixture(scope="module")
def served_trees() -> tuple[pd.DataFrame, pd.Series, Profile, object, object]:
    """A small XGBoost classifier (10 trees of depth 2, breast cancer data): its training
    features, labels, baseline (predictions by the native booster, as registering makes it),
    the native model and the compiled predictor that ``auto`` serves."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    from modelyard.runtimes.trees import choose
    from modelyard.runtimes.trees.compiled import CompiledTrees
    from modelyard.runtimes.xgboost_runtime import XGBoostLoaded
    from modelyard.training.baseline import baseline_profile

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=10,
    )
    native = XGBoostLoaded(booster)
    compiled = choose(native, "xgboost").model
    assert isinstance(compiled, CompiledTrees)
    return x, y, baseline_profile(x, native.predict), native, compiled


def _served_profile(rows: pd.DataFrame, model: object) -> Profile:
    from modelyard.monitoring.profile import prediction_frame

    predictions = model.predict(rows.to_numpy())  # type: ignore[attr-defined]
    return Profile.from_frame(rows).with_predictions(
        Profile.from_frame(prediction_frame(predictions))
    )


@pytest.mark.parametrize("predictor", ["native", "compiled"])
def test_compiled_tree_predictions_do_not_drift_from_the_native_baseline(
    served_trees: tuple[pd.DataFrame, pd.Series, Profile, object, object], predictor: str
) -> None:
    # The baseline's predictions come from the native booster; an endpoint on ``auto`` serves
    # the compiled one, which agrees within 1e-6 but not bit for bit. A tree model's
    # predictions bunch on few values, so an exact-value KS read each bunch's whole share as
    # a gap: 0.21 here (p 6e-5), drift for unchanged inputs.
    x, _, baseline, native, compiled = served_trees
    rows = x.iloc[np.sort(np.random.default_rng(0).choice(len(x), 150, replace=False))]
    report = compare(
        baseline, _served_profile(rows, {"native": native, "compiled": compiled}[predictor])
    )
    (prediction,) = report.predictions
    assert prediction.verdict is Verdict.NO_DRIFT, prediction
    assert prediction.effect is not None and prediction.effect < 0.05


def test_compiled_tree_predictions_still_drift_when_the_inputs_shift(
    served_trees: tuple[pd.DataFrame, pd.Series, Profile, object, object],
) -> None:
    x, y, baseline, _, compiled = served_trees
    malignant = x[y == 0].iloc[:150]  # a population of one class: the predictions move
    report = compare(baseline, _served_profile(malignant, compiled))
    (prediction,) = report.predictions
    assert prediction.verdict is Verdict.DRIFT, prediction
    assert compare(baseline, _served_profile(malignant, compiled)).to_dict() == report.to_dict()


def test_new_categories_of_a_window_with_more_categories_than_kept_are_not_undercounted() -> None:
    """A window of more than 1,024 categories keeps the counts of a sample of them (those of
    the smallest hashes): its new categories' share was counted on that sample alone, so 3,000
    rows of 3,000 new values beside 2,000 of the baseline's read '20%' (and a window of nothing
    but new values far less than 100%). Where the baseline's own categories are all in the
    sample, the share is exact; otherwise it is said to be a least share."""
    from modelyard.monitoring.frequencies import category_hash

    names = sorted((f"k{i}" for i in range(5_000)), key=lambda t: (category_hash(t), t))
    low, high = names[:3], names[-3:]  # always kept by a sketch / beyond any sketch's cut
    new = [f"new-{i}" for i in range(3_000)]
    rng = np.random.default_rng(3)
    for known, exact in ((low, True), (high, False)):
        base = Profile.from_frame(pd.DataFrame({"city": rng.choice(known, 2_000)}))
        now = pd.DataFrame({"city": [*rng.choice(known, 2_000), *new]})
        (issue,) = compare(base, Profile.from_frame(now)).quality
        assert issue.check == "new_categories"
        if exact:
            assert "in 60.0% of its present rows" in issue.message
            assert issue.message.startswith("column 'city' has about ")
        else:
            assert "in at least " in issue.message


def test_new_categories_beside_baseline_ones_beyond_the_cut_are_counted_by_the_sample() -> None:
    """A window of the baseline's 1,000 categories and 4,000 new ones keeps a sample of them:
    its distinct estimate less the baseline categories in the sample counted the baseline's
    categories beyond the cut as new ('about 4,882' for 4,000). The sample's share of new
    categories scaled by the estimate is the count; the share of rows is bounded both ways."""
    import re

    for prefix in ("k", "city-", "c"):
        known = [f"{prefix}{i}" for i in range(1_000)]
        base = Profile.from_frame(pd.DataFrame({"city": known * 2}))
        now = pd.DataFrame({"city": [*known, *(f"new-{prefix}{i}" for i in range(4_000))]})
        window = Profile.from_frame(now)
        (issue,) = compare(base, window).quality
        found = re.search(r"has about ([\d,]+) value\(s\)", issue.message)
        assert found is not None, issue.message
        assert 3_600 <= int(found[1].replace(",", "")) <= 4_400, issue.message
        shares = re.search(r"in at least ([\d.]+)% \(at most ([\d.]+)%\) of", issue.message)
        assert shares is not None, issue.message
        assert float(shares[1]) <= 80.0 <= float(shares[2]), issue.message
        # The least share is the drift test's new bin, not a weaker bound of its own.
        before, after = base.column("city").categories, window.column("city").categories
        assert before is not None and after is not None
        pair = CategoricalPair.of(before, after)
        assert pair.categories[-1] is None and float(shares[1]) > 60.0, issue.message
        assert float(shares[1]) == pytest.approx(100 * pair.current[-1] / 5_000, abs=0.05)


def test_a_window_flooded_with_new_categories_drifts_whatever_its_sketch_kept() -> None:
    """A window of thousands of new values keeps a sample of its categories (those of the
    smallest hashes): the baseline's categories beyond its cut were lumped with the window's
    unsampled new values in one 'other' bin, and the many bins raised the noise allowance, so
    a column of nothing but new values read no_drift (effect 0.54 against 0.52 of noise)."""
    from modelyard.monitoring.frequencies import category_hash

    names = sorted((f"k{i}" for i in range(5_000)), key=lambda t: (category_hash(t), t))
    rng = np.random.default_rng(4)
    flood = pd.DataFrame({"city": [f"new-{v}" for v in rng.integers(0, 50_000, 5_000)]})
    for known in (names[:3], names[-3:], [names[0], names[-1], names[2500]]):
        base = Profile.from_frame(pd.DataFrame({"city": rng.choice(known, 2_000)}))
        (feature,) = compare(base, Profile.from_frame(flood)).features
        assert feature.verdict is Verdict.DRIFT, (known, feature)


@pytest.mark.parametrize("seed", range(6))
def test_a_window_of_more_categories_than_kept_from_the_baselines_population_does_not_drift(
    seed: int,
) -> None:
    # 1,500 categories of falling frequency: a baseline of 3,000 rows sees under 1,024 of
    # them (all kept), a window of 40,000 sees more (a sample kept), from the same population.
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, 1_501) ** 1.1
    population = [f"v{i}" for i in range(1_500)]
    draw = lambda n: pd.DataFrame({"city": rng.choice(population, n, p=weights / weights.sum())})  # noqa: E731
    base, now = Profile.from_frame(draw(3_000)), Profile.from_frame(draw(40_000))
    assert not base.column("city").categories.overflow  # type: ignore[union-attr]
    assert now.column("city").categories.overflow  # type: ignore[union-attr]
    (feature,) = compare(base, now).features
    assert feature.verdict is Verdict.NO_DRIFT, feature


def test_a_tenth_of_the_rows_in_hundreds_of_new_values_drifts() -> None:
    # Each new value had a bin of its own, and the noise bound grew with their number: 600 new
    # values in 10 % of the rows (a Jensen-Shannon distance of 0.23) read no_drift.
    rng = np.random.default_rng(5)
    base = Profile.from_frame(pd.DataFrame({"city": rng.choice(["a", "b", "c"], 3_000)}))
    now = pd.DataFrame({"city": [*rng.choice(["a", "b", "c"], 5_400),
                                 *(f"new-{i}" for i in range(600))]})  # fmt: skip
    (feature,) = compare(base, Profile.from_frame(now)).features
    assert feature.verdict is Verdict.DRIFT and feature.effect is not None
    assert feature.effect == pytest.approx(0.23, abs=0.01)
