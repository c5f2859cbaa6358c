"""modelyard for ``v2_serving.py``: the current code (all three routes) and an older commit.

The current code runs as two servers, each ``serving.py``'s modelyard (same model
registration, same endpoint with the same batching) on its own home: one with the flags the
older commit's server gets (no gRPC), one with ``--grpc-port`` when this code's ``serve`` has it.

The older server runs a past commit's code from a ``git worktree`` in a temporary folder,
with ``PYTHONPATH`` pointing at its ``src`` (ahead of the venv's editable install of the
current code), in the same venv, on its own home: the old code registers the model and
creates the endpoint itself, so no schema written by newer code is ever read by older code.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from serving import Assets, Launch, Launcher, prepare_modelyard

REPO_ROOT = Path(__file__).resolve().parent.parent
V2_SOURCES = {
    "rest": "src/modelyard/serving/v2/rest.py",
    "grpc": "src/modelyard/serving/v2/grpc*.py",
}
GIT_TIMEOUT_S = 120
#: On an older server's PYTHONPATH: its workers freeze their startup heap as the current code
#: does (see the folder's ``sitecustomize.py``), so that only the inference core differs.
GC_FREEZE_SITE = Path(__file__).resolve().parent / "v2_gc_freeze"
GC_FREEZE_MARKER = "v2-bench: gc.freeze after startup"  # what its sitecustomize.py prints


@contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block (``prepare_modelyard`` reads os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def v2_sources() -> dict[str, list[str]]:
    """Which V2 adapter files exist in the working tree (they were being written)."""
    return {kind: sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob(pattern))
            for kind, pattern in V2_SOURCES.items()}  # fmt: skip


def serve_has_option(launcher: Launcher, option: str) -> bool:
    """Whether ``modelyard serve --help`` (in the launcher's environment) lists ``option``."""
    launch = launcher.make(1, 1)
    run = subprocess.run(
        [launch.argv[0], "serve", "--help"],
        env=launch.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return option in run.stdout


def with_grpc(launch: Launch, grpc_port: int) -> Launch:
    """The same server, also answering V2 gRPC on ``grpc_port``."""
    return replace(launch, argv=[*launch.argv, "--grpc-port", str(grpc_port)])


def prepare_current(assets: Assets, label: str | None = None) -> Launcher:
    """The working tree's modelyard, prepared as ``serving.py`` prepares it; with ``label``,
    on its own home under the work folder (one per server, so servers share no store)."""
    if label is None:
        return prepare_modelyard(assets)
    workdir = assets.workdir / label
    workdir.mkdir(parents=True, exist_ok=True)
    return prepare_modelyard(replace(assets, workdir=workdir))


def prepare_at(assets: Assets, src: Path, label: str, *extra_path: Path) -> Launcher:
    """modelyard from another checkout's ``src``, on its own home under the work folder;
    ``extra_path`` folders follow ``src`` on ``PYTHONPATH`` (``GC_FREEZE_SITE``)."""
    workdir = assets.workdir / label
    workdir.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(str(p) for p in (src, *extra_path))
    with environ(PYTHONPATH=path):
        launcher = prepare_modelyard(replace(assets, workdir=workdir))
    return replace(launcher, details={**launcher.details, "PYTHONPATH": path})


def gc_frozen_workers(log_path: Path) -> int:
    """How many workers of a server started with ``GC_FREEZE_SITE`` froze their heap."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return text.count(GC_FREEZE_MARKER)


@contextmanager
def worktree(commit: str, parent: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``commit`` under ``parent``, removed on leaving."""
    path = parent / f"worktree-{commit}"
    git = ["git", "-C", str(REPO_ROOT)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", str(path), commit],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            [*git, "worktree", "remove", "--force", str(path)],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )


def code_identity(launcher: Launcher) -> dict[str, Any]:
    """Which ``modelyard`` package the launcher's environment imports, and from where."""
    launch = launcher.make(1, 1)
    python = Path(launch.argv[0]).with_name("python")
    run = subprocess.run(
        [str(python), "-c", "import modelyard, sys; sys.stdout.write(modelyard.__file__)"],
        env=launch.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return {"modelyard_imported_from": run.stdout.strip() or run.stderr.strip()[-300:]}


def error_shape(url: str) -> dict[str, Any]:
    """POST a row with the wrong number of features; what the error answer looks like.

    The inference-core refactor gave SageMaker-route errors an ``x-amzn-ErrorType`` header;
    its presence tells which code a server runs.
    """
    request = urllib.request.Request(
        url, data=b'{"instances": [[1.0, 2.0]]}', headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {"status": response.status, "x-amzn-ErrorType": None}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "x-amzn-ErrorType": exc.headers.get("x-amzn-ErrorType")}
