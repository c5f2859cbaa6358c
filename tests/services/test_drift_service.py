"""``DriftService`` on a real store: the baseline a registration packages (with the model's
predictions), one set later from a file (it wins, and a file that does not fit the model is
refused naming its columns, changing nothing), and drift reports per variant from a file or from
captured rows in a window (real Parquet files in the capture layout, as servers write them)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.capture import partition
from modelyard.domain.drift import DriftConfig, SmallBaseline, Verdict
from modelyard.errors import InvalidInput, StorageUnavailable, VariantNotFound, VersionNotFound
from modelyard.storage.capture_files import CaptureFolder

FEATURES = ["a", "b", "c"]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def features(rows: int, seed: int, shift_a: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=FEATURES)
    frame["a"] += shift_a
    return frame


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """``churn:1`` (registered with its training features as baseline), ``churn:2`` and
    ``churn:3`` (the same package, without a baseline), endpoint ``api`` serving 1 and 2 as
    variants ``blue`` (capturing, c hashed) and ``green``."""
    from sklearn.linear_model import LogisticRegression

    made = build(load_settings({}, home=tmp_path / "home"))
    train = features(4000, 0)
    model = LogisticRegression().fit(train, (train["a"] + train["b"] > 0).astype(int))
    with_label = train.assign(label=(train["a"] > 0).astype(int))
    made.registry.register(
        "churn", model, flavor="sklearn", input_example=train[:3], baseline=with_label
    )
    import skops.io

    saved = tmp_path / "churn.skops"
    skops.io.dump(model, saved)
    for _ in range(2):  # churn:2 and churn:3: one file, so one package
        made.registry.register("churn", saved, flavor="sklearn", input_example=train[:3])
    made.endpoints.create(
        "api",
        {"blue": "churn:1", "green": "churn:2"},
        capture={"blue": CaptureConfig.parse(100, ["c"])},  # c is captured hashed
    )
    yield made
    made.close()


def write_csv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def capture(
    platform: Platform,
    variant: str,
    version: int,
    frame: pd.DataFrame,
    when: datetime,
    model: str = "churn",
) -> None:
    """Write ``frame``'s rows (its columns as the inputs) as one captured file of ``variant``
    answered by ``model``'s ``version``, as a server writes them."""
    n = len(frame)
    times = [when + timedelta(milliseconds=i) for i in range(n)]
    columns: dict[str, Any] = {
        "inference_id": [f"{variant}-{when.isoformat()}-{i}" for i in range(n)],
        "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        "variant": [variant] * n,
        "model": [model] * n,
        "model_version": pa.array([version] * n, type=pa.int64()),
        "latency_ms": [1.0] * n,
        "row": pa.array([0] * n, type=pa.int32()),
        "protocol": ["sagemaker"] * n,
    }
    for name in frame.columns:
        columns[f"input.{name}"] = frame[name].to_numpy()
    columns["output.prediction"] = (frame.sum(axis=1) > 0).astype(np.int64).to_numpy()
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    path = f"{partition('api', when)}/part-{variant}-{model}-{when:%H%M%S}.parquet"
    CaptureFolder(platform.settings.resolved_capture_url).write(path, buffer.getvalue())


def test_the_packaged_baseline_has_the_models_columns_and_predictions(platform: Platform) -> None:
    profile = platform.drift.baseline("churn:1")
    assert profile is not None
    assert profile.columns == ("a", "b", "c") and profile.row_count == 4000  # no label
    assert profile.predictions is not None and profile.predictions.columns == ("prediction",)
    assert profile.predictions.row_count == 4000
    assert platform.drift.baseline("churn:2") is None
    with pytest.raises(VersionNotFound):
        platform.drift.baseline("churn:9")


def test_a_baseline_set_from_a_file_wins_and_can_be_replaced(
    platform: Platform, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "later.csv", features(700, 1).assign(id=range(700)))
    profile = platform.drift.set_baseline("churn:1", data)
    assert profile.columns == ("a", "b", "c") and profile.row_count == 700
    assert profile.predictions is not None and profile.predictions.row_count == 700
    stored = platform.drift.baseline("churn:1")
    assert stored is not None and stored.to_bytes() == profile.to_bytes()
    parquet = tmp_path / "again.parquet"
    features(300, 2).to_parquet(parquet)
    platform.drift.set_baseline("churn:1", str(parquet))
    replaced = platform.drift.baseline("churn:1")
    assert replaced is not None and replaced.row_count == 300
    # A version without a packaged baseline gets one too, and only that version: churn:3 has
    # the very same package as churn:2.
    twins = [platform.registry.get_version(f"churn:{n}").artifact_digest for n in (2, 3)]
    assert twins[0] == twins[1]
    platform.drift.set_baseline("churn:2", data)
    assert platform.drift.baseline("churn:2") is not None
    assert platform.drift.baseline("churn:3") is None
    # Fewer rows than a check needs: kept, with a warning Python callers see.
    tiny = write_csv(tmp_path / "tiny.csv", features(3, 4))
    with pytest.warns(SmallBaseline, match="churn:2: the baseline holds 3 row"):
        assert platform.drift.set_baseline("churn:2", tiny).row_count == 3


def test_a_file_that_does_not_fit_the_model_is_refused_naming_columns(
    platform: Platform, tmp_path: Path
) -> None:
    before = platform.drift.baseline("churn:1")
    assert before is not None
    lacking = write_csv(tmp_path / "lacking.csv", features(200, 3).drop(columns=["b", "c"]))
    with pytest.raises(InvalidInput, match=r"lacks column\(s\) b, c \(the model takes a, b, c\)"):
        platform.drift.set_baseline("churn:1", lacking)
    texty = features(200, 3).astype({"b": str})
    texty["b"] = "x" + texty["b"]
    with pytest.raises(InvalidInput, match=r"b \(float64 in the signature, categorical in the"):
        platform.drift.set_baseline("churn:1", write_csv(tmp_path / "texty.csv", texty))
    with pytest.raises(InvalidInput, match="no such file"):
        platform.drift.set_baseline("churn:1", str(tmp_path / "missing.csv"))
    after = platform.drift.baseline("churn:1")
    assert after is not None and after.to_bytes() == before.to_bytes()


def test_a_column_name_differing_only_in_spaces_or_case_is_shown_as_the_data_spells_it(
    platform: Platform, tmp_path: Path
) -> None:
    """A header written ' a, B,c' was refused with 'lacks column(s) a, b (the model takes a,
    b, c)': it read as a refusal of the very columns the file seemed to hold."""
    spelt = features(200, 3).rename(columns={"a": " a", "b": "B"})
    data = write_csv(tmp_path / "spelt.csv", spelt)
    with pytest.raises(
        InvalidInput,
        match=r"lacks column\(s\) a, b \(the model takes a, b, c\); the data has ' a', 'B', "
        r"whose names differ from them only in spaces or case$",
    ):
        platform.drift.set_baseline("churn:1", data)


def test_rows_the_model_cannot_predict_on_are_refused_and_nothing_is_stored(
    platform: Platform, tmp_path: Path
) -> None:
    """A baseline holds the model's predictions on its rows: one stored without them (the
    model refused a missing value) would never show prediction drift."""
    before = platform.drift.baseline("churn:1")
    assert before is not None
    holey = features(300, 3)
    holey.loc[7, "b"] = np.nan  # LogisticRegression takes no missing values
    data = write_csv(tmp_path / "holey.csv", holey)
    with pytest.raises(InvalidInput, match=r"churn:1 cannot predict on the rows of .*holey\.csv"):
        platform.drift.set_baseline("churn:1", data)
    after = platform.drift.baseline("churn:1")
    assert after is not None and after.to_bytes() == before.to_bytes()
    with pytest.raises(InvalidInput, match=r"Input X contains NaN\.$"):  # the first line
        platform.drift.set_baseline("churn:2", data)
    assert platform.drift.baseline("churn:2") is None


def test_drift_against_a_file_gives_one_report_per_variant(
    platform: Platform, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "current.csv", features(5000, 4, shift_a=0.5))
    blue, green = platform.drift.drift("api", data=data)
    assert (blue.variant, blue.model, blue.window_start) == ("blue", "churn:1", None)
    assert blue.drifted == ["a"] and blue.current_rows == 5000 and blue.baseline_rows == 4000
    assert blue.predictions == ()  # a file of features has no predictions to compare
    assert green.verdict is Verdict.INSUFFICIENT_DATA
    assert [q.check for q in green.quality] == ["no_baseline"]
    assert "churn:2 has no baseline" in green.quality[0].message
    (only,) = platform.drift.drift("api", variant="blue", data=data)
    assert only.variant == "blue"


def test_drift_against_a_file_holding_numbers_as_text_is_refused_as_a_baseline_is(
    platform: Platform, tmp_path: Path
) -> None:
    # A Parquet column of numerals stored as text: a baseline from it is refused; drift
    # against it rated that feature insufficient_data and the rest decided the verdict, so a
    # check passed without judging it.
    texty = features(500, 4, shift_a=3.0).astype({"a": str})
    texty.to_parquet(tmp_path / "texty.parquet")
    with pytest.raises(InvalidInput, match=r"a \(float64 in the signature, categorical in the"):
        platform.drift.drift("api", data=str(tmp_path / "texty.parquet"))
    with pytest.raises(InvalidInput, match=r"a \(float64 in the signature, categorical in the"):
        platform.drift.set_baseline("churn:1", str(tmp_path / "texty.parquet"))


def test_a_file_is_read_by_position_for_a_model_of_unnamed_features(
    platform: Platform, tmp_path: Path
) -> None:
    """The file that set the baseline of a model trained on a bare array (features ``0``,
    ``1``, ``2`` by position) is compared column by column, not reported as three missing
    columns and three extra ones."""
    from sklearn.linear_model import LogisticRegression

    train = features(500, 10).to_numpy()
    model = LogisticRegression().fit(train, (train[:, 0] > 0).astype(int))
    platform.registry.register("bare", model, flavor="sklearn", input_example=train[:3])
    platform.endpoints.create("bare-api", {"main": "bare:1"})
    base = write_csv(tmp_path / "base.csv", features(2000, 11))
    platform.drift.set_baseline("bare:1", base)
    (same,) = platform.drift.drift("bare-api", data=base)
    assert [(f.name, f.current_rows) for f in same.features] == [("0", 2000), ("1", 2000),
                                                                 ("2", 2000)]  # fmt: skip
    assert same.verdict is Verdict.NO_DRIFT and same.quality == ()
    shifted = write_csv(tmp_path / "shifted.csv", features(2000, 12, shift_a=0.8))
    (moved,) = platform.drift.drift("bare-api", data=shifted)
    assert moved.drifted == ["0"]
    wide = write_csv(tmp_path / "wide.csv", features(2000, 13).assign(d=1.0))
    (other,) = platform.drift.drift("bare-api", data=wide)  # not the model's width: as named
    assert {q.check for q in other.quality} == {"missing_column", "extra_column"}


def test_drift_over_a_window_of_captured_rows(platform: Platform, tmp_path: Path) -> None:
    capture(platform, "blue", 1, features(3000, 5, shift_a=0.8), NOW - timedelta(minutes=30))
    capture(platform, "blue", 1, features(2000, 6), NOW - timedelta(hours=3))  # outside 1h
    capture(platform, "green", 2, features(500, 7), NOW - timedelta(minutes=10))
    blue, green = platform.drift.drift("api", window=timedelta(hours=1), now=NOW)
    assert (blue.window_start, blue.window_end) == (NOW - timedelta(hours=1), NOW)
    assert blue.current_rows == 3000 and blue.drifted == ["a"]
    # Captured values of a redacted field are hashes: the column is left out, and said so.
    assert [f.name for f in blue.features] == ["a", "b"]
    assert [(q.check, q.column) for q in blue.quality] == [("redacted", "c")]
    (prediction,) = blue.predictions
    assert prediction.name == "prediction" and prediction.current_rows == 3000
    assert green.current_rows == 500 and green.verdict is Verdict.INSUFFICIENT_DATA
    # The same rows exported to a file are split by variant in the same way.
    export = tmp_path / "rows.parquet"
    platform.capture.export("api", NOW - timedelta(hours=1), NOW, export)
    from_file, _ = platform.drift.drift("api", data=str(export))
    assert from_file.drifted == ["a"] and from_file.current_rows == 3000
    profile, notes = platform.drift.window_profile("api", "blue", NOW - timedelta(hours=1), NOW)
    assert profile is not None and profile.row_count == 3000 and notes == ()
    later = platform.drift.window_profile("api", "blue", NOW, NOW + timedelta(hours=1))
    assert later == (None, ())


def test_a_damaged_captured_file_is_left_out_of_a_drift_window_and_said(
    platform: Platform,
) -> None:
    """One damaged file (truncated, overwritten) failed every drift check of its window, so a
    scheduled monitor failed each run until someone pruned it. The rest is compared, and the
    report names the file; reading or exporting the window still refuses it."""
    capture(platform, "blue", 1, features(3000, 5, shift_a=0.8), NOW - timedelta(minutes=30))
    damaged = f"{partition('api', NOW - timedelta(minutes=20))}/part-blue-damaged.parquet"
    CaptureFolder(platform.settings.resolved_capture_url).write(damaged, b"PAR1 not parquet")
    (blue,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    assert blue.current_rows == 3000 and blue.drifted == ["a"]
    (note,) = [q for q in blue.quality if q.check == "unreadable_capture"]
    assert note.message.startswith("1 damaged captured file(s) left out of this window")
    assert damaged in note.message
    with pytest.raises(StorageUnavailable, match=r"part-blue-damaged\.parquet"):
        platform.capture.read("api", since=NOW - timedelta(hours=1), until=NOW)
    # The report's pictures read the window as drift does, with the same note.
    profile, notes = platform.drift.window_profile("api", "blue", NOW - timedelta(hours=1), NOW)
    assert profile is not None and profile.row_count == 3000
    assert [(q.check, q.message) for q in notes] == [(note.check, note.message)]


def test_predictions_come_only_from_the_current_model_version(platform: Platform) -> None:
    capture(platform, "blue", 1, features(1000, 8), NOW - timedelta(minutes=20))
    capture(platform, "blue", 7, features(400, 9), NOW - timedelta(minutes=15))  # an old model
    (blue,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    assert blue.current_rows == 1400  # inputs: every row the variant answered
    assert [p.current_rows for p in blue.predictions] == [1000]


def test_rows_of_a_version_that_does_not_take_a_feature_do_not_make_it_vanish(
    platform: Platform,
) -> None:
    """Right after blue moved to a version taking other features, its window held only the
    earlier version's rows: the new version's features read as vanished from them, so the
    check (and every scheduled run, and an alarm on drift.share) called drift on a model that
    had not answered yet. A feature is compared on the rows of versions that take it."""
    from sklearn.linear_model import LogisticRegression

    train = features(3000, 1).rename(columns={"c": "d"}).loc[:, ["a", "d"]]
    model = LogisticRegression().fit(train, (train["a"] > 0).astype(int))
    platform.registry.register(
        "fraud", model, flavor="sklearn", input_example=train[:3], baseline=train
    )
    capture(platform, "blue", 1, features(1000, 8), NOW - timedelta(minutes=40))
    platform.endpoints.update("api", {"blue": "fraud:1", "green": "churn:2"})
    (before,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    assert [(f.name, f.verdict) for f in before.features] == [
        ("a", Verdict.NO_DRIFT),  # churn:1 took a too: its rows are fraud's traffic as well
        ("d", Verdict.INSUFFICIENT_DATA),  # not a vanished feature: none of its rows yet
    ]
    assert before.verdict is Verdict.NO_DRIFT and before.drifted == []
    # Once fraud:1 answered, d is compared on its rows alone, and a drift of d is seen.
    fresh = features(600, 9, shift_a=0.0).rename(columns={"c": "d"}).loc[:, ["a", "d"]]
    fresh["d"] += 1.0
    capture(platform, "blue", 1, fresh, NOW - timedelta(minutes=10), model="fraud")
    (after,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    d = after.features[1]
    assert (d.name, d.current_rows, d.verdict) == ("d", 600, Verdict.DRIFT)
    assert after.features[0].current_rows == 1600 and after.current_rows == 1600


def test_a_store_failure_reading_what_a_version_takes_fails_the_check_not_its_report(
    platform: Platform,
) -> None:
    """Which features a captured row's version takes was read as unknown on any error, an
    outage of the metadata database too: its rows then counted for every feature (a new
    version's features vanished from them again, a false drift on a scheduled run). Only a
    version that is gone is unknown; a store failure fails the check, as everywhere else."""
    capture(platform, "blue", 1, features(1000, 8), NOW - timedelta(minutes=20))
    (blue,) = [v for v in platform.endpoints.get("api").config.variants if v.name == "blue"]
    platform.close()  # the database lost: its file removed once its connections are closed
    for suffix in ("", "-wal", "-shm"):
        (platform.settings.home / f"modelyard.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(StorageUnavailable, match="metadata database"):
        platform.drift.window_profile("api", blue, NOW - timedelta(hours=1), NOW)


def test_an_empty_window_is_insufficient_data_without_noise(platform: Platform) -> None:
    blue, _ = platform.drift.drift("api", window=timedelta(minutes=5), now=NOW)
    assert blue.current_rows == 0 and blue.verdict is Verdict.INSUFFICIENT_DATA
    assert blue.quality == () and blue.scores() == {}
    assert {f.verdict for f in blue.features} == {Verdict.INSUFFICIENT_DATA}


def test_bad_arguments_are_refused(platform: Platform, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "x.csv", features(10, 0))
    with pytest.raises(VariantNotFound, match="no variant 'red'; it has blue, green"):
        platform.drift.drift("api", variant="red", data=data)
    with pytest.raises(InvalidInput, match="not both"):
        platform.drift.drift("api", window=timedelta(hours=1), data=data)
    with pytest.raises(InvalidInput, match=r"longer than zero, got -1h30m$"):
        platform.drift.drift("api", window=-timedelta(minutes=90))
    report, _ = platform.drift.drift("api", data=data, config=DriftConfig(min_rows=5))
    assert report.config.min_rows == 5 and report.verdict is not Verdict.INSUFFICIENT_DATA


def test_an_export_of_no_checked_variant_is_refused_naming_its_variants(
    platform: Platform, tmp_path: Path
) -> None:
    """A capture export whose rows are all of variants the check does not cover (another
    endpoint's, a renamed variant's) was compared as an empty window: 'current 0, insufficient
    data' for a file of 3,000 rows, with nothing saying why."""
    capture(platform, "blue", 1, features(3000, 5), NOW - timedelta(minutes=30))
    export = tmp_path / "rows.parquet"
    platform.capture.export("api", NOW - timedelta(hours=1), NOW, export)
    renamed = tmp_path / "renamed.parquet"
    pd.read_parquet(export).assign(variant="canary").to_parquet(renamed)
    none_checked = r"none of the variant\(s\) checked"
    with pytest.raises(InvalidInput, match=rf"canary, {none_checked} \(blue, green\)"):
        platform.drift.drift("api", data=str(renamed))
    with pytest.raises(InvalidInput, match=rf"blue, {none_checked} \(green\)"):
        platform.drift.drift("api", variant="green", data=str(export))
    # A file holding some checked variant's rows is compared; the others are empty, as before.
    blue, green = platform.drift.drift("api", data=str(export))
    assert (blue.current_rows, green.current_rows) == (3000, 0)
