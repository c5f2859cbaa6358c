"""The model registry service: register, find, alias, tag, archive, delete and load versions.

The CLI, the Python API and (later) the REST API all call this class; none of them holds a
rule of its own.
"""

from __future__ import annotations

import json
import math
import operator
import shutil
import tempfile
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.codecs.tables import read_table, to_frame
from modelyard.domain import (
    Model,
    ModelRef,
    ModelSpec,
    ModelVersion,
    Signature,
    Source,
    StagedModel,
    Trust,
    VersionStatus,
    validate_aliases,
    validate_name,
)
from modelyard.domain.numbers import shown_value
from modelyard.domain.references import MAX_VERSION, validate_metric_name, validate_text
from modelyard.domain.registry import AliasMove
from modelyard.domain.signature import check_column_names
from modelyard.errors import (
    InvalidInput,
    InvalidModelFile,
    ModelFailed,
    ModelyardError,
    SignatureMismatch,
    StorageNotWritable,
    UnsafeModelFormat,
    VersionProtected,
)
from modelyard.monitoring.model_task import LABELS_PARAM, class_key
from modelyard.runtimes import get_runtime
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel
from modelyard.runtimes.handler import stage_handler
from modelyard.runtimes.packaged import load_package
from modelyard.runtimes.signatures import check_example, infer_signature
from modelyard.storage import packages
from modelyard.storage.base import ArtifactStore, MetadataStore, NewVersion

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.monitoring.profile import Profile

#: Says why a version may not be archived or deleted (e.g. "serves endpoint churn-api"), or None.
VersionGuard = Callable[[ModelVersion], str | None]

_EXAMPLE_ROWS = 20
_MIN_FREE_BYTES = 1 << 20


class PackagedModel(LoadedModel):
    """A loaded model together with the verified local copy of its package."""

    def __init__(self, version: ModelVersion, inner: LoadedModel, folder: Path) -> None:
        self.version = version
        self.folder = folder
        self._inner = inner
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)

    def predict(self, data: np.ndarray | pd.DataFrame) -> np.ndarray:
        return self._inner.predict(data)

    def signature_hint(self) -> Signature | None:
        return self.version.signature or self._inner.signature_hint()

    def stored_feature_name(self, name: str) -> str:
        return self._inner.stored_feature_name(name)

    def unload(self) -> None:
        self._inner.unload()
        self._cleanup()


class RegistryService:
    """Versioned model registry over a metadata store and an artifact store."""

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        scratch_dir: Path,
        guards: Sequence[VersionGuard] = (),
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self._scratch = scratch_dir
        self._guards = list(guards)

    def add_guard(self, guard: VersionGuard) -> None:
        """Register a rule that can veto archiving or deleting a version (e.g. in use)."""
        self._guards.append(guard)

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        try:
            self._scratch.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix="stage-", dir=self._scratch))
        except OSError as exc:
            raise StorageNotWritable(f"cannot write to {self._scratch}: {exc.strerror}") from None
        try:
            yield folder
        except OSError as exc:  # writing the package or the example into scratch space
            raise StorageNotWritable(f"cannot write to {self._scratch}: {exc.strerror}") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- models ------------------------------------------------------------------------------

    def create_model(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Model:
        """Create an empty model. Raises InvalidName, InvalidInput, AlreadyExists."""
        _check_tags(tags or {})
        validate_text(description, "description")
        return self.metadata.create_model(validate_name(name), description, tags)

    def get_model(self, name: str) -> Model:
        """Raises InvalidName, ModelNotFound."""
        return self.metadata.get_model(validate_name(name))

    def list_models(self) -> list[Model]:
        """All models, by name."""
        return self.metadata.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first. Raises InvalidName, ModelNotFound."""
        return self.metadata.list_versions(validate_name(name))

    def get_version(self, ref: str | ModelRef) -> ModelVersion:
        """Resolve ``name``, ``name:N`` or ``name@alias``.

        Raises:
            InvalidReference, ModelNotFound, VersionNotFound, AliasNotFound.
        """
        return self.metadata.get_version(_ref(ref))

    # -- registering -------------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        *,
        flavor: str,
        input_example: Any = None,
        signature: Signature | Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        trust: Trust | None = None,
        source: Source | None = None,
        handler: str | Path | None = None,
        baseline: pd.DataFrame | Profile | None = None,
    ) -> ModelVersion:
        """Validate a model, store its package and record it as the next version of ``name``.

        Args:
            model: A path to a model file/folder of ``flavor``, or an in-memory model object.
            input_example: Rows the model accepts (a path to CSV/JSON/Parquet, a DataFrame, a
                2-D array or list): checked by predicting on it, and used to infer the
                signature; the first rows are stored with the version.
            signature: An explicit signature; wins over inference.
            trust: Explicit trust (a pickle, extra skops types); recorded on the version.
            handler: A Python file with ``input_fn``/``output_fn`` for the server to run
                before and after ``predict`` (needs ``Trust(user_code=True)``).
            baseline: The training features (their profile, and the model's predictions on
                them, are stored as the version's drift baseline), or a ready profile.

        Raises:
            InvalidName, UnknownFlavor, InvalidModelFile, UnsafeModelFormat, SignatureMismatch,
            InvalidInput, StorageNotWritable. Nothing is recorded when any is raised.
        """
        validate_name(name)
        aliases = validate_aliases(aliases)
        _check_tags(tags or {})
        validate_text(description, "description")
        _metrics(metrics or {})
        for key in params or {}:
            validate_name(str(key), "parameter name")
        if source is None:
            uri = str(Path(model).absolute()) if isinstance(model, str | Path) else None
            source = Source(kind="upload", uri=uri)
        staged = self.stage(
            model,
            flavor=flavor,
            input_example=input_example,
            signature=signature,
            trust=trust,
            handler=handler,
            baseline=baseline,
        )
        return self.register_staged(
            name,
            staged,
            aliases=aliases,
            params=params,
            metrics=metrics,
            tags=tags,
            description=description,
            source=source,
        )

    def stage(
        self,
        model: Any,
        *,
        flavor: str,
        input_example: Any = None,
        signature: Signature | Mapping[str, Any] | None = None,
        trust: Trust | None = None,
        handler: str | Path | None = None,
        baseline: pd.DataFrame | Profile | None = None,
    ) -> StagedModel:
        """Validate a model and store its package, without recording a version.

        The first half of :meth:`register` (same arguments, same checks): a tuning trial
        stages its model, and only the best trial's package becomes a version.

        Raises:
            UnknownFlavor, InvalidModelFile, UnsafeModelFormat, SignatureMismatch,
            InvalidInput, StorageNotWritable.
        """
        explicit = signature if not isinstance(signature, Mapping) else None
        if isinstance(signature, Mapping):
            try:
                explicit = Signature.from_dict(dict(signature))
            except (ValueError, TypeError, AttributeError) as exc:  # user-written JSON, any shape
                raise InvalidInput(f"invalid signature: {exc}") from None
        runtime = get_runtime(flavor)
        example = _example(input_example, explicit)
        src = Path(model) if isinstance(model, str) else model

        with self._staging() as staging:
            model_dir = staging / packages.MODEL_DIR
            model_dir.mkdir()
            granted = trust or Trust()
            saved = self._save(runtime, src, model_dir, granted)
            if (saved.trust.user_code or handler is not None) and not granted.user_code:
                what = f"a {flavor} model" if saved.trust.user_code else "an inference handler"
                raise UnsafeModelFormat(
                    f"{what} is your own Python code, which runs when it is loaded; "
                    "trust the model's code to register it"
                )
            recorded = saved.trust
            if handler is not None:
                stage_handler(Path(handler), staging)
                recorded = Trust(pickle=recorded.pickle, user_code=True, types=recorded.types)
            loaded = runtime.load(model_dir, saved)
            try:
                if explicit is None and isinstance(input_example, str | Path):
                    own = loaded.signature_hint()  # its own text columns, read as written
                    if _reads_text(own):
                        example = _example(input_example, own)
                final_signature = _settle_signature(
                    loaded, explicit, example, from_csv=_is_csv(input_example)
                )
                if final_signature is not None:
                    columns = (*final_signature.inputs, *final_signature.outputs)
                    check_column_names((c.name for c in columns), "the model's signature")
                if baseline is not None:
                    profile = _baseline_profile(baseline, loaded, final_signature)
                    (staging / packages.BASELINE_PROFILE_FILE).write_bytes(profile.to_bytes())
                labels = loaded.output_labels()
            finally:
                loaded.unload()
            if example is not None:
                head = example.head(_EXAMPLE_ROWS)
                (staging / packages.EXAMPLE_FILE).write_text(
                    head.to_json(orient="split", index=False)
                )
            stored = packages.upload(
                self.artifacts,
                staging,
                {"flavor": flavor, "model_format": saved.model_format, "options": saved.options},
            )
        return StagedModel(
            digest=stored.digest,
            size_bytes=stored.size_bytes,
            flavor=flavor,
            model_format=saved.model_format,
            trust=recorded,
            signature=final_signature,
            options=dict(saved.options),
            labels=None if labels is None else tuple(class_key(v) for v in labels),
        )

    def register_staged(
        self,
        name: str,
        staged: StagedModel,
        *,
        aliases: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        source: Source | None = None,
    ) -> ModelVersion:
        """Record a staged package as the next version of ``name`` (the second half of
        :meth:`register`).

        Raises:
            InvalidName, InvalidInput, ArtifactMissing (the package is not in the store).
        """
        validate_name(name)
        aliases = validate_aliases(aliases)
        _check_tags(tags or {})
        validate_text(description, "description")
        clean_metrics = _metrics(metrics or {})
        clean_params = {
            validate_name(str(k), "parameter name"): str(v) for k, v in (params or {}).items()
        }
        if staged.labels is not None and LABELS_PARAM not in clean_params:
            # What the classifier can answer: feedback refuses other labels (model_task).
            clean_params[LABELS_PARAM] = json.dumps(list(staged.labels))
        packages.read_manifest(self.artifacts, staged.digest)  # it is there, and intact
        return self.metadata.create_version(
            NewVersion(
                name=name,
                flavor=staged.flavor,
                model_format=staged.model_format,
                artifact_digest=staged.digest,
                size_bytes=staged.size_bytes,
                source=source or Source(kind="staged", uri=staged.digest),
                trust=staged.trust,
                signature=staged.signature,
                params=clean_params,
                metrics=clean_metrics,
                tags=dict(tags or {}),
                description=description,
                options=staged.options,
                aliases=tuple(aliases),
            )
        )

    def _save(self, runtime: Runtime, source: Any, dest: Path, trust: Trust) -> SavedModel:
        try:
            return runtime.save(source, dest, trust=trust)
        except ModelyardError:
            raise
        except OSError as exc:
            # Some OSErrors carry no strerror (shutil.Error, SpecialFileError): never print None.
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise StorageNotWritable(f"cannot stage the model in {dest}: {reason}") from None
        except Exception as exc:
            # Model libraries report a failed write as their own error type, so look at the
            # disk before blaming the model.
            if shutil.disk_usage(dest).free < _MIN_FREE_BYTES:
                raise StorageNotWritable(
                    f"cannot stage the model in {self._scratch}: No space left on device"
                ) from None
            raise InvalidModelFile(f"cannot save the model as {runtime.flavor}: {exc}") from None

    # -- changing ----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` of ``name``; archived versions cannot be aliased."""
        return self.move_alias(name, alias, version).target

    def move_alias(self, name: str, alias: str, version: int) -> AliasMove:
        """:meth:`set_alias`, and the version the alias pointed at as the write replaced it
        (None: it was new): what another writer did since any earlier read counts."""
        validate_name(name)
        validate_name(alias, "alias")
        try:  # any integer (numpy's too), but not a bool
            if isinstance(version, bool):
                raise TypeError
            version = operator.index(version)
        except TypeError:
            raise InvalidInput(
                f"the version must be a whole number from 1 to {MAX_VERSION}, "
                f"got {type(version).__name__} {shown_value(version)}"
            ) from None
        if not 1 <= version <= MAX_VERSION:
            raise InvalidInput(
                f"the version must be a whole number from 1 to {MAX_VERSION}, "
                f"got {shown_value(version)}"
            )
        target = self.metadata.get_version(ModelRef(name, version=version))
        if target.status is VersionStatus.ARCHIVED:
            raise VersionProtected(f"{target.ref} is archived; restore it before aliasing it")
        return self.metadata.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Raises InvalidName, ModelNotFound, AliasNotFound."""
        self.metadata.delete_alias(validate_name(name), validate_name(alias, "alias"))

    def set_tags(
        self, ref: str | ModelRef, set_: Mapping[str, str], remove: Sequence[str] = ()
    ) -> None:
        """Tag a model (``name``) or a version (``name:N`` / ``name@alias``)."""
        parsed = _ref(ref)
        _check_tags(set_)
        for key in remove:
            validate_name(key, "tag key")
        if parsed.version is None and parsed.alias is None:
            self.metadata.set_tags(parsed.name, None, set_, tuple(remove))
        else:
            version = self.metadata.get_version(parsed).version
            self.metadata.set_tags(parsed.name, version, set_, tuple(remove))

    def set_description(self, name: str, description: str | None) -> Model:
        """Set a model's description."""
        validate_text(description, "description")
        return self.metadata.update_model(validate_name(name), description=description)

    def archive(self, ref: str | ModelRef) -> ModelVersion:
        """Archive a version: kept and loadable by number, but never ``latest``.

        Raises VersionProtected when an alias points at it or a guard vetoes.
        """
        version = self._protected_check(_ref(ref), "archive")
        return self.metadata.set_status(version.name, version.version, VersionStatus.ARCHIVED)

    def restore(self, ref: str | ModelRef) -> ModelVersion:
        """Bring an archived version back to ready.

        Raises:
            InvalidInput: ``ref`` names no version (a name alone would be its latest ready
                version, which is not archived).
        """
        parsed = _ref(ref)
        if parsed.version is None:
            raise InvalidInput(
                f"name the version to restore explicitly, as NAME:VERSION (got {parsed})"
            )
        version = self.metadata.get_version(parsed)
        return self.metadata.set_status(version.name, version.version, VersionStatus.READY)

    def delete_version(self, ref: str | ModelRef) -> ModelVersion:
        """Delete a version's record; its number is never reused. Returns what was deleted.

        Raises VersionProtected when an alias points at it or a guard vetoes.
        """
        version = self._protected_check(_ref(ref), "delete")
        self.metadata.delete_version(version.name, version.version)
        return version

    def _protected_check(self, ref: ModelRef, verb: str) -> ModelVersion:
        if ref.version is None:
            raise InvalidInput(
                f"name the version to {verb} explicitly, as NAME:VERSION (got {ref})"
            )
        version = self.metadata.get_version(ref)
        if version.aliases:
            raise VersionProtected(
                f"cannot {verb} {version.ref}: it is aliased as {', '.join(version.aliases)}; "
                "move or remove the alias first"
            )
        for guard in self._guards:
            reason = guard(version)
            if reason:
                raise VersionProtected(f"cannot {verb} {version.ref}: {reason}")
        return version

    # -- loading -----------------------------------------------------------------------------

    def load(self, ref: str | ModelRef) -> PackagedModel:
        """Fetch, verify and load a version. Call ``unload()`` when done.

        Raises:
            ArtifactMissing, ArtifactCorrupted (naming the blob), UnsafeModelFormat, and the
            lookup errors of :meth:`get_version`.
        """
        version = self.get_version(ref)
        inner, folder, _ = load_package(
            self.artifacts, ModelSpec.from_version(version), self._scratch / "loaded"
        )
        return PackagedModel(version, inner, folder)

    def verify(self, ref: str | ModelRef) -> tuple[ModelVersion, int | None]:
        """Fetch, checksum and load a version, then predict on its stored input example.

        Returns:
            The version checked and how many example rows it predicted (None: no example).

        Raises:
            ArtifactMissing, ArtifactCorrupted, UnsafeModelFormat, SignatureMismatch,
            ModelFailed (not one prediction per example row), and the lookup errors of
            :meth:`get_version`.
        """
        loaded = self.load(ref)
        try:
            # The example of the version just loaded, not a fresh resolution of ``ref``: an
            # alias may move in between.
            example = self.input_example(loaded.version.ref)
            rows = None
            if example is not None:
                answered = _wrong_row_count(_predicted(loaded, example), len(example))
                if answered:
                    raise ModelFailed(
                        f"{loaded.version.ref} returned {answered} for the {len(example)} rows "
                        "of its input example (one prediction per row expected)"
                    )
                rows = len(example)
        finally:
            loaded.unload()
        return loaded.version, rows

    def input_example(self, ref: str | ModelRef) -> pd.DataFrame | None:
        """The stored input example rows of a version, if it has one."""
        import pandas as pd

        version = self.get_version(ref)
        manifest = packages.read_manifest(self.artifacts, version.artifact_digest)
        for entry in manifest["files"]:
            if entry["path"] == packages.EXAMPLE_FILE:
                from io import StringIO

                raw = self.artifacts.get_bytes(entry["sha256"]).decode()
                # As written: pandas would read a text column of codes ("02139") as numbers.
                return pd.read_json(StringIO(raw), orient="split", dtype=False)
        return None


def _baseline_profile(
    baseline: pd.DataFrame | Profile, loaded: LoadedModel, signature: Signature | None
) -> Profile:
    """The profile stored as a version's baseline: given (and then fitted to the signature's
    columns), or sketched from the training features with the model's predictions on them.

    Raises:
        InvalidInput: a given profile lacks a column the model takes (named).
    """
    from modelyard.monitoring.profile import Profile
    from modelyard.monitoring.schema import fit_to_signature
    from modelyard.training.baseline import baseline_profile

    if isinstance(baseline, Profile):
        return fit_to_signature(baseline, signature)
    names = signature.feature_names if signature is not None else None
    profile = baseline_profile(baseline, loaded.predict, names)
    try:
        return fit_to_signature(profile, signature)
    except InvalidInput:
        # A script's model may take other columns than its training table holds: the table's
        # profile is still the best reference there is.
        return profile


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        validate_name(key, "tag key")
        if value is None:  # a tag has a value; remove one by its key instead
            raise InvalidInput(f"the value of tag {key!r} must be text, got None")
        validate_text(value, f"value of tag {key!r}")


def _ref(ref: str | ModelRef) -> ModelRef:
    return ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        validate_metric_name(str(key))
        if isinstance(value, bool):  # float(True) is 1.0: a flag is not a measure
            raise InvalidInput(f"metric {key!r} must be a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an int past the largest float
            raise InvalidInput(f"metric {key!r} must be finite, got {shown_value(value)}") from None
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise InvalidInput(f"metric {key!r} must be finite, got {value!r}")
        out[str(key)] = number
    return out


def _example(value: Any, signature: Signature | None) -> pd.DataFrame | None:
    """The input example as a table; a file's columns that ``signature`` (the one given)
    takes as text are read as written (a CSV's ``02139`` stays text)."""
    if value is None:
        return None
    if isinstance(value, str | Path):
        from modelyard.codecs.text_rows import text_inputs

        return read_table(Path(value), text_inputs(signature))
    return to_frame(value)


def _reads_text(signature: Signature | None) -> bool:
    from modelyard.codecs.text_rows import text_inputs

    return bool(text_inputs(signature))


def _is_csv(value: Any) -> bool:
    return isinstance(value, str | Path) and Path(value).suffix.lower() == ".csv"


def _settle_signature(
    loaded: LoadedModel,
    explicit: Signature | None,
    example: pd.DataFrame | None,
    from_csv: bool = False,
) -> Signature | None:
    own = loaded.signature_hint()
    if explicit is not None and own is not None:
        if own.n_features != explicit.n_features:
            raise SignatureMismatch(
                f"the signature lists {explicit.n_features} features; the model takes "
                f"{own.n_features}"
            )
        _check_order(explicit, own, loaded.stored_feature_name)
    hint = explicit or own
    if example is None:
        return hint
    if hint is not None:
        # The model's own names are as its library keeps them (LightGBM: "mean_radius" for
        # "mean radius"); the signature inferred below keeps the example's.
        own_names = explicit is None
        check_example(hint, example, stored_name=loaded.stored_feature_name if own_names else None)
    # Unnamed columns (an array example) are positional: do not let a model that knows its
    # feature names compare them against pandas' 0, 1, 2… labels.
    named = all(isinstance(c, str) for c in example.columns)
    try:
        predictions = loaded.predict(example if named else example.to_numpy())
    except ModelyardError:
        raise
    except Exception as exc:  # a model library's own error: report it, do not crash
        advice = ""
        if from_csv and explicit is None:  # the usual cause: codes of digits taken as numbers
            advice = (
                "; a CSV's columns of digits are read as numbers: when the model takes one as "
                "text (zip codes, codes with leading zeros), give a signature with its dtype "
                "as str"
            )
        raise SignatureMismatch(
            f"the model cannot predict on the input example: {exc}{advice}"
        ) from None
    import numpy as np

    answered = _wrong_row_count(predictions, len(example))
    if answered:
        raise InvalidModelFile(
            f"the model returned {answered} for the {len(example)} rows of the input example; "
            "predict must return one prediction per row"
        )
    inferred = infer_signature(example, np.asarray(predictions))
    if explicit is None and not named and own is not None and own.feature_names:
        # An unnamed example (an array, a headerless CSV) is positional, but the model names
        # its features: keep its names, or a server would put a record's fields in the order
        # they came rather than the model's.
        inputs = tuple(
            replace(col, name=name)
            for col, name in zip(inferred.inputs, own.feature_names, strict=True)
        )
        inferred = replace(inferred, inputs=inputs)
    return explicit or inferred


def _check_order(explicit: Signature, own: Signature, stored: Callable[[str], str]) -> None:
    """Refuse a signature naming one of the model's own features at another place: rows are
    put in the signature's order, so its values would reach the model in another feature's
    place. (New names are taken: a model trained on unnamed columns may be given names.)"""
    given, known = explicit.feature_names, own.feature_names
    if not given or not known:
        return
    place = {name: i for i, name in enumerate(known)}
    for i, name in enumerate(stored(n) for n in given):
        at = place.get(name)
        if at is not None and at != i:
            raise SignatureMismatch(
                f"the signature lists the model's feature {name!r} as feature {i + 1}; the "
                f"model takes it as feature {at + 1}: list the model's features in its order "
                f"({', '.join(known)})"
            )


def _predicted(loaded: PackagedModel, example: pd.DataFrame) -> Any:
    """``loaded``'s predictions on its ``example``.

    Raises:
        ModelFailed: the model raised (its error, and the last line of the model's own code
            it passed through, when it has code): verify's answer, not a traceback.
    """
    try:
        return loaded.predict(example)
    except ModelyardError:
        raise
    except Exception as exc:
        package = str(loaded.folder.resolve())
        own = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if str(Path(f.filename).resolve()).startswith(package)
        ]
        where = f" ({Path(own[-1].filename).name}, line {own[-1].lineno})" if own else ""
        raise ModelFailed(
            f"{loaded.version.ref} cannot predict on its input example: "
            f"{type(exc).__name__}: {exc}{where}"
        ) from None


def _wrong_row_count(predictions: Any, rows: int) -> str | None:
    """What ``predictions`` holds (``"4 predictions"``, ``"a single value"``) when it is not
    one prediction per row of ``rows``, else None."""
    import numpy as np

    shape = np.shape(predictions)
    if not shape:
        return "a single value"
    return None if shape[0] == rows else f"{shape[0]} predictions"
