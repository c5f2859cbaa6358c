"""Loading a model version for serving: fetch and verify its package, load it, warm it up,
and choose its predictor (the compiled tree ensemble when it verifies equal, see
``runtimes.trees``)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelyard.codecs.text_rows import table_from_json, text_features
from modelyard.domain import ModelSpec
from modelyard.errors import (
    InvalidInput,
    InvalidPayload,
    ModelFailed,
    ModelyardError,
    SignatureMismatch,
    UnsafeModelFormat,
)
from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.handler import HANDLER_DIR, InferenceHandler, load_handler
from modelyard.runtimes.packaged import load_package
from modelyard.runtimes.trees import Choice, choose
from modelyard.storage import packages
from modelyard.storage.base import ArtifactStore


@dataclass(eq=False)
class ServedModel:
    """A loaded, warmed model and the local copy of its package.

    ``inflight`` counts requests currently using it; the server unloads a retired model only
    once it drops to zero. ``model`` is the predictor that serves (``choice.model``).
    """

    spec: ModelSpec
    model: LoadedModel
    folder: Path
    choice: Choice
    handler: InferenceHandler | None = None
    inflight: int = 0
    load_s: float = 0.0  # fetch, load, warm and choose, in seconds (for the metrics)
    closed: bool = field(default=False)

    def close(self) -> None:
        """Unload the model and delete its local files (idempotent)."""
        if not self.closed:
            self.closed = True
            self.model.unload()
            if self.handler is not None:
                self.handler.unload()
            shutil.rmtree(self.folder, ignore_errors=True)


def load_served(artifacts: ArtifactStore, spec: ModelSpec, scratch: Path) -> ServedModel:
    """Fetch, verify, load and warm ``spec``, then choose its predictor (``spec.predictor``).

    Raises:
        ArtifactMissing, ArtifactCorrupted, UnsafeModelFormat, InvalidModelFile, or ModelFailed
        when the model cannot predict on its warm-up rows.
    """
    started = time.perf_counter()
    model, folder, _ = load_package(artifacts, spec, scratch)
    try:
        handler = load_handler(folder) if spec.trust.user_code else None
        if handler is None and (folder / HANDLER_DIR).exists():
            raise UnsafeModelFormat(f"{spec.ref} carries a handler but no user-code trust")
        warm_up(model, folder, spec)
        choice = _choose(artifacts, spec, model, folder)
        if choice.model is not model:
            warm_up(choice.model, folder, spec)
    except BaseException:
        model.unload()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ServedModel(
        spec=spec,
        model=choice.model,
        folder=folder,
        choice=choice,
        handler=handler,
        load_s=time.perf_counter() - started,
    )


def _choose(artifacts: ArtifactStore, spec: ModelSpec, model: LoadedModel, folder: Path) -> Choice:
    rows = warm_rows(folder, spec)
    baseline = _baseline_summary(folder)
    names = [c.name for c in spec.signature.inputs] if spec.signature is not None else None
    return choose(
        model,
        spec.flavor,
        spec.predictor,
        artifacts=artifacts,
        digest=spec.artifact_digest,
        example=rows if isinstance(rows, np.ndarray) else None,
        baseline=baseline,
        names=names,
    )


def _baseline_summary(folder: Path) -> dict[str, Any] | None:
    """The per-feature min and max of a package's baseline (verification samples rows within
    them): from its profile, or from the statistics older packages carry."""
    profile_file = folder / packages.BASELINE_PROFILE_FILE
    if profile_file.is_file():
        from modelyard.monitoring.profile import Profile

        try:
            return Profile.from_bytes(profile_file.read_bytes()).summary()
        except InvalidInput:  # a format this server is too old to read: sample without it
            return None
    old_file = folder / packages.BASELINE_FILE
    return orjson.loads(old_file.read_bytes()) if old_file.is_file() else None


def warm_rows(folder: Path, spec: ModelSpec) -> Any:
    """Rows to warm a model with: its stored input example, else one row of zeros; None (not
    warmed) for a model taking text with no example: no text is a value it surely takes (an
    encoder fitted on codes refuses any other, and zeros)."""
    example = folder / packages.EXAMPLE_FILE
    if example.is_file():
        data = orjson.loads(example.read_bytes())
        if spec.signature is not None and text_features(spec.signature) is not None:
            # As a request would reach it (numpy read codes such as "02139" as numbers), by
            # column name: the example's columns may be in another order than the signature's.
            columns = data["columns"]
            records = [dict(zip(columns, row, strict=True)) for row in data["data"]]
            try:
                return table_from_json(records, spec.signature)
            except (InvalidPayload, SignatureMismatch):
                pass  # values no request sends as text (lists, for an input_fn): as stored
        try:
            return np.asarray(data["data"], dtype=np.float64)
        except (TypeError, ValueError):
            import pandas as pd

            return pd.DataFrame(data["data"], columns=data["columns"])
    if spec.signature is not None and spec.signature.n_features:
        if text_features(spec.signature) is not None:
            return None
        return np.zeros((1, spec.signature.n_features))
    return None


def warm_up(model: LoadedModel, folder: Path, spec: ModelSpec) -> None:
    """Predict once so first requests do not pay for lazy initialisation.

    Raises:
        ModelFailed: when the model raises or returns the wrong number of rows.
    """
    rows = warm_rows(folder, spec)
    if rows is None:
        return
    try:
        out = np.asarray(model.predict(rows))
    except ModelyardError:
        raise
    except Exception as exc:
        raise ModelFailed(f"{spec.ref} failed its warm-up prediction: {exc}") from None
    if out.shape[:1] != (len(rows),):
        raise ModelFailed(
            f"{spec.ref} returned {out.shape[:1]} predictions for {len(rows)} warm-up rows"
        )
