"""float32 CSV text: every path writes exactly numpy's shortest repr."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.codecs import float_text
from modelyard.codecs.float_text import ORJSON_FROM, float32_csv

LOW = float_text._LOW


def _numpy_lines(array: np.ndarray) -> bytes:
    rows = array.reshape(len(array), -1).astype(str).tolist()
    return "".join(",".join(r) + "\n" for r in rows).encode()


EDGES = np.array(
    [0.0, -0.0, 1.0, -1.0, 100.0, 0.5, 1e-4, 1.5e-4, 9.9e-5, 1e-5, 2.5e-7, 1e-45, 999999.9,
     999999.0, 1e6, 1000005.2, 16777215.0, 1e16, 3.4e38, np.nan, np.inf, -np.inf, 0.1, 1 / 3,
     LOW, np.nextafter(LOW, np.float32(0)), -LOW],
    dtype=np.float32,
)  # fmt: skip


def _every_magnitude(seed: int, n: int) -> np.ndarray:
    """Random bit patterns over every finite float32 magnitude, both signs."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 0x7F800000, n, dtype=np.uint32).view(np.float32)
    return values * rng.choice(np.array([-1, 1], dtype=np.float32), n)


def _mixed(seed: int, n: int, share: float) -> np.ndarray:
    """Probabilities with a ``share`` of values of any magnitude (and the edges) among them."""
    rng = np.random.default_rng(seed)
    values = rng.random(n).astype(np.float32)
    wild = rng.choice(n, int(n * share), replace=False)
    values[wild] = _every_magnitude(seed, len(wild))
    values[: len(EDGES)] = EDGES
    return values


@pytest.fixture
def numpy_path_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = float_text._numpy_rows

    def counted(array: np.ndarray) -> bytes:
        calls.append(array.size)
        return original(array)

    monkeypatch.setattr(float_text, "_numpy_rows", counted)
    return calls


@pytest.mark.parametrize("seed", [1, 2])
def test_a_few_values_outside_the_window_are_swapped_in(
    seed: int, numpy_path_counted: list[int]
) -> None:
    values = _mixed(seed, 200_000, 0.1)
    assert float32_csv(values) == _numpy_lines(values)
    two = _mixed(seed + 10, 40_000, 0.1).reshape(-1, 2)
    assert float32_csv(two) == _numpy_lines(two)
    assert numpy_path_counted == []


def test_values_inside_the_window_take_orjsons_path(numpy_path_counted: list[int]) -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.random(100_000).astype(np.float32)
    integers = np.arange(-999_999, 1_000_000, 7, dtype=np.float32)
    wide = ((probabilities - 0.5) * 2e6).astype(np.float32)
    for values in (probabilities, integers, wide, probabilities.reshape(-1, 4)):
        kept = values[(np.abs(values) < 1e6) & ((np.abs(values) >= LOW) | (values == 0))]
        kept = kept.reshape(-1, values.shape[1]) if values.ndim == 2 else kept
        assert float32_csv(kept) == _numpy_lines(kept)
    assert numpy_path_counted == []


def test_mostly_outside_the_window_takes_numpys_path(numpy_path_counted: list[int]) -> None:
    values = np.concatenate([_every_magnitude(4, 100_000), EDGES])
    assert float32_csv(values) == _numpy_lines(values)
    assert numpy_path_counted == [len(values)]


def test_small_arrays_take_numpys_path_with_the_same_text() -> None:
    for values in (EDGES[:1], EDGES[: ORJSON_FROM - 1], EDGES[-(ORJSON_FROM - 1) :]):
        assert float32_csv(values) == _numpy_lines(values)
    small = EDGES[:12].reshape(-1, 3)
    assert float32_csv(small) == _numpy_lines(small)


def test_empty_arrays() -> None:
    assert float32_csv(np.array([], dtype=np.float32)) == b""
    assert float32_csv(np.zeros((2, 0), dtype=np.float32)) == b"\n\n"
    assert float32_csv(np.array([np.nan], dtype=np.float32)) == b"nan\n"
