"""float32 CSV text: the orjson paths write exactly numpy's shortest repr."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.codecs.float_text import ORJSON_FROM, float32_csv


def _numpy_lines(array: np.ndarray) -> bytes:
    rows = array.reshape(len(array), -1).astype(str).tolist()
    return "".join(",".join(r) + "\n" for r in rows).encode()


EDGES = np.array(
    [0.0, -0.0, 1.0, -1.0, 100.0, 0.5, 1e-4, 1.5e-4, 9.9e-5, 1e-5, 2.5e-7, 1e-45, 999999.9,
     999999.0, 1e6, 1000005.2, 16777215.0, 1e16, 3.4e38, np.nan, np.inf, -np.inf, 0.1, 1 / 3],
    dtype=np.float32,
)  # fmt: skip


def _every_magnitude(seed: int, n: int) -> np.ndarray:
    """Random bit patterns over every finite float32 magnitude, both signs."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 0x7F800000, n, dtype=np.uint32).view(np.float32)
    return values * rng.choice(np.array([-1, 1], dtype=np.float32), n)


@pytest.mark.parametrize("seed", [1, 2])
def test_mixed_values_are_written_as_numpy_writes_them(seed: int) -> None:
    values = np.concatenate([_every_magnitude(seed, 200_000), EDGES])
    assert float32_csv(values) == _numpy_lines(values)


def test_values_inside_the_window_take_the_whole_array_path() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.random(100_000).astype(np.float32)
    integers = np.arange(-999_999, 1_000_000, 7, dtype=np.float32)
    for values in (probabilities, integers, (probabilities - 0.5) * 2e6):
        inside = values[np.abs(values) < 1e6]
        inside = inside[(np.abs(inside) >= 1e-4) | (inside == 0)]
        assert float32_csv(inside) == _numpy_lines(inside)


def test_two_columns_mixed_and_inside() -> None:
    mixed = np.concatenate([_every_magnitude(4, 40_000), EDGES]).reshape(-1, 2)
    assert float32_csv(mixed) == _numpy_lines(mixed)
    inside = np.random.default_rng(5).random((1000, 3)).astype(np.float32)
    assert float32_csv(inside) == _numpy_lines(inside)


def test_empty_arrays() -> None:
    assert float32_csv(np.array([], dtype=np.float32)) == b""
    assert float32_csv(np.zeros((2, 0), dtype=np.float32)) == b"\n\n"
    assert float32_csv(np.array([np.nan], dtype=np.float32)) == b"nan\n"


def test_small_arrays_take_numpys_path_with_the_same_text() -> None:
    for values in (EDGES[:1], EDGES[: ORJSON_FROM - 1], EDGES[-(ORJSON_FROM - 1) :]):
        assert float32_csv(values) == _numpy_lines(values)
    small = EDGES[:12].reshape(-1, 3)
    assert float32_csv(small) == _numpy_lines(small)
