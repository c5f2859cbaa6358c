"""The storage contracts. Services depend on these interfaces; ``bootstrap`` picks the
implementations. Every implementation passes the same contract test suite
(``tests/storage/test_metadata_contract.py``, ``tests/storage/test_artifacts.py``,
``tests/storage/test_server_store.py`` …).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelyard.domain import (
    ArtifactFile,
    ConfigChange,
    Endpoint,
    EndpointConfig,
    Job,
    JobKind,
    JobStatus,
    Model,
    ModelRef,
    ModelVersion,
    ServerRecord,
    ServerStatus,
    Signature,
    Source,
    Trust,
    Variant,
    VersionStatus,
)
from modelyard.domain.registry import AliasMove


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything needed to record a version; the store assigns the number and timestamps."""

    name: str
    flavor: str
    model_format: str
    artifact_digest: str
    size_bytes: int
    source: Source
    trust: Trust
    signature: Signature | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class MetadataStore(ABC):
    """Transactional record of models, versions, aliases and tags.

    Contract for every method: it either fully applies or changes nothing; database errors
    surface as :class:`~modelyard.errors.StorageUnavailable` subclasses, never as driver errors.
    """

    @abstractmethod
    def create_model(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Model:
        """Create an empty model. Raises AlreadyExists if ``name`` is taken."""

    @abstractmethod
    def get_model(self, name: str) -> Model:
        """Raises ModelNotFound."""

    @abstractmethod
    def list_models(self) -> list[Model]:
        """All models, ordered by name."""

    @abstractmethod
    def update_model(self, name: str, *, description: str | None) -> Model:
        """Set the model's description. Raises ModelNotFound."""

    @abstractmethod
    def create_version(self, new: NewVersion) -> ModelVersion:
        """Record a new version, creating the model if it does not exist.

        Numbers are 1, 2, 3… per model, assigned atomically: concurrent callers in any number
        of processes never get the same number and never skip one. A number is never reused,
        even after its version is deleted. ``new.aliases`` are pointed at the new version in
        the same transaction.
        """

    @abstractmethod
    def get_version(self, ref: ModelRef) -> ModelVersion:
        """Resolve a reference: ``name:N``; ``name@alias``; ``name`` = highest ready version.

        Raises:
            ModelNotFound, VersionNotFound, AliasNotFound.
        """

    @abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of a model, oldest first. Raises ModelNotFound."""

    @abstractmethod
    def set_alias(self, name: str, alias: str, version: int) -> AliasMove:
        """Point ``alias`` at ``version`` (moving it if it exists); returns the version and the
        one the alias pointed at as this write replaced it (read in its transaction, under the
        alias row's lock: another writer's move in between is the one replaced). Raises
        Model/VersionNotFound; VersionProtected when the version is archived (checked in the
        same transaction)."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Raises ModelNotFound, AliasNotFound."""

    @abstractmethod
    def set_tags(
        self,
        name: str,
        version: int | None,
        set_: Mapping[str, str],
        remove: tuple[str, ...] = (),
    ) -> None:
        """Set and remove tags on a model (``version`` None) or on one version.

        Raises ModelNotFound, VersionNotFound, or NotFound for a tag to remove that is absent.
        """

    @abstractmethod
    def set_status(self, name: str, version: int, status: VersionStatus) -> ModelVersion:
        """Move a version's lifecycle status. Raises Model/VersionNotFound; VersionProtected,
        for an archive, when an alias points at the version or an endpoint serves it (checked
        in the same transaction)."""

    @abstractmethod
    def delete_version(self, name: str, version: int) -> None:
        """Remove a version's record. Raises Model/VersionNotFound; VersionProtected when an
        alias still points at it or an endpoint serves it (checked in the same transaction)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Where the store lives (URL without password), schema revision, counts."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class ArtifactStore(ABC):
    """Content-addressed blob store.

    Blobs are addressed by the sha256 of their bytes and written atomically: a reader sees the
    whole blob or none. Every read verifies the digest; a mismatch raises ArtifactCorrupted
    naming the blob, a missing blob ArtifactMissing.
    """

    @abstractmethod
    def put_file(self, path: Path) -> ArtifactFile:
        """Store a local file; returns its digest and size (path = the file's name)."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their sha256 hex digest."""

    @abstractmethod
    def get_bytes(self, digest: str) -> bytes:
        """Read and verify a blob."""

    @abstractmethod
    def get_file(self, digest: str, dest: Path, size: int | None = None) -> None:
        """Copy a blob to ``dest`` (created atomically), verifying digest and size."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether the blob is present (not verified)."""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the blobs live, with any credentials in the URL masked (safe to print)."""

    @abstractmethod
    def put_derived(self, source: str, kind: str, data: bytes) -> str:
        """Store ``data`` as the ``kind`` derived from blob ``source`` (a compiled form, say).

        The bytes are a blob like any other; a small pointer named by ``source`` and ``kind``
        finds them again. Writing the same pair twice keeps the last bytes (both writers
        derived them from the same source, so either is right).

        Returns:
            The digest of ``data``.
        """

    @abstractmethod
    def get_derived(self, source: str, kind: str) -> bytes | None:
        """The bytes stored as ``kind`` of ``source``, verified; None when none were stored.

        Raises:
            ArtifactCorrupted: when the pointer or the blob it names does not verify.
        """


class EndpointStore(ABC):
    """Endpoints, their immutable numbered configs, and the deployment revision.

    Every change (create, new config, delete) bumps the revision in the same transaction, so a
    serving process that sees the revision move knows to rebuild its plan.
    """

    @abstractmethod
    def create_endpoint(self, name: str, variants: tuple[Variant, ...]) -> Endpoint:
        """Create ``name`` with config 1. Raises AlreadyExists; Model/VersionNotFound when a
        variant names a version that does not exist."""

    @abstractmethod
    def add_config(
        self,
        name: str,
        variants: tuple[Variant, ...],
        change: ConfigChange,
        *,
        expected_current: int,
        parent: int | None,
    ) -> Endpoint:
        """Make a new config current. ``parent`` is the config a later rollback returns to.

        Raises:
            EndpointNotFound; Conflict when the current config is no longer
            ``expected_current`` (another change won the race); VersionNotFound.
        """

    @abstractmethod
    def get_endpoint(self, name: str) -> Endpoint:
        """Raises EndpointNotFound."""

    @abstractmethod
    def get_config(self, name: str, number: int) -> tuple[EndpointConfig, int | None]:
        """A config and its parent number. Raises EndpointNotFound, NotFound."""

    @abstractmethod
    def list_endpoints(self) -> list[Endpoint]:
        """All endpoints, by name."""

    @abstractmethod
    def history(self, name: str) -> list[EndpointConfig]:
        """Every config of an endpoint, oldest first. Raises EndpointNotFound."""

    @abstractmethod
    def delete_endpoint(self, name: str) -> None:
        """Remove an endpoint and its history, stop its active deployment (recorded as
        stopped because the endpoint was deleted) and remove its drift schedule (its runs
        stay), in one transaction. Raises EndpointNotFound."""

    @abstractmethod
    def endpoints_serving(self, model: str, version: int) -> list[str]:
        """Names of endpoints whose current config serves ``model:version``."""

    @abstractmethod
    def revision(self) -> int:
        """The deployment revision (grows with every endpoint change)."""


class JobStore(ABC):
    """Jobs and their state machine. Every transition is a compare-and-set: it applies only
    from the states it names, so a stop request and a worker's completion cannot both win."""

    @abstractmethod
    def create_job(self, job: Job, *, claim: str | None = None) -> Job:
        """Record a new job (status Pending) with its spec, ``parent``, ``metrics`` and
        ``model_version`` (a batch job's resolved version).

        Args:
            claim: A key (at most 64 characters) the job holds while it is active (Pending,
                InProgress, Stopping), and that no other active job may hold at the same
                time: a batch job's output location. It is released by the job's ending
                (any transition to a finished state, a dead worker's included) and taken
                back by a transition to an active state (a resumption), if free.

        Raises:
            AlreadyExists: a taken name (a tuning job's runners claim trial slots by name
                through this).
            Claimed: an active job holds ``claim`` (its ``holder``), even one created at the
                same moment by another process.
        """

    @abstractmethod
    def get_job(self, name: str) -> Job:
        """Raises JobNotFound."""

    @abstractmethod
    def list_jobs(
        self,
        *,
        model_name: str | None = None,
        parent: str | None = None,
        kind: JobKind | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Newest first; ``parent``: only the trials of that tuning job; ``kind``: only those."""

    @abstractmethod
    def heartbeat(self, names: Sequence[str], at: datetime) -> int:
        """Record that the still-active jobs ``names`` were alive ``at``; how many were. A
        store shared by many machines (PostgreSQL) stamps them with its own :meth:`clock`
        instead, so that a job's silence is measured on one clock wherever it runs."""

    @abstractmethod
    def clock(self) -> datetime:
        """Now by the store's clock (the database server's on PostgreSQL): what a job's
        heartbeat is compared with to tell how long it has been silent."""

    @abstractmethod
    def transition(
        self,
        name: str,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        *,
        pid_is: int | None = None,
        beat: bool = False,
        **fields: Any,
    ) -> Job:
        """Move ``name`` to ``to`` (setting ``fields``) if its status is one of ``allowed``
        and, with ``pid_is``, only while its run is that worker process's (a worker taken for
        dead and replaced by a resumption must not end or report the new run). ``beat``:
        stamp its heartbeat now, by :meth:`clock` (silence is measured from it).

        Raises:
            JobNotFound; Conflict naming the current status when it is not allowed, or the
            worker that runs it now; Claimed: ``to`` is active and another active job now
            holds this job's claim.
        """


class ServerRegistry(ABC):
    """The servers of this store and what each reported last: one entry per server process,
    keyed by ``(host, pid)``.

    Time is the store's own: a report is stamped with the store's clock (the database server's
    on PostgreSQL), and :meth:`list_servers` measures silence on that same clock, so servers on
    machines whose clocks disagree are judged alike. It satisfies the data plane's
    :class:`~modelyard.domain.ServerStatusSink`.
    """

    @abstractmethod
    def report(self, status: ServerStatus) -> None:
        """Record ``status`` as server ``(status.host, status.pid)``'s latest report, replacing
        any earlier one (a new process that reuses a dead one's pid replaces it), stamped now."""

    @abstractmethod
    def remove(self, host: str, pid: int) -> None:
        """Forget server ``(host, pid)`` (it shut down cleanly); nothing happens if unknown."""

    @abstractmethod
    def list_servers(self) -> list[ServerRecord]:
        """Every server's last report with its time and the seconds since, by host then pid."""
