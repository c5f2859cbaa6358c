"""``--limit`` of every listing command: click reads it as an int (text is a usage error), and
the range is the service's rule, so a limit out of range ends as the service's InvalidInput
does, with one ``error:`` line and exit 2, as from Python."""

from __future__ import annotations

from tests.cli.conftest import Cli

LISTINGS = [
    ("jobs", "list"),
    ("tune", "list"),
    ("deployments", "list"),
    ("alarms", "history", "slow"),
    ("monitor", "runs", "api"),
]


def test_a_limit_out_of_range_is_the_services_refusal(cli: Cli) -> None:
    for command in LISTINGS:
        for given in ("0", "-1", "10001", "99999999999999999999999999999"):
            line = cli(*command, "--limit", given).error_line(2)
            assert line == f"error: limit must be from 1 to 10,000, got {given}", (command, line)
        text = cli(*command, "--limit", "ten")
        assert text.code == 2 and "Usage:" in text.err and "'--limit'" in text.err, text
