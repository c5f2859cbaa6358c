"""The Runtime interface: how one model format ("flavor") is saved, loaded and predicted.

A runtime never touches the stores. The registry service hands it a source (a file or folder
the user gave, or an in-memory model object) and an empty staging folder; the runtime validates
the source and writes the canonical package files there. Later the service hands it a folder
holding exactly those files (already verified against their checksums) to load.

Third-party runtimes register under the ``modelyard.runtimes`` entry-point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelyard.domain import Signature, Trust

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True, slots=True)
class SavedModel:
    """What :meth:`Runtime.save` wrote.

    Attributes:
        model_format: The on-disk format inside the flavor (``"ubj"``, ``"skops"``, ``"pickle"``…);
            stored on the version and handed back to :meth:`Runtime.load`.
        trust: The trust this package needs to be loaded (a pickle needs ``pickle=True``,
            a pyfunc model ``user_code=True``). Recorded on the version.
        options: Small JSON-able facts the loader needs (an entry point, an input name).
    """

    model_format: str
    trust: Trust
    options: dict[str, Any]


class LoadedModel(ABC):
    """A model in memory, ready to predict."""

    @abstractmethod
    def predict(self, data: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Predict on a 2-D numeric array or a DataFrame (one row per sample).

        Returns:
            A numpy array whose first dimension equals the number of rows.

        Raises:
            SignatureMismatch: when the data cannot be fed to the model (wrong width, types).
        """

    def signature_hint(self) -> Signature | None:
        """The input signature the model itself knows (feature count, names), if any."""
        return None

    def output_labels(self) -> tuple[Any, ...] | None:
        """The labels a classifier that predicts labels itself can answer (a scikit-learn
        classifier's ``classes_``); None for other models, or when the model does not say."""
        return None

    def stored_feature_name(self, name: str) -> str:
        """The name the model's library keeps for a feature given as ``name`` (LightGBM writes
        spaces as underscores), to match a frame's columns to :meth:`signature_hint`'s names."""
        return name

    def unload(self) -> None:  # noqa: B027 - optional hook, most models need nothing
        """Release resources (sessions, threads). Called once, after the last predict."""


class Runtime(ABC):
    """One model format. Implementations are stateless; one file each under ``runtimes/``."""

    flavor: ClassVar[str]

    @abstractmethod
    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        """Validate ``source`` and write this flavor's canonical package files into ``dest``.

        Args:
            source: A path to a model file or folder in this flavor's native format, or an
                in-memory model object of this flavor's library.
            dest: An existing, empty folder to write into.
            trust: What the user explicitly allowed (``pickle``, ``user_code``, skops ``types``).

        Returns:
            The format written and the trust loading it will require.

        Raises:
            InvalidModelFile: the source is not a model of this flavor (the message names it).
            UnsafeModelFormat: the source needs trust the user did not grant (a pickle).
        """

    @abstractmethod
    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        """Load a package that :meth:`save` wrote into ``path``.

        Raises:
            UnsafeModelFormat: when ``saved.trust`` does not cover what the package needs.
            InvalidModelFile: when the files cannot be read as a model.
        """
