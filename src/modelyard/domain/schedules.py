"""Schedules: "run this batch transform every Monday at 06:00, Paris time", and what each of its
ticks did.

A schedule ticks on a five-field cron expression read in an IANA time zone (UTC by default;
``services/ticks.py`` says how daylight saving changes are handled). Each tick runs once across
every scheduler process sharing the store (a lease per tick) and submits one batch job; the run
records the job it started, or why none started.

**Missed ticks.** A tick is on time when a scheduler finds it due within a grace period (a few
minutes; schedulers look every few seconds). Ticks that came due while no scheduler was running
(or the schedule was created or resumed after them) are never run one by one; what happens to
them is the schedule's :class:`MissedPolicy`:

- ``run-once`` (the default): one catch-up run for the latest missed tick, whatever the number
  missed; the run records how many earlier ticks it stands for;
- ``skip``: no run; a ``skipped`` entry in the history says how many ticks were missed.

A tick that came due while a running scheduler was busy with a long pass (a monitor's drift
run, say) was not missed: it runs when that pass ends, recorded as late, whatever the policy.

Ticks that fell while the schedule was paused are not missed: they never run, whatever the
policy (resuming starts afresh from the next tick).

**Output per run.** The output location may hold ``{tick}`` (the tick in the schedule's time
zone, ``2026-12-07T0600``) or ``{tick:FORMAT}`` with a ``strftime`` format
(``s3://bucket/scores/{tick:%Y-%m-%d}``), so each run writes a folder of its own. A schedule
whose output has no placeholder must allow overwriting (every run writes the same files).

The JSON form of each record (``to_dict``) is what ``--json`` and any later API print.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from modelyard.domain.batch import TransformRequest
from modelyard.errors import InvalidInput
from modelyard.redaction import mask_urls_in

#: How ``{tick}`` without a format renders (no ':' so it suits any file system and URL).
TICK_FORMAT = "%Y-%m-%dT%H%M"


#: Missed ticks are counted up to this many (a per-minute cron down for a year would take a
#: long count for a number nobody reads past "many").
MAX_MISSED_COUNTED = 1000


class MissedPolicy(StrEnum):
    """What a schedule does with ticks that came due while no scheduler was running."""

    RUN_ONCE = "run-once"
    SKIP = "skip"


class ScheduleRunStatus(StrEnum):
    """How one tick of a schedule went: a job submitted, the submission refused, or skipped."""

    SUBMITTED = "submitted"
    FAILED = "failed"
    SKIPPED = "skipped"


class _Tick:
    """``{tick}`` / ``{tick:%Y-%m-%d}`` in an output template."""

    def __init__(self, when: datetime) -> None:
        self._when = when

    def __format__(self, spec: str) -> str:
        return self._when.strftime(spec or TICK_FORMAT)


def render_output(template: str, tick: datetime) -> str:
    """``template`` with ``{tick}`` / ``{tick:FORMAT}`` replaced by ``tick`` (already in the
    schedule's zone); ``{{`` and ``}}`` stand for literal braces.

    Raises:
        InvalidInput: another placeholder, or unbalanced braces.
    """
    try:
        parts = [(f, s, c) for _, f, s, c in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise InvalidInput(f"invalid output {template!r}: {exc} (write '{{{{' for '{{')") from None
    for name, spec, conversion in parts:
        if name != "tick" or conversion or "{" in (spec or ""):
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise InvalidInput(
                f"invalid output {template!r}: unknown placeholder {{{shown}}}; the only one is "
                "{tick} (or {tick:%Y-%m-%d} and other strftime formats)"
            )
    return template.format(tick=_Tick(tick))


def has_placeholder(template: str) -> bool:
    """Whether ``template`` names ``{tick}`` (each run then writes somewhere else)."""
    return any(f == "tick" for _, f, _, _ in string.Formatter().parse(template))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A batch transform that runs on a schedule.

    Attributes:
        name: The schedule's name (unique).
        cron: A five-field cron expression, read in ``timezone``.
        timezone: An IANA time zone name (``Europe/Paris``, ``UTC``).
        missed: What happens to ticks missed while no scheduler ran (module docstring).
        request: The batch transform each tick submits; its output may hold ``{tick}``.
        paused: Whether ticks are being skipped on purpose.
        created_at: When the schedule was created (UTC).
        updated_at: When it was last changed (UTC).
        active_since: When it was created or last resumed (UTC); earlier ticks never run.
    """

    name: str
    cron: str
    timezone: str
    missed: MissedPolicy
    request: TransformRequest
    paused: bool
    created_at: datetime
    updated_at: datetime
    active_since: datetime

    def request_for(self, tick: datetime) -> TransformRequest:
        """The request the run of ``tick`` submits: the output's ``{tick}`` filled in, in the
        schedule's time zone."""
        local = tick.astimezone(ZoneInfo(self.timezone))
        return replace(self.request, output=render_output(self.request.output, local))

    def to_dict(self) -> dict[str, Any]:
        """The wire shape, as it is shown: the request's URL credentials (a presigned input's
        signature, a password) masked. The stored request keeps them: every tick's job reads
        through them."""
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "missed": self.missed.value,
            "paused": self.paused,
            "command": "batch",
            "request": mask_urls_in(self.request.to_dict()),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "active_since": self.active_since.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """What one tick of a schedule did, recorded by the one process that ran it.

    Attributes:
        schedule: The schedule's name.
        tick: The tick (UTC).
        status: Submitted (``job`` names the job), failed (``error`` says why) or skipped.
        at: When it was recorded (UTC).
        holder: The scheduler process that ran it (``host:pid``).
        job: The batch job it started, if any.
        error: Why no job started, for a failed run.
        late: Whether it was found due past the grace period: no scheduler ran at its tick,
            or the one that ran was held up by a long pass (then it runs under ``skip`` too).
        missed: How many earlier ticks, never run, this entry stands for (a catch-up run, or
            the ticks a ``skipped`` entry skipped besides its own).
    """

    schedule: str
    tick: datetime
    status: ScheduleRunStatus
    at: datetime
    holder: str
    job: str | None = None
    error: str | None = None
    late: bool = False
    missed: int = 0

    @property
    def missed_capped(self) -> bool:
        """Whether counting the missed ticks stopped at :data:`MAX_MISSED_COUNTED` (then
        ``missed`` is a lower bound)."""
        return self.missed >= MAX_MISSED_COUNTED

    @property
    def missed_text(self) -> str:
        """``N earlier tick(s) missed``, or ``1000 or more …`` when counting stopped there."""
        many = " or more" if self.missed_capped else ""
        return f"{self.missed}{many} earlier tick(s) missed"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape."""
        return {
            "schedule": self.schedule,
            "tick": self.tick.astimezone(UTC).isoformat(),
            "status": self.status.value,
            "job": self.job,
            "error": self.error,
            "late": self.late,
            "missed": self.missed,
            "missed_capped": self.missed_capped,
            "at": self.at.isoformat(),
            "holder": self.holder,
        }
