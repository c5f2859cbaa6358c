"""The columnar fast path writes exactly the bytes of the generic (endpoint codec) path, on the
values where parsers usually disagree, and hands back the blocks it cannot read the same way
(which the generic path then reports line by line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.batch.coordinator import run_job
from modelyard.domain.batch import JoinSource
from modelyard.errors import InvalidPayload
from tests.batch.support import Model, csv_text, features, request

TRICKY_LINES = [
    b"1,2,3,4,5",  # integers
    b"-1,-0,+2,-3.5,-4e-3",  # signs, negative zero
    b"1e5,1E-5,1e+5,.5,5.",  # exponents, bare points
    b"0.1,0.2,0.30000000000000004,1.7976931348623157e308,4.9e-324",  # precision edges
    b"123456789012345678901234567890,00012,1.5,,",  # long mantissa, leading zeros, missing
    b",,,,",  # all missing
    b"3.141592653589793,2.718281828459045,-1.4142135623730951,1e-300,-1e300",
]


def both(model: Model, tmp_path: Path, data: bytes, **kwargs: object) -> tuple[bytes, int, bytes]:
    """The output of the fast and of the generic path, and how many rows went the fast way."""
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    fast = run_job(request(model, source, tmp_path / "fast", **kwargs), model.source, job="f")
    slow = run_job(
        request(model, source, tmp_path / "slow", **kwargs), model.source, job="s", fast_path=False
    )
    assert slow.fast_rows == 0
    assert fast.counts == slow.counts
    fast_bytes = (tmp_path / "fast" / "in.csv.out").read_bytes()
    return fast_bytes, fast.fast_rows, (tmp_path / "slow" / "in.csv.out").read_bytes()


def test_fast_path_equals_generic_path_on_tricky_values(model: Model, tmp_path: Path) -> None:
    data = b"\n".join(TRICKY_LINES * 20) + b"\n" + csv_text(features(500, seed=5))
    fast, fast_rows, slow = both(model, tmp_path, data)
    assert fast_rows == len(TRICKY_LINES) * 20 + 500
    assert fast == slow
    rows = np.array(
        [[float(v) if v else np.nan for v in line.decode().split(",")] for line in TRICKY_LINES]
    )
    assert fast.splitlines()[: len(TRICKY_LINES)] == model.csv(rows).splitlines()


def test_fast_path_equals_generic_path_with_join_and_crlf(model: Model, tmp_path: Path) -> None:
    data = csv_text(features(200, seed=6)).replace(b"\n", b"\r\n")
    fast, fast_rows, slow = both(model, tmp_path, data, join_source=JoinSource.INPUT)
    assert fast_rows == 200
    assert fast == slow


def test_blocks_the_fast_path_cannot_read_go_the_generic_way(model: Model, tmp_path: Path) -> None:
    # Words, quotes, spaces and tabs: the codec's own rules decide them.
    odd = [b"nan,1,2,3,4", b'"1.5",2,3,4,5', b" 1 ,2,3,4,5", b"inf,-Infinity,1,2,3"]
    odd.append(b"\t10,1,2,3,4")
    data = b"\n".join(odd) + b"\n"
    fast, fast_rows, slow = both(model, tmp_path, data)
    assert fast_rows == 0
    assert fast == slow
    rows = np.array(
        [
            [np.nan, 1, 2, 3, 4],
            [1.5, 2, 3, 4, 5],
            [1, 2, 3, 4, 5],
            [np.inf, -np.inf, 1, 2, 3],
            [10, 1, 2, 3, 4],
        ]
    )
    assert fast == model.csv(rows)


def test_a_value_the_codec_refuses_is_refused_on_both_paths(model: Model, tmp_path: Path) -> None:
    # float() reads these as numbers; the endpoint codec (and so a batch job) does not.
    for i, value in enumerate(["1_0", "\u0661", "1\u00a0"]):
        source = tmp_path / f"in{i}.csv"
        source.write_bytes(f"1,2,3,4,5\n{value},1,2,3,4\n".encode())
        for fast_path in (True, False):
            out = tmp_path / f"out{i}{fast_path}"
            with pytest.raises(InvalidPayload, match=r"line 2: column 1: cannot read '"):
                run_job(request(model, source, out), model.source, job="r", fast_path=fast_path)
