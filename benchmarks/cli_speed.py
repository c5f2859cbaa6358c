"""CLI speed benchmark: how long a read command and ``import modelyard`` take, against targets,
and against a reference checkout (e.g. the previous commit) measured in the same run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

What it does, in a temporary folder:

1. Builds a fresh modelyard home on SQLite with ``--models`` models (default 50): small
   scikit-learn logistic regressions and XGBoost boosters (alternating), trained on generated
   data and registered through the Python API, each with an input example (so every version
   has a signature); ``--endpoints`` endpoints (default 10) serve some of them. With
   ``--reference SRC`` (another checkout's ``src`` folder), a second home is built the same way
   by that code, so each side reads a store at its own schema revision.
2. Runs every command once to warm the page cache and write bytecode caches (an installed
   package ships compiled bytecode; ``PYTHONDONTWRITEBYTECODE`` is dropped from the children's
   environment so the first run writes them), then ``--runs`` rounds (default 10). A round runs
   each command once for this checkout and once for the reference, so a noisy moment on a
   shared machine hits both sides alike:

   - ``modelyard models list`` (target: median ≤ 400 ms wall)
   - ``modelyard endpoints list`` (target: median ≤ 400 ms wall)
   - ``python -c "import modelyard"`` (target: median ≤ 150 ms wall)
   - ``python -c pass``: the interpreter's own start-up, for scale (no target)
   - ``python -c "import …"`` of the libraries a read command cannot do without (Typer with
     its pydantic coercion, Rich, SQLAlchemy and its SQLite dialect, pydantic-settings): the
     floor under the two CLI commands on this machine (no target)

   Each is a subprocess, timed from spawn to exit (wall clock), with its CPU time (user +
   system). The console script is the ``modelyard`` next to this interpreter; the reference
   runs it with ``PYTHONPATH=SRC``.
3. Records which heavy libraries each command imported (run once more by a child interpreter
   that lists ``sys.modules`` afterwards), and how busy the machine was: before measuring it
   waits up to ``--settle`` seconds for a quiet machine, and ``other_cpu_fraction`` is the share
   of the machine's CPU that other processes used while it measured. On a machine that stays
   busy, ``--nice -10`` (as root) runs the commands ahead of the other work.

Writes JSON (``--out``, default ``benchmarks/results/cli_speed.json``) with the machine,
parameters, every run, medians and p90s, and whether each target was met; prints a table.

Run (from the repository root)::

    git worktree add /tmp/modelyard-ref HEAD
    .venv/bin/python benchmarks/cli_speed.py --reference /tmp/modelyard-ref/src
    .venv/bin/python benchmarks/cli_speed.py            # this checkout alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from serverproc import machine_cpu_seconds
from tuning_machine import machine_info, settle

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "modelyard"
FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]
#: Libraries a read command should not need; the JSON says which ones each command imported.
HEAVY = [
    "alembic",
    "fsspec",
    "lightgbm",
    "numpy",
    "onnxruntime",
    "optuna",
    "pandas",
    "pyarrow",
    "scipy",
    "skops",
    "sklearn",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "xgboost",
]
TARGETS_MS = {
    "modelyard models list": 400.0,
    "modelyard endpoints list": 400.0,
    'python -c "import modelyard"': 150.0,
}
#: What ``modelyard models list`` imports that is not modelyard's (see ``commands``).
FLOOR_MODULES = [
    "typer.main",
    "typer._adapters",
    "rich.console",
    "rich.table",
    "sqlalchemy.dialects.sqlite",
    "pydantic_settings",
]
FLOOR = 'python -c "import <the libraries of a read command>"'
_LIST_IMPORTS = (
    "import json, sys\n"
    "code = 0\n"
    "if sys.argv[2:]:\n"
    "    from modelyard.cli.main import run\n"
    "    code = run(sys.argv[2:])\n"
    "else:\n"
    "    import modelyard\n"
    "heavy = json.loads(sys.argv[1])\n"
    "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def build_store(home: Path, models: int, endpoints: int) -> None:
    """Register ``models`` small models (and ``endpoints`` endpoints) in a fresh home, with the
    modelyard this interpreter imports."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    from modelyard import open_platform

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, len(FEATURES))), columns=FEATURES)
    target = (frame["f0"] + frame["f2"] > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0},
        xgb.DMatrix(frame, label=target),
        num_boost_round=5,
    )
    classifier = LogisticRegression().fit(frame, target)
    platform = open_platform(home=home, db_url=f"sqlite:///{home / 'modelyard.db'}")
    try:
        for i in range(models):
            xgboost_model = i % 2 == 0
            platform.registry.register(
                f"model-{i:03d}",
                booster if xgboost_model else classifier,
                flavor="xgboost" if xgboost_model else "sklearn",
                input_example=frame.head(5),
                params={"index": i},
                metrics={"auc": 0.5 + i / 200},
                aliases=["production"] if i % 5 == 0 else (),
                tags={"team": "bench"},
            )
        for i in range(endpoints):
            platform.endpoints.create(
                f"endpoint-{i:02d}",
                {"blue": f"model-{2 * i:03d}", "green": f"model-{2 * i + 1:03d}"},
                weights={"blue": 0.9, "green": 0.1},
            )
    finally:
        platform.close()


def child_env(home: Path, src: str | None) -> dict[str, str]:
    """The environment of every measured command: this one, without MODELYARD_* settings,
    with ``src`` first on the import path when measuring another checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPATH", None)
    if src:
        env["PYTHONPATH"] = src
    env["MODELYARD_HOME"] = str(home)
    env["COLUMNS"] = "120"
    return env


def commands() -> dict[str, list[str]]:
    """Name → argv."""
    script = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "modelyard.cli.main"]
    return {
        "modelyard models list": [*script, "models", "list"],
        "modelyard endpoints list": [*script, "endpoints", "list"],
        'python -c "import modelyard"': [sys.executable, "-c", "import modelyard"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
        FLOOR: [sys.executable, "-c", f"import {', '.join(FLOOR_MODULES)}"],
    }


def run_once(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU milliseconds of one run (it must succeed), and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall_ms = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return wall_ms, cpu_ms, proc.stdout


def imported_heavy(args: Sequence[str], env: dict[str, str], cwd: Path) -> list[str]:
    """The heavy libraries ``modelyard ARGS`` (no ARGS: ``import modelyard``) imports, run in
    a child interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_IMPORTS, json.dumps(HEAVY), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"modelyard {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    found: list[str] = json.loads(proc.stderr.strip().splitlines()[-1])
    return found


def summarise(walls: list[float], cpus: list[float], target_ms: float | None) -> dict[str, Any]:
    """Median, p90 (inclusive interpolation), min and max wall time, median CPU, the target."""
    median = statistics.median(walls)
    return {
        "runs_ms": [round(w, 1) for w in walls],
        "cpu_ms": [round(c, 1) for c in cpus],
        "median_ms": round(median, 1),
        "p90_ms": round(statistics.quantiles(walls, n=10, method="inclusive")[-1], 1),
        "min_ms": round(min(walls), 1),
        "max_ms": round(max(walls), 1),
        "median_cpu_ms": round(statistics.median(cpus), 1),
        "target_median_ms": target_ms,
        "met": None if target_ms is None else median <= target_ms,
    }


def measure(sides: dict[str, dict[str, str]], runs: int) -> tuple[dict[str, Any], float]:
    """Time every command on every side ``runs`` times (after one warm-up each), rounds
    interleaved; the results per side, and the share of the machine others used meanwhile."""
    cases = commands()
    walls = {side: {name: [] for name in cases} for side in sides}
    cpus = {side: {name: [] for name in cases} for side in sides}
    outputs: dict[str, dict[str, str]] = {side: {} for side in sides}
    for side, env in sides.items():
        for name, argv in cases.items():
            outputs[side][name] = run_once(argv, env, Path(env["MODELYARD_HOME"]))[2]
    busy0, total0 = machine_cpu_seconds()
    ours = 0.0
    for _ in range(runs):
        for side, env in sides.items():
            for name, argv in cases.items():
                wall, cpu, _ = run_once(argv, env, Path(env["MODELYARD_HOME"]))
                walls[side][name].append(wall)
                cpus[side][name].append(cpu)
                ours += cpu / 1000
    busy1, total1 = machine_cpu_seconds()
    other = max(0.0, (busy1 - busy0) - ours) / max(total1 - total0, 1e-9)
    results: dict[str, Any] = {}
    for side, env in sides.items():
        home = Path(env["MODELYARD_HOME"])
        per = {
            name: summarise(walls[side][name], cpus[side][name], TARGETS_MS.get(name))
            for name in cases
        }
        for name in ("modelyard models list", "modelyard endpoints list"):
            per[name]["output_lines"] = len(outputs[side][name].splitlines())
            per[name]["imported"] = imported_heavy(name.split()[1:], env, home)
        per['python -c "import modelyard"']["imported"] = imported_heavy([], env, home)
        results[side] = per
    return results, other


def print_report(console: Console, results: dict[str, Any], other: float) -> None:
    table = Table(title="CLI speed: subprocess wall time, ms (median of the runs)")
    table.add_column("command")
    reference = results.get("reference")
    if reference:
        table.add_column("reference median", justify="right")
        table.add_column("reference p90", justify="right")
    for column in ("median", "p90", "min", "median CPU", "target", "met"):
        table.add_column(column, justify="right")
    for name, row in results["current"].items():
        cells = [name]
        if reference:
            cells += [f"{reference[name]['median_ms']:.0f}", f"{reference[name]['p90_ms']:.0f}"]
        target = row["target_median_ms"]
        cells += [
            f"{row['median_ms']:.0f}",
            f"{row['p90_ms']:.0f}",
            f"{row['min_ms']:.0f}",
            f"{row['median_cpu_ms']:.0f}",
            "-" if target is None else f"≤ {target:.0f}",
            "-" if row["met"] is None else ("yes" if row["met"] else "NO"),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print(f"other processes used {other:.0%} of the machine while measuring")
    for side, per in results.items():
        for name, row in per.items():
            if "imported" in row:
                heavy = ", ".join(row["imported"]) or "none"
                console.print(f"{side}: {name} imports {heavy} (of the heavy libraries)")


def _build_in(src: str | None, home: Path, models: int, endpoints: int) -> float:
    """Build a store with the code at ``src`` (None: this checkout), in a child interpreter."""
    env = child_env(home, src)
    start = time.perf_counter()
    argv = [sys.executable, __file__, "--build-only", str(home)]
    argv += [f"--models={models}", f"--endpoints={endpoints}"]
    subprocess.run(argv, env=env, check=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reference", help="another checkout's src folder, measured alongside")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for quiet")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling niceness of the measured commands (negative, as root: ahead of other "
        "work on a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cli_speed.json")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_only:
        build_store(args.build_only, args.models, args.endpoints)
        return 0
    console = Console(width=130)
    if args.nice:
        os.nice(args.nice)  # the commands inherit it
    reference = str(Path(args.reference).resolve()) if args.reference else None
    work = Path(tempfile.mkdtemp(prefix="modelyard-cli-speed-"))
    try:
        sides = {"current": child_env(work / "current", None)}
        if reference:
            sides["reference"] = child_env(work / "reference", reference)
        built = {}
        for side, env in sides.items():
            console.print(f"{side}: building a store with {args.models} models …")
            src = reference if side == "reference" else None
            home = Path(env["MODELYARD_HOME"])
            built[side] = round(_build_in(src, home, args.models, args.endpoints), 1)
        quiet = settle(args.settle)
        console.print(f"measuring {args.runs} rounds (machine quiet: {quiet['quiet']}) …")
        results, other = measure(sides, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "benchmark": "cli_speed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(ROOT),
        "reference": {
            "src": reference,
            "git": subprocess.run(
                ["git", "-C", reference, "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or None,
        }
        if reference
        else None,
        "parameters": {
            "runs": args.runs,
            "models": args.models,
            "endpoints": args.endpoints,
            "backend": "sqlite",
            "build_s": built,
        },
        "settle": quiet,
        "nice": args.nice,
        "other_cpu_fraction": round(other, 3),
        "targets_ms": TARGETS_MS,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print_report(console, results, other)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
