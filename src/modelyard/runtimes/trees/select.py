"""Which predictor serves a model: the compiled tree ensemble, or the native library.

``choose`` is called wherever a model version is loaded to serve (the serving loader) and where
an endpoint asks for ``compiled`` (the endpoints service refuses a model that cannot be), so both
decide by the same rule. Conversions are cached in the artifact store beside the model's
package (``ArtifactStore.put_derived``), keyed by the package digest and the converter
versions: a second server, or a restart, loads the graph instead of converting again. A model
the converter refused is cached as that refusal, and a verification as its verdict: the rows it
checks come from the package (its example and baseline) and a seed taken from its digest, so
the same package and software give the same verdict, and it is paid once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modelyard.errors import ArtifactCorrupted, ModelyardError
from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.trees.compiled import ENGINE, CompiledTrees
from modelyard.runtimes.trees.converters import CONVERTERS, NotCompilable, versions
from modelyard.runtimes.trees.verify import Verdict, compare, verification_rows
from modelyard.storage.base import ArtifactStore

log = logging.getLogger("modelyard.runtimes")

_TIMING_CALLS = 25


@dataclass(frozen=True, slots=True)
class Choice:
    """The predictor that serves a model, and why.

    Attributes:
        model: The predictor to serve with (the native model, or ``CompiledTrees`` over it).
        kind: ``compiled`` or ``native``.
        reason: One line for ``endpoints show``: ``compiled (onnxruntime tree ensemble): …``
            or ``native: 3 of 2,048 predictions differ by up to 2e-04``.
        row_s: What one single-row predict costs with ``model`` (median of a few calls), for
            the micro-batcher's inline rule; None when it was not measured.
        native_row_s: The same for the native model, when measured.
        prepare_s: Seconds spent converting (or reading the cache) and verifying.
        cached: The conversion came from the artifact store's cache.
    """

    model: LoadedModel
    kind: str
    reason: str
    row_s: float | None = None
    native_row_s: float | None = None
    prepare_s: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a server reports (without the model)."""
        return {
            "kind": self.kind,
            "reason": self.reason,
            "row_us": None if self.row_s is None else round(self.row_s * 1e6, 1),
            "native_row_us": None
            if self.native_row_s is None
            else round(self.native_row_s * 1e6, 1),
            "prepare_s": round(self.prepare_s, 3),
            "cached": self.cached,
        }


def choose(
    native: LoadedModel,
    flavor: str,
    mode: str = "auto",
    *,
    artifacts: ArtifactStore | None = None,
    digest: str | None = None,
    example: np.ndarray | None = None,
    baseline: dict[str, Any] | None = None,
    names: Sequence[str | None] | None = None,
) -> Choice:
    """Decide which predictor serves ``native`` (a model of ``flavor``).

    ``mode`` ``native`` keeps the native model; ``auto`` and ``compiled`` compile when the
    flavor has a converter, then serve the compiled predictor only if it agrees with the native
    one on every verification row. ``compiled`` is honoured the same way: what is not equal is
    never served; the caller that must refuse it (the endpoints service) looks at ``kind``.

    Never raises for a model that cannot be compiled: that is a native choice with its reason.
    """
    if mode == "native":
        return Choice(native, "native", "native (asked for)")
    converter = CONVERTERS.get(flavor)
    if converter is None:
        return Choice(native, "native", f"native: the {flavor} flavor has no compiled predictor")
    started = time.perf_counter()
    try:
        onnx_bytes, cached = _compiled_bytes(native, flavor, artifacts, digest)
        compiled = CompiledTrees(onnx_bytes, native)
        verdict = _cached_verdict(artifacts, digest) if cached else None
    except NotCompilable as exc:
        return Choice(native, "native", f"native: {exc}", prepare_s=time.perf_counter() - started)
    except ModelyardError as exc:  # onnxruntime refused the graph, a missing dependency
        return Choice(native, "native", f"native: {exc.message}")
    layout = compiled.layout
    row = np.zeros((1, layout.n_features)) if example is None else example[:1]
    if verdict is not None:
        return _served(compiled, native, verdict, row, time.perf_counter() - started, True)
    rows = verification_rows(
        onnx_bytes,
        layout.n_features,
        example,
        baseline,
        names,
        allow_missing=layout.allow_missing,
        seed=int(digest[:8], 16) if digest else 0,
    )
    try:
        verdict = compare(native.predict(rows), compiled.predict(rows), layout.classifier)
    except Exception as exc:  # either side raised on rows the other took
        reason = f"native: the compiled and native predictors disagree on what they accept ({exc})"
        return Choice(native, "native", reason, prepare_s=time.perf_counter() - started)
    if artifacts is not None and digest is not None:
        _store(artifacts, digest, f"{_kind()}.verdict", json.dumps(asdict(verdict)).encode())
    return _served(compiled, native, verdict, row, time.perf_counter() - started, cached)


def _served(
    compiled: CompiledTrees,
    native: LoadedModel,
    verdict: Verdict,
    row: np.ndarray,
    prepare_s: float,
    cached: bool,
) -> Choice:
    if not verdict.equal:
        reason = f"native: {verdict.describe()}"
        return Choice(native, "native", reason, prepare_s=prepare_s, cached=cached)
    return Choice(
        compiled,
        "compiled",
        f"compiled ({ENGINE}): {verdict.describe()}",
        row_s=_row_cost(compiled, row, _TIMING_CALLS),
        native_row_s=_row_cost(native, row, 5),  # a forest's row may take 10 ms natively
        prepare_s=prepare_s,
        cached=cached,
    )


def _kind() -> str:
    return f"onnx-trees-{versions()}"


def _cached_verdict(artifacts: ArtifactStore | None, digest: str | None) -> Verdict | None:
    if artifacts is None or digest is None:
        return None
    found = _read(artifacts, digest, f"{_kind()}.verdict")
    return None if found is None else Verdict(**json.loads(found))


def _compiled_bytes(
    native: LoadedModel, flavor: str, artifacts: ArtifactStore | None, digest: str | None
) -> tuple[bytes, bool]:
    kind = _kind()
    cache = artifacts is not None and digest is not None
    if cache:
        assert artifacts is not None and digest is not None
        found = _read(artifacts, digest, kind)
        if found is not None:
            return found, True
        refused = _read(artifacts, digest, f"{kind}.refused")
        if refused is not None:
            raise NotCompilable(refused.decode())
    try:
        try:
            onnx_bytes = CONVERTERS[flavor](native)
        except NotCompilable:
            raise
        except Exception as exc:  # a converter's own bug must not fail the deployment
            raise NotCompilable(f"the converter failed: {type(exc).__name__}: {exc}") from exc
    except NotCompilable as exc:
        if cache:
            _store(artifacts, digest, f"{kind}.refused", str(exc).encode())
        raise
    if cache:
        _store(artifacts, digest, kind, onnx_bytes)
    return onnx_bytes, False


def _read(artifacts: ArtifactStore, digest: str, kind: str) -> bytes | None:
    try:
        return artifacts.get_derived(digest, kind)
    except ArtifactCorrupted as exc:  # a damaged cache entry is a miss: derive it again
        log.warning("ignoring the cached %s of %s: %s", kind, digest, exc.message)
        return None


def _store(artifacts: Any, digest: Any, kind: str, data: bytes) -> None:
    try:
        artifacts.put_derived(digest, kind, data)
    except ModelyardError as exc:  # a read-only store still serves; the next load converts
        log.warning("could not cache the compiled trees of %s: %s", digest, exc.message)


def _row_cost(model: LoadedModel, row: np.ndarray, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
