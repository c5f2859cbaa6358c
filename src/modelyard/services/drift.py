"""The drift service: baselines of model versions, and drift reports of endpoints.

A version's baseline is the profile in its package (written at registration from the training
data), unless one was set later from a dataset (:meth:`DriftService.set_baseline`), which is
kept beside the package as a derived artifact of that version (not of the package, which two
versions may share) and wins. A version without either has no
baseline.

A drift report compares, per variant, the variant's current model version's baseline with the
captured rows of a window (or with a dataset from a file): each input from every row the
variant answered in the window with a model version that takes it (a version whose signature
names other features did not send it, so its rows say nothing of it), predictions only from
rows its current model version answered (the baseline's predictions are that version's).
Fields the variant captures redacted (hashed or dropped) are left out of the comparison, with
a quality note saying so.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from modelyard.domain import Endpoint, ModelVersion, Signature, Variant
from modelyard.domain.capture import INPUT_PREFIX, OUTPUT_PREFIX
from modelyard.domain.drift import (
    DriftConfig,
    DriftReport,
    QualityIssue,
    SmallBaseline,
    Verdict,
    small_baseline,
)
from modelyard.domain.durations import as_utc, length_of
from modelyard.domain.monitors import format_duration
from modelyard.errors import (
    InvalidInput,
    ModelNotFound,
    ModelyardError,
    VariantNotFound,
    VersionNotFound,
)
from modelyard.services.capture_port import CaptureReader
from modelyard.storage import packages
from modelyard.storage.base import ArtifactStore

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.monitoring.profile import Profile
    from modelyard.services.registry import PackagedModel

#: The derived-artifact kind of a baseline set after registration; the version's name and
#: number follow it, since two versions may share one package.
BASELINE_KIND = "baseline-profile-v1"
#: The window a drift check covers when neither a window nor a dataset is given.
DEFAULT_WINDOW = timedelta(hours=1)

log = logging.getLogger("modelyard.drift")
#: The features a model version takes, as captured rows name them (None: unknown).
Takes = Callable[[str, int], "frozenset[str] | None"]


class Versions(Protocol):
    """The registry, as drift reads it."""

    def get_version(self, ref: str) -> ModelVersion: ...

    def load(self, ref: str) -> PackagedModel: ...


@dataclasses.dataclass(frozen=True)
class _Current:
    """What one variant is compared on: a profile, where it came from, whether it holds
    captured rows (whose redacted fields cannot be compared), and the damaged captured files
    of its window left out (``path: why``)."""

    profile: Profile
    start: datetime | None
    end: datetime | None
    captured: bool = True
    skipped: tuple[str, ...] = ()


class DriftService:
    """Baselines and drift reports (see the module docstring).

    Args:
        versions: Model versions (``RegistryService``).
        endpoint: Looks an endpoint up (``EndpointService.get``); raises EndpointNotFound.
        artifacts: Where packages and derived baselines are stored.
        capture: Captured rows (``CaptureService``).
        clock: Now, timezone-aware UTC.
    """

    def __init__(
        self,
        versions: Versions,
        endpoint: Callable[[str], Endpoint],
        artifacts: ArtifactStore,
        capture: CaptureReader,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._versions = versions
        self._endpoint = endpoint
        self._artifacts = artifacts
        self._capture = capture
        self._clock = clock

    # -- baselines ---------------------------------------------------------------------------

    def baseline(self, ref: str) -> Profile | None:
        """The baseline of version ``ref`` (``name:3``, ``name@alias``), None when it has none.

        Raises:
            InvalidReference, ModelNotFound, VersionNotFound, AliasNotFound, ArtifactMissing,
            ArtifactCorrupted, InvalidInput (a baseline of a newer format).
        """
        from modelyard.monitoring.profile import Profile
        from modelyard.monitoring.schema import fit_to_signature

        version = self._versions.get_version(ref)
        derived = self._artifacts.get_derived(version.artifact_digest, _kind(version))
        if derived is not None:
            return Profile.from_bytes(derived)
        manifest = packages.read_manifest(self._artifacts, version.artifact_digest)
        for entry in manifest["files"]:
            if entry["path"] == packages.BASELINE_PROFILE_FILE:
                profile = Profile.from_bytes(self._artifacts.get_bytes(entry["sha256"]))
                try:
                    return fit_to_signature(profile, version.signature)
                except InvalidInput:  # a script's training table: compare what there is
                    return profile
        return None

    def set_baseline(self, ref: str, data: str) -> Profile:
        """Make the rows of file ``data`` (CSV, JSON, JSON Lines or Parquet) the baseline of
        version ``ref``, with the model's predictions on them; it replaces any earlier one.

        Columns the model does not take are ignored.

        Raises:
            InvalidInput: the file cannot be read, its columns do not fit the model's
                signature (the message names the missing or mistyped columns), or the model
                cannot predict on its rows (the message gives the model's reason); nothing is
                stored then. The lookup errors of :meth:`baseline`; StorageNotWritable.
        """
        from modelyard.codecs.tables import read_table
        from modelyard.monitoring.profile import Profile
        from modelyard.monitoring.schema import fit_to_signature
        from modelyard.training.baseline import sampled_predictions

        version = self._versions.get_version(ref)
        frame = read_table(Path(data), _text_columns([version.signature]))
        profile = fit_to_signature(Profile.from_frame(frame), version.signature)
        names = version.signature.feature_names if version.signature else None
        inputs = frame.loc[:, names] if names else frame
        loaded = self._versions.load(version.ref)
        try:
            predictions = sampled_predictions(inputs, loaded.predict)
        except ModelyardError as exc:
            if not isinstance(exc, InvalidInput):
                raise
            raise _unpredictable(version, data, exc) from None
        except Exception as exc:  # any model library's refusal of these rows
            raise _unpredictable(version, data, exc) from None
        finally:
            loaded.unload()
        profile = profile.with_predictions(predictions)
        self._artifacts.put_derived(version.artifact_digest, _kind(version), profile.to_bytes())
        note = small_baseline(profile.row_count)
        if note is not None:  # kept (a check may lower min_rows), but not without a word
            warnings.warn(f"{version.ref}: {note}", SmallBaseline, stacklevel=2)
        return profile

    # -- drift -------------------------------------------------------------------------------

    def drift(
        self,
        endpoint: str,
        *,
        variant: str | None = None,
        window: timedelta | str | None = None,
        data: str | None = None,
        config: DriftConfig | None = None,
        now: datetime | None = None,
    ) -> list[DriftReport]:
        """One drift report per variant of ``endpoint`` (or for ``variant``): its current model
        version's baseline against the rows captured in the ``window`` before ``now``
        (default: the last hour), or against the rows of file ``data``.

        A file of captured rows (``input.*`` columns, as exported) is split by its
        ``variant`` column; any other file is compared whole with each variant's baseline.
        A variant whose version has no baseline gets a report with verdict
        ``insufficient_data`` saying so.

        Raises:
            InvalidInput: both a window and a file, a window that is not positive, an
                unreadable file, a file of captured rows none of which is of a checked variant.
                EndpointNotFound, VariantNotFound, StorageUnavailable.
        """
        if window is not None and data is not None:
            raise InvalidInput("compare either a window of captured rows or a file, not both")
        window = length_of(window, "the drift window") if window is not None else None
        if window is not None and window <= timedelta(0):
            raise InvalidInput(
                f"a drift window must be longer than zero, got {format_duration(window)}"
            )
        config = config or DriftConfig()
        variants = self._variants(endpoint, variant)
        if data is not None:
            currents = self._from_file(data, variants)
        else:
            end = as_utc(now) if now is not None else self._clock()
            start = end - (window or DEFAULT_WINDOW)
            rows, skipped = self._capture.read_readable(
                endpoint, since=start, until=end, variant=variant
            )
            if skipped:  # a damaged file must not stop every scheduled check of its window
                log.warning(
                    "drift of %s left out %d damaged captured file(s): %s",
                    endpoint, len(skipped), "; ".join(skipped),
                )  # fmt: skip
            currents = {
                v.name: _Current(
                    captured_profile(_rows_of(rows, v), v, self._takes),
                    start, end, skipped=tuple(skipped),
                )
                for v in variants
            }  # fmt: skip
        return [self._report(endpoint, v, currents[v.name], config) for v in variants]

    def window_profile(
        self, endpoint: str, variant: str | Variant, since: datetime, until: datetime
    ) -> tuple[Profile | None, tuple[QualityIssue, ...]]:
        """The profile drift compares for ``variant``'s rows captured in [since, until), as
        :meth:`drift` builds it (None when no row was captured), and the window's note when
        damaged captured files were left out of it, as :meth:`drift` leaves them out.
        ``variant``: a name in the endpoint's current config, or a variant as an earlier
        config had it (one retired since, whose captured rows stay readable).

        Raises:
            EndpointNotFound, VariantNotFound, StorageUnavailable.
        """
        if isinstance(variant, str):
            (chosen,) = self._variants(endpoint, variant)
        else:
            chosen = variant
        rows, skipped = self._capture.read_readable(
            endpoint, since=since, until=until, variant=chosen.name
        )
        rows = _rows_of(rows, chosen)
        profile = captured_profile(rows, chosen, self._takes) if len(rows) else None
        return profile, unreadable_notes(skipped)

    # -- helpers -----------------------------------------------------------------------------

    def _variants(self, endpoint: str, variant: str | None) -> list[Variant]:
        variants = list(self._endpoint(endpoint).config.variants)
        if variant is None:
            return variants
        chosen = [v for v in variants if v.name == variant]
        if not chosen:
            raise VariantNotFound(
                f"endpoint {endpoint!r} has no variant {variant!r}; it has "
                f"{', '.join(v.name for v in variants)}"
            )
        return chosen

    def _takes(self, model: str, version: int) -> frozenset[str] | None:
        """The features version ``model:version`` takes, as captured rows name them; None
        when unknown (no signature of named or counted inputs, or the version is gone).

        Raises:
            StorageUnavailable: the metadata store failed (not read as a version gone).
        """
        try:
            signature = self._versions.get_version(f"{model}:{version}").signature
        except (ModelNotFound, VersionNotFound, InvalidInput):
            return None  # deleted since, or a name (or reference) no longer valid
        if signature is None or not signature.inputs:
            return None
        return frozenset(signature.input_names)

    def _from_file(self, data: str, variants: list[Variant]) -> dict[str, _Current]:
        from modelyard.codecs.tables import read_table
        from modelyard.monitoring.profile import Profile
        from modelyard.monitoring.schema import by_position, refuse_text_for_numbers

        signatures = [self._versions.get_version(v.model_ref).signature for v in variants]
        frame = read_table(Path(data), _text_columns(signatures))
        if not any(str(c).startswith(INPUT_PREFIX) for c in frame.columns):
            profile = Profile.from_frame(frame)
            # A model taking unnamed features reads a table's columns by position, as
            # set_baseline does; its baseline names them 0, 1... Numbers given as text are
            # refused, as set_baseline refuses them: the feature would go unjudged.
            fitted = [by_position(profile, signature) for signature in signatures]
            for each, signature in zip(fitted, signatures, strict=True):
                refuse_text_for_numbers(each, signature)
            return {
                v.name: _Current(each, None, None, captured=False)
                for v, each in zip(variants, fitted, strict=True)
            }
        _refuse_other_variants(frame, variants, data)
        return {
            v.name: _Current(captured_profile(_rows_of(frame, v), v, self._takes), None, None)
            for v in variants
        }

    def _report(
        self, endpoint: str, variant: Variant, current: _Current, config: DriftConfig
    ) -> DriftReport:
        from modelyard.monitoring.drift import Context, compare

        context = Context(endpoint, variant.name, variant.model_ref, current.start, current.end)
        baseline = self.baseline(variant.model_ref)
        if baseline is None:
            return DriftReport(
                endpoint, variant.name, variant.model_ref, current.start, current.end,
                0, current.profile.row_count, (), (),
                (QualityIssue("no_baseline", "", f"{variant.model_ref} has no baseline: "
                              "register it from a training job or set one from a dataset"),),
                Verdict.INSUFFICIENT_DATA, None, config,
            )  # fmt: skip
        profile = current.profile
        notes: tuple[QualityIssue, ...] = ()
        if current.captured:
            baseline, profile, notes = comparable(variant, baseline, profile)
        notes += unreadable_notes(current.skipped)
        report = compare(baseline, profile, config, context)
        return dataclasses.replace(report, quality=report.quality + notes) if notes else report


def unreadable_notes(skipped: Sequence[str]) -> tuple[QualityIssue, ...]:
    """The quality note of a window whose damaged captured files (``path: why``) were left
    out; none when none was."""
    if not skipped:
        return ()
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    return (
        QualityIssue(
            "unreadable_capture", "",
            f"{len(skipped)} damaged captured file(s) left out of this window, their rows not "
            f"compared: {skipped[0]}{more}",
        ),
    )  # fmt: skip


def captured_profile(rows: pd.DataFrame, variant: Variant, takes: Takes | None = None) -> Profile:
    """The profile of captured rows: ``input.<feature>`` columns as features, and
    ``output.<name>`` columns of the rows ``variant``'s current model version answered as
    predictions.

    ``takes(model, version)`` gives the features a version takes (None: unknown). A feature
    is then profiled from the rows of the versions that take it, or may (unknown); one that
    none of them takes has no rows. The rows of a version taking other features lack it, and
    read as its values vanishing (a drift) right after the variant moved to a version with
    new features."""
    from modelyard.monitoring.profile import Profile

    inputs = [c for c in rows.columns if str(c).startswith(INPUT_PREFIX)]
    outputs = [c for c in rows.columns if str(c).startswith(OUTPUT_PREFIX)]
    features = rows.loc[:, inputs].set_axis([c[len(INPUT_PREFIX) :] for c in inputs], axis=1)
    profile = Profile.from_frame(features)
    versioned = "model" in rows.columns and "model_version" in rows.columns
    if takes is not None and versioned and len(rows):
        profile = _by_versions_taking(profile, features, rows, variant, takes)
    if not outputs:
        return profile
    if versioned:
        same = (rows["model"] == variant.model) & (rows["model_version"] == variant.version)
        rows = rows.loc[same]
    predicted = rows.loc[:, outputs].set_axis([c[len(OUTPUT_PREFIX) :] for c in outputs], axis=1)
    return profile.with_predictions(Profile.from_frame(predicted))


def _by_versions_taking(
    profile: Profile, features: pd.DataFrame, rows: pd.DataFrame, variant: Variant, takes: Takes
) -> Profile:
    """``profile`` with each feature that some version of ``rows`` does not take sketched
    again from the rows of the other versions only, and with the features of ``variant``'s
    version that none of them takes as columns without rows (see :func:`captured_profile`)."""
    import numpy as np
    import pandas as pd

    from modelyard.monitoring.profile import column_profile

    keys = rows.loc[:, ["model", "model_version"]]
    found = keys.drop_duplicates()  # in order of first appearance, as ngroup numbers them
    taken = [
        None if pd.isna(model) or pd.isna(version) else takes(str(model), int(version))
        for model, version in found.itertuples(index=False)
    ]
    lacking = {n for n in features.columns for t in taken if t is not None and n not in t}
    # A feature of the variant's version that no row's version takes: none of its rows yet
    # (no rows, rather than a column missing from them, which is a vanished feature).
    unsent = [
        n
        for n in sorted(takes(variant.model, variant.version) or ())
        if n not in features.columns and all(t is not None and n not in t for t in taken)
    ]
    if not lacking and not unsent:
        return profile
    codes = keys.groupby(["model", "model_version"], sort=False, dropna=False).ngroup()
    columns = []
    for column in profile.column_profiles:
        if column.name in lacking:
            allowed = [i for i, t in enumerate(taken) if t is None or column.name in t]
            keep = np.isin(codes.to_numpy(), allowed)
            column = column_profile(column.name, features[column.name].loc[keep])
        columns.append(column)
    columns.extend(column_profile(n, pd.Series([], dtype="float64")) for n in unsent)
    return dataclasses.replace(profile, column_profiles=tuple(columns))


def comparable(
    variant: Variant, baseline: Profile, current: Profile
) -> tuple[Profile, Profile, tuple[QualityIssue, ...]]:
    """``baseline`` and the profile of ``variant``'s captured rows without the columns it
    redacts (their captured values are hashes or nulls, which no baseline matches), and a
    quality note per column left out (none for an empty window). Every comparison of captured
    rows goes through here: ``monitor drift``, the scheduled runs and the report."""
    redacted = [c for c in baseline.columns if variant.capture.mode(c) is not None]
    if not redacted:
        return baseline, current, ()
    notes = tuple(
        QualityIssue(
            "redacted",
            name,
            f"captured values of {name!r} are redacted ({variant.capture.mode(name)}): "
            "the column is not compared",
        )
        for name in redacted
        if current.row_count
    )
    return (
        baseline.select([c for c in baseline.columns if c not in redacted]),
        current.select([c for c in current.columns if c not in redacted]),
        notes,
    )


def _kind(version: ModelVersion) -> str:
    """The derived-artifact kind of ``version``'s baseline set later (names are
    ``[A-Za-z0-9_.-]``, which artifact kinds allow)."""
    return f"{BASELINE_KIND}.{version.name}.{version.version}"


def _unpredictable(version: ModelVersion, data: str, exc: Exception) -> InvalidInput:
    """The refusal of a baseline file whose rows the model cannot predict on: a baseline
    holds the model's predictions on its rows, and one without them would never show
    prediction drift. The model's reason is kept to its first line (libraries add advice)."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return InvalidInput(
        f"{version.ref} cannot predict on the rows of {data}, so they cannot be its baseline: "
        f"{reason}"
    )


def _refuse_other_variants(frame: pd.DataFrame, variants: Sequence[Variant], data: str) -> None:
    """Refuse captured rows of which none is of a checked variant (another endpoint's export,
    a variant renamed since): compared, they would read as an empty window."""
    if "variant" not in frame.columns:
        return
    held = frame["variant"].dropna().astype(str).unique()
    checked = [v.name for v in variants]
    if len(held) and not set(held) & set(checked):
        raise InvalidInput(
            f"{data} holds captured rows of variant(s) {', '.join(sorted(held))}, none of the "
            f"variant(s) checked ({', '.join(checked)}): nothing in it can be compared with "
            "their baselines"
        )


def _rows_of(rows: pd.DataFrame, variant: Variant) -> pd.DataFrame:
    if "variant" not in rows.columns:
        return rows
    return rows.loc[rows["variant"] == variant.name]


def _text_columns(signatures: Sequence[Signature | None]) -> list[str]:
    """The columns of a data file that models of ``signatures`` take as text, by feature name
    and as a capture export names them (``input.<feature>``)."""
    from modelyard.codecs.text_rows import text_inputs

    names = [name for s in signatures for name in text_inputs(s)]
    return [*names, *(f"{INPUT_PREFIX}{n}" for n in names)]
