"""Assembling an input file's outputs from its units' parts, once every unit is done.

In this order, so that a job killed at any point resumes correctly: the file's marker in the
manifest, then ``<name>.errors.jsonl`` (or the removal of a stale one, when overwriting),
then ``<name>.out``, each written under a temporary name and moved into place; then the parts
go. A marker whose output is missing on resumption means "assemble again" (the parts are
still there); an output present with its marker means done.

The errors file holds one JSON object a line: ``{"file", "line", "reason"}`` (text files,
1-based line numbers counting every line, the header too) or ``{"file", "record",
"reason"}`` (Parquet rows and whole-file records, 1-based), in input order.
"""

from __future__ import annotations

from typing import IO

import orjson

from modelyard.batch.location import Location
from modelyard.batch.manifest import Manifest
from modelyard.batch.plan import FilePlan, WorkUnit, errors_path, part_path
from modelyard.batch.sink import UnitResult
from modelyard.domain.batch import BatchFormat

__all__ = ["assemble"]


def assemble(
    manifest: Manifest, plan: FilePlan, units: list[WorkUnit], results: dict[str, UnitResult]
) -> None:
    """Write ``plan``'s output (and errors) files from its finished units' parts."""
    output = manifest.output
    manifest.mark_file(plan)
    if any(results[u.key].rows_failed for u in units):
        with output.writing(plan.errors) as out:
            _errors(manifest, plan, units, results, out)
    else:
        output.remove(plan.errors)
    parts = [manifest.rel(part_path(u)) for u in units]
    if plan.format is BatchFormat.PARQUET:
        _parquet(output, parts, plan.output)
    else:
        output.concatenate(parts, plan.output)
    for unit in units:
        manifest.state.remove(part_path(unit))
        manifest.state.remove(errors_path(unit))


def _errors(
    manifest: Manifest,
    plan: FilePlan,
    units: list[WorkUnit],
    results: dict[str, UnitResult],
    out: IO[bytes],
) -> None:
    before = 0  # lines in the units before this one
    for unit in units:
        result = results[unit.key]
        if result.rows_failed:
            for raw in manifest.state.read_bytes(errors_path(unit)).splitlines():
                entry = orjson.loads(raw)
                if "line" in entry:
                    where = {"line": before + int(entry["line"]) + 1}
                else:
                    where = {"record": int(entry["record"])}
                out.write(
                    orjson.dumps({"file": plan.file.url, **where, "reason": entry["reason"]})
                    + b"\n"
                )
        before += result.lines


def _parquet(output: Location, parts: list[str], target: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with output.writing(target) as out:
        writer = None
        for part in parts:
            if not output.fs.size(output.path(part)):
                continue  # a unit without a good row
            with output.open_read(part) as handle:
                parquet = pq.ParquetFile(handle)
                for group in range(parquet.num_row_groups):
                    table = parquet.read_row_group(group)
                    if writer is None:
                        writer = pq.ParquetWriter(out, table.schema)
                    writer.write_table(table)
        if writer is None:
            pq.write_table(pa.table({"prediction": pa.array([], pa.float64())}), out)
        else:
            writer.close()
