"""Data-quality checks of a current profile against a baseline profile.

- ``missing_column``: a baseline column the current data lacks;
- ``extra_column``: a current column the baseline does not know;
- ``type_change``: a column that held numbers now holds categories, or the reverse;
- ``completeness``: the share of present values fell by more than ``completeness_drop``;
- ``new_categories``: categorical values outside the baseline's domain (checked only when the
  baseline kept all its categories, so its domain is known exactly).

Checks that compare shares need ``min_rows`` current rows, like drift tests: a window of three
rows says nothing about completeness; a window of none says nothing at all.
"""

from __future__ import annotations

from modelyard.domain.drift import DriftConfig, QualityIssue
from modelyard.monitoring.frequencies import Frequencies, category_hash, new_rows
from modelyard.monitoring.profile import ColumnProfile, Profile

#: New categories listed by name in an issue (the count covers all of them).
SHOWN_CATEGORIES = 5


def quality_issues(baseline: Profile, current: Profile, config: DriftConfig) -> list[QualityIssue]:
    """Every issue found, column by column in the baseline's order, then extra columns; none
    when the current data has no rows (an empty window has no columns to speak of)."""
    issues: list[QualityIssue] = []
    if current.row_count == 0:
        return issues
    known = set(current.columns)
    for column in baseline.column_profiles:
        if column.name not in known:
            issues.append(
                QualityIssue(
                    "missing_column",
                    column.name,
                    f"column {column.name!r} of the baseline is missing from the current data",
                )
            )
            continue
        issues.extend(_column_issues(column, current.column(column.name), config))
    expected = set(baseline.columns)
    for name in current.columns:
        if name not in expected:
            issues.append(
                QualityIssue(
                    "extra_column",
                    name,
                    f"column {name!r} is not in the baseline",
                )
            )
    return issues


def _column_issues(
    base: ColumnProfile, now: ColumnProfile, config: DriftConfig
) -> list[QualityIssue]:
    issues: list[QualityIssue] = []
    if base.kind != now.kind and base.present and now.present:
        issues.append(
            QualityIssue(
                "type_change",
                base.name,
                f"column {base.name!r} held {base.kind} values and now holds {now.kind} values",
                base.kind,
                now.kind,
            )
        )
    if now.rows < config.min_rows or not base.rows:
        return issues
    before, after = base.present / base.rows, now.present / now.rows
    if before - after > config.completeness_drop:
        issues.append(
            QualityIssue(
                "completeness",
                base.name,
                f"column {base.name!r} has values in {after:.1%} of rows, "
                f"against {before:.1%} in the baseline",
                round(before, 6),
                round(after, 6),
            )
        )
    if base.categories is not None and now.categories is not None and not base.categories.overflow:
        issue = _new_categories(base.name, base.categories, now.categories)
        if issue is not None:
            issues.append(issue)
    return issues


def _new_categories(name: str, base: Frequencies, now: Frequencies) -> QualityIssue | None:
    """The issue of ``now``'s values outside ``base``'s domain (``base`` keeps all its
    categories). When ``now`` kept only a sample of its categories (those below its cut), the
    rows beyond the cut are new unless they hold a baseline category beyond it: without one,
    the share is exact; with one, it is at least what ``frequencies.new_rows`` says must be
    new (the drift test's new bin holds as many) and at most those and every row beyond the
    cut. The count of new values is then an estimate: the sketch's
    distinct count less the baseline's categories present (all in the sample), or, with
    baseline categories beyond the cut, the sample's share of new categories (the kept ones
    are a uniform sample of all, by hash) of the sketch's distinct count."""
    seen = base.counts()
    counts = now.counts()
    new = {t: n for t, n in counts.items() if t not in seen}
    cut = now.cut
    beyond = cut is not None and any((category_hash(t), t) > cut for t in seen)
    rows, most = new_rows(base, now)  # the drift test's new bin holds the same ``rows``
    if not rows:
        return None
    ranked = sorted(new, key=lambda t: (-new[t], t))
    values = f"{len(ranked)}"
    if cut is not None:
        if beyond:
            estimate = round(now.distinct() * len(ranked) / len(counts))
        else:
            estimate = now.distinct() - sum(1 for t in seen if counts.get(t, 0))
        values = f"about {max(len(ranked), estimate):,}"
    present_rows = max(now.total, 1)
    share = f"{rows / present_rows:.1%}"
    if most != rows:  # the rows beyond the cut: the baseline's categories there, or new ones
        share = f"at least {share} (at most {min(most / present_rows, 1.0):.1%})"
    listed = ", ".join(repr(t) for t in ranked[:SHOWN_CATEGORIES])
    more = ""
    if len(ranked) > SHOWN_CATEGORIES or (cut is not None and ranked):
        more = " and more" if cut is not None else f" and {len(ranked) - SHOWN_CATEGORIES} more"
    named = f": {listed}{more}" if ranked else ""  # none in the sample, all beyond its cut
    return QualityIssue(
        "new_categories",
        name,
        f"column {name!r} has {values} value(s) outside the baseline's domain in {share} of "
        f"its present rows{named}",
        len(seen),
        ranked[:SHOWN_CATEGORIES],
    )
