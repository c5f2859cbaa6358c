"""``modelyard demo --exit``: trains, registers, moves the production alias, loads it back."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console


def test_demo_runs_to_the_end_and_reruns(cli: Any) -> None:
    out = cli("demo", "--exit").ok().out
    for text in (
        "Registered breast-cancer:1",
        "Registered breast-cancer:2",
        "Alias production → breast-cancer:1",
        "Moved alias production from breast-cancer:1 to breast-cancer:2",
        "Loaded breast-cancer@production (breast-cancer:2)",
        "predictions equal the in-memory model's",
    ):
        assert text in out, (text, out)
    assert "auc" in out and "accuracy" in out  # the registry table

    # A second run (in-process, to save a start-up) adds versions instead of failing.
    from modelyard.demo import run_demo

    platform = cli.platform()
    try:
        console = Console(file=io.StringIO(), width=120)
        result = run_demo(platform, console)
        versions = platform.registry.list_versions("breast-cancer")
    finally:
        platform.close()
    assert [v.version for v in result.versions] == [3, 4]
    assert result.production.version == 4 and result.max_abs_diff == 0.0
    assert [v.aliases for v in versions] == [(), (), (), ("production",)]
    assert versions[3].metrics["auc"] > versions[2].metrics["auc"]
    assert "(was breast-cancer:2)" in console.file.getvalue()
