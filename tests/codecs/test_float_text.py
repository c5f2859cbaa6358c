"""float32 CSV text: the Arrow path writes exactly numpy's shortest repr."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.codecs import float_text
from modelyard.codecs.float_text import ARROW_FROM, float32_csv


def _numpy_lines(array: np.ndarray) -> bytes:
    rows = array.reshape(len(array), -1).astype(str).tolist()
    return "".join(",".join(r) + "\n" for r in rows).encode()


EDGES = np.array(
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        100.0,
        0.5,
        1e-4,
        1.5e-4,
        9.9e-5,
        1e-5,
        2.5e-7,
        1e-45,
        999999.9,
        1e6,
        1000005.2,
        16777215.0,
        1e16,
        3.4e38,
        np.nan,
        np.inf,
        -np.inf,
        0.1,
        1 / 3,
        -0.33,
    ],
    dtype=np.float32,
)


def _sample(seed: int) -> np.ndarray:
    """Random bit patterns over every finite float32 magnitude, plus the edges."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 0x7F800000, 200_000, dtype=np.uint32)
    values = bits.view(np.float32) * rng.choice(np.array([-1, 1], dtype=np.float32), len(bits))
    probabilities = rng.random(50_000).astype(np.float32)
    return np.concatenate([values, probabilities, EDGES])


@pytest.mark.parametrize("seed", [1, 2])
def test_arrow_path_writes_numpy_text_for_every_magnitude(seed: int) -> None:
    values = _sample(seed)
    assert float32_csv(values) == _numpy_lines(values)


def test_two_columns_and_the_small_path() -> None:
    values = _sample(3)[: 2 * 40_000].reshape(-1, 2)
    assert float32_csv(values) == _numpy_lines(values)
    small = EDGES[: ARROW_FROM // 2]
    assert float32_csv(small) == _numpy_lines(small)
    assert float32_csv(np.array([], dtype=np.float32)) == b""


def test_large_arrays_take_the_arrow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(array: np.ndarray) -> bytes:
        raise AssertionError("numpy's path")

    monkeypatch.setattr(float_text, "_numpy_csv", refuse)
    values = np.random.default_rng(4).random(ARROW_FROM).astype(np.float32)
    assert float32_csv(values).count(b"\n") == ARROW_FROM
    with pytest.raises(AssertionError, match="numpy's path"):
        float32_csv(values[:10])
