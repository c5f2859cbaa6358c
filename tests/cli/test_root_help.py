"""The root ``--help`` lists every sub-command under its own name (they are built lazily, and
a sub-app that did not name itself was once listed with an empty name)."""

from __future__ import annotations

from typing import Any

from modelyard.cli.main import _SUBCOMMANDS


def test_help_lists_every_command_by_name(make_cli: Any, tmp_path: Any) -> None:
    shown = make_cli(tmp_path / "home")("--help", env={"COLUMNS": "200"}).ok().out
    rows = [line.strip("│ ").split(" ", 1) for line in shown.splitlines() if line.startswith("│ ")]
    listed = [parts[0] for parts in rows if len(parts) == 2 and parts[1].startswith(" ")]
    assert [name for name in listed if not name.startswith("-")] == list(_SUBCOMMANDS)
