"""The capture service: the rows the servers captured, listed, read and exported.

Servers write Parquet files under the capture root, one folder per endpoint, date and hour
(:mod:`modelyard.domain.capture`). Files written under different configs may differ in their
columns (a feature added, a field hashed since): reading unifies them: a column missing from a
file is null there, and a column whose type changed is read as text.

Captured rows stay readable after their endpoint is deleted: names are checked for form only.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelyard.domain import validate_name
from modelyard.domain.capture import (
    CALLER_ID,
    EVERY_OUTPUT,
    INPUT_PREFIX,
    METADATA_COLUMNS,
    OUTPUT_PREFIX,
    may_hold_caller_ids,
    output_order,
    partition_hour,
    window_folders,
)
from modelyard.domain.durations import point_in_time
from modelyard.domain.endpoints import check_ever_had
from modelyard.errors import EndpointNotFound, InvalidInput, StorageUnavailable
from modelyard.services.capture_arrow import (
    caller_ids,
    export_format,
    table_writer,
    time_range,
    unify,
)
from modelyard.services.file_output import check_target, shown, write_whole

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from modelyard.storage.base import EndpointStore

_ORDER = ("time", "inference_id", "row")
#: Windows longer than this (days) list the endpoint's files once rather than folder by folder.
_LIST_ALL_DAYS = 62


class StoredFileInfo(Protocol):
    """A finished file: its path relative to the capture root, and its size in bytes."""

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...


class CaptureFiles(Protocol):
    """The capture root as the service reads it (``storage.capture_files.CaptureFolder``)."""

    @property
    def url(self) -> str: ...

    def files(self, folder: str) -> Sequence[StoredFileInfo]:
        """Finished ``.parquet`` files under ``folder``, with paths relative to the root."""
        ...

    def open(self, path: str) -> Any:
        """A binary file object reading ``path``; None when it is gone (deleted since it
        was listed)."""
        ...

    def holds(self, target: str) -> bool:
        """Whether the file ``target`` (a local path or a URL) lies under the root."""
        ...


@dataclass(frozen=True, slots=True)
class CaptureFile:
    """One captured file.

    Attributes:
        path: Relative to the capture root (``api/date=2026-01-31/hour=07/part-….ids.parquet``).
        hour: The UTC hour of its partition.
        rows: Its row count (0 when ``error`` is set).
        size: Bytes.
        first, last: The earliest and latest captured time in it (None when unknown).
        error: Why its footer could not be read, or None.
        caller_ids: How many of its rows have a caller's own request id (SageMaker
            ``InferenceId``); None when its footer does not say.
    """

    path: str
    hour: datetime | None
    rows: int
    size: int
    first: datetime | None = None
    last: datetime | None = None
    error: str | None = None
    caller_ids: int | None = None

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "path": self.path,
            "hour": iso(self.hour),
            "rows": self.rows,
            "size": self.size,
            "first": iso(self.first),
            "last": iso(self.last),
            "error": self.error,
            "caller_ids": self.caller_ids,
        }


@dataclass(frozen=True, slots=True)
class CaptureExport:
    """What :meth:`CaptureService.export` wrote: ``rows`` rows from ``files`` captured files
    with times in [since, until), as one file at ``path`` in ``format`` (``Parquet``, ``CSV``
    or ``JSON Lines``)."""

    path: str
    rows: int
    files: int
    since: datetime
    until: datetime
    format: str = "Parquet"
    #: The damaged files left out (``path: why``), with ``skip_damaged``.
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "files": self.files,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "format": self.format,
            "skipped": list(self.skipped),
        }


class CaptureService:
    """Reads what the servers captured (see the module docstring).

    Args:
        files: The capture root.
        now: The current time (injectable for tests).
        endpoints: The endpoints in the store, to tell an endpoint or variant that never
            existed (a typo: refused) from one whose window is empty (an empty answer); None:
            nothing is refused.
    """

    def __init__(
        self,
        files: CaptureFiles,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        endpoints: EndpointStore | None = None,
    ) -> None:
        self._files = files
        self._now = now
        self._endpoints = endpoints

    @property
    def url(self) -> str:
        """Where captured files are kept (credentials masked)."""
        return self._files.url

    def refuse_inside(self, target: str, what: str) -> None:
        """Refuse to write ``what`` (``"an export"``, ``"a report"``) at ``target`` when it
        lies under the capture root: readers take every Parquet file in an endpoint's hour
        folders as captured rows, and retention deletes whole hour folders.

        Raises:
            InvalidInput: naming the target and the root.
        """
        if target.strip() and self._files.holds(target):
            raise InvalidInput(
                f"{shown(target)} is inside the capture root {self.url}: {what} there would "
                "be read as captured rows (counted twice by drift, quality and later exports) "
                "or deleted with them; write it elsewhere"
            )

    def list(self, endpoint: str) -> builtins.list[CaptureFile]:
        """Every captured file of ``endpoint``, oldest partition first, with its row count,
        time range and rows with a caller's id (read from the files' footers, not their rows).

        Raises:
            InvalidName; StorageUnavailable: the capture root cannot be listed.
        """
        import pyarrow.parquet as pq

        validate_name(endpoint, "endpoint name")
        out = []
        stored_files = self._files.files(endpoint)
        if not stored_files:
            self._check_known(endpoint, None)
        for stored in stored_files:
            hour = partition_hour(stored.path)
            try:
                handle = self._files.open(stored.path)
                if handle is None:  # deleted since listed (a prune): not a damaged file
                    continue
                with handle:
                    meta = pq.ParquetFile(handle).metadata
                first, last = time_range(meta)
                callers = caller_ids(meta)
            except Exception as exc:  # one damaged file must not hide the others
                out.append(CaptureFile(stored.path, hour, 0, stored.size, error=str(exc)))
                continue
            out.append(
                CaptureFile(
                    stored.path, hour, meta.num_rows, stored.size, first, last, caller_ids=callers
                )
            )
        return out

    def read(
        self,
        endpoint: str,
        *,
        since: datetime | str,
        until: datetime | str | None = None,
        variant: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of ``endpoint`` captured in [since, until) (default until: now), one per
        input row, sorted by time, inference id and row.

        Args:
            since, until: Times; without a zone they are UTC.
            variant: Only this variant's rows.
            columns: Only these columns, in this order (metadata names, ``input.<feature>``,
                ``output.<name>``); one that no captured file has is all null. ``output.*``
                (:data:`~modelyard.domain.capture.EVERY_OUTPUT`) stands for every output
                column the rows have, in ``output_order``.

        Returns:
            The columns of :data:`~modelyard.domain.capture.METADATA_COLUMNS`, then
            ``input.*`` and ``output.*``; an empty window gives an empty frame with at least
            the metadata columns.

        Raises:
            InvalidName, InvalidInput (since not before until, a column name that cannot
            exist), StorageUnavailable.
        """
        table, _ = self._table(endpoint, [_window(since, until, self._now)], variant, columns)
        if not table.num_rows:
            self._check_known(endpoint, variant)
        return table.to_pandas()

    def read_readable(
        self,
        endpoint: str,
        *,
        since: datetime | str,
        until: datetime | str | None = None,
        variant: str | None = None,
    ) -> tuple[pd.DataFrame, builtins.list[str]]:
        """:meth:`read`, leaving out the files that are not readable Parquet (damaged:
        truncated, overwritten), each named in the second value with why, for a reader that
        goes on with the rest and says so (a scheduled drift check); :meth:`read` and
        :meth:`export` refuse them. A store that cannot be reached still raises.

        Raises:
            As :meth:`read`.
        """
        skipped: builtins.list[str] = []
        window = [_window(since, until, self._now)]
        table, _ = self._table(endpoint, window, variant, None, skipped=skipped)
        if not table.num_rows and not skipped:
            self._check_known(endpoint, variant)
        return table.to_pandas(), skipped

    def export(
        self,
        endpoint: str,
        since: datetime | str,
        until: datetime | str | None,
        out_path: str | Path,
        *,
        variant: str | None = None,
        overwrite: bool = False,
        skip_damaged: bool = False,
    ) -> CaptureExport:
        """Write the rows :meth:`read` returns (all columns, one unified schema) to one file
        at ``out_path`` (a local path, or an fsspec URL), whole or not at all, in the format
        its suffix names: ``.parquet``, ``.csv`` (list columns as JSON text; a text cell that
        a spreadsheet would run as a formula gets a leading ``'``) or ``.jsonl``.

        Args:
            overwrite: Replace a file already at ``out_path`` (else it is refused).
            skip_damaged: Leave out the captured files that are not readable Parquet
                (truncated, overwritten), named in the result's ``skipped``, instead of
                refusing the export (rows for retraining: all of them, or a choice made
                knowingly).

        Raises:
            What :meth:`read` raises (a damaged file: StorageUnavailable, naming it);
            InvalidInput: another suffix, a name that is only a suffix, ``out_path`` is a
            folder (or ends with a slash) or lies under the capture root (readers would take
            it for captured rows); AlreadyExists: a file is at ``out_path`` and ``overwrite``
            is off;
            StorageNotWritable, StorageUnavailable: ``out_path`` cannot be written.
        """
        out = str(out_path)
        start, end = _window(since, until, self._now)
        self.refuse_inside(out, "an export")
        check_target(out, overwrite=overwrite)  # before the rows are read; names a folder
        fmt = export_format(out)
        skipped: builtins.list[str] | None = [] if skip_damaged else None
        table, files = self._table(endpoint, [(start, end)], variant, None, skipped=skipped)
        if not table.num_rows and not skipped:
            self._check_known(endpoint, variant)  # before anything is written
        write_whole(out, table_writer(table, fmt), overwrite=overwrite)
        return CaptureExport(out, table.num_rows, files, start, end, fmt, tuple(skipped or ()))

    def find(
        self,
        endpoint: str,
        inference_ids: Collection[str],
        *,
        spans: Sequence[tuple[datetime, datetime]],
        columns: Sequence[str],
        skipped: builtins.list[str] | None = None,
        key: str = "inference_id",
    ) -> pd.DataFrame:
        """The rows of ``endpoint`` whose inference id is one of ``inference_ids`` and whose
        time is in one of ``spans`` ([start, end) each; without a zone, UTC), with only
        ``columns``, sorted like :meth:`read`. The partition folders of all spans are listed
        once and each file is read once, whatever the number of ids and spans: first its
        id and time columns only, and its other ``columns`` only when some row matches.

        Args:
            skipped: When given, a file that is not readable Parquet is left out and named
                here (``path: why``), as :meth:`read_readable` does, instead of raising.
            key: The column the ids are in: ``inference_id`` (ours) or
                ``caller_inference_id`` (the ids callers sent; a file without that column has
                none of them, and one named as holding none is not even opened:
                :func:`~modelyard.domain.capture.may_hold_caller_ids`).

        Raises:
            InvalidName, InvalidInput (a span that is empty, a column name that cannot
            exist, another key), StorageUnavailable.
        """
        if key not in ("inference_id", CALLER_ID):
            raise InvalidInput(f"ids are found by inference_id or {CALLER_ID}, not {key!r}")
        windows = [_window(start, end, self._now) for start, end in spans]
        table, _ = self._table(
            endpoint, windows, None, columns, ids=inference_ids, key=key, skipped=skipped
        )
        return table.to_pandas()

    # -- helpers -----------------------------------------------------------------------------

    def _check_known(self, endpoint: str, variant: str | None) -> None:
        """When a read found no rows: refuse an endpoint that is not in the store and has no
        captured file, and a variant that no config of the endpoint ever had (a retired
        variant's or a deleted endpoint's rows stay readable).

        Raises:
            EndpointNotFound, VariantNotFound: naming what there is.
        """
        if self._endpoints is None:
            return
        try:
            configs = self._endpoints.history(endpoint)
        except EndpointNotFound:
            if self._files.files(endpoint):
                return  # a deleted endpoint's captures
            raise EndpointNotFound(
                f"endpoint {endpoint!r} does not exist and has no captured rows"
            ) from None
        if variant is not None:
            check_ever_had(endpoint, variant, configs)

    def _table(
        self,
        endpoint: str,
        windows: Sequence[tuple[datetime, datetime]],
        variant: str | None,
        columns: Sequence[str] | None,
        *,
        ids: Collection[str] | None = None,
        key: str = "inference_id",
        skipped: builtins.list[str] | None = None,
    ) -> tuple[pa.Table, int]:
        """The rows in any of ``windows`` (UTC, checked), of ``variant`` and with an id among
        ``ids`` in column ``key`` when given; and how many files were read. With ``skipped``,
        a file that is not readable Parquet is left out and named there (``path: why``)
        instead of raising StorageUnavailable."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        validate_name(endpoint, "endpoint name")
        if variant is not None:
            validate_name(variant, "variant name")
        wanted = None if columns is None else _checked_columns(columns)
        keep = {*(wanted or ()), *_ORDER, "variant"}
        outputs = EVERY_OUTPUT in keep
        id_set = None if ids is None else pa.array(sorted(set(ids)), type=pa.string())
        tables = []
        sources = []
        files = 0
        for stored in self._stored(endpoint, windows):
            if id_set is not None and key == CALLER_ID and not may_hold_caller_ids(stored.path):
                continue  # named as holding no caller's id: not opened (a junk id costs none)
            try:
                handle = self._files.open(stored.path)
                if handle is None:  # deleted since listed (a prune): its rows are gone
                    continue
                with handle:
                    parquet = pq.ParquetFile(handle)
                    names = parquet.schema_arrow.names
                    found = None
                    if id_set is not None:  # the ids first: most files hold none of them
                        if key not in names:
                            files += 1
                            continue
                        probe = parquet.read([key, "time"])
                        found = pc.and_(
                            _inside(probe["time"], windows),
                            pc.is_in(probe[key], value_set=id_set),
                        )
                        if not pc.any(found).as_py():
                            files += 1
                            continue
                    table = parquet.read(
                        None
                        if wanted is None
                        else [
                            c
                            for c in names
                            if c in keep or (outputs and c.startswith(OUTPUT_PREFIX))
                        ]
                    )
            except (OSError, pa.ArrowException) as exc:
                # Damaged (not Parquet) is pyarrow's ArrowInvalid; a store that fails is OSError.
                if skipped is None or isinstance(exc, OSError):
                    raise StorageUnavailable(
                        f"cannot read the captured file {stored.path} in {self.url}: {exc}"
                    ) from None
                skipped.append(f"{stored.path}: {str(exc).splitlines()[0]}")
                continue
            mask = _inside(table["time"], windows) if found is None else found
            if variant is not None and "variant" in names:
                mask = pc.and_(mask, pc.equal(table["variant"], variant))
            table = table.filter(mask)
            files += 1
            if table.num_rows:
                tables.append(table)
                sources.append(stored.path)
        unified = unify(tables, sources).sort_by([(c, "ascending") for c in _ORDER])
        if wanted is not None:
            present = unified.column_names
            every = sorted((c for c in present if c.startswith(OUTPUT_PREFIX)), key=output_order)
            named = [n for c in wanted for n in (every if c == EVERY_OUTPUT else [c])]
            unified = pa.table(
                {
                    c: unified[c] if c in present else pa.nulls(unified.num_rows)
                    for c in dict.fromkeys(named)
                }
            )
        return unified, files

    def _stored(
        self, endpoint: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> builtins.list[StoredFileInfo]:
        """The files of the partition hours that ``windows`` touch, each once: only the
        ``date=``/``hour=`` folders of those hours are listed, or, for windows longer than
        :data:`_LIST_ALL_DAYS` days, the endpoint's files once (a folder per day of years of
        windows would be thousands of listings, most of them of nothing)."""
        found: dict[str, StoredFileInfo] = {}
        days = sum((end - start).total_seconds() for start, end in windows) / 86400
        folders = [endpoint] if days > _LIST_ALL_DAYS else window_folders(endpoint, windows)
        for folder in folders:
            for stored in self._files.files(folder):
                hour = partition_hour(stored.path)
                if hour is not None and any(
                    start.replace(minute=0, second=0, microsecond=0) <= hour < end
                    for start, end in windows
                ):
                    found.setdefault(stored.path, stored)
        return [found[path] for path in sorted(found)]


def _inside(times: Any, windows: Sequence[tuple[datetime, datetime]]) -> Any:
    """Which of ``times`` (a timestamp column) fall in any of ``windows``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = times.type
    mask = None
    for start, end in windows:
        inside = pc.and_(
            pc.greater_equal(times, pa.scalar(start, type=kind)),
            pc.less(times, pa.scalar(end, type=kind)),
        )
        mask = inside if mask is None else pc.or_(mask, inside)
    return mask


def _window(
    since: datetime | str, until: datetime | str | None, now: Callable[[], datetime]
) -> tuple[datetime, datetime]:
    at = now()
    start = point_in_time(since, at, "since")
    end = point_in_time(until, at, "until") if until is not None else at
    if start >= end:
        raise InvalidInput(
            f"the window is empty: since {start.isoformat()} is not before until {end.isoformat()}"
        )
    return start, end


def _checked_columns(columns: Sequence[str]) -> builtins.list[str]:
    if isinstance(columns, str):
        raise InvalidInput(f"columns must be a list of names, got the text {columns!r}")
    bad = [
        c
        for c in columns
        if c not in METADATA_COLUMNS and not c.startswith((INPUT_PREFIX, OUTPUT_PREFIX))
    ]
    if bad:
        raise InvalidInput(
            f"no captured column can be named {', '.join(map(repr, bad))}: columns are "
            f"{', '.join(METADATA_COLUMNS)}, input.<feature> and output.<name>"
        )
    return builtins.list(dict.fromkeys(columns))
