"""Deployment plans: a strategy's options checked and turned into steps, and the endpoint configs
a deployment makes on its way (the old and new variants together, in a step's shares).

SageMaker's guardrail semantics: ``canary`` shifts ``canary_size`` first and the rest after
its wait; ``linear`` shifts equal steps of ``step_size``, each held ``wait``; ``blue-green``
shifts everything at once; every strategy then bakes (100 % on the new config, the old one
still loaded) before the old config is retired. A bake of zero retires it at once (not for
blue-green, whose only watched time is its bake). Every plan starts with ``prepare``: the new
variants join at 0 % and get traffic only once every live server has loaded them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence, Set
from datetime import timedelta

from modelyard.domain.deployments import (
    Analysis,
    PlannedStep,
    RolloutPlan,
    StepKind,
    Strategy,
)
from modelyard.domain.durations import MAX_DURATION, length_of
from modelyard.domain.endpoints import Variant
from modelyard.domain.monitors import format_duration
from modelyard.domain.numbers import real_value, shown_value
from modelyard.domain.references import validate_name
from modelyard.errors import InvalidInput

DEFAULT_CANARY = 10.0
DEFAULT_STEP = 20.0
DEFAULT_WAIT = timedelta(minutes=5)
DEFAULT_BAKE = timedelta(minutes=10)
#: The default maximum duration is the waits and the bake plus this (loading, a pause).
DURATION_MARGIN = timedelta(hours=1)
#: The smallest linear step (percent): 100 steps at most.
MIN_STEP = 1.0
#: How far equal linear steps may miss 100 % (in points) and still count as reaching it.
_LINEAR_SLACK = 0.5
_NAME_LIMIT = 128


def plan_rollout(
    strategy: Strategy | str,
    *,
    canary_size: float | None = None,
    step_size: float | None = None,
    wait: timedelta | str | None = None,
    bake: timedelta | str | None = None,
    max_duration: timedelta | str | None = None,
    alarms: Sequence[str] = (),
    analysis: Analysis | None = None,
) -> RolloutPlan:
    """The validated plan of a guarded deployment (not ``all-at-once``, which has none).

    Percentages are in percent (10 is 10 %). Options a strategy does not use are refused, so a
    misspelt plan never runs as another one.

    Raises:
        InvalidInput: naming the problem: an unknown strategy; a canary or step that is not
            above 0 % or is larger than 100 %; linear steps that never reach 100 % exactly; a
            blue-green plan, or a linear one of one step of 100 %, without a bake (and the
            latter with a wait: it has no step to hold); a wait, bake or maximum duration
            that is not a whole number of seconds (SageMaker's grain); a maximum duration not
            longer than the waits and the bake together; an invalid alarm name; alarms given
            as one text rather than a list of names; a percentage that is not a number.
    """
    strategy = strategy if isinstance(strategy, Strategy) else Strategy.parse(strategy)
    given = {"canary size": canary_size, "step size": step_size, "wait": wait}
    used = {
        Strategy.CANARY: {"canary size", "wait"},
        Strategy.LINEAR: {"step size", "wait"},
        Strategy.BLUE_GREEN: set(),
    }.get(strategy)
    if used is None:
        raise InvalidInput(f"the {strategy.value} strategy has no steps to plan")
    unused = [name for name, value in given.items() if value is not None and name not in used]
    if unused:
        raise InvalidInput(
            f"the {strategy.value} strategy takes no {' or '.join(unused)} "
            f"(canary: canary size and wait; linear: step size and wait; blue-green: bake)"
        )
    shifts = _shifts(strategy, canary_size, step_size)
    hold = DEFAULT_WAIT if wait is None else _duration(wait, "wait")
    baking = DEFAULT_BAKE if bake is None else _duration(bake, "bake", zero_ok=True)
    if strategy is Strategy.BLUE_GREEN and not baking:
        raise InvalidInput(
            "a blue-green deployment needs a bake longer than zero: it is the only time the "
            "new config is watched before the old one is retired"
        )
    if strategy is Strategy.LINEAR and not shifts:  # one step of 100 %: blue-green in effect
        if wait is not None:
            raise InvalidInput(
                "a linear step of 100% shifts all the traffic at once: no step is held for a "
                "wait; the bake is when the new config is watched"
            )
        if not baking:
            raise InvalidInput(
                "a linear step of 100% shifts all the traffic at once, so it needs a bake "
                "longer than zero: it is the only time the new config is watched before the "
                "old one is retired"
            )
    steps = (
        PlannedStep(StepKind.PREPARE, 0.0, timedelta()),
        *(PlannedStep(StepKind.SHIFT, p, hold) for p in shifts),
        *((PlannedStep(StepKind.BAKE, 100.0, baking),) if baking else ()),
    )
    total = sum((s.hold for s in steps), timedelta())
    limit = (
        total + DURATION_MARGIN
        if max_duration is None
        else _duration(max_duration, "maximum duration")
    )
    if limit <= total:
        raise InvalidInput(
            f"the maximum duration ({format_duration(limit)}) must be longer than the waits "
            f"and the bake together ({format_duration(total)}), or the deployment could never "
            "finish"
        )
    if isinstance(alarms, str | bytes) or not isinstance(alarms, Sequence | Set):
        # A text is a sequence of one-letter names: alarms="p99-high" was alarm 'p'.
        raise InvalidInput(
            "the alarms must be a list of alarm names, such as ['p99-high'], got "
            f"{type(alarms).__name__} {shown_value(alarms)}"
        )
    names = tuple(dict.fromkeys(validate_name(a, "alarm name") for a in alarms))
    options = {
        "canary_size": shifts[0] if strategy is Strategy.CANARY else None,
        "step_size": step_size if strategy is Strategy.LINEAR else None,
        "wait_s": hold.total_seconds() if shifts else None,
        "bake_s": baking.total_seconds(),
    }
    if strategy is Strategy.LINEAR and step_size is None:
        options["step_size"] = DEFAULT_STEP
    return RolloutPlan(strategy, steps, limit, names, analysis or Analysis(), options)


def _shifts(strategy: Strategy, canary: float | None, step: float | None) -> list[float]:
    """The shares (percent) of the shift steps below 100 %."""
    if strategy is Strategy.CANARY:
        size = _percent(DEFAULT_CANARY if canary is None else canary, "canary size")
        if size == 100:
            raise InvalidInput(
                "a canary of 100% leaves no second step; use the blue-green strategy to shift "
                "everything at once"
            )
        return [size]
    if strategy is Strategy.LINEAR:
        size = _percent(DEFAULT_STEP if step is None else step, "step size")
        if size < MIN_STEP:  # each step is a config, a held wait and a row of history
            raise InvalidInput(
                f"a linear step must be at least {MIN_STEP:g}% (100 steps at most), got {size:g}%"
            )
        count = max(1, round(100 / size))
        if abs(count * size - 100) > _LINEAR_SLACK:
            reached = ", ".join(f"{size * k:g}%" for k in range(1, math.ceil(100 / size) + 1))
            raise InvalidInput(
                f"equal steps of {size:g}% never reach 100% exactly ({reached}); use a step "
                "that divides 100, such as 10, 20, 25 or 50"
            )
        return [100 * k / count for k in range(1, count)]
    return []


def _percent(given: float, what: str) -> float:
    value = real_value(given)
    if value is None:  # text was a TypeError out of isnan; True was taken as 1%
        raise InvalidInput(
            f"the {what} must be a number of percent (10 for 10%), got "
            f"{type(given).__name__} {shown_value(given)}"
        )
    if math.isnan(value):
        raise InvalidInput(f"the {what} must be a percentage above 0% and at most 100%, got nan")
    if value <= 0:
        raise InvalidInput(f"the {what} must be above 0%, got {value:g}%")
    if value > 100:  # infinity too (it was refused as not "above 0%")
        raise InvalidInput(f"the {what} must be at most 100%, got {value:g}%")
    return value


def _duration(value: timedelta | str, what: str, *, zero_ok: bool = False) -> timedelta:
    value = length_of(value, f"the {what}")
    if value < timedelta() or (not zero_ok and value == timedelta()):
        raise InvalidInput(
            f"the {what} must be longer than zero, got {format_duration(value)}"
            if not zero_ok
            else f"the {what} must not be negative"
        )
    if value > MAX_DURATION:  # a deadline past the last date Python holds stops the controller
        raise InvalidInput(
            f"the {what} must be at most ten years (3660d), got {format_duration(value)}"
        )
    if value % timedelta(seconds=1):  # a plan is shown in seconds: 500ms would read "0s"
        raise InvalidInput(
            f"the {what} must be a whole number of seconds, got {value.total_seconds():g}s"
        )
    return value


def served_names(old: Sequence[Variant], new: Sequence[Variant]) -> dict[str, str]:
    """New variant → its name while it serves beside the old ones: its own, unless an old
    variant has it (then ``<name>.next``, or ``<name>.next2`` …), so each side's metrics stay
    its own. A shadow the new config keeps (an old shadow's name and model version) keeps its
    name: it takes the old one's place from the first step (see :func:`blend`), or both would
    be sent a copy of each sampled request."""
    old_names = {v.name for v in old}
    kept = {v.name for v in new if _kept_shadow(v, old)}
    taken = old_names | {v.name for v in new}
    out: dict[str, str] = {}
    for variant in new:
        name = variant.name
        if name in old_names and name not in kept:
            base = f"{name[: _NAME_LIMIT - 8]}.next"
            name, n = base, 2
            while name in taken:
                name, n = f"{base}{n}", n + 1
            taken.add(name)
        out[variant.name] = name
    return out


def _kept_shadow(variant: Variant, old: Sequence[Variant]) -> bool:
    """Whether shadow ``variant`` of a new config is a shadow of the old one (``old``) kept:
    the same name and model version, its sampling and options perhaps changed."""
    if not variant.is_shadow:
        return False
    return any(
        v.is_shadow
        and (v.name, v.model, v.version) == (variant.name, variant.model, variant.version)
        for v in old
    )


def blend(
    old: Sequence[Variant], new: Sequence[Variant], names: Mapping[str, str], percent: float
) -> tuple[Variant, ...]:
    """The old variants and the new ones (renamed by ``names``) together: the new ones get
    ``percent`` of the traffic, in their own proportions, and the old ones the rest, in theirs.
    A side at 0 % stays in the config (loaded) with weight 0. Shadows (either side's) answer
    nothing, so they take no part in the shift: they pass with weight 0 and their sampling. An
    old variant whose name a new one serves under (a shadow kept, see :func:`served_names`)
    leaves: the new one takes its place."""
    share = percent / 100
    old_total = sum(v.weight for v in old if not v.is_shadow)
    new_total = sum(v.weight for v in new if not v.is_shadow)
    replaced = {names[v.name] for v in new}
    return (
        *(_weighted(v, (1 - share) * v.weight / old_total) for v in old if v.name not in replaced),
        *(_weighted(v, share * v.weight / new_total, names[v.name]) for v in new),
    )


def _weighted(variant: Variant, weight: float, name: str | None = None) -> Variant:
    """``variant`` with ``weight`` (a shadow keeps its 0) and, when given, another ``name``."""
    return dataclasses.replace(
        variant,
        name=name or variant.name,
        weight=variant.weight if variant.is_shadow else weight,
    )


#: Shifts a plan's description lists one by one; more, of one hold, are summed up.
_LISTED_SHIFTS = 4


def describe(plan: RolloutPlan) -> str:
    """The plan in words: ``canary: 10% for 5m, then 100% baked 10m; at most 1h15m``."""
    shifts = [s for s in plan.steps if s.kind is StepKind.SHIFT]
    if len(shifts) > _LISTED_SHIFTS and len({s.hold for s in shifts}) == 1:
        # A linear plan of 1% steps listed each of its 99 shifts: 2 KB in every start entry.
        first, last = shifts[0], shifts[-1]
        parts = [
            f"{len(shifts)} steps of {first.percent:g}% ({first.percent:g}% to "
            f"{last.percent:g}%) for {format_duration(first.hold)} each"
        ]
    else:
        parts = [f"{s.percent:g}% for {format_duration(s.hold)}" for s in shifts]
    bake = next((s for s in plan.steps if s.kind is StepKind.BAKE), None)
    parts.append(f"100% baked {format_duration(bake.hold)}" if bake else "100% at once")
    alarms = f"; watching {', '.join(plan.alarms)}" if plan.alarms else ""
    return (
        f"{plan.strategy.value}: {', then '.join(parts)}; at most "
        f"{format_duration(plan.max_duration)}{alarms}"
    )
