"""``modelyard endpoints …``: create endpoints and change what they serve.

Each command parses its arguments, makes one call into :class:`EndpointService` and renders the
result. Every rule (names, weights, which config a rollback returns to, loading and warming the
models before a config is written) lives in the service: a change naming a model that cannot
load fails here, in this process, before any server sees it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

import typer

from modelyard.cli.capture_options import CaptureOpt, RedactOpt, capture_configs
from modelyard.cli.context import platform
from modelyard.cli.deployment_options import (
    AlarmOpt,
    BakeOpt,
    CanaryOpt,
    MaxDurationOpt,
    MinRequestsOpt,
    StepOpt,
    StrategyOpt,
    WaitOpt,
    percent,
    rollout_options,
)
from modelyard.cli.feedback import feedback
from modelyard.cli.options import pairs, per_variant
from modelyard.cli.render import (
    capture_stopped,
    config_dict,
    console,
    endpoint_change,
    endpoint_detail,
    endpoint_dict,
    endpoint_unchanged,
    endpoints_table,
    failing_footnote,
    history_table,
    print_json,
)
from modelyard.domain import Batching, Endpoint, Predictor
from modelyard.errors import InvalidInput
from modelyard.services.endpoint_weights import parse_weights
from modelyard.services.endpoints import EndpointService

app = typer.Typer(
    name="endpoints",
    help="Create endpoints and change which model versions they serve, in what shares.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
VariantsOpt = Annotated[
    list[str],
    typer.Option(
        "--variant",
        metavar="VARIANT=MODEL_REF",
        help="A variant and the model it serves: blue=churn:3 or green=churn@production "
        "(an alias is pinned to the version it points at now). Repeat for each variant.",
    ),
]
#: What weights mean, to --weights and to `endpoints weights` alike (``resolve_weights``).
WEIGHTS_HELP = (
    "Traffic weights of the production variants: relative (blue=0.9,green=0.1; a variant "
    "not named keeps the weight it has now, one new to the endpoint must be named) or "
    "percentages of every production variant, adding up to 100 (blue=90%,green=10%)."
)
WeightsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--weights",
        metavar="VARIANT=W,...",
        help=f"{WEIGHTS_HELP} Default: equal shares.",
    ),
]
ShadowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--shadow",
        metavar="VARIANT=PERCENT",
        help="Make a variant a shadow: it answers no request and takes no weight; a copy of "
        "PERCENT (0-100) of the requests the production variants answer goes to it, off the "
        "response path. Promote it with `modelyard deployments promote`. Repeatable.",
    ),
]
BatchSizeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--batch-size",
        metavar="VARIANT=ROWS",
        help=f"Largest micro-batch of a variant (default {Batching().max_batch_size}; "
        "1 turns batching off). Repeatable.",
    ),
]
BatchWaitOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--batch-wait-ms",
        metavar="VARIANT=MS",
        help=f"Longest wait for a fuller batch under load (default "
        f"{Batching().max_wait_ms:g} ms). Repeatable.",
    ),
]

_CHOICES = "|".join(p.value for p in Predictor)
PredictorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--predictor",
        metavar=f"[VARIANT=]{_CHOICES}",
        help="Which predictor serves a variant: auto (the default: the compiled tree ensemble "
        "when it converts and predicts exactly as the native model, else the native one), "
        "native, or compiled (refused up front, with the reason, when the model cannot have "
        "one). A value without VARIANT= applies to every variant not named. Repeatable.",
    ),
]

N = TypeVar("N", int, float)


def _service() -> EndpointService:
    return platform().endpoints


def _numbers(
    values: Sequence[str] | None, option: str, kind: Callable[[str], N], expected: str
) -> dict[str, N]:
    """``["blue=64", …]`` → ``{"blue": 64}``; a value that is not a number is a usage error."""
    out: dict[str, N] = {}
    for variant, text in pairs(values, option).items():
        try:
            out[variant] = kind(text.strip())
        except ValueError:
            raise typer.BadParameter(
                f"expected {expected}, got {variant}={text!r}", param_hint=f"'{option}'"
            ) from None
    return out


def _batching(sizes: Sequence[str] | None, waits: Sequence[str] | None) -> dict[str, Batching]:
    """Batching per variant named by either option; the field not given keeps its default."""
    size = _numbers(sizes, "--batch-size", int, "VARIANT=ROWS (a whole number)")
    wait = _numbers(waits, "--batch-wait-ms", float, "VARIANT=MS (a number)")
    default = Batching()
    out: dict[str, Batching] = {}
    for variant in dict.fromkeys([*size, *wait]):
        try:
            out[variant] = Batching(
                max_batch_size=size.get(variant, default.max_batch_size),
                max_wait_ms=wait.get(variant, default.max_wait_ms),
            )
        except InvalidInput as exc:
            raise InvalidInput(f"batching of variant {variant!r}: {exc.message}") from None
    return out


def _predictors(values: Sequence[str] | None, variants: Sequence[str]) -> dict[str, Predictor]:
    """``["compiled", "blue=native"]`` → a predictor per variant: a bare value is the choice of
    every variant not named. A value that is not a predictor, or two bare values, is a usage
    error; a variant name that is not a variant is left for the service to refuse."""
    return per_variant(
        values, variants, "--predictor", "a predictor", lambda text: Predictor.parse(text.strip())
    )


def _weights(values: Sequence[str] | None) -> dict[str, float] | None:
    return parse_weights(values) if values else None


def _shadows(values: Sequence[str] | None) -> dict[str, float] | None:
    """``["b=50%", "c=10"]`` → ``{"b": 50.0, "c": 10.0}``; the range is the service's rule."""
    out: dict[str, float] = {}
    for variant, text in pairs(values, "--shadow").items():
        value = percent(text, "--shadow")
        assert value is not None  # only None for no text
        out[variant] = value
    return out or None


def _changed(endpoint: Endpoint, json_: bool) -> None:
    if json_:
        print_json(endpoint_dict(endpoint))
    else:
        console.print(endpoint_change(endpoint), markup=False)


@app.command("create")
def create(
    name: NameArg,
    variant: VariantsOpt,
    weights: WeightsOpt = None,
    batch_size: BatchSizeOpt = None,
    batch_wait_ms: BatchWaitOpt = None,
    predictor: PredictorOpt = None,
    capture: CaptureOpt = None,
    capture_redact: RedactOpt = None,
    shadow: ShadowOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Create an endpoint serving one or more variants (models are loaded and checked first)."""
    variants = pairs(variant, "--variant")
    endpoint = _service().create(
        name,
        variants,
        _weights(weights),
        _batching(batch_size, batch_wait_ms),
        _predictors(predictor, list(variants)),
        capture_configs(capture, capture_redact, list(variants)),
        _shadows(shadow),
    )
    _changed(endpoint, json_)


@app.command("update")
def update(
    name: NameArg,
    variant: VariantsOpt,
    weights: WeightsOpt = None,
    batch_size: BatchSizeOpt = None,
    batch_wait_ms: BatchWaitOpt = None,
    predictor: PredictorOpt = None,
    capture: CaptureOpt = None,
    capture_redact: RedactOpt = None,
    shadow: ShadowOpt = None,
    strategy: StrategyOpt = None,
    canary_size: CanaryOpt = None,
    step: StepOpt = None,
    wait: WaitOpt = None,
    bake: BakeOpt = None,
    max_duration: MaxDurationOpt = None,
    alarm: AlarmOpt = None,
    min_requests: MinRequestsOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Serve new models: a new config replacing every variant (batching, predictors, capture
    and shadows not given return to their defaults). With --strategy, traffic moves to it in
    watched steps, and a failing step rolls back (see `modelyard deployments`); its shadows
    join at the first step and take no part in the shifts."""
    variants = pairs(variant, "--variant")
    rollout = rollout_options(
        strategy, canary_size, step, wait, bake, max_duration, alarm, min_requests
    )
    config = (
        _weights(weights),
        _batching(batch_size, batch_wait_ms),
        _predictors(predictor, list(variants)),
        capture_configs(capture, capture_redact, list(variants)),
        _shadows(shadow),
    )
    if rollout is None:
        weights_, batching, predictors, captures, shadows = config
        before = _service().get(name).config  # for the notice below only
        endpoint, changed = _service().update_if_changed(
            name,
            variants,
            weights=weights_,
            batching=batching,
            predictors=predictors,
            capture=captures,
            shadows=shadows,
        )
        if json_:
            print_json({**endpoint_dict(endpoint), "changed": changed})
        elif changed:
            _changed(endpoint, json_)
        else:
            console.print(endpoint_unchanged(endpoint), markup=False)
        stopped = capture_stopped(before, endpoint.config)
        if changed and stopped and not json_:
            typer.echo(stopped, err=True)
        return
    from modelyard.cli.deployments import print_change, service

    print_change(service().start(name, variants, *config, **rollout), json_)


@app.command("weights")
def weights(
    name: NameArg,
    values: Annotated[
        list[str],
        typer.Argument(
            metavar="VARIANT=W[,VARIANT=W]...",
            help=WEIGHTS_HELP,
        ),
    ],
    json_: JsonFlag = False,
) -> None:
    """Change traffic shares only: same model versions, nothing is reloaded."""
    endpoint = _service().set_weights(name, parse_weights(values))
    _changed(endpoint, json_)


@app.command("capture")
def capture(
    name: NameArg,
    percent: Annotated[
        str, typer.Argument(metavar="PERCENT", help="Share of requests captured: 0-100 (0: off).")
    ],
    json_: JsonFlag = False,
) -> None:
    """Change the capture share of every variant only: redactions kept, nothing reloaded."""
    _changed(_service().set_capture(name, percent), json_)


@app.command("rollback")
def rollback(name: NameArg, json_: JsonFlag = False) -> None:
    """Go back to the config that was current before this one (a deployment whose
    completion this undoes ends ROLLED_BACK)."""
    from modelyard.cli.deployments import print_change

    print_change(platform().deployments.rollback_endpoint(name), json_)


@app.command("list")
def list_endpoints(json_: JsonFlag = False) -> None:
    """List every endpoint with its current config; '!' marks one that a running server
    could not load (the reason follows the table)."""
    found = _service().list_endpoints()
    failing = platform().servers.unservable()
    if json_:
        print_json([endpoint_dict(e, failing=failing.get(e.name, [])) for e in found])
    elif not found:
        console.print("No endpoints yet; create one with 'modelyard endpoints create'.")
    else:
        console.print(endpoints_table(found, failing))
        footnote = failing_footnote({k: v for k, v in failing.items() if k in _names(found)})
        if footnote:
            console.print(footnote, markup=False)


def _names(endpoints: Sequence[Endpoint]) -> set[str]:
    return {e.name for e in endpoints}


@app.command("show")
def show(name: NameArg, json_: JsonFlag = False) -> None:
    """Show the current config (each variant's model version, requested ref, share, batching,
    capture, predictor, and which predictor the live servers serve it with and why) and the servers:
    live or stale, current or behind, the config each serves, its failures."""
    endpoint = _service().get(name)
    servers = platform().servers.for_endpoint(name)
    if json_:
        print_json(endpoint_dict(endpoint, servers=servers))
    else:
        console.print(endpoint_detail(endpoint, servers), markup=False)


@app.command("history")
def history(name: NameArg, json_: JsonFlag = False) -> None:
    """List every config of an endpoint, oldest first (the last one is current)."""
    configs = _service().history(name)
    if json_:
        print_json([config_dict(c) for c in configs])
    else:
        console.print(history_table(name, configs))


@app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an endpoint and its history; servers stop serving it."""
    service = _service()
    # Look it up first, so an unknown endpoint is reported before any question is asked.
    found = service.get(name)
    if not yes:
        if not sys.stdin.isatty():
            # Not a rule about endpoints, only about asking: nobody can answer on a pipe.
            raise InvalidInput(
                f"refusing to delete endpoint {found.name} without confirmation (stdin is not "
                "a terminal); pass --yes"
            )
        typer.confirm(f"Delete endpoint {found.name} and its history?", abort=True)
    service.delete(name)
    console.print(f"Deleted endpoint {found.name}", markup=False)


app.command("feedback")(feedback)  # its own module: cli/feedback.py
