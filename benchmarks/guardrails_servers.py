"""The servers of ``guardrails_cost.py``: ``plain`` (one variant) and ``guarded`` (the same
endpoint mid-canary with a shadow at 100 %), with ``--split`` also ``canary-only`` (mid-canary,
no shadow), and the checks that they serve what they should.

Both are ``serving.py``'s modelyard (same model, registration, endpoint and batching), each on
its own home, with capture off and ``MODELYARD_METRICS=false`` (what issue 12 adds is all they
differ by) and ``thread_names/`` on ``PYTHONPATH`` (so their threads' CPU can be read by name).
``guarded``'s home holds the model three times (``bench:1`` to ``bench:3``, the same
artifact); once its server is up, a real guarded deployment starts with the CLI::

    modelyard endpoints update bench --variant main=bench:2 --variant shadow=bench:3 \\
        --shadow shadow=100 --strategy canary --canary-size 10% --wait <long> ...

and the controller in that server (``modelyard serve`` runs it in its scheduler process) moves
it from ``prepare`` to its 10 % step: ``main`` (bench:1) 90 %, ``main.next`` (bench:2) 10 %,
``shadow`` (bench:3) a copy of every request. The step's wait outlasts the benchmark, so the
controller keeps evaluating it (a lease and a read of the deployment, the endpoint and the
metric rows per pass) while the servers are measured. ``canary-only`` is deployed the same
way without the ``shadow`` variant.
"""

from __future__ import annotations

import http.client
import time
from collections import Counter
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
import serving as bench
from serverproc import ServerFailed, http_request
from threadcpu import THREAD_NAMES_SITE

ENDPOINT = bench.MODELYARD_ENDPOINT
#: The variants that may answer each server's requests (``x-modelyard-variant``).
ALLOWED = {
    "plain": {"main"},
    "guarded": {"main", "main.next"},
    "canary-only": {"main", "main.next"},
}
DEPLOYED = ("guarded", "canary-only")  # the servers whose endpoint is mid-canary
CANARY_WEIGHTS = {"main": 0.9, "main.next": 0.1}
SHADOW_VARIANT = "shadow"
SHADOW_PERCENT = 100
CANARY_TIMEOUT_S = 120.0  # for the controller to reach the canary step on every worker
PROBE_TIMEOUT_S = 5.0


def cli_env(launcher: bench.Launcher) -> dict[str, str]:
    """The environment the launcher's commands run in (its home)."""
    return launcher.make(0, 1).env


def prepare(name: str, assets: bench.Assets, metrics: bool = False) -> bench.Launcher:
    """One server's home (``assets.workdir/name``) and launcher; ``guarded`` (and
    ``canary-only``) also registers the two more versions its deployment serves. ``metrics``
    turns ``MODELYARD_METRICS`` on (only for the final check of the shadow's counts)."""
    workdir = assets.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    launcher = bench.prepare_modelyard(replace(assets, workdir=workdir))
    commands = list(launcher.details["commands"])
    if name in DEPLOYED:
        register = commands[0][1:]  # the same registration: bench:2, then bench:3
        for _ in range(2):
            bench._run_cli(register, cli_env(launcher))
            commands.append(["modelyard", *register])
    return with_env(replace(launcher, details={**launcher.details, "commands": commands}), metrics)


def with_env(launcher: bench.Launcher, metrics: bool) -> bench.Launcher:
    """The launcher with the benchmark's server environment: metrics on or off, threads named."""
    flag = "true" if metrics else "false"

    def make(port: int, workers: int) -> bench.Launch:
        launch = launcher.make(port, workers)
        path = [str(THREAD_NAMES_SITE), launch.env.get("PYTHONPATH", "")]
        env = {**launch.env, "MODELYARD_METRICS": flag, "PYTHONPATH": ":".join(filter(None, path))}
        return replace(launch, env=env)

    details = {**launcher.details, "MODELYARD_METRICS": flag, "capture": "off",
               "PYTHONPATH": "benchmarks/thread_names (+ the caller's)"}  # fmt: skip
    return replace(launcher, make=make, details=details)


def start_canary(launcher: bench.Launcher, wait: str, shadow: bool = True) -> dict[str, Any]:
    """Start the guarded deployment (the CLI command in the module docstring; without the
    shadow variant unless ``shadow``); the command and the deployment as the CLI printed it."""
    env = cli_env(launcher)
    update_help = bench._run_cli(["endpoints", "update", "--help"], env)
    for option in ("--shadow", "--strategy", "--canary-size", "--wait"):
        if option not in update_help:
            raise bench.SetupFailed(f"`modelyard endpoints update` has no {option} option")
    named = ("main", SHADOW_VARIANT) if shadow else ("main",)
    batching = [
        part
        for variant in named
        for flag, value in bench.MODELYARD_BATCHING.items()
        for part in (flag, f"{variant}={value.split('=', 1)[1]}")
    ]
    shadowed = [
        "--variant", f"{SHADOW_VARIANT}={ENDPOINT}:3",
        "--shadow", f"{SHADOW_VARIANT}={SHADOW_PERCENT}",
    ] if shadow else []  # fmt: skip
    command = [
        "endpoints", "update", ENDPOINT, "--variant", f"main={ENDPOINT}:2", *shadowed, *batching,
        "--strategy", "canary", "--canary-size", "10%", "--wait", wait, "--json",
    ]  # fmt: skip
    printed = orjson.loads(bench._run_cli(command, env))
    return {"command": ["modelyard", *command], "printed": printed}


def deployment_state(launcher: bench.Launcher) -> dict[str, Any]:
    """The endpoint's latest deployment: state, step, config and its last decision."""
    shown = orjson.loads(
        bench._run_cli(["deployments", "show", ENDPOINT, "--json"], cli_env(launcher))
    )
    decisions = shown.get("decisions") or [{}]
    return {
        "id": shown.get("id"),
        "state": shown.get("state"),
        "step": shown.get("step"),
        "current_step": shown.get("current_step"),
        "config": shown.get("config"),
        "served_names": shown.get("served_names"),
        "last_decision": {k: decisions[-1].get(k) for k in ("at", "action", "reason", "actor")},
    }


def _mid_canary(endpoint: dict[str, Any], config: int, shadow: bool) -> bool:
    """Whether one worker's view of the endpoint is config ``config`` at 90/10, plus the
    shadow at 100 % (``shadow``) or no shadow."""
    variants = {v["name"]: v for v in endpoint["variants"]}
    weights = {n: v.get("weight") for n, v in variants.items() if not v.get("shadow")}
    found = variants.get(SHADOW_VARIANT, {}).get("shadow")
    return (
        endpoint.get("config") == config
        and weights.keys() == CANARY_WEIGHTS.keys()
        and all(abs(weights[n] - w) < 1e-9 for n, w in CANARY_WEIGHTS.items())
        and found == (SHADOW_PERCENT if shadow else None)
    )


def wait_mid_canary(
    launcher: bench.Launcher,
    running: bench.Running,
    shadow: bool = True,
    timeout_s: float = CANARY_TIMEOUT_S,
) -> dict[str, Any]:
    """Wait until the deployment is at its 10 % step and every worker serves that step's config
    (``GET /endpoints`` on new connections reaches either worker). Raises ServerFailed."""
    deadline = time.monotonic() + timeout_s
    state = deployment_state(launcher)
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = deployment_state(launcher)
        if state["state"] == "RUNNING" and (state["current_step"] or {}).get("percent") == 10.0:
            for _ in range(4 * running.workers):
                payload = orjson.loads(_get(running.launch.describe_url or ""))
                found = [e for e in payload["endpoints"] if e["name"] == ENDPOINT]
                seen[str(payload["worker"])] = found[0] if found else None
            ready = [e for e in seen.values() if e and _mid_canary(e, state["config"], shadow)]
            if len(ready) >= running.workers:
                return {"deployment": state, "workers": seen}
        time.sleep(0.5)
    raise ServerFailed(
        f"the deployment did not reach its 10 % step on every worker in {timeout_s:.0f} s: "
        f"deployment {state}; workers {orjson.dumps(seen).decode()[:1500]}"
    )


def _get(url: str) -> bytes:
    status, body = http_request(url)
    if status != 200:
        raise ServerFailed(f"GET {url} answered {status}: {body[:300]!r}")
    return body


def sample_variants(
    running: bench.Running, body: bytes, expected: float, requests: int
) -> dict[str, Any]:
    """POST the benchmark body ``requests`` times, each on a new connection (so both workers
    answer some); count the answering variants and versions. Raises ServerFailed when any
    answer is not a 200 with the model's prediction from an allowed variant, or (a server
    mid-canary) when the canary's two variants did not both answer."""
    url = urlsplit(running.launch.invoke_url)
    variants: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    workers: Counter[str] = Counter()
    for _ in range(requests):
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("POST", url.path, body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            payload = answer.read()
        finally:
            conn.close()
        prediction = (
            bench._first_prediction(orjson.loads(payload)) if answer.status == 200 else None
        )
        if prediction is None or abs(prediction - expected) > bench.PREDICTION_TOLERANCE:
            raise ServerFailed(f"{running.name}: answered {answer.status}: {payload[:300]!r}")
        variants[answer.getheader("x-modelyard-variant", "?")] += 1
        versions[answer.getheader("x-modelyard-model-version", "?")] += 1
        workers[answer.getheader("x-modelyard-worker", "?")] += 1
    allowed = ALLOWED[running.name]
    found = {
        "requests": requests,
        "variants": dict(variants),
        "model_versions": dict(versions),
        "workers": dict(workers),
        "allowed_variants": sorted(allowed),
    }
    if not set(variants) <= allowed or (running.name in DEPLOYED and set(variants) != allowed):
        raise ServerFailed(f"{running.name}: unexpected variants answered: {found}")
    return found
