"""Schedules: batch transforms that run on a cron schedule in a time zone (the control plane).

``modelyard schedules create weekly --cron "0 6 * * 1" --timezone Europe/Paris -- batch …``
stores the schedule once its batch request passes the batch service's check. The scheduler
loop (in ``modelyard serve`` or ``modelyard scheduler``) calls :meth:`ScheduleService.run_due`
every pass: each schedule's latest due tick runs under a lease, so in one process however many
share the store, and submits one batch job; the run is recorded with the job's name, or the
error that stopped the submission (a run is never retried: the next tick is the next chance).
The model reference is resolved at each run, so ``churn@prod`` follows its alias.

Ticks missed while no scheduler ran follow the schedule's policy (``run-once``: one catch-up
run; ``skip``: none), see ``domain/schedules.py``; how cron reads a time zone across daylight
saving changes is in ``services/ticks.py``. A holder that dies after submitting its job but
before recording the run leaves its tick to be run again once the lease expires (at least
once, never silently dropped).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta

from modelyard.domain.batch import TransformRequest
from modelyard.domain.counts import limit_of
from modelyard.domain.jobs import Job
from modelyard.domain.references import validate_name
from modelyard.domain.schedules import (
    MissedPolicy,
    Schedule,
    ScheduleRun,
    ScheduleRunStatus,
    has_placeholder,
    render_output,
)
from modelyard.errors import AlreadyExists, Conflict, InvalidInput, ModelyardError, NotFound
from modelyard.redaction import mask_url
from modelyard.services.leased import default_holder, finished_elsewhere, run_leased
from modelyard.services.schedule_outputs import check_outputs
from modelyard.services.ticks import (
    check_timezone,
    count_ticks,
    cron_latest,
    cron_next,
    validate_cron,
    validate_timezone,
)
from modelyard.storage.leases import LeaseStore
from modelyard.storage.schedules import ScheduleStore

log = logging.getLogger("modelyard.schedules")

_JUST_BEFORE = timedelta(microseconds=1)


def parse_policy(value: str | MissedPolicy) -> MissedPolicy:
    """The missed-run policy named ``value``. Raises InvalidInput naming the choices."""
    try:
        return MissedPolicy(value)
    except ValueError:
        choices = ", ".join(p.value for p in MissedPolicy)
        raise InvalidInput(f"unknown missed-run policy {value!r}: use one of {choices}") from None


class ScheduleService:
    """Schedules, the scheduler's pass over them, and their run history.

    Args:
        store: Where schedules and runs live.
        leases: The lease store that makes each tick run once (shared with the monitors).
        submit: Starts a batch job (``BatchService.submit``); raises a ModelyardError when the
            request cannot run (unknown model, missing input, output exists …).
        check: Validates a batch request without starting anything (``BatchService.check``;
            what it returns is not used).
        clock: Now, timezone-aware UTC.
        get_job: The job of a name (``JobNotFound`` otherwise), to show a run's job state.
        holder: This process's name on the leases it takes (default ``host:pid``).
        lease_ttl: How long a lease lasts unless renewed.
        grace: How late a scheduler may find a tick and still call it on time; later, the tick
            was missed and the schedule's policy applies.
        run_retention: How long runs are kept (:meth:`prune`; each schedule's newest stays).
    """

    def __init__(
        self,
        store: ScheduleStore,
        leases: LeaseStore,
        *,
        submit: Callable[[TransformRequest], Job],
        check: Callable[[TransformRequest], object],
        clock: Callable[[], datetime],
        get_job: Callable[[str], Job] | None = None,
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=5),
        grace: timedelta = timedelta(minutes=5),
        run_retention: timedelta = timedelta(days=180),
    ) -> None:
        self._store = store
        self._leases = leases
        self._submit = submit
        self._check = check
        self._clock = clock
        self._get_job = get_job
        self._holder = holder or default_holder()
        self._ttl = lease_ttl
        self._grace = grace
        self._retention = run_retention
        # schedule name -> the last tick this process saw settled (ran here or elsewhere).
        self._settled: dict[str, datetime] = {}

    # -- schedules -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        cron: str,
        request: TransformRequest,
        timezone: str = "UTC",
        missed: str | MissedPolicy = MissedPolicy.RUN_ONCE,
    ) -> Schedule:
        """Create schedule ``name``: submit ``request`` at every tick of ``cron`` read in
        ``timezone``. Nothing is stored unless everything checks out. Local paths are stored
        absolute (schedulers do not share the caller's working directory).

        Raises:
            InvalidName; InvalidInput: a malformed cron expression, an unknown time zone (or
                a zone file that is no IANA zone, as ``localtime``) or policy, an output with
                an unknown placeholder, or one without ``{tick}`` (or whose next ticks render
                alike, or with a ``..`` segment) that does not allow overwriting;
                AlreadyExists: the name is taken; Conflict: another schedule (paused or not)
                writes to the same output, named in the message; whatever the batch service's
                check raises for the request of the next tick (ModelNotFound, InvalidInput …).
        """
        validate_name(name, "schedule name")
        policy = parse_policy(missed)
        zone = check_timezone(timezone)
        cron = validate_cron(cron, zone.key)
        now = self._clock()
        request = _absolute(request)
        render_output(request.output, now)  # raises for a malformed template
        if not has_placeholder(request.output) and not request.overwrite:
            raise InvalidInput(
                f"every run of schedule {name!r} would write to {request.output!r}, and the "
                "second would find the first's files: put {tick} in the output (e.g. "
                f"'{request.output.rstrip('/')}/{{tick:%Y-%m-%d}}') or allow overwriting"
            )
        try:
            self._store.get(name)
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"a schedule named {name!r} already exists")
        check_outputs(name, request, cron, zone, now)
        self._check_output_is_its_own(name, request)
        schedule = Schedule(name, cron, zone.key, policy, request, False, now, now, now)
        self._check(schedule.request_for(cron_next(cron, zone, now)))
        return self._store.create(schedule)

    def _check_output_is_its_own(self, name: str, request: TransformRequest) -> None:
        """Refuse an output another schedule writes to (paused ones too: they may resume).
        Runs of two schedules can overlap on crons that never coincide (a long run), and the
        second then fails on the first's claim of the output; with a coarse ``{tick}`` format
        or ``overwrite``, one replaces the other's files even when they do not overlap.

        Raises:
            Conflict: naming the other schedule and the output.
        """
        mine = _place(request.output)
        for other in self._store.list_schedules():
            if other.name != name and _place(other.request.output) == mine:
                raise Conflict(
                    f"schedule {other.name!r} writes to {mask_url(other.request.output)!r} "
                    "too, and "
                    "runs of two schedules can overlap (the second finds the output taken): "
                    f"give schedule {name!r} an output of its own"
                )

    def get(self, name: str) -> Schedule:
        """Raises NotFound."""
        return self._store.get(name)

    def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return self._store.list_schedules()

    def pause(self, name: str) -> tuple[Schedule, bool]:
        """Stop running ``name``'s ticks until it is resumed. Returns the schedule and whether
        it changed (False: it was paused already). Raises NotFound."""
        return self._store.set_paused(name, True, self._clock())

    def resume(self, name: str) -> tuple[Schedule, bool]:
        """Run ``name``'s ticks again, from the next one on (ticks that fell while it was
        paused never run). Returns the schedule and whether it changed. Raises NotFound."""
        return self._store.set_paused(name, False, self._clock())

    def delete(self, name: str) -> None:
        """Remove ``name`` and its run history (the jobs it started stay). Raises NotFound."""
        self._store.delete(name)

    def runs(self, name: str, limit: int = 50) -> list[ScheduleRun]:
        """The runs of ``name``, newest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``; NotFound: an unknown
                schedule.
        """
        limit = limit_of(limit)
        self._store.get(name)
        return self._store.list_runs(name, limit)

    def job(self, run: ScheduleRun) -> Job | None:
        """The job ``run`` started, as it is now; None if it started none or it is gone."""
        if run.job is None or self._get_job is None:
            return None
        try:
            return self._get_job(run.job)
        except NotFound:
            return None

    def next_run(self, schedule: Schedule, now: datetime | None = None) -> datetime | None:
        """When ``schedule`` ticks next (UTC); None while it is paused."""
        if schedule.paused:
            return None
        zone = validate_timezone(schedule.timezone)
        return cron_next(schedule.cron, zone, now or self._clock())

    # -- the scheduler's pass ----------------------------------------------------------------

    def run_due(
        self, now: datetime | None = None, looking_since: datetime | None = None
    ) -> list[ScheduleRun]:
        """Run each active schedule's latest due tick that no process has run yet (one pass of
        the scheduler loop), each under its lease, so in exactly one process.

        Args:
            now: The pass's time (default: the clock's).
            looking_since: Since when the calling scheduler has been running without a break
                (its previous pass began then and this one followed it): a tick that came due
                after it was held up by the scheduler's own work, not missed, so it runs even
                past the grace period under ``skip`` (recorded as late). None: unknown.

        Returns:
            The runs this call recorded (submitted, failed or skipped).
        """
        now = now or self._clock()
        done = []
        for schedule in self._store.list_schedules():
            if schedule.paused:
                continue
            try:
                zone = validate_timezone(schedule.timezone)
                tick = cron_latest(schedule.cron, zone, now)
                if tick < schedule.active_since or self._settled.get(schedule.name) == tick:
                    continue
                lease = f"schedule:{schedule.name}"
                ran = run_leased(
                    self._leases,
                    lease,
                    tick,
                    functools.partial(self._run, schedule, tick, now, looking_since),
                    holder=self._holder,
                    ttl=self._ttl,
                )
                if ran is not None:
                    done.append(ran.result)
                    self._settled[schedule.name] = tick
                elif finished_elsewhere(self._leases, lease, tick):
                    self._settled[schedule.name] = tick
            except ModelyardError as exc:  # the store failed: this schedule waits for next pass
                log.warning("schedule %s not run: %s", schedule.name, exc.message)
        return done

    def _run(
        self, schedule: Schedule, tick: datetime, now: datetime, looking_since: datetime | None
    ) -> ScheduleRun:
        zone = validate_timezone(schedule.timezone)
        previous = self._store.list_runs(schedule.name, 1)
        since = schedule.active_since - _JUST_BEFORE
        if previous and previous[0].tick > since:
            since = previous[0].tick
        missed = count_ticks(schedule.cron, zone, since, tick)
        late = now - tick > self._grace
        run = ScheduleRun(
            schedule.name, tick, ScheduleRunStatus.SKIPPED, now, self._holder,
            late=late, missed=missed,
        )  # fmt: skip
        held_up = looking_since is not None and tick > looking_since
        if late and not held_up and schedule.missed is MissedPolicy.SKIP:
            log.info("schedule %s: tick %s missed, skipped", schedule.name, tick.isoformat())
            return self._record(run)
        try:
            job = self._submit(schedule.request_for(tick))
        except ModelyardError as exc:
            log.warning("schedule %s at %s: %s", schedule.name, tick.isoformat(), exc.message)
            return self._record(run, status=ScheduleRunStatus.FAILED, error=exc.message)
        except Exception as exc:  # a bug must not stop the scheduler; the run says what
            log.exception("schedule %s failed at %s", schedule.name, tick.isoformat())
            error = f"{type(exc).__name__}: {exc}"
            return self._record(run, status=ScheduleRunStatus.FAILED, error=error)
        log.info("schedule %s at %s: started job %s", schedule.name, tick.isoformat(), job.name)
        return self._record(run, status=ScheduleRunStatus.SUBMITTED, job=job.name)

    def _record(
        self,
        run: ScheduleRun,
        status: ScheduleRunStatus = ScheduleRunStatus.SKIPPED,
        job: str | None = None,
        error: str | None = None,
    ) -> ScheduleRun:
        run = dataclasses.replace(run, at=self._clock(), status=status, job=job, error=error)
        try:
            return self._store.add_run(run)
        except NotFound:  # deleted while its tick ran
            log.info("schedule %s was deleted; its run at %s is not kept", run.schedule, run.tick)
            return run

    def next_due(self, now: datetime | None = None) -> datetime | None:
        """When the next tick of any active schedule falls (the loop sleeps until then at
        most)."""
        now = now or self._clock()
        ticks = []
        for schedule in self._store.list_schedules():
            try:
                found = self.next_run(schedule, now)
            except InvalidInput:  # a zone this machine does not know: never due here
                continue
            if found is not None:
                ticks.append(found)
        return min(ticks) if ticks else None

    def prune(self, now: datetime | None = None) -> int:
        """Forget runs older than the run retention (each schedule's newest stays). Returns how
        many went."""
        return self._store.prune_runs((now or self._clock()) - self._retention)


def _absolute(request: TransformRequest) -> TransformRequest:
    # As BatchService.submit does for a job; a URL (``s3://…``) is left as it is.
    paths = {k: getattr(request, k) for k in ("input", "output")}
    local = {k: os.path.abspath(v) for k, v in paths.items() if "://" not in v}
    return dataclasses.replace(request, **local)


def _place(template: str) -> str:
    """One spelling of an output template (placeholders as written), as a job's output claim
    spells a location: ``/out/{tick}``, ``file:///out/{tick}/`` give one."""
    from modelyard.batch.location import canonical

    try:
        return canonical(template)
    except (ValueError, ImportError):  # the batch check has refused such an output already
        return template
