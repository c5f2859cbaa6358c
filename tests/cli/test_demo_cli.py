"""``modelyard demo --exit``: trains, registers, moves the production alias, loads it back,
deploys both versions blue/green on an endpoint, serves it in-process and sends traffic."""

from __future__ import annotations

import io
import re
import socket
from typing import Any

from rich.console import Console

from modelyard.errors import CannotListen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_runs_to_the_end_and_reruns(cli: Any) -> None:
    out = cli("demo", "--exit", "--port", str(free_port())).ok().out
    for text in (
        "Registered breast-cancer:1",
        "Registered breast-cancer:2",
        "Alias production → breast-cancer:1",
        "Moved alias production from breast-cancer:1 to breast-cancer:2",
        "Loaded breast-cancer@production (breast-cancer:2)",
        "predictions equal the in-memory model's",
        "Endpoint breast-cancer at config 1 (create): blue=breast-cancer:1 (90%), "
        "green=breast-cancer:2 (10%)",
        "Traffic: 300 requests to endpoint breast-cancer",
    ):
        assert text in out, (text, out)
    assert "auc" in out and "accuracy" in out  # the registry table
    assert "Ctrl-C" not in out, "--exit must not offer to keep serving"
    # The traffic table: variant │ model version │ requests │ share % │ p50 ms │ p99 ms
    rows = {
        m[1]: (m[2], int(m[3]), float(m[4]), float(m[5]), float(m[6]))
        for m in re.finditer(
            r"│ (blue|green)\s+│ (breast-cancer:\d)\s+│\s+(\d+) │\s+([\d.]+) │\s+([\d.]+) │"
            r"\s+([\d.]+) │",
            out,
        )
    }
    assert set(rows) == {"blue", "green"}, out
    assert (rows["blue"][0], rows["green"][0]) == ("breast-cancer:1", "breast-cancer:2")
    assert rows["blue"][1] + rows["green"][1] == 300
    assert rows["blue"][1] > rows["green"][1] > 0, rows  # 90/10; all-blue has odds 0.9**300
    assert all(0 < p50 <= p99 for _, _, _, p50, p99 in rows.values())

    # A second run (in-process, to save a start-up) adds versions instead of failing, and
    # updates the endpoint: blue is the previous production version, green the new one.
    from modelyard.demo import deploy, run_demo

    platform = cli.platform()
    try:
        console = Console(file=io.StringIO(), width=120)
        result = run_demo(platform, console)
        endpoint = deploy(platform, console, result)
        versions = platform.registry.list_versions("breast-cancer")
    finally:
        platform.close()
    assert [v.version for v in result.versions] == [3, 4]
    assert result.production.version == 4 and result.max_abs_diff == 0.0
    assert result.previous_production == 2
    assert [v.aliases for v in versions] == [(), (), (), ("production",)]
    assert versions[3].metrics["auc"] > versions[2].metrics["auc"]
    assert "(was breast-cancer:2)" in console.file.getvalue()
    config = endpoint.config
    assert (config.number, config.change.value) == (2, "update")
    assert [(v.name, v.model_ref, v.weight, v.requested) for v in config.variants] == [
        ("blue", "breast-cancer:2", 0.9, "breast-cancer:2"),
        ("green", "breast-cancer:4", 0.1, "breast-cancer@production"),
    ]


def test_demo_refuses_a_port_in_use(cli: Any) -> None:
    # Exit 9 (CannotListen), as serve on a port in use: it was 2, a bad input.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = cli("demo", "--exit", "--port", str(port)).error_line(CannotListen.exit_code)
    assert line == f"error: port {port} is in use; pass --port"
