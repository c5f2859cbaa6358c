"""The drain's vectorized arithmetic against plain per-request computations: Prometheus ``le``
buckets, per-feature reductions with missing values, text lengths, class counts, and request
digests that equal rows share and any difference (value, order, row count) changes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from modelyard.serving.metrics_compute import (
    MAX_FEATURES,
    _multipliers,
    bucket_counts,
    column_stats,
    frame_digest,
    input_stats,
    output_stats,
    request_digests,
    stack,
)


def test_buckets_hold_values_up_to_and_including_their_bound() -> None:
    counts = bucket_counts(np.array([0.5, 1.0, 1.0001, 2.0, 9.0, np.nan]), (1.0, 2.0))
    assert counts.tolist() == [2, 2, 1]  # <=1, (1, 2], above 2; NaN not counted


def test_feature_reductions_match_per_column_numpy() -> None:
    rng = np.random.default_rng(5)
    requests = [rng.normal(size=(n, 4)) for n in (1, 3, 2)]
    requests[1][0, 2] = np.nan
    requests[2][:, 3] = np.nan  # a column missing in one request only
    x = stack(requests)
    assert x is not None and x.shape == (6, 4)
    found = input_stats(x, requests, ["a", "b", "c", "d"], (10.0,)).numeric
    assert found is not None and found.names == ["a", "b", "c", "d"]
    whole = np.concatenate(requests)
    assert found.missing.tolist() == [0, 0, 1, 2]
    assert found.present.tolist() == [6, 6, 5, 4]
    np.testing.assert_allclose(found.sums, np.nansum(whole, axis=0))
    np.testing.assert_allclose(found.lows, np.nanmin(whole, axis=0))
    np.testing.assert_allclose(found.highs, np.nanmax(whole, axis=0))


def test_reductions_over_many_slices_of_rows() -> None:
    # A drain's rows are reduced a slice at a time: NaN in one slice only, a column missing
    # in every row, a column whose low and high are in different slices, and no rows at all.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(20_000, 30))
    x[15_000:15_010, 4] = np.nan
    x[:, 7] = np.nan
    x[3, 9], x[19_999, 9] = -1e9, 1e9
    found = column_stats(x, [str(i) for i in range(30)])
    assert found.missing[4] == 10 and found.missing[7] == 20_000 and found.missing.sum() == 20_010
    assert found.present[7] == 0 and np.isnan(found.lows[7]) and np.isnan(found.highs[7])
    assert (found.lows[9], found.highs[9]) == (-1e9, 1e9)
    kept = np.delete(x, 7, axis=1)
    np.testing.assert_allclose(np.delete(found.sums, 7), np.nansum(kept, axis=0))
    np.testing.assert_array_equal(np.delete(found.lows, 7), np.nanmin(kept, axis=0))
    np.testing.assert_array_equal(np.delete(found.highs, 7), np.nanmax(kept, axis=0))
    empty = column_stats(np.empty((0, 3)), ["a", "b", "c"])
    assert empty.present.tolist() == [0, 0, 0] and np.isnan(empty.lows).all()


def test_names_fall_back_to_positions_and_wide_inputs_are_capped() -> None:
    wide = [np.zeros((2, MAX_FEATURES + 20))]
    found = input_stats(stack(wide), wide, ["only", "two"], (1.0,)).numeric
    assert found is not None
    assert found.names[:3] == ["0", "1", "2"] and len(found.names) == MAX_FEATURES


def test_tables_with_text_columns() -> None:
    frames = [
        pd.DataFrame({"city": ["Oslo", None], "age": [30.0, np.nan]}),
        pd.DataFrame({"city": ["Reykjavik"], "age": [41.0]}),
    ]
    assert stack(frames) is None
    found = input_stats(None, frames, None, (5.0, 10.0))
    assert found.numeric is not None and found.numeric.names == ["age"]
    assert (found.numeric.present.tolist(), found.numeric.missing.tolist()) == ([2], [1])
    city = found.text["city"]
    assert (city.present, city.missing, city.total_length) == (2, 1, 13)
    assert city.buckets.tolist() == [1, 1, 0]  # 4 chars <= 5; 9 chars <= 10


def test_numeric_and_label_outputs() -> None:
    numeric = output_stats(
        [np.array([0.1, np.nan]), np.array([0.9], dtype=np.float32)], None, (0.5,)
    )
    (only,) = numeric
    assert (only.name, only.present, only.missing) == ("prediction", 2, 1)
    assert only.total == pytest.approx(1.0) and (only.low, only.high) == (
        0.1,
        float(np.float32(0.9)),
    )
    assert only.buckets is not None and only.buckets.tolist() == [1, 1]
    labels = output_stats(
        [np.array(["yes", "no", "yes"], dtype=object), np.array([None], dtype=object)], None, ()
    )
    assert (labels[0].classes, labels[0].missing) == ({"no": 1, "yes": 2}, 1)
    columns = output_stats([np.array([[0.2, 0.8], [0.6, 0.4]])], ["p0", "p1"], (0.5,))
    assert [(c.name, c.present, c.total) for c in columns] == [
        ("p0", 2, pytest.approx(0.8)),
        ("p1", 2, pytest.approx(1.2)),
    ]


def test_digests_tell_requests_apart() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    swapped = a[::-1].copy()
    first = np.array([[1.0, 2.0]])
    requests = [a, first, a.copy(), swapped, first.copy(), np.array([[1.0, 2.0000001]])]
    x = stack(requests)
    assert x is not None
    lengths = np.array([len(r) for r in requests])
    digests = request_digests(x, lengths).tolist()
    assert digests[0] == digests[2] and digests[1] == digests[4]  # equal rows, equal digest
    assert len({digests[0], digests[1], digests[3], digests[5]}) == 4
    # The same request in another drain (another batch of requests) has the same digest.
    again = request_digests(stack([first]), np.array([1])).tolist()  # type: ignore[arg-type]
    assert again == [digests[1]]


def test_frame_digests() -> None:
    one = pd.DataFrame({"city": ["Oslo"], "age": [3.0]})
    assert frame_digest(one) == frame_digest(one.copy())
    assert frame_digest(one) != frame_digest(pd.DataFrame({"city": ["Bergen"], "age": [3.0]}))


def test_rows_of_text_as_arrays_or_lists_are_tables_with_the_features_names() -> None:
    """What a handler's ``input_fn`` may hand a text model: not DataFrames, not numbers."""
    rows = [
        np.array([["a wonderful film", 3.0], [None, 4.0]], dtype=object),
        [["dull", np.nan]],
    ]
    assert stack(rows) is None
    found = input_stats(None, rows, ["review", "stars"], (5.0, 10.0))
    review = found.text["review"]
    assert (review.present, review.missing, review.total_length) == (2, 1, 20)
    assert review.buckets.tolist() == [1, 0, 1]  # 4 chars <= 5; 16 chars > 10
    assert found.numeric is not None and found.numeric.names == ["stars"]
    assert (found.numeric.present.tolist(), found.numeric.sums.tolist()) == ([2], [7.0])
    one = np.array([["dull"]], dtype=object)
    assert frame_digest(one) == frame_digest([["dull"]])
    assert frame_digest(one) != frame_digest(np.array([["moving"]], dtype=object))


_OTHER_THREADS_CPU = """
import os, sys, threading
from pathlib import Path

import numpy as np

from modelyard.serving.metrics_compute import column_stats


def others() -> int:  # clock ticks of every thread but this one
    main, ticks = threading.get_native_id(), 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != main:
            raw = Path(f"/proc/self/task/{tid}/stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks


x = np.random.default_rng(0).random((100_000, 30))
names = [str(i) for i in range(30)]
for _ in range(5):  # whatever starts once (a thread pool waking) is not counted
    column_stats(x, names)
before = others()
for _ in range(60):
    column_stats(x, names)
print(others() - before)
"""


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="reads threads' CPU from Linux's /proc"
)
def test_feature_reductions_stay_on_the_calling_thread() -> None:
    """The drain's reductions run on its own thread only: a BLAS matrix-vector product
    handed long inputs to BLAS threads, which then spun on the cores serving requests (about
    a hundred clock ticks over these 60 calls on two cores; none now)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", _OTHER_THREADS_CPU], env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    assert int(out.stdout) <= 2, f"other threads used {out.stdout.strip()} clock ticks"


def _digest_by_hand(rows: np.ndarray) -> int:
    """request_digests' definition, one request at a time, in Python integers mod 2**64."""
    mask = 2**64 - 1
    multipliers = [int(v) for v in _multipliers(rows.shape[1])]
    total = 0
    for position, row in enumerate(rows.view(np.uint64).tolist()):
        h = sum(w * k for w, k in zip(row, multipliers, strict=True)) & mask
        h ^= h >> 29
        total += h * (2 * position + 0x9E3779B97F4A7C15)
    return (total & mask) ^ ((len(rows) * 0xC2B2AE3D27D4EB4F) & mask)


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1], [1, 3, 0, 2, 1], [2, 2], [0, 1]])
def test_digests_follow_their_definition(sizes: list[int]) -> None:
    # One row per request takes a shortcut; every shape must give the defined digest.
    rng = np.random.default_rng(len(sizes))
    requests = [rng.normal(size=(n, 5)) for n in sizes]
    x = np.concatenate(requests)
    found = request_digests(x, np.array(sizes)).tolist()
    assert found == [_digest_by_hand(r) for r in requests]
