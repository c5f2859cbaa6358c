"""What a command imports: ``import modelyard`` and the CLI's read commands load only what they
need, so they start fast (``benchmarks/cli_speed.py`` measures the time; this guards the cause
without timing anything).

Each check runs in a fresh interpreter and lists which of the heavy libraries ended up in
``sys.modules``: a module-level import of one of them anywhere on the path shows up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Model, data, tuning, serving and migration libraries: never needed to read metadata.
HEAVY = [
    "alembic",
    "fsspec",
    "httpx",
    "lightgbm",
    "mako",
    "numpy",
    "onnxruntime",
    "optuna",
    "pandas",
    "pyarrow",
    "scipy",
    "skops",
    "sklearn",
    "starlette",
    "uvicorn",
    "xgboost",
]
#: ``import modelyard`` loads none of these either: not even the database or CLI libraries.
HEAVY_FOR_IMPORT = [*HEAVY, "pydantic", "pydantic_settings", "rich", "sqlalchemy", "typer"]

_RUN = """
import json, sys
from modelyard.cli.main import run
code = run(json.loads(sys.argv[1]))
heavy = json.loads(sys.argv[2])
print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
sys.exit(code)
"""


def _env(home: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(MODELYARD_HOME=str(home), MODELYARD_DB_URL=db_url)
    return env


def _imported(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run ``modelyard ARGS`` in a fresh interpreter: its exit code, the heavy libraries it
    imported, and its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(args), json.dumps(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    *_, last = proc.stderr.strip().splitlines() or [""]
    try:
        found = json.loads(last)
    except json.JSONDecodeError:
        raise AssertionError(f"modelyard {args} failed: {proc.stderr}") from None
    return proc.returncode, found, proc.stdout


def test_import_modelyard_loads_no_heavy_library() -> None:
    code = (
        "import sys, modelyard, modelyard.errors, modelyard.domain;"
        f"print([m for m in {HEAVY_FOR_IMPORT!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> dict[str, str]:
    """A store (on each backend) holding one model version served by one endpoint."""
    import numpy as np
    import xgboost as xgb

    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 3))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgb.DMatrix(rows, label=(rows[:, 0] > 0).astype(int)),
        num_boost_round=2,
    )
    home = tmp_path / "home"
    platform = build(load_settings(environ={}, home=home, db_url=db_url))
    try:
        platform.registry.register("churn", booster, flavor="xgboost", input_example=rows[:3])
        platform.endpoints.create("churn-api", {"main": "churn:1"})
    finally:
        platform.close()
    return _env(home, db_url)


@pytest.mark.parametrize(
    ("command", "shows"),
    [
        ("models list", "churn"),
        ("models list --json", '"latest_version": 1'),
        ("endpoints list", "churn-api"),
        ("models show churn", "churn:1"),
        ("store info", "schema revision"),
        ("db upgrade", "already current"),
    ],
)
def test_read_commands_load_no_heavy_library(
    store: dict[str, str], command: str, shows: str
) -> None:
    code, found, out = _imported(command.split(), store)
    assert code == 0, out
    assert shows in out, out  # it did read the store
    assert found == [], f"modelyard {command} imported {found}"


def test_help_loads_no_database_library(tmp_path: Path) -> None:
    env = _env(tmp_path / "home", f"sqlite:///{tmp_path / 'never.db'}")
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(["--help"]), json.dumps(["sqlalchemy", *HEAVY])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
    assert not (tmp_path / "never.db").exists()
