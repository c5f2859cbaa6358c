"""Running one work unit: read its records, predict, write its parts, record it as done.

:class:`UnitRunner` is what every executor runs, wherever it runs (a local worker process,
this process, a Ray actor): it loads the model once, then takes units one at a time. A unit's
output part and errors part are written under temporary names and moved into place, then its
done marker (its counts) is written last, in the job's hidden folder; a unit killed halfway
leaves nothing its resumption would read.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.batch.csv_fast import fast_applies, fast_block
from modelyard.batch.csv_records import CsvRecords
from modelyard.batch.inputs import open_url
from modelyard.batch.json_records import JsonRecords
from modelyard.batch.lines import Block, LineReader
from modelyard.batch.model import BatchModel
from modelyard.batch.parquet_records import ParquetRecords, open_parquet
from modelyard.batch.plan import FilePlan, JobSpec, WorkUnit, done_path, errors_path, part_path
from modelyard.batch.sink import RECORD_ERRORS, BudgetExceeded, Sink, UnitResult, reason
from modelyard.codecs import payloads
from modelyard.domain.batch import BatchFormat, SplitType
from modelyard.errors import InvalidPayload

__all__ = ["UnitRunner"]

_MIB = 1024 * 1024
_BLOCK = _MIB


class UnitRunner:
    """Runs the units of one job with one loaded model.

    Args:
        job: The job.
        lean: This process exists only to run units (see :meth:`BatchModel.load`).

    Raises:
        ArtifactMissing, ArtifactCorrupted, UnsafeModelFormat, InvalidModelFile: the model
            cannot be loaded.
    """

    def __init__(self, job: JobSpec, *, lean: bool = False) -> None:
        self.job = job
        self.model = BatchModel.load(job.model, lean=lean)
        self.limit = max(1, int(job.request.max_payload_mb * _MIB))

    def __call__(self, unit: WorkUnit) -> UnitResult:
        """Run ``unit``; its result (``exceeded`` when its bad records passed the budget, in
        which case nothing of it is recorded).

        Raises:
            ModelyardError: a failure that is not one record's (storage, a bad filter).
        """
        job, plan = self.job, self.job.files[unit.file]
        state = job.state
        by_record = plan.format is BatchFormat.PARQUET or job.request.split_type is SplitType.NONE
        lines = 0
        self._reader: LineReader | None = None
        try:
            with state.writing(part_path(unit)) as out:
                sink = Sink(out, job.request.max_errors, by_record=by_record)
                if plan.format is BatchFormat.PARQUET:
                    with open_url(plan.file.url) as handle:
                        ParquetRecords(self.model, job.request).unit(
                            sink, open_parquet(handle), unit.start, unit.end, self.limit
                        )
                elif job.request.split_type is SplitType.NONE:
                    self._whole(sink, plan)
                else:
                    lines = self._text(sink, plan, unit)
        except BudgetExceeded:
            return UnitResult(
                unit.key,
                unit.file,
                unit.index,
                sink.rows_in,
                sink.rows_out,
                sink.rows_failed,
                sink.fast_rows,
                0,
                self._offset(unit),
                sink.first_error,
                exceeded=True,
            )
        if sink.errors:
            state.write_bytes(errors_path(unit), bytes(sink.errors))
        result = UnitResult(
            unit.key,
            unit.file,
            unit.index,
            sink.rows_in,
            sink.rows_out,
            sink.rows_failed,
            sink.fast_rows,
            lines,
            self._offset(unit),
            sink.first_error,
            rounded=sink.rounded,
            first_rounded=sink.first_rounded,
        )
        state.write_bytes(done_path(unit), orjson.dumps(result.to_dict()))
        return result

    def close(self) -> None:
        """Unload the model."""
        self.model.close()

    def _offset(self, unit: WorkUnit) -> int:
        return self._reader.first_offset if self._reader is not None else unit.start

    def _text(self, sink: Sink, plan: FilePlan, unit: WorkUnit) -> int:
        whole = plan.file.gzipped or (unit.start == 0 and unit.end >= plan.file.size)
        # Payloads up to max_payload_mb, read in blocks of at most 1 MiB (several model calls
        # per payload: the same answers, and a worker's memory stays small); a handler gets
        # whole payloads, as an endpoint would.
        size = self.limit if self.model.handler is not None else min(self.limit, _BLOCK)
        reader = LineReader(
            plan.file.url,
            plan.file.gzipped,
            unit.start,
            None if whole else unit.end,
            size,
            longest=self.limit,
        )
        self._reader = reader
        header = plan.header and unit.first
        if plan.format is BatchFormat.CSV:
            csv = CsvRecords(self.model, self.job.request, plan)
            fast = self.job.fast_path and fast_applies(csv)
            for block in reader:
                if not isinstance(block, Block):
                    sink.rows_in += 1
                    sink.bad(block.line, self._oversize())
                elif not (fast and fast_block(csv, sink, block, header)):
                    csv.block(sink, block, header)
        else:
            records = JsonRecords(self.model, self.job.request)
            for block in reader:
                if isinstance(block, Block):
                    records.block(sink, block)
                else:
                    sink.rows_in += 1
                    sink.bad(block.line, self._oversize())
        return reader.lines

    def _whole(self, sink: Sink, plan: FilePlan) -> None:
        """``split_type=none``: the file is one record, sent whole."""
        reader = LineReader(plan.file.url, plan.file.gzipped, 0, None, self.limit + 1)
        body = b"".join(b.data for b in reader if isinstance(b, Block))
        if not body.strip():
            return
        sink.rows_in += 1
        if len(body) > self.limit:
            sink.bad(1, self._oversize())
            return
        media = payloads.CSV if plan.format is BatchFormat.CSV else payloads.JSON
        model = self.model
        rows: Any  # an array, or a DataFrame for a model taking text
        try:
            if model.input_fn:
                rows = model.run_input_fn(body, plan.format.value)
            else:
                rows = payloads.decode(body, media, model.spec.signature)
            predictions = model.predict(rows)
            if model.output_fn:
                out = model.run_output_fn(predictions, media)
            else:
                out = payloads.encode(predictions, media)
        except RECORD_ERRORS as exc:
            sink.bad(1, reason(exc))
            return
        sink.write(out if out.endswith(b"\n") else out + b"\n", 1)

    def _oversize(self) -> str:
        return str(
            InvalidPayload(
                f"the record is larger than max_payload_mb ({self.job.request.max_payload_mb:g} MB)"
            )
        )
