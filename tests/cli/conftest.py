"""Fixtures for the CLI tests: the installed ``modelyard`` console script run as a subprocess
against a throw-away MODELYARD_HOME, real model files, and a store snapshot to prove that a
failed command changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The real entry point users run, installed next to this interpreter; `python -m` would skip
# the console-script wrapper and its exit-status handling.
SCRIPT = Path(sys.executable).parent / "modelyard"
FEATURES = ["age", "tenure", "spend", "visits"]
IN_CI = os.environ.get("CI") == "true"


@dataclass(frozen=True)
class CliResult:
    """How one ``modelyard`` run ended."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON (fails the test if it is anything else)."""
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout of {self.args} is not JSON: {self.out!r}") from exc

    def ok(self) -> CliResult:
        """Assert a clean success: exit 0 and nothing on stderr."""
        assert self.code == 0, f"{self.args} exited {self.code}: {self.err}"
        assert self.err == "", f"{self.args} wrote to stderr: {self.err}"
        return self

    def error_line(self, exit_code: int) -> str:
        """Assert a translated failure; return its single ``error:`` line."""
        assert self.code == exit_code, (
            f"{self.args} exited {self.code}, expected {exit_code}; stderr: {self.err}"
        )
        assert "Traceback" not in self.err, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one error line, got: {self.err!r}"
        assert lines[0].startswith("error: "), lines[0]
        # A value the user sent is quoted, but cut when long (issue 14): never 10,000 characters.
        assert len(lines[0]) < 1000, f"error line of {len(lines[0])} characters: {lines[0]!r}"
        assert self.out == "", f"a failed {self.args} printed on stdout: {self.out!r}"
        return lines[0]


class Cli:
    """Runs the console script with MODELYARD_HOME set to ``home``."""

    script = SCRIPT

    def __init__(self, home: Path, base_env: dict[str, str]) -> None:
        self.home = home
        self.base_env = base_env

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(self.base_env, MODELYARD_HOME=str(self.home))
        env.update(overrides)
        return env

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None) -> CliResult:
        argv = tuple(str(a) for a in args)
        proc = subprocess.run(
            [str(SCRIPT), *argv],
            env=env or self.env(),
            stdin=subprocess.DEVNULL,  # never a tty: commands must not wait for an answer
            capture_output=True,
            text=True,
            timeout=180,
        )
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    def many(self, *calls: Sequence[str | Path]) -> list[CliResult]:
        """Run independent commands concurrently (each costs a second of imports)."""
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return list(pool.map(lambda call: self(*call), calls))

    def platform(self) -> Any:
        """The same store, opened in-process (for setup and for checking state quickly)."""
        from modelyard.bootstrap import build
        from modelyard.config import load_settings

        return build(load_settings(environ={}, home=self.home))

    def snapshot(self) -> dict[str, Any]:
        """Every model, version, alias and tag, plus every file under the home but the db."""
        from modelyard.cli.render import to_jsonable

        platform = self.platform()
        try:
            reg = platform.registry
            models = reg.list_models()
            state: dict[str, Any] = {
                "models": to_jsonable(models),
                "versions": {m.name: to_jsonable(reg.list_versions(m.name)) for m in models},
            }
        finally:
            platform.close()
        state["files"] = {
            str(p.relative_to(self.home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.home.rglob("*"))
            if p.is_file() and not p.name.startswith("modelyard.db")
        }
        return state


@pytest.fixture(scope="session")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The test process's environment without any MODELYARD_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # Without bytecode caches every run recompiles xgboost, scikit-learn and SciPy (seconds
        # each); keep the caches outside the source tree instead of not at all.
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp().parent / "pycache")
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="session")
def make_cli(base_env: dict[str, str]) -> Callable[[Path], Cli]:
    """A factory: ``make_cli(home)``."""
    return lambda home: Cli(home, base_env)


@pytest.fixture
def cli(tmp_path: Path, base_env: dict[str, str]) -> Cli:
    """The CLI on a fresh, empty home."""
    return Cli(tmp_path / "home", base_env)


@dataclass(frozen=True)
class ModelFiles:
    """Real model files and inputs, written once per session."""

    folder: Path
    xgb_json: Path
    xgb_ubj: Path
    skops: Path
    pickle: Path
    example: Path
    narrow: Path
    text: Path
    bad_signature: Path
    frame: Any  # the DataFrame the models were trained on
    booster: Any


def serve_churn(cli: Cli, model_files: ModelFiles, *endpoints: str) -> Cli:
    """Register ``churn:1`` (XGBoost on age, tenure, spend and visits) in ``cli``'s home and
    create each of ``endpoints`` serving it as variant ``blue``; returns ``cli``."""
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
        for endpoint in endpoints:
            platform.endpoints.create(endpoint, {"blue": "churn:1"})
    finally:
        platform.close()
    return cli


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    import numpy as np
    import pandas as pd
    import skops.io
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    target = (frame["age"] + frame["spend"] > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0},
        xgb.DMatrix(frame, label=target),
        num_boost_round=10,
    )
    files = ModelFiles(
        folder=folder,
        xgb_json=folder / "churn.json",
        xgb_ubj=folder / "churn.ubj",
        skops=folder / "clf.skops",
        pickle=folder / "clf.pkl",
        example=folder / "example.csv",
        narrow=folder / "narrow.csv",
        text=folder / "notes.txt",
        bad_signature=folder / "signature.json",
        frame=frame,
        booster=booster,
    )
    booster.save_model(str(files.xgb_json))
    booster.save_model(str(files.xgb_ubj))
    classifier = LogisticRegression().fit(frame, target)
    skops.io.dump(classifier, files.skops)
    with files.pickle.open("wb") as fh:
        pickle.dump(classifier, fh)
    frame.head(5).to_csv(files.example, index=False)
    frame.iloc[:5, :3].to_csv(files.narrow, index=False)
    files.text.write_text("these are my notes, not a model\n")
    files.bad_signature.write_text(json.dumps({"inputs": [{"name": "age"}]}))  # no dtype
    return files


@contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs at ``path`` (needs root or CAP_SYS_ADMIN); always unmounted afterwards.

    Skips the test where mounting is not permitted, except under CI=true, where it fails: the
    storage-failure paths must be exercised somewhere.
    """
    path.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        problem = proc.stderr.strip() if proc.returncode else ""
    except FileNotFoundError as exc:
        problem = str(exc)
    if problem:
        message = f"cannot mount a tmpfs at {path}: {problem}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def tmpfs() -> Callable[[Path, str], Any]:
    """``with tmpfs(path, "ro,size=1m") as mounted:`` (see :func:`_tmpfs`)."""
    return _tmpfs


def interrupt_while_waiting(cli: Cli, args: Sequence[str | Path], started: str) -> tuple[str, str]:
    """Run ``modelyard ARGS`` (a command that submits a job and waits for it), press Ctrl-C
    (SIGINT to the command alone, as a terminal sends it) once its job runs; the job's name
    (from the command's first stderr line, matched by the regex ``started``) and what the
    command wrote on stderr after. Asserts it exited 130."""
    import re
    import signal

    from modelyard.domain import JobStatus
    from tests.interrupts import interruptible
    from tests.waiting import wait_for

    command = interruptible(
        [str(SCRIPT), *(str(a) for a in args)],
        env=cli.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert command.stderr is not None
        first = command.stderr.readline()
        found = re.search(started, first)
        assert found, f"no job named in {first!r}"
        name = found.group(1)
        platform = cli.platform()
        try:
            wait_for(
                f"job {name} to run",
                lambda: platform.jobs.get(name).status,
                lambda status: status is JobStatus.IN_PROGRESS,
                timeout=180,
            )
        finally:
            platform.close()
        command.send_signal(signal.SIGINT)
        _, err = command.communicate(timeout=120)
        assert command.returncode == 130, (command.returncode, err)
        return name, err
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
