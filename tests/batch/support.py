"""Batch transform test helpers: a real registry (SQLite, local artifact store) holding real fitted
models, and helpers that write input files and read outputs.

``model`` is an XGBoost booster over five named features (``f0``…``f4``), trained with missing
values; ``expected`` computes what the endpoint answers for given rows: the registry's loaded
model's predictions, written by the serving codec.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.batch import ModelSource
from modelyard.bootstrap import Platform
from modelyard.codecs import payloads
from modelyard.domain import ModelSpec
from modelyard.domain.batch import TransformRequest

NAMES = [f"f{i}" for i in range(5)]


@dataclass
class Model:
    """A registered model, what a batch job needs of it, and its in-process predictions."""

    platform: Platform
    ref: str
    source: ModelSource
    loaded: Any

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.loaded.predict(np.asarray(rows, dtype=np.float64)))

    def csv(self, rows: np.ndarray) -> bytes:
        """The endpoint's CSV answer for ``rows`` (one line a row)."""
        return payloads.encode(self.predict(rows), payloads.CSV)


def features(n: int, seed: int = 0) -> np.ndarray:
    """Rows with the values CSV makes tricky: integers, negatives, exponents, missing."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(scale=3.0, size=(n, len(NAMES)))
    rows[:, 1] = np.round(rows[:, 1] * 10)  # integers
    rows[::7, 2] *= 1e-7  # small: repr writes exponents
    rows[::11, 3] *= 1e12  # large
    rows[::5, 4] = np.nan  # missing
    return rows


def csv_text(rows: np.ndarray, *, header: list[str] | None = None, nan: str = "") -> bytes:
    """Rows as CSV, every float written so that it reads back exactly."""
    lines = [",".join(header)] if header else []
    for row in rows.tolist():
        lines.append(
            ",".join(
                nan if v != v else (str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v))
                for v in row
            )
        )
    return ("\n".join(lines) + "\n").encode()


def register(platform: Platform, name: str, booster: Any, scratch: Path, **kwargs: Any) -> Model:
    version = platform.registry.register(name, booster, flavor="xgboost", **kwargs)
    spec = ModelSpec.from_version(version)
    source = ModelSource(platform.registry.artifacts, spec, str(scratch))
    return Model(platform, spec.ref, source, platform.registry.load(spec.ref))


def request(
    model: Model, source: Path | str, output: Path | str, **kwargs: Any
) -> TransformRequest:
    """A request for ``model``; one worker (in this process) unless ``workers`` says more."""
    kwargs.setdefault("workers", 1)
    return TransformRequest(model=model.ref, input=str(source), output=str(output), **kwargs)


def run_child(script: str, args: Path, payload: Any) -> str:
    """Run ``script`` in a fresh interpreter with ``payload`` pickled to ``args`` (its
    ``sys.argv[1]``); its stdout. For engine code that must own its process (warm or lean
    workers)."""
    args.write_bytes(pickle.dumps(payload))
    child = subprocess.run(
        [sys.executable, "-c", script, str(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    return child.stdout.strip()
