"""Rounds that alternate between servers: the order of each round, and the CPU the servers
not being measured use meanwhile. Shared by ``monitoring_cost.py`` and ``guardrails_cost.py``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from serverproc import session_cpu_seconds

if TYPE_CHECKING:
    from serving import Running


def order(series: Sequence[str], round_index: int) -> list[str]:
    """The servers' order in a round: reversed every other round, and rotated, so that each
    runs before and after each other one."""
    turn = round_index // 2 % len(series)
    rotated = [*series[turn:], *series[:turn]]
    return rotated if round_index % 2 == 0 else rotated[::-1]


def idle_cpu(running: Mapping[str, Running], busy: str) -> float:
    """CPU seconds so far of every server but ``busy`` (they idle while it is measured)."""
    return sum(session_cpu_seconds(r.server.pid) for n, r in running.items() if n != busy)
