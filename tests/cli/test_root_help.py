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


def test_a_commands_summary_is_one_line_in_its_groups_list(make_cli: Any, tmp_path: Any) -> None:
    """A command's summary (its help's first paragraph) is listed as one line when the terminal
    is wide enough: the docstring's own line breaks were kept, so `deployments --help` broke
    `compare`'s summary after "the same" and `promote`'s after "production variant and"."""
    cli = make_cli(tmp_path / "home")
    shown = cli("deployments", "--help", env={"COLUMNS": "400"}).ok().out
    assert "both made for the same requests, how far apart" in shown
    assert "the only production variant and takes all the traffic" in shown
    root = cli("--help", env={"COLUMNS": "400"}).ok().out
    assert "blue/green (90/10) on an endpoint, serve it" in root


def test_a_commands_help_breaks_no_sentence_where_its_source_wrapped(
    make_cli: Any, tmp_path: Any
) -> None:
    """Every paragraph of a command's help is one line for the terminal to wrap: `endpoints
    feedback --help` broke the command it names after "`modelyard monitor" at any width."""
    shown = (
        make_cli(tmp_path / "home")("endpoints", "feedback", "--help", env={"COLUMNS": "400"})
        .ok()
        .out
    )
    assert "`modelyard monitor quality NAME` then scores them. A later label" in shown
