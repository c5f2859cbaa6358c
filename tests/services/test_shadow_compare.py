"""ShadowCompareService on real parts: captured rows written by the servers' capture writer
(real fitted models behind the variant routes), metric minutes written by the servers' minute
series, labels recorded by the real feedback service, endpoints made by the endpoint service.

- A classifier shadow that agrees with production on 90 of 100 requests: agreement 0.9, the
  disagreeing class pair, the distributions' Jensen-Shannon distance, both sides' error rates
  and latencies, and both sides' accuracy on the 40 labelled pairs.
- A regressor shadow: the distribution of shadow - production and both sides' RMSE.
- Ten pairs: INSUFFICIENT_DATA, no agreement rate.
- Errors: unknown endpoint, no shadow, several shadows, a production variant named, capture
  off on a side, bad windows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.inference_ids import new_inference_id
from modelyard.domain.quality import Task
from modelyard.domain.shadow_comparison import ComparisonStatus, ShadowCompareConfig
from modelyard.errors import Conflict, EndpointNotFound, InvalidInput, VariantNotFound
from tests.services.shadow_parts import (
    Call,
    Capturer,
    mirrored,
    register_models,
    write_minutes,
)

ALL = CaptureConfig.parse(100)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Capturer]]:
    home = tmp_path_factory.mktemp("shadow-compare") / "home"
    platform = build(load_settings({}, home=home, metrics=False))
    register_models(platform)
    capturer = Capturer(platform, home / "scratch")
    yield platform, capturer
    capturer.close()
    platform.close()


def shadowed(platform: Platform, name: str, prod: str, mirror: str, **capture: Any) -> None:
    """Endpoint ``name``: variant main serving ``prod``, variant shadow shadowing it with
    ``mirror`` (all requests); both capture everything unless ``capture`` says otherwise."""
    platform.endpoints.create(
        name,
        {"main": prod, "shadow": mirror},
        capture={"main": ALL, "shadow": ALL, **capture},
        shadows={"shadow": 100.0},
    )


def rows_agreeing(capturer: Capturer, agree: int, disagree: int) -> np.ndarray:
    """Rows on which clf:1 and clf:2 give the same class ``agree`` times and different
    classes ``disagree`` times (found among random rows by the models themselves)."""
    rng = np.random.default_rng(11)
    pool = rng.normal(size=(2000, 2))
    same = capturer.predict("clf:1", pool) == capturer.predict("clf:2", pool)
    chosen = np.concatenate([np.flatnonzero(same)[:agree], np.flatnonzero(~same)[:disagree]])
    assert len(chosen) == agree + disagree
    return pool[rng.permutation(chosen)]


def test_a_classifier_shadow_against_production(parts: tuple[Platform, Capturer]) -> None:
    platform, capturer = parts
    shadowed(platform, "cls", "clf:1", "clf:2")
    rows = rows_agreeing(capturer, 90, 10)
    ids, ours, theirs = mirrored(
        capturer, "cls", rows, production=("main", "clf:1"), shadow=("shadow", "clf:2")
    )
    assert int((ours == theirs).sum()) == 90
    # Labels for the first 40 requests, through the feedback service (the truth: a > 0.2).
    truth = (rows[:40, 0] > 0.2).astype(int)
    items = [{"inference_id": i, "label": int(t)} for i, t in zip(ids[:40], truth, strict=True)]
    assert platform.feedback.record("cls", items).accepted == 40
    # The labels belong to the answers the callers got: production's, not the shadow's copies.
    labelled = platform.feedback.quality("cls", window=timedelta(hours=1))
    assert {(p.variant, p.rows) for p in labelled} == {("main", 40), ("shadow", 0)}
    # Production served 100 requests (2 failed) on two workers at 3 ms; the shadow 100 (8
    # failed) at 20 ms.
    write_minutes(platform, "cls", "main", [0.003] * 60, 1, worker="w1")
    write_minutes(platform, "cls", "main", [0.003] * 40, 1, worker="w2")
    write_minutes(platform, "cls", "shadow", [0.02] * 100, 8, worker="w1")

    found = platform.shadow_compare.compare("cls")

    assert (found.shadow, found.shadow_model, found.production) == ("shadow", "clf:2", ("main",))
    assert found.task is Task.CLASSIFICATION and found.status is ComparisonStatus.OK
    assert (found.production_rows, found.shadow_rows, found.pairs) == (100, 100, 100)
    agreement = found.agreement
    assert agreement is not None and found.differences is None
    assert (agreement.compared, agreement.agreed, agreement.rate) == (100, 90, 0.9)
    assert agreement.unreadable == 0
    # clf:2 says 1 only above a > 0.4, clf:1 above a > 0: every disagreement is 1 → 0.
    assert [(p.production, p.shadow, p.count, p.share) for p in agreement.disagreements] == [
        ("1", "0", 10, 0.1)
    ]

    from scipy.spatial.distance import jensenshannon

    drift = found.distribution
    assert drift is not None and (drift.test, drift.kind) == ("jensen_shannon", "categorical")
    shares = [np.bincount(side.astype(int), minlength=2) / 100 for side in (ours, theirs)]
    assert drift.effect == pytest.approx(jensenshannon(*shares, base=2))
    assert (drift.baseline_rows, drift.current_rows) == (100, 100)

    serving = found.serving
    assert (serving.production.requests, serving.production.errors) == (100, 2)
    assert (serving.shadow.requests, serving.shadow.errors) == (100, 8)
    assert serving.production.error_rate == 0.02 and serving.shadow.error_rate == 0.08
    assert serving.error_rate_z is not None and serving.error_rate_z > 0
    assert serving.error_rate_p_value is not None and serving.error_rate_p_value < 0.05
    # Latency percentiles come from histogram buckets: 3 ms is in (2.5, 5], 20 ms in (10, 25].
    assert 2.5 < (serving.production.latency_p99_ms or 0) <= 5.0
    assert 10.0 < (serving.shadow.latency_p50_ms or 0) <= 25.0
    assert serving.latency_p99_ratio == pytest.approx(
        (serving.shadow.latency_p99_ms or 0) / (serving.production.latency_p99_ms or 1)
    )

    assert found.labelled == 40
    by_variant = {p.variant: p for p in found.quality}
    assert set(by_variant) == {"main", "shadow"}
    for variant, predicted in (("main", ours), ("shadow", theirs)):
        point = by_variant[variant]
        assert point.rows == 40
        assert point.metrics["accuracy"] == pytest.approx(float((predicted[:40] == truth).mean()))
    assert json.loads(json.dumps(found.to_dict()))["agreement"]["rate"] == 0.9


def test_a_regressor_shadow_against_production(parts: tuple[Platform, Capturer]) -> None:
    platform, capturer = parts
    shadowed(platform, "reg", "reg:1", "reg:2")
    rows = np.random.default_rng(12).normal(size=(100, 2))
    ids, ours, theirs = mirrored(
        capturer, "reg", rows, production=("main", "reg:1"), shadow=("shadow", "reg:2")
    )
    truth = 2.1 * rows[:35, 0] + rows[:35, 1]
    items = [{"inference_id": i, "label": float(t)} for i, t in zip(ids[:35], truth, strict=True)]
    assert platform.feedback.record("reg", items).accepted == 35

    found = platform.shadow_compare.compare("reg", "shadow", window=timedelta(minutes=30))

    assert found.task is Task.REGRESSION and found.agreement is None
    d = found.differences
    assert d is not None and (d.compared, d.unreadable) == (100, 0)
    diff = theirs - ours
    gap = np.abs(diff)
    assert d.mean == pytest.approx(diff.mean())
    assert d.mean_abs == pytest.approx(gap.mean())
    assert d.p50_abs == pytest.approx(np.quantile(gap, 0.5))
    assert d.p90_abs == pytest.approx(np.quantile(gap, 0.9))
    assert d.p99_abs == pytest.approx(np.quantile(gap, 0.99))
    assert d.max_abs == pytest.approx(gap.max())
    # reg:2 differs by 0.2 a: within 1% of production only where |0.2 a| <= 0.01 |2a + b|.
    within = float((gap <= np.maximum(1e-9, 0.01 * np.abs(ours))).mean())
    assert d.within_tolerance == pytest.approx(within) and 0 < within < 1

    from scipy.stats import ks_2samp

    drift = found.distribution
    assert drift is not None and (drift.test, drift.kind) == ("ks", "numeric")
    exact = ks_2samp(ours, theirs).statistic
    # Read from sketches: never above the exact statistic, short by at most one bucket's share.
    assert exact - 0.01 <= (drift.effect or 0) <= exact + 1e-12
    assert {s.test for s in drift.stats} >= {"ks", "wasserstein"}

    assert found.labelled == 35
    for point in found.quality:
        predicted = ours if point.variant == "main" else theirs
        rmse = math.sqrt(float(((predicted[:35] - truth) ** 2).mean()))
        assert point.rows == 35 and point.metrics["rmse"] == pytest.approx(rmse)
    # No metric rows for this endpoint: nothing served on record, nothing to compare.
    assert found.serving.production.requests == 0 and found.serving.error_rate_p_value is None
    assert found.serving.latency_p99_ratio is None


def test_too_few_pairs_give_insufficient_data_not_a_rate(
    parts: tuple[Platform, Capturer],
) -> None:
    platform, capturer = parts
    shadowed(platform, "few", "clf:1", "clf:2")
    rows = rows_agreeing(capturer, 7, 3)
    mirrored(capturer, "few", rows, production=("main", "clf:1"), shadow=("shadow", "clf:2"))

    found = platform.shadow_compare.compare("few")
    assert found.status is ComparisonStatus.INSUFFICIENT_DATA
    assert found.agreement is not None
    assert (found.agreement.compared, found.agreement.agreed, found.agreement.rate) == (10, 7, None)
    assert "10 paired predictions compared, fewer than the 30 needed" in " ".join(found.notes)
    assert [(p.count, p.share) for p in found.agreement.disagreements] == [(3, None)]
    assert found.distribution is not None
    assert found.distribution.verdict.value == "insufficient_data"
    # A lower bar, asked for: the same pairs now give a rate.
    lenient = platform.shadow_compare.compare("few", config=ShadowCompareConfig(min_pairs=10))
    assert lenient.status is ComparisonStatus.OK and lenient.agreement is not None
    assert lenient.agreement.rate == 0.7
    # A window without any captured row: nothing paired, nothing claimed.
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    empty = platform.shadow_compare.compare("few", since=long_ago, until=long_ago + timedelta(1))
    assert (empty.pairs, empty.production_rows, empty.task, empty.agreement) == (0, 0, None, None)
    assert empty.status is ComparisonStatus.INSUFFICIENT_DATA


def test_what_cannot_be_compared_is_refused_naming_why(parts: tuple[Platform, Capturer]) -> None:
    platform, _ = parts
    compare = platform.shadow_compare.compare
    with pytest.raises(EndpointNotFound):
        compare("nowhere")
    platform.endpoints.create("plain", {"main": "clf:1"}, capture={"main": ALL})
    with pytest.raises(InvalidInput, match=r"'plain' has no shadow variant.*give it one") as no:
        compare("plain")
    assert "--" not in no.value.message  # said to CLI and Python users alike
    platform.endpoints.create(
        "twins",
        {"main": "clf:1", "s1": "clf:2", "s2": "clf:2"},
        capture={"main": ALL, "s1": ALL, "s2": ALL},
        shadows={"s1": 50.0, "s2": 50.0},
    )
    with pytest.raises(InvalidInput, match=r"2 shadow variants \(s1, s2\): name the one"):
        compare("twins")
    with pytest.raises(InvalidInput, match=r"'main' .* production variant, not a shadow"):
        compare("twins", "main")
    with pytest.raises(VariantNotFound, match="no variant 'nope'; its shadow variants: s1, s2"):
        compare("twins", "nope")
    assert compare("twins", "s1").pairs == 0  # capture on, nothing captured yet: no error

    # The shadow captures nothing: no agreement can be read, and the error says what to do.
    shadowed(platform, "dark", "clf:1", "clf:2", shadow=CaptureConfig())
    with pytest.raises(Conflict, match=r"none for the shadow 'shadow'.*turn capture on") as off:
        compare("dark")
    assert "--" not in off.value.message
    with pytest.raises(InvalidInput, match="not both"):
        compare("few", since=datetime.now(UTC), window=timedelta(hours=1))
    with pytest.raises(InvalidInput, match="window is empty"):
        now = datetime.now(UTC)
        compare("few", since=now, until=now - timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="longer than zero"):
        compare("few", window=timedelta(0))
    # Shorter than the per-minute series the serving side is read from: the pairs of a few
    # seconds would have been shown beside a whole minute's requests.
    with pytest.raises(InvalidInput, match=r"at least a minute .*, got 0\.001s"):
        compare("few", window=timedelta(milliseconds=1))
    with pytest.raises(InvalidInput, match=r"at least a minute .*, got 59\.5s"):
        compare("few", since=now - timedelta(seconds=59.5), until=now)
    minute = datetime(2020, 1, 1, tzinfo=UTC)  # a minute is long enough, and nothing in it
    assert compare("few", since=minute, until=minute + timedelta(minutes=1)).pairs == 0
    # At most a month: years of windows once ran for minutes and took gigabytes.
    with pytest.raises(InvalidInput, match="longer than 31 days; compare a month at most"):
        compare(
            "few", since=datetime(1, 1, 1, tzinfo=UTC), until=datetime(9999, 12, 31, tzinfo=UTC)
        )


def test_a_shadow_retired_in_the_window_is_on_neither_side(
    parts: tuple[Platform, Capturer],
) -> None:
    """A guarded update that replaces a shadow serves the old and the new shadow side by side
    (``dark`` and ``dark.next`` here, both copied every request); once it ends only one is
    left. The retired one's copies carry production's inference ids and its failures are no
    caller's: neither its rows nor its minutes are production's."""
    platform, capturer = parts
    platform.endpoints.create(
        "retired",
        {"main": "clf:1", "dark": "clf:2", "dark.next": "clf:2"},
        capture={"main": ALL, "dark": ALL, "dark.next": ALL},
        shadows={"dark": 100.0, "dark.next": 100.0},
    )
    rows = rows_agreeing(capturer, 40, 0)
    ours = capturer.predict("clf:1", rows)
    ids, calls = [], []
    now = time.time()
    for i, one in enumerate(rows):
        inference_id = new_inference_id()
        ids.append(inference_id)
        at = now - 1 + i * 0.001
        calls.append(Call("main", inference_id, one[None], ours[i : i + 1], at))
        for shadow in ("dark", "dark.next"):
            calls.append(Call(shadow, inference_id, one[None], ours[i : i + 1], at + 0.003))
    capturer.write("retired", calls)
    write_minutes(platform, "retired", "main", [0.003] * 40, 0, worker="w1")
    write_minutes(platform, "retired", "dark", [0.02] * 40, 0, worker="w1")
    write_minutes(platform, "retired", "dark.next", [0.5] * 40, 40, worker="w1")
    platform.endpoints.update(
        "retired",
        {"main": "clf:1", "dark": "clf:2"},
        capture={"main": ALL, "dark": ALL},
        shadows={"dark": 100.0},
    )

    found = platform.shadow_compare.compare("retired")

    assert (found.production_rows, found.shadow_rows, found.pairs) == (40, 40, 40)
    assert found.agreement is not None and found.agreement.rate == 1.0
    serving = found.serving
    assert serving.production.variants == ("main",)
    assert (serving.production.requests, serving.production.errors) == (40, 0)
    assert (serving.shadow.requests, serving.shadow.errors) == (40, 0)
    assert serving.production.latency_p99_ms is not None
    assert serving.production.latency_p99_ms <= 5.0
    assert any("'dark.next', another shadow of the window" in n for n in found.notes)


def test_a_shadow_whose_signature_names_no_outputs_is_read_from_what_it_captured(
    parts: tuple[Platform, Capturer],
) -> None:
    """A booster registered without an input example has a signature that names no outputs,
    though it answers class probabilities (captured as output.0 and output.1). Its captured
    outputs are compared all the same, read as classes by their width."""
    import pandas as pd
    import xgboost as xgb

    platform, capturer = parts
    rng = np.random.default_rng(21)
    frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 2, "nthread": 1},
        xgb.DMatrix(frame, label=(frame["a"] > 0).astype(int)),
        num_boost_round=20,
    )
    version = platform.registry.register("probs", booster, flavor="xgboost")
    assert version.signature is not None and version.signature.outputs == ()
    shadowed(platform, "probs", "clf:1", version.ref)
    rows = rng.normal(size=(60, 2))
    _, ours, theirs = mirrored(
        capturer, "probs", rows, production=("main", "clf:1"), shadow=("shadow", version.ref)
    )
    assert theirs.shape == (60, 2)

    found = platform.shadow_compare.compare("probs")

    agreement = found.agreement
    assert found.task is Task.CLASSIFICATION and agreement is not None
    assert (agreement.compared, agreement.unreadable) == (60, 0)
    assert agreement.agreed == int((ours == theirs.argmax(axis=1)).sum())
    assert found.status is ComparisonStatus.OK


def test_differences_near_the_largest_float_are_read_without_overflowing(
    parts: tuple[Platform, Capturer],
) -> None:
    """A regressor shadow answering -1.7e308 (a unit error, say) against production's small
    numbers: the mean difference is -1.7e308, not the -inf its sum overflows to (a
    RuntimeWarning, an error under -W error). Where a difference itself is past the largest
    float it is infinite, said so without a warning, and null in JSON."""
    from modelyard.cli.render import to_jsonable

    platform, capturer = parts
    shadowed(platform, "huge", "reg:1", "reg:2")
    rows = np.random.default_rng(13).normal(size=(40, 2))
    mirrored(
        capturer, "huge", rows, production=("main", "reg:1"), shadow=("shadow", "reg:2"),
        shadow_predictions=np.full(40, -1.7e308),
    )  # fmt: skip
    d = platform.shadow_compare.compare("huge").differences
    assert d is not None and d.compared == 40
    assert d.mean == pytest.approx(-1.7e308) and d.mean_abs == pytest.approx(1.7e308)
    assert d.max_abs == pytest.approx(1.7e308) and d.within_tolerance == 0.0

    # Production near +1.4e308 (2a + b with a = 7e307): each difference overflows.
    shadowed(platform, "past", "reg:1", "reg:2")
    wide = np.column_stack([np.full(40, 7e307), np.zeros(40)])
    mirrored(
        capturer, "past", wide, production=("main", "reg:1"), shadow=("shadow", "reg:2"),
        shadow_predictions=np.full(40, -1.7e308),
    )  # fmt: skip
    found = platform.shadow_compare.compare("past")
    d = found.differences
    assert d is not None and d.compared == 40
    assert d.mean == -math.inf and d.max_abs == math.inf
    shown = json.loads(json.dumps(to_jsonable(found), allow_nan=False))
    assert shown["differences"]["mean"] is None


def test_the_report_shows_a_shadow_as_a_shadow(parts: tuple[Platform, Capturer]) -> None:
    """The report page of an endpoint with a shadow at 25%, its 50 requests labelled: the
    shadow's row of the variants table said weight 0, and its model quality "no feedback yet",
    as if it served nothing and nobody had labelled a thing. It is said to be a shadow, with
    its sampling, and why its quality is not here."""
    from tests.monitoring.report_pages import assert_self_contained

    platform, capturer = parts
    platform.endpoints.create(
        "shown",
        {"main": "clf:1", "dark": "clf:2"},
        capture={"main": ALL, "dark": ALL},
        shadows={"dark": 25.0},
    )
    rows = np.random.default_rng(14).normal(size=(50, 2))
    ids, ours, _ = mirrored(
        capturer, "shown", rows, production=("main", "clf:1"), shadow=("dark", "clf:2")
    )
    items = [{"inference_id": i, "label": int(o)} for i, o in zip(ids, ours, strict=True)]
    assert platform.feedback.record("shown", items).accepted == 50

    page = assert_self_contained(platform.reports.report("shown"))

    header = page.words().split("Alarms")[0]
    assert "variant model version weight main clf:1 1 dark clf:2 shadow 25%" in header
    dark = page.words("variant-1")
    assert dark.startswith(
        "Variant dark: clf:2 A shadow variant: it answers no request, and is sent a copy of 25% "
        "of the requests the production variants answer."
    )
    assert "no feedback yet" not in dark
    assert "feedback labels production's answers, never its copies" in dark
    assert "A shadow variant" not in page.words("variant-0")
    assert "accuracy (50 labelled rows)" in page.words("variant-0")
