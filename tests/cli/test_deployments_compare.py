"""``modelyard deployments compare`` and ``modelyard deployments promote`` as processes on a
real store: a classifier shadow captured (by the servers' capture writer, real models behind
it) agreeing with production on 90 of 100 requests, metric minutes written by the servers'
minute series; JSON and text shapes, the window options, and every refusal with one error line
and its exit code, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from modelyard.domain import CaptureConfig
from tests.services.shadow_parts import Capturer, mirrored, register_models, write_minutes

ALL = CaptureConfig.parse(100)


def history(cli: Any, endpoint: str) -> list[Any]:
    platform = cli.platform()
    try:
        return [(c.number, c.change, c.variants) for c in platform.endpoints.history(endpoint)]
    finally:
        platform.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any) -> Iterator[Any]:
    """Endpoints ``api`` (main clf:1, shadow clf:2, 100 requests captured on both, 90 agreeing,
    and a minute of metrics), ``promo`` (the same shadow, for promote), ``plain`` (no shadow)
    and ``dark`` (a shadow that captures nothing)."""
    cli = make_cli(tmp_path_factory.mktemp("deployments-compare") / "home")
    platform = cli.platform()
    capturer = Capturer(platform, cli.home / "scratch")
    try:
        register_models(platform)
        for name, shadow_capture in (("api", ALL), ("promo", ALL), ("dark", CaptureConfig())):
            platform.endpoints.create(
                name,
                {"main": "clf:1", "shadow": "clf:2"},
                capture={"main": ALL, "shadow": shadow_capture},
                shadows={"shadow": 100.0},
            )
        platform.endpoints.create("plain", {"main": "clf:1"}, capture={"main": ALL})
        rng = np.random.default_rng(21)
        pool = rng.normal(size=(2000, 2))
        same = capturer.predict("clf:1", pool) == capturer.predict("clf:2", pool)
        rows = pool[np.concatenate([np.flatnonzero(same)[:90], np.flatnonzero(~same)[:10]])]
        mirrored(capturer, "api", rows, production=("main", "clf:1"), shadow=("shadow", "clf:2"))
        write_minutes(platform, "api", "main", [0.003] * 100, 1, worker="w1")
        write_minutes(platform, "api", "shadow", [0.02] * 100, 5, worker="w1")
    finally:
        capturer.close()
        platform.close()
    yield cli


def test_compare_prints_json_and_text(home: Any) -> None:
    data = home("deployments", "compare", "api", "--json").ok().json()
    assert (data["shadow"], data["production"], data["pairs"]) == ("shadow", ["main"], 100)
    assert (data["status"], data["task"]) == ("ok", "classification")
    assert data["agreement"]["rate"] == 0.9 and data["agreement"]["agreed"] == 90
    assert data["agreement"]["disagreements"] == [
        {"production": "1", "shadow": "0", "count": 10, "share": 0.1}
    ]
    assert data["distribution"]["test"] == "jensen_shannon"
    serving = data["serving"]
    assert (serving["production"]["requests"], serving["production"]["errors"]) == (100, 1)
    assert (serving["shadow"]["requests"], serving["shadow"]["errors"]) == (100, 5)
    assert serving["shadow"]["error_rate"] == 0.05
    assert [p["variant"] for p in data["quality"]] == ["main", "shadow"]
    assert data["labelled"] == 0 and all(p["rows"] == 0 for p in data["quality"])

    text = home("deployments", "compare", "api", "--shadow", "shadow").ok().out
    assert "Shadow shadow (clf:2) against production main of api" in text
    assert "agreement     90.00% (90 of 100 pairs predict the same class)" in text
    assert "1 → 0: 10 (10.00%)" in text
    assert "production       100       1       1.00%" in text
    assert "shadow           100       5       5.00%" in text

    # A stricter bar, and a window that ends before anything was captured.
    strict = home("deployments", "compare", "api", "--min-pairs", "500", "--json").ok().json()
    assert strict["status"] == "insufficient_data" and strict["agreement"]["rate"] is None
    assert any("fewer than the 500 needed: no agreement rate" in n for n in strict["notes"])
    old = home(
        "deployments", "compare", "api", "--since", "2020-01-01", "--until", "2020-01-02", "--json"
    ).ok().json()  # fmt: skip
    assert (old["pairs"], old["since"], old["status"]) == (
        0, "2020-01-01T00:00:00+00:00", "insufficient_data",
    )  # fmt: skip
    windowed = home("deployments", "compare", "api", "--window", "2h", "--json").ok().json()
    assert windowed["pairs"] == 100


def test_compare_refusals_name_the_problem(home: Any) -> None:
    cases = [
        (["nowhere"], 3, "endpoint 'nowhere'"),
        (["plain"], 2, "has no shadow variant to compare with production: update the endpoint"),
        (["api", "--shadow", "main"], 2, "production variant, not a shadow"),
        (["api", "--shadow", "blue"], 3, "no variant 'blue'"),
        (["dark"], 4, "agreement needs both variants' captured predictions"),
        (["api", "--since", "1h", "--until", "2h"], 2, "window is empty"),
        (["api", "--window", "soon"], 2, "not a duration: 'soon'"),
        (["api", "--window", "1ms"], 2, "the window must be at least a minute"),
    ]
    for args, code, message in cases:
        line = home("deployments", "compare", *args).error_line(code)
        assert message in line, (args, line)
    both = home("deployments", "compare", "api", "--window", "1h", "--since", "2h")
    assert both.code == 2 and "give --window or --since, not both" in both.err


def test_promote_makes_the_shadow_production(home: Any) -> None:
    before = history(home, "plain")
    line = home("deployments", "promote", "plain").error_line(2)
    assert "no shadow variant to promote" in line
    assert history(home, "plain") == before

    promoted = home("deployments", "promote", "promo", "--json").ok().json()
    variants = promoted["config"]["variants"]
    assert [(v["name"], v["ref"], v["weight"], v["shadow"]) for v in variants] == [
        ("shadow", "clf:2", 1.0, None)
    ]
    assert promoted["config"]["change"] == "promote"
    # No shadow any more: nothing left to compare or promote.
    gone = home("deployments", "compare", "promo").error_line(2)
    assert "'promo' has no shadow variant" in gone
    again = home("deployments", "promote", "promo", "--variant", "shadow").error_line(2)
    assert "'promo' has no shadow variant to promote" in again
    assert len(history(home, "promo")) == 2  # created, promoted: the refusals wrote nothing
