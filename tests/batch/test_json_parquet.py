"""JSON Lines and Parquet batch transforms: each record's output is what the endpoint answers
for it (JSON) or the model's prediction for its row (Parquet), joined and filtered as asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from modelyard.batch.coordinator import run_job
from modelyard.codecs import payloads
from modelyard.domain.batch import BatchStrategy, JoinSource
from modelyard.errors import InvalidInput
from tests.batch.support import NAMES, Model, features, request

ROWS = features(120, seed=3)


def jsonl(records: list[object]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def values(row: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in row.tolist()]


def answers(model: Model, rows: np.ndarray) -> list[bytes]:
    """The endpoint's JSON answer for each row sent alone."""
    return [payloads.encode(model.predict(row.reshape(1, -1)), payloads.JSON) for row in rows]


def test_jsonl_rows_and_named_records(model: Model, tmp_path: Path) -> None:
    records: list[object] = [
        values(r) if i % 2 else dict(zip(NAMES, values(r), strict=True)) for i, r in enumerate(ROWS)
    ]
    (tmp_path / "in.jsonl").write_bytes(jsonl(records))
    outcome = run_job(
        request(model, tmp_path / "in.jsonl", tmp_path / "out"), model.source, job="j"
    )
    assert (tmp_path / "out" / "in.jsonl.out").read_bytes().splitlines() == answers(model, ROWS)
    assert outcome.counts.rows_out == len(ROWS)


def test_jsonl_join_and_filters(model: Model, tmp_path: Path) -> None:
    records = [{"id": i, "features": values(r)} for i, r in enumerate(ROWS)]
    (tmp_path / "in.jsonl").write_bytes(jsonl(records))
    run_job(
        request(
            model,
            tmp_path / "in.jsonl",
            tmp_path / "out",
            input_filter="$.features",
            join_source=JoinSource.INPUT,
            output_filter="$['id','SageMakerOutput']",
        ),
        model.source,
        job="jf",
    )
    out = [
        orjson.loads(line) for line in (tmp_path / "out" / "in.jsonl.out").read_bytes().splitlines()
    ]
    expected = [
        {"id": i, "SageMakerOutput": orjson.loads(a)} for i, a in enumerate(answers(model, ROWS))
    ]
    assert out == expected


@pytest.mark.parametrize("strategy", list(BatchStrategy))
def test_jsonl_join_of_records_that_are_not_objects(
    model: Model, tmp_path: Path, strategy: BatchStrategy
) -> None:
    # SageMaker: a joined record that is not an object becomes {"SageMakerInput": record,
    # "SageMakerOutput": answer}; rows as arrays, the common JSON Lines input, were each refused.
    records: list[object] = [
        values(r) if i % 3 else dict(zip(NAMES, values(r), strict=True)) for i, r in enumerate(ROWS)
    ]
    (tmp_path / "in.jsonl").write_bytes(jsonl(records))
    outcome = run_job(
        request(
            model,
            tmp_path / "in.jsonl",
            tmp_path / "out",
            join_source=JoinSource.INPUT,
            batch_strategy=strategy,
        ),
        model.source,
        job=f"join-arrays-{strategy.value}",
    )
    out = [
        orjson.loads(line) for line in (tmp_path / "out" / "in.jsonl.out").read_bytes().splitlines()
    ]
    expected = [
        {"SageMakerInput": record, "SageMakerOutput": orjson.loads(answer)}
        if isinstance(record, list)
        else {**record, "SageMakerOutput": orjson.loads(answer)}
        for record, answer in zip(records, answers(model, ROWS), strict=True)
    ]
    assert out == expected
    assert (outcome.counts.rows_out, outcome.counts.rows_failed) == (len(ROWS), 0)


def test_join_refuses_a_record_that_holds_the_output_field(model: Model, tmp_path: Path) -> None:
    records = [{"features": values(ROWS[0]), "SageMakerOutput": 1}]
    (tmp_path / "in.jsonl").write_bytes(jsonl(records))
    with pytest.raises(
        InvalidInput, match=r"in\.jsonl: line 1: the record already holds 'SageMakerOutput'"
    ):
        run_job(
            request(
                model,
                tmp_path / "in.jsonl",
                tmp_path / "out",
                input_filter="$.features",
                join_source=JoinSource.INPUT,
            ),
            model.source,
            job="refuse",
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("join", [False, True], ids=["predictions", "joined"])
def test_parquet(model: Model, tmp_path: Path, join: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array(range(len(ROWS))),
            **{n: pa.array(ROWS[:, i]) for i, n in enumerate(reversed(NAMES))},
        }
    )
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=25)
    run_job(
        request(
            model,
            tmp_path / "in.parquet",
            tmp_path / "out",
            join_source=JoinSource.INPUT if join else JoinSource.NONE,
        ),
        model.source,
        job="pq",
        unit_bytes=1000,  # several units of a few row groups
    )
    out = pq.read_table(tmp_path / "out" / "in.parquet.out.parquet")
    # Columns are found by name: the file lists them in reverse, with an id first.
    reordered = np.column_stack([table.column(n).to_numpy() for n in NAMES])
    assert out.column("prediction").to_numpy().tolist() == model.predict(reordered).tolist()
    assert out.column_names == ([*table.column_names, "prediction"] if join else ["prediction"])
