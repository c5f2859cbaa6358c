"""``monitor quality`` through the console script: a window that ends before it starts is
refused by the feedback service's rule alone (its words, after an unknown endpoint is named),
not by a second copy of it in the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.conftest import serve_churn


def test_since_after_until_is_refused_by_the_service(
    make_cli: Any, model_files: Any, tmp_path: Path
) -> None:
    cli = serve_churn(make_cli(tmp_path / "home"), model_files, "churn-api")
    backwards = ("--since", "1h", "--until", "2h")
    known, unknown = cli.many(
        ("monitor", "quality", "churn-api", *backwards),
        ("monitor", "quality", "no-such-endpoint", *backwards),
    )
    line = known.error_line(2)
    assert line.startswith("error: since (") and ") must be before until (" in line, line
    assert "--" not in line  # the service's words, which name no flag
    assert "no-such-endpoint" in unknown.error_line(3)
