"""Profiles and category frequencies: kinds from column types, the same rows in any order give
the same bytes, profiles of parts merge into the profile of the whole (byte for byte, with
categories, text and predictions), bytes round-trip, and damaged or mismatched input is refused
with a typed error that names the problem."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import InvalidInput
from modelyard.monitoring.frequencies import Frequencies
from modelyard.monitoring.pairs import CategoricalPair
from modelyard.monitoring.profile import Profile


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:04d}" for i in range(3000)])
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows),
            "visits": pd.array(rng.poisson(3, rows), dtype="Int64"),
            "city": rng.choice(["Paris", "Lyon", "Nice", None], rows),
            "flag": rng.random(rows) < 0.3,
            "note": [" ".join(words[rng.integers(0, 3000, 3)]) for _ in range(rows)],
            "when": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
            "code": pd.Series(rng.integers(0, 5, rows), dtype=object),
            "empty": [None] * rows,
        }
    )


def test_kinds_follow_column_types() -> None:
    profile = Profile.from_frame(table(2000, 0), predictions=np.arange(2000) % 3)
    kinds = {c.name: (c.kind, c.drift_kind) for c in profile.column_profiles}
    assert kinds == {
        "age": ("numeric", "numeric"),
        "visits": ("numeric", "numeric"),
        "city": ("categorical", "categorical"),
        "flag": ("numeric", "numeric"),  # booleans as 0 and 1, as requests carry them
        "note": ("categorical", "text"),  # more distinct values than kept: compared by length
        "when": ("numeric", "numeric"),
        "code": ("numeric", "numeric"),  # Python ints in an object column
        "empty": ("numeric", "numeric"),
    }
    city = profile.column("city")
    assert (city.present, city.missing, city.rows) == (
        int(table(2000, 0)["city"].notna().sum()),
        int(table(2000, 0)["city"].isna().sum()),
        2000,
    )
    assert profile.column("empty").missing == 2000
    assert profile.predictions is not None and profile.predictions.columns == ("prediction",)
    several = Profile.from_frame(table(10, 0), predictions=np.zeros((10, 3)))
    assert several.predictions is not None and several.predictions.columns == ("0", "1", "2")


def test_same_rows_any_order_same_bytes_and_a_round_trip() -> None:
    frame = table(3000, 1)
    predicted = np.random.default_rng(3).random(3000)
    first = Profile.from_frame(frame, predictions=predicted).to_bytes()
    order = np.random.default_rng(4).permutation(3000)
    shuffled = frame.iloc[order].reset_index(drop=True)
    assert Profile.from_frame(shuffled, predictions=predicted[order]).to_bytes() == first
    again = Profile.from_bytes(first)
    assert again.to_bytes() == first
    assert again.summary() == Profile.from_bytes(first).summary()
    assert again.columns == tuple(frame.columns)


def test_profiles_of_parts_merge_into_the_profile_of_the_whole() -> None:
    frame = table(4000, 2)
    predicted = pd.DataFrame({"label": np.where(frame["age"] > 40, "old", "young")})
    whole = Profile.from_frame(frame, predictions=predicted)
    cuts = [0, 1, 1500, 3999, 4000]
    parts = [
        Profile.from_frame(
            frame.iloc[a:b].reset_index(drop=True),
            predictions=predicted.iloc[a:b].reset_index(drop=True),
        )
        for a, b in itertools.pairwise(cuts)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.row_count == 4000
    assert merged.to_bytes() == whole.to_bytes()


def test_frequencies_keep_the_smallest_hashes_and_merge_exactly() -> None:
    rng = np.random.default_rng(6)
    values = pd.Series(rng.integers(0, 50, 5000).astype(str))
    whole = Frequencies.of(values, keep=8)
    assert whole.overflow and len(whole.categories) == 8 and whole.total == 5000
    counts = values.value_counts()
    assert all(counts[text] == n for _, text, n in whole.categories)
    merged = Frequencies.of(values[:1234], keep=8).merge(Frequencies.of(values[1234:], keep=8))
    assert merged == whole
    assert 20 <= whole.distinct() <= 150  # an estimate of the 50 distinct values
    exact = Frequencies.of(values, keep=64)
    assert not exact.overflow and exact.distinct() == 50


def test_categorical_pairs_compare_below_both_cuts_and_pool_the_rest() -> None:
    rng = np.random.default_rng(7)
    a = Frequencies.of(pd.Series(rng.integers(0, 40, 3000).astype(str)), keep=10)
    b = Frequencies.of(pd.Series(rng.integers(0, 40, 2000).astype(str)), keep=10)
    pair = CategoricalPair.of(a, b)
    assert pair.categories[-1] is None  # "other"
    assert (pair.baseline_rows, pair.current_rows) == (3000, 2000)
    kept = set(pair.categories[:-1])
    assert kept <= set(a.counts()) and kept <= set(b.counts())


def test_object_values_are_compared_as_text_in_any_order() -> None:
    values = [1, 1.0, "1", True, 2, None]
    first = Frequencies.of(pd.Series(values, dtype=object))
    second = Frequencies.of(pd.Series(values[::-1], dtype=object))
    assert first == second
    assert first.counts() == {"1": 2, "1.0": 1, "True": 1, "2": 1}
    assert first.missing == 1


def test_a_column_empty_in_one_part_takes_the_other_parts_kind() -> None:
    left = Profile.from_frame(pd.DataFrame({"x": pd.Series([None, None], dtype=object)}))
    right = Profile.from_frame(pd.DataFrame({"x": ["a", "b", "a"]}))
    merged = left.merge(right)
    assert merged.column("x").kind == "categorical"
    assert (merged.column("x").present, merged.column("x").missing) == (3, 2)


def test_refusals_name_the_problem() -> None:
    a = Profile.from_frame(pd.DataFrame({"x": [1.0], "y": [2.0]}))
    b = Profile.from_frame(pd.DataFrame({"x": [1.0], "z": [2.0]}))
    with pytest.raises(InvalidInput, match="only in the first: y; only in the second: z"):
        a.merge(b)
    text = Profile.from_frame(pd.DataFrame({"x": ["a"], "y": [2.0]}))
    with pytest.raises(InvalidInput, match="column 'x' holds numeric values on one side"):
        a.merge(text)
    with pytest.raises(InvalidInput, match="duplicate columns: x"):
        Profile.from_frame(pd.DataFrame([[1, 2]], columns=["x", "x"]))
    with pytest.raises(InvalidInput, match="3 predictions for 2 rows"):
        Profile.from_frame(pd.DataFrame({"x": [1, 2]}), predictions=[1, 2, 3])
    with pytest.raises(InvalidInput, match="not a modelyard profile"):
        Profile.from_bytes(b"PK\x03\x04 a zip file")
    data = bytearray(a.to_bytes())
    data[4] = 99  # a format version from the future
    with pytest.raises(InvalidInput, match="format version 99"):
        Profile.from_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="damaged"):
        Profile.from_bytes(a.to_bytes()[:-3])
