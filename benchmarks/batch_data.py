"""Input files for ``batch.py``: a headerless CSV of N rows of the serving model's 30 features,
written in chunks straight to disk (never the whole file in memory), and the forms MLflow
needs to accept it (a header; a ``dataframe_split`` JSON document).

Values are float32 numbers with at most 4 decimals, written in float32's shortest form, so a
reader that parses them as float64 and casts to float32 loses nothing (the safe cast the
issue asks modelyard to make where MLflow refuses).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

CHUNK_ROWS = 250_000
SCALE = 2.0  # make_classification's features spread about this wide
COPY_BLOCK = 8 * 2**20


def feature_names(n_features: int) -> list[str]:
    """The model's feature names (``f0`` …), as the serving benchmark trains it."""
    return [f"f{i}" for i in range(n_features)]


def _chunks(rows: int, n_features: int, seed: int) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    names = feature_names(n_features)
    for start in range(0, rows, CHUNK_ROWS):
        count = min(CHUNK_ROWS, rows - start)
        values = np.round(rng.standard_normal((count, n_features)) * SCALE, 4)
        values = values.astype(np.float32)
        yield pa.table({name: values[:, i] for i, name in enumerate(names)})


def write_csv(path: Path, rows: int, n_features: int, seed: int) -> dict[str, Any]:
    """Write a headerless CSV of ``rows`` rows; its path, size and how long it took.

    The same ``seed`` and ``rows`` give the same bytes (a file already there with the size it
    had is reused by ``ensure_csv``).
    """
    start = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as sink:
        for table in _chunks(rows, n_features, seed):
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    tmp.rename(path)
    return {
        "path": str(path),
        "rows": rows,
        "bytes": path.stat().st_size,
        "write_s": time.perf_counter() - start,
    }


def with_header(source: Path, target: Path, n_features: int) -> Path:
    """``source`` with the feature names as a first line (copied in blocks)."""
    with source.open("rb") as reader, target.open("wb") as writer:
        writer.write((",".join(feature_names(n_features)) + "\n").encode())
        while block := reader.read(COPY_BLOCK):
            writer.write(block)
    return target


def as_split_json(source: Path, target: Path, n_features: int) -> Path:
    """``source`` as one ``{"dataframe_split": {"columns": […], "data": [[…], …]}}`` document,
    the JSON form ``mlflow models predict -t json`` reads. A CSV line of numbers is a JSON
    array's body, so each line becomes ``[line]`` without parsing a number."""
    columns = ",".join(f'"{name}"' for name in feature_names(n_features))
    with source.open("rb") as reader, target.open("wb") as writer:
        writer.write(b'{"dataframe_split": {"columns": [' + columns.encode() + b'], "data": [')
        first = True
        for line in reader:
            body = line.rstrip(b"\r\n")
            if not body:
                continue
            writer.write((b"[" if first else b",\n[") + body + b"]")
            first = False
        writer.write(b"]}}\n")
    return target


def read_predictions(path: Path) -> np.ndarray:
    """A one-column headerless CSV of predictions (modelyard's ``.out``, the reference's) as
    float64."""
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(column_types={"f0": pa.float64()}),
    )
    if table.num_columns != 1:
        raise ValueError(f"{path} has {table.num_columns} columns, expected 1")
    return np.asarray(table.column(0).to_numpy(), dtype=np.float64)
