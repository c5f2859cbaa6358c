"""``monitor quality`` through the console script: a window that ends before it starts is
refused by the feedback service's rule alone (its words, after an unknown endpoint is named),
not by a second copy of it in the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_since_after_until_is_refused_by_the_service(
    make_cli: Any, model_files: Any, tmp_path: Path
) -> None:
    cli = make_cli(tmp_path / "home")
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
        platform.endpoints.create("churn-api", {"blue": "churn:1"})
    finally:
        platform.close()
    backwards = ("--since", "1h", "--until", "2h")
    known, unknown = cli.many(
        ("monitor", "quality", "churn-api", *backwards),
        ("monitor", "quality", "no-such-endpoint", *backwards),
    )
    line = known.error_line(2)
    assert line.startswith("error: since (") and ") must be before until (" in line, line
    assert "--" not in line  # the service's words, which name no flag
    assert "no-such-endpoint" in unknown.error_line(3)
