"""Category counts of one column: deterministic, exactly mergeable and bounded.

Values are compared as text (``str(value)``). Each category has a stable 64-bit hash (the first
8 bytes of its UTF-8 text's BLAKE2b digest). The sketch keeps the :data:`KEEP` categories with
the smallest hashes, with their exact counts, plus the exact total and missing counts: a
uniform sample of the categories that does not depend on the order of the rows.

Merging keeps the smallest hashes of both sides. A category kept by the merged sketch is among
the smallest hashes of each part that holds it, so its merged count is exact: merging the
sketches of two halves gives the sketch of the whole. When a column has more categories than
:data:`KEEP`, ``overflow`` is set, and comparisons look only at categories below both sides'
cut (see ``pairs.CategoricalPair``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: The most categories a sketch keeps.
KEEP = 1024


def category_hash(text: str) -> int:
    """The stable 64-bit hash that orders categories (the same on every machine and run)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Frequencies:
    """The category sketch of one column (see the module docstring).

    Attributes:
        categories: Kept categories as ``(hash, text, count)``, ordered by ``(hash, text)``.
        total: Present (non-missing) values, all categories included.
        missing: None, NaN and NA values.
        overflow: Some categories were dropped (the column has more than ``keep``).
        keep: The most categories kept.
    """

    categories: tuple[tuple[int, str, int], ...]
    total: int
    missing: int
    overflow: bool = False
    keep: int = KEEP

    @classmethod
    def of(cls, column: pd.Series, keep: int = KEEP) -> Frequencies:
        """Count the categories of ``column`` (a pandas Series of any type)."""
        present = column.dropna()
        if present.dtype == object:
            # Mixed Python objects (1, 1.0 and True hash alike): compare their text, whatever
            # the order they come in.
            present = present.astype(str)
        counts: dict[str, int] = {}
        # Count raw values first (fast, in C), then merge those with the same text.
        for value, count in present.value_counts(sort=False).items():
            text = str(value)
            counts[text] = counts.get(text, 0) + int(count)
        ranked = sorted((category_hash(text), text, count) for text, count in counts.items())
        return cls(
            categories=tuple(ranked[:keep]),
            total=len(present),
            missing=len(column) - len(present),
            overflow=len(ranked) > keep,
            keep=keep,
        )

    def merge(self, other: Frequencies) -> Frequencies:
        """The sketch of both sketches' rows together.

        Raises:
            ValueError: the two sketches keep different numbers of categories.
        """
        if self.keep != other.keep:
            raise ValueError(f"cannot merge frequencies of {self.keep} and {other.keep} categories")
        counts: dict[tuple[int, str], int] = {}
        for hashed, text, count in (*self.categories, *other.categories):
            counts[hashed, text] = counts.get((hashed, text), 0) + count
        ranked = sorted(counts.items())
        return Frequencies(
            categories=tuple((h, t, c) for (h, t), c in ranked[: self.keep]),
            total=self.total + other.total,
            missing=self.missing + other.missing,
            overflow=self.overflow or other.overflow or len(ranked) > self.keep,
            keep=self.keep,
        )

    @property
    def rows(self) -> int:
        """All values, missing ones included."""
        return self.total + self.missing

    @property
    def cut(self) -> tuple[int, str] | None:
        """The largest kept ``(hash, text)`` when categories were dropped, else None (all
        categories are kept)."""
        if not self.overflow or not self.categories:
            return None
        last = self.categories[-1]
        return last[0], last[1]

    def counts(self) -> dict[str, int]:
        """Kept categories and their exact counts."""
        return {text: count for _, text, count in self.categories}

    def distinct(self) -> int:
        """Distinct categories: exact without overflow, else the k-minimum-values estimate
        ``(keep - 1) * 2**64 / largest kept hash``."""
        if not self.overflow:
            return len(self.categories)
        return int((self.keep - 1) * 2.0**64 / max(self.categories[-1][0], 1))


def new_rows(baseline: Frequencies, current: Frequencies) -> tuple[int, int]:
    """How many of ``current``'s rows hold a category ``baseline`` never saw, at least and at
    most, for a ``baseline`` that kept all of its categories (one without a cut).

    Exact when ``current`` kept all of its own, or when no baseline category lies beyond its
    cut (every row there is then new). Otherwise the rows beyond the cut may hold the
    baseline's categories there or new ones: at most all of them are new, and at least one
    row for each category there that the baseline lacks (``current``'s distinct count,
    estimated from its kept hashes, less a tenth, about three standard errors; less its kept
    categories and the baseline's beyond the cut).
    """
    cut = current.cut
    seen = baseline.counts()
    kept = current.counts()
    new_kept = sum(n for text, n in kept.items() if text not in seen)
    if cut is None:
        return new_kept, new_kept
    rest = current.total - sum(kept.values())  # rows of categories beyond the cut
    baselines_beyond = sum(1 for h, text, _ in baseline.categories if (h, text) > cut)
    if not baselines_beyond:
        return new_kept + rest, new_kept + rest
    distinct_beyond = int(0.9 * current.distinct()) - len(kept)
    least = min(rest, max(0, distinct_beyond - baselines_beyond))
    return new_kept + least, new_kept + rest
