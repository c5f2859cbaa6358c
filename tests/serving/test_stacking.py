"""Many requests' arrays stacked into one: the byte-joined arrays equal NumPy's concatenation,
and arrays that cannot be joined as bytes (other types, widths, orders, objects) fall back or
are refused rather than misread."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.serving.stacking import joined, prediction_matrix, stacked


def _lengths(arrays: list[np.ndarray]) -> np.ndarray:
    return np.array([len(a) for a in arrays])


@pytest.mark.parametrize(
    "shapes",
    [[(1, 30)] * 50, [(1, 3), (4, 3), (2, 3)], [(3,), (2,)], [(2, 1), (3,)]],
    ids=["one-row-requests", "many-row-requests", "1-d", "1-d-and-2-d"],
)
def test_joined_arrays_equal_their_concatenation(shapes: list[tuple[int, ...]]) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s) for s in shapes]
    found = joined(arrays, _lengths(arrays))
    assert found is not None
    expected = np.concatenate([a.reshape(len(a), -1) for a in arrays])
    assert found.shape == expected.shape and np.array_equal(found, expected)
    assert not found.flags.writeable  # one buffer shared by the metrics and capture


def test_views_into_one_answer_join_as_the_batcher_sliced_them() -> None:
    answer = np.arange(10, dtype=np.float32)
    views = [answer[0:2], answer[2:3], answer[3:7]]
    found = joined(views, _lengths(views))
    assert found is not None and found.dtype == np.float32
    assert found.ravel().tolist() == answer[:7].tolist()


@pytest.mark.parametrize(
    "arrays",
    [
        [np.zeros((1, 3)), np.zeros((1, 4))],  # other widths
        [np.zeros((2, 3)), np.zeros((1, 6))],  # as many bytes, not as many columns
        [np.zeros((1, 3)), np.zeros((1, 3), dtype=np.float32)],  # other types
        [np.zeros((2, 4))[:, ::2]],  # a view with steps
        [np.asfortranarray(np.zeros((2, 3)))],
        [np.array([["a"], ["b"]], dtype=object)],  # bytes that are pointers
        [np.zeros((1, 3)), np.zeros((0, 3))],  # a request without rows
    ],
    ids=["widths", "same-bytes", "types", "strided", "fortran", "objects", "empty"],
)
def test_arrays_that_are_not_plain_bytes_are_not_joined(arrays: list[np.ndarray]) -> None:
    assert joined(arrays, _lengths(arrays)) is None


def test_stacked_falls_back_to_concatenate_and_refuses_tables() -> None:
    import pandas as pd

    mixed = [np.zeros((1, 3)), np.ones((1, 3), dtype=np.float32)]
    found = stacked(mixed)
    assert found is not None and found.dtype == np.float64 and found.shape == (2, 3)
    assert stacked([np.zeros((1, 3)), np.zeros((1, 4))]) is None
    assert stacked([pd.DataFrame({"a": [1.0]})]) is None


def test_predictions_stack_only_when_each_request_has_one_per_row() -> None:
    answer = np.arange(6.0)
    views = [answer[0:1], answer[1:3], answer[3:6]]
    found = prediction_matrix(views, np.array([1, 2, 3]))
    assert found is not None and found.shape == (6, 1)
    assert prediction_matrix(views, np.array([2, 1, 3])) is None  # lengths off by request
    wide = [np.ones((1, 2)), np.ones((2, 2))]
    assert prediction_matrix(wide, np.array([1, 2])).shape == (3, 2)  # type: ignore[union-attr]
    assert prediction_matrix([np.float64(1.0)], np.array([1])) is None  # no rows at all
