"""Turning domain records into output: JSON for scripts, Rich tables and key/value views for people.

Nothing here decides anything about models; it only shapes what the services returned.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.table import Table

from modelyard.cli.render_predictors import predictor_lines
from modelyard.domain import (
    Batching,
    Endpoint,
    EndpointConfig,
    EndpointServer,
    Model,
    ModelVersion,
    Variant,
)

# Rich would otherwise colour numbers and paths it guesses at, and wrap long values (digests,
# paths) across lines, which breaks copy-and-paste and grep. Markup is off: what is printed
# holds users' text (tags, descriptions, paths, reasons quoting names), where '[/x]' would end
# the command with a MarkupError and '[red]' vanish. A styled line asks for markup itself.
console = Console(highlight=False, soft_wrap=True, markup=False)


def to_jsonable(value: Any) -> Any:
    """Convert records (dataclasses, enums, datetimes, paths, tuples) to JSON-ready values.

    A record with its own ``to_dict()`` (``Signature``, ``Trust``) is converted with it, so the
    JSON shape matches what the record itself considers its serial form. A float that is not
    finite (an overflowed error, a missing score) is ``null``: JSON has no NaN or infinity.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):  # NaN and ±inf are no JSON numbers: unknown
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    to_dict = getattr(value, "to_dict", None)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if callable(to_dict):
            return to_jsonable(to_dict())
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)


def version_dict(version: ModelVersion) -> dict[str, Any]:
    """A version as JSON, with its ``ref`` (``name:N``) added for convenience."""
    data: dict[str, Any] = {"ref": version.ref}
    data.update(to_jsonable(version))
    return data


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout, and nothing else (scripts parse it)."""
    text = json.dumps(to_jsonable(value), indent=2, sort_keys=False, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "-"


def _short_when(value: datetime | None) -> str:
    # Tables are narrow on an 80-column terminal: minutes are enough to tell versions apart.
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _pairs(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "-"


def _metric(value: float) -> str:
    return f"{value:.4g}"


def models_table(models: Iterable[Model]) -> Table:
    """The ``models list`` table: name, latest version, aliases, description, updated."""
    table = Table(title="Models")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("latest", justify="right")
    table.add_column("aliases", overflow="fold")
    table.add_column("description", overflow="fold")
    table.add_column("updated (UTC)", no_wrap=True)
    for model in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(model.aliases.items()))
        table.add_row(
            model.name,
            str(model.latest_version) if model.latest_version is not None else "-",
            aliases or "-",
            model.description or "",
            _short_when(model.updated_at),
        )
    return table


def versions_table(name: str, versions: Iterable[ModelVersion]) -> Table:
    """The ``models versions`` table: one row per version with its metrics and aliases.

    Digests are left to ``models show``: the table has to fit 80 columns.
    """
    table = Table(title=f"Versions of {name}")
    table.add_column("version", justify="right", style="bold")
    table.add_column("flavor")
    table.add_column("status")
    table.add_column("aliases", overflow="fold")
    table.add_column("metrics", overflow="fold")
    table.add_column("created (UTC)", no_wrap=True)
    for v in versions:
        table.add_row(
            str(v.version),
            v.flavor,
            v.status.value,
            ", ".join(v.aliases) or "-",
            ", ".join(f"{k}={_metric(m)}" for k, m in v.metrics.items()) or "-",
            _short_when(v.created_at),
        )
    return table


def version_detail(version: ModelVersion) -> str:
    """The ``models show`` view: every fact about one version, one ``field  value`` per line.

    Plain lines rather than a table: a digest or a path must stay whole on one line, whatever
    the terminal width, so it can be copied and grepped.
    """
    trust = version.trust
    trusted = [k for k, on in (("pickle", trust.pickle), ("user_code", trust.user_code)) if on]
    trusted += [f"type:{t}" for t in trust.types]
    return _fields(
        version.ref,
        {
            "flavor": version.flavor,
            "format": version.model_format,
            "status": version.status.value,
            "aliases": ", ".join(version.aliases) or "-",
            "description": version.description or "-",
            "params": _pairs(version.params),
            "metrics": _pairs({k: _metric(v) for k, v in version.metrics.items()}),
            "tags": _pairs(version.tags),
            "signature": _signature(version),
            "source": f"{version.source.kind} {version.source.uri or ''}".strip(),
            "trust": ", ".join(trusted) or "none (safe format)",
            "created": _when(version.created_at),
            "size": f"{version.size_bytes} bytes",
            "digest": f"sha256:{version.artifact_digest}",
        },
    )


def _fields(title: str, values: Mapping[str, Any]) -> str:
    width = max(len(k) for k in values)
    lines = [title] + [
        f"  {k.replace('_', ' '):<{width}}  {'-' if v is None else v}" for k, v in values.items()
    ]
    return "\n".join(lines)


def _signature(version: ModelVersion) -> str:
    sig = version.signature
    if sig is None:
        return "-"
    names = sig.feature_names
    inputs = f"{sig.n_features} inputs"
    if names:
        shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
        inputs += f" ({shown})"
    if not sig.outputs:
        return inputs
    outputs = ", ".join(c.dtype for c in sig.outputs)
    return f"{inputs} → {outputs} {list(sig.output_shape)}"


def store_detail(info: Mapping[str, Any]) -> str:
    """The ``store info`` view: where the stores live and what they hold."""
    return _fields("Store", info)


# -- endpoints -------------------------------------------------------------------------------


def _percent(value: float) -> str:
    """``12.5%``: one decimal, or as many as tell a share that is not 0 or 100 from them (a
    shadow sampling 0.0001% gets copies, a variant at 99.99% does not get every request)."""
    text = f"{value:.1f}"
    if (text == "0.0" and value > 0) or (text == "100.0" and value < 100):
        text = f"{value:.12g}"
    return text.removesuffix(".0") + "%"


def shares(config: EndpointConfig) -> dict[str, float]:
    """Each variant's share of the traffic in percent (weights are relative, not percentages);
    a shadow's is 0 (it answers nothing)."""
    total = sum(v.weight for v in config.variants)
    # Divide first: 100 * 1.7e308 overflows even where the share itself is fine.
    return {v.name: (100.0 * (v.weight / total) if total > 0 else 0.0) for v in config.variants}


def share_text(variant: Variant, share: float) -> str:
    """``90%``, or ``shadow 50%`` for a shadow getting a copy of 50 % of the requests."""
    if variant.shadow is not None:
        return f"shadow {_percent(variant.shadow)}"
    return _percent(share)


def variants_summary(config: EndpointConfig, sep: str = ", ") -> str:
    """``blue=churn:1 90%, green=churn:2 10%, dark=churn:3 shadow 50%``: the short form of a
    config's variants."""
    share = shares(config)
    return sep.join(
        f"{v.name}={v.model_ref} {share_text(v, share[v.name])}" for v in config.variants
    )


def batching_text(batching: Batching) -> str:
    """How a variant batches, in words."""
    if batching.max_batch_size <= 1:
        return "off (one request at a time)"
    return f"up to {batching.max_batch_size} rows, waiting at most {batching.max_wait_ms:g} ms"


def _variant_dict(variant: Variant, share: float) -> dict[str, Any]:
    data: dict[str, Any] = {"name": variant.name, "ref": variant.model_ref}
    data.update(to_jsonable(variant))
    data["share"] = share
    return data


def config_dict(config: EndpointConfig) -> dict[str, Any]:
    """A config as JSON; each variant gets its ``ref`` (``model:N``) and ``share`` in percent."""
    share = shares(config)
    return {
        "endpoint": config.endpoint,
        "number": config.number,
        "change": config.change.value,
        "created_at": to_jsonable(config.created_at),
        "variants": [_variant_dict(v, share[v.name]) for v in config.variants],
    }


def endpoint_dict(
    endpoint: Endpoint,
    servers: Iterable[EndpointServer] | None = None,
    failing: Iterable[EndpointServer] | None = None,
) -> dict[str, Any]:
    """An endpoint and its current config as JSON, with (``endpoints show``) the servers as
    seen from it, or (``endpoints list``) the live servers that failed to load it."""
    data = {
        "name": endpoint.name,
        "created_at": to_jsonable(endpoint.created_at),
        "updated_at": to_jsonable(endpoint.updated_at),
        "config": config_dict(endpoint.config),
    }
    if servers is not None:
        data["servers"] = [s.to_dict() for s in servers]
    if failing is not None:
        data["failing_servers"] = [s.to_dict() for s in failing]
    return data


def endpoint_change(endpoint: Endpoint) -> str:
    """The line a change prints: ``endpoint api now at config 3 (weights): blue=churn:1 50%…``."""
    config = endpoint.config
    return (
        f"endpoint {endpoint.name} now at config {config.number} ({config.change.value}): "
        f"{variants_summary(config)}"
    )


def capture_stopped(before: EndpointConfig, after: EndpointConfig) -> str | None:
    """A notice naming the variants that captured in ``before`` and no longer do in ``after``
    (an update sets capture anew: one that does not repeat ``--capture`` turns it off); None
    when there are none."""
    stopped = [
        f"{v.name} (was {v.capture.percent:g}%)"
        for v in before.variants
        if v.capture.percent > 0
        and (now := after.variant(v.name)) is not None
        and now.capture.percent == 0
    ]
    if not stopped:
        return None
    return (
        f"note: capture stopped for {', '.join(stopped)}: an update sets capture anew; "
        "pass --capture (and --capture-redact) again to keep it"
    )


def endpoint_unchanged(endpoint: Endpoint) -> str:
    """The line an update to the config an endpoint serves prints: nothing was written."""
    config = endpoint.config
    return (
        f"endpoint {endpoint.name} already serves this config (config {config.number}: "
        f"{variants_summary(config)}); nothing changed"
    )


#: Marks an endpoint in ``endpoints list`` that a live server failed to load.
FAILING_MARK = "!"


def endpoints_table(
    endpoints: Iterable[Endpoint], failing: Mapping[str, Any] | None = None
) -> Table:
    """The ``endpoints list`` table: name, current config, its variants, last change; the names
    in ``failing`` (endpoints some live server could not load) carry :data:`FAILING_MARK`."""
    failing = failing or {}
    table = Table(title="Endpoints")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("config", no_wrap=True)
    table.add_column("variants", no_wrap=True)
    table.add_column("updated (UTC)", no_wrap=True)
    for endpoint in endpoints:
        table.add_row(
            f"{endpoint.name} {FAILING_MARK}" if endpoint.name in failing else endpoint.name,
            f"{endpoint.config.number} ({endpoint.config.change.value})",
            variants_summary(endpoint.config, sep="\n"),
            _short_when(endpoint.updated_at),
        )
    return table


def failing_footnote(failing: Mapping[str, Iterable[EndpointServer]]) -> str:
    """The lines under ``endpoints list`` that explain :data:`FAILING_MARK`: per endpoint and
    reason, the live servers that could not load its current config and what they do instead.
    """
    lines = []
    for name, servers in failing.items():
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in servers:
            grouped.setdefault((s.failure or "", _fallback(s)), []).append(s.server.status.name)
        for (reason, fallback), names in grouped.items():
            lines.append(
                f"{FAILING_MARK} {name}: not loaded by {', '.join(names)} ({fallback}): {reason}"
            )
    if lines:
        lines.append("  (details: modelyard endpoints show NAME)")
    return "\n".join(lines)


def _fallback(server: EndpointServer) -> str:
    if server.config is None:
        return "answering ModelNotReadyException"
    return f"still serving config {server.config}"


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def servers_lines(servers: Iterable[EndpointServer]) -> list[str]:
    """The ``servers`` block of ``endpoints show``: per server process, whether it is live,
    whether its plan is current, the config it serves and any failure to load."""
    servers = list(servers)
    if not servers:
        return ["  servers  none running (start one with 'modelyard serve')"]
    live = sum(s.server.live for s in servers)
    current = sum(s.serves_current for s in servers)
    lines = [f"  servers  {live} live, {current} serving the current config"]
    for s in servers:
        status = s.server.status
        state = "live" if s.server.live else f"stale (silent {_ago(s.server.record.silent_s)})"
        plan = "current" if s.server.current else "behind"
        serves = f"config {s.config}" if s.config is not None else "not this endpoint"
        lines.append(
            f"    {status.name}  {state}, revision {status.revision} ({plan}), serves {serves}"
            + (f", {status.url}" if status.url else "")
        )
        if s.failure is not None:
            lines.append(f"      failed: {s.failure}")
    return lines


def endpoint_detail(endpoint: Endpoint, servers: Iterable[EndpointServer] | None = None) -> str:
    """The ``endpoints show`` view: the current config, a block of ``field  value`` lines per
    variant (plain lines, like ``models show``: whole on one line whatever the width; with the
    predictor the live servers serve it with, when ``servers`` is given), then the server
    processes (when ``servers`` is given)."""
    config = endpoint.config
    servers = None if servers is None else list(servers)
    share = shares(config)
    lines = [
        f"Endpoint {endpoint.name}",
        f"  config   {config.number} ({config.change.value}, {_when(config.created_at)})",
        f"  created  {_when(endpoint.created_at)}",
    ]
    for v in config.variants:
        lines += [
            f"  variant {v.name}",
            f"    model      {v.model_ref} (requested {v.requested or v.model_ref})",
            f"    share      {_share_line(v, share[v.name])}",
            f"    batching   {batching_text(v.batching)}",
        ]
        lines += predictor_lines(v, config.number, servers)
        lines.append(f"    capture    {v.capture.describe()}")
    if servers is not None:
        lines += servers_lines(servers)
    return "\n".join(lines)


def _share_line(variant: Variant, share: float) -> str:
    if variant.shadow is None:
        return f"{_percent(share)} (weight {variant.weight:g})"
    return (
        f"{share_text(variant, share)} (answers no request; gets a copy of "
        f"{_percent(variant.shadow)} of the requests the production variants answer)"
    )


def history_table(name: str, configs: Iterable[EndpointConfig]) -> Table:
    """The ``endpoints history`` table: every config, oldest first; the last one is current."""
    table = Table(title=f"History of endpoint {name}")
    table.add_column("config", justify="right", style="bold")
    table.add_column("change")
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("variants", no_wrap=True)
    for config in configs:
        table.add_row(
            str(config.number),
            config.change.value,
            _short_when(config.created_at),
            variants_summary(config, sep="\n"),
        )
    return table
