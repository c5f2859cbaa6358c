"""A batch job's manifest: what it has finished, kept in a hidden folder under its output.

Layout of ``<output>/.modelyard-batch/<job>/``::

    units/<unit key>.json        a finished unit: its counts (written last, by its runner)
    parts/<unit key>.out         its output part (and .errors.jsonl when it had bad records)
    files/<output name>.json     an output file assembled by this job (its file key)

Keys are digests of the request, the input's fingerprint and the unit's range
(:mod:`.plan`), so a resumed job reads only what the same request on the same inputs wrote.
The folder goes once the job completes; a failed or stopped job keeps it for its resumption.
"""

from __future__ import annotations

import re

import orjson

from modelyard.batch.checks import STATE_DIR
from modelyard.batch.location import Location
from modelyard.batch.plan import FilePlan, WorkUnit, done_path
from modelyard.batch.sink import UnitResult
from modelyard.errors import InvalidName

__all__ = ["Manifest"]

_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Manifest:
    """The manifest of job ``job`` writing to ``output``."""

    def __init__(self, output: Location, job: str) -> None:
        if not _JOB.fullmatch(job):
            raise InvalidName(f"not a batch job name: {job!r}")
        self.output = output
        self.prefix = f"{STATE_DIR}/{job}"
        self.state = output.child(self.prefix)

    def rel(self, path: str) -> str:
        """A path of the job's folder, relative to the output folder."""
        return f"{self.prefix}/{path}"

    def finished_units(self, units: list[WorkUnit]) -> dict[str, UnitResult]:
        """The results of the units already finished, by key."""
        have = set(self.state.listdir("units"))
        found = {}
        for unit in units:
            if f"{unit.key}.json" in have:
                data = orjson.loads(self.state.read_bytes(done_path(unit)))
                found[unit.key] = UnitResult.from_dict(unit.key, unit.file, unit.index, data)
        return found

    def finished_file(self, plan: FilePlan) -> bool:
        """Whether this job assembled ``plan``'s output (and it is still there)."""
        marker = f"files/{plan.output}.json"
        if not self.state.exists(marker):
            return False
        if self.state.read_bytes(marker) == plan.key.encode() and self.output.exists(plan.output):
            return True
        self.state.remove(marker)  # from another input, or its output went: do it again
        return False

    def mark_file(self, plan: FilePlan) -> None:
        self.state.write_bytes(f"files/{plan.output}.json", plan.key.encode())

    def drop_stale(self) -> None:
        """Delete temporary files a killed run left in the parts folder."""
        for name in self.state.listdir("parts"):
            if name.startswith("."):
                self.state.remove(f"parts/{name}")

    def remove(self) -> None:
        """Delete the job's folder (and the hidden folder, when no other job is left in it)."""
        self.state.remove("", recursive=True)
        if not self.output.listdir(STATE_DIR):
            self.output.remove(STATE_DIR, recursive=True)
