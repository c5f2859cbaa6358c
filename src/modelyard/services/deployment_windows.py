"""Which minutes of the metric series a deployment may read as its own models' traffic.

The series are per minute and per variant *name*, and names come back: every deployment's new
variant serves as ``main.next``, and a completed one leaves its models under the old names. A
deployment that starts in the minute the one before it ended would read that one's models'
answers (a failed canary's errors, say) as its new models'. So a name its new variants
serve under that an earlier deployment gave another model is read only from the first minute
that model can no longer have answered in: the minute after that deployment ended (and
:data:`SETTLE` on, for the servers to take the config it left and for requests in flight to
finish), for both sides, which are compared over the same window. The deployment's named alarms
that are judged on its new variants read them from the same minute (:func:`own_since`): before
it, in windows of theirs that reach back past the deployment's start, those names were never
its models'. The old variants' names are not judged: they are the baseline, never blamed, and
a window started later for them would delay the rollback of a new model failing meanwhile.
Changes made by hand are not in the deployments' records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelyard.domain.deployments import Deployment
from modelyard.errors import NotFound
from modelyard.services.deployment_analysis import floor_minute
from modelyard.storage.base import EndpointStore
from modelyard.storage.deployments import DeploymentStore

#: How long after a deployment ended its models may still answer under its names: servers
#: take a new config within their poll (half a second by default), and a request in flight
#: finishes on the model it started with.
SETTLE = timedelta(seconds=5)
#: Earlier deployments looked at, newest first (they run one at a time, so the older ones
#: ended earlier still; this bounds the reading of a store whose clock went backwards).
_LOOKED_AT = 10
_MINUTE = timedelta(minutes=1)

Binding = tuple[str, int]  # model, version


@dataclass(frozen=True, slots=True)
class Taint:
    """A name of the deployment that an earlier one gave another model."""

    name: str
    served: str  # that model, as ``model:version``
    deployment: int  # the earlier deployment
    ended: datetime  # when it ended
    clean_from: datetime  # the first minute its answers are no longer in

    def __str__(self) -> str:
        return (
            f"variant {self.name!r} served {self.served} in deployment {self.deployment}, "
            f"which ended at {self.ended:%H:%M:%S}"
        )


def taints(
    d: Deployment, since: datetime, store: DeploymentStore, endpoints: EndpointStore
) -> list[Taint]:
    """The names ``d``'s new variants serve under that an earlier deployment of the endpoint
    gave another model at ``since`` or later, each with the first minute from which its rows
    are ``d``'s models' alone."""
    mine = {d.served_names[v.name]: (v.model, v.version) for v in d.target}
    found: dict[str, Taint] = {}
    for earlier in store.list_deployments(d.endpoint, _LOOKED_AT):
        if earlier.id == d.id or earlier.ended_at is None:
            continue
        until = earlier.ended_at + SETTLE
        if until <= since:
            break  # it, and every one before it, ended before the window
        for name, (model, version) in _bindings(earlier, endpoints).items():
            if name in mine and mine[name] != (model, version) and name not in found:
                found[name] = Taint(
                    name, f"{model}:{version}", earlier.id, earlier.ended_at, _ceil_minute(until)
                )
    return list(found.values())


def own_since(
    d: Deployment, store: DeploymentStore, endpoints: EndpointStore
) -> tuple[datetime, list[Taint]]:
    """The first minute whose rows, under the names ``d``'s new variants serve under, are
    ``d``'s models' alone: the minute ``d`` started in (before it those names were never its
    models'), or later where an earlier deployment gave one of them another model then (the
    :func:`taints` found, returned too). A step's comparison starts there at the earliest, and
    the named alarms judged on the new variants read nothing before it."""
    start = floor_minute(d.started_at)
    found = taints(d, start, store, endpoints)
    return clean_since(start, found), found


def clean_since(since: datetime, found: Sequence[Taint]) -> datetime:
    """``since``, or later: the first minute none of the rows ``found`` (:func:`taints`)
    names hold another model's answers."""
    return max([since, *(t.clean_from for t in found)])


def _bindings(d: Deployment, endpoints: EndpointStore) -> dict[str, Binding]:
    """The names ``d``'s configs gave models: its source config's and its new variants'
    (under the names they served as)."""
    out: dict[str, Binding] = {}
    try:
        source, _ = endpoints.get_config(d.endpoint, d.source_config)
    except NotFound:  # the endpoint was deleted (and maybe made again) since
        pass
    else:
        out.update({v.name: (v.model, v.version) for v in source.variants})
    out.update({d.served_names[v.name]: (v.model, v.version) for v in d.target})
    return out


def _ceil_minute(when: datetime) -> datetime:
    floor = floor_minute(when)
    return floor if floor == when else floor + _MINUTE
