"""``modelyard endpoints … --shadow`` and percentage weights through the installed console
script, on a real store with real XGBoost models: the option, the text and JSON views of a
shadow, a guarded update carrying one, and every bad input refused with one error line and
the store unchanged."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelyard import errors
from tests.cli.test_endpoints_cli import endpoint_state

INVALID = errors.InvalidInput.exit_code


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 and churn:2; endpoints ``mirror`` and ``guarded`` (live=churn:1, dark=churn:2
    a shadow at 10%), one per test that changes or must not change them."""
    cli = make_cli(tmp_path_factory.mktemp("shadows") / "home")
    platform = cli.platform()
    try:
        example = model_files.example
        for path in (model_files.xgb_json, model_files.xgb_ubj):
            platform.registry.register("churn", path, flavor="xgboost", input_example=example)
        for name in ("mirror", "guarded"):
            platform.endpoints.create(
                name, {"live": "churn:1", "dark": "churn:2"}, shadows={"dark": 10}
            )
    finally:
        platform.close()
    return cli


def _variants(config: dict[str, Any]) -> list[tuple[str, str, float, float | None, float]]:
    return [(v["name"], v["ref"], v["weight"], v["shadow"], v["share"]) for v in config["variants"]]


def test_shadows_are_created_updated_and_shown(home: Any) -> None:
    created = home(
        "endpoints", "create", "shadowed", "--variant", "live=churn:1", "--variant",
        "dark=churn:2", "--shadow", "dark=100", "--weights", "live=100%", "--json",
    ).ok().json()  # fmt: skip
    assert _variants(created["config"]) == [
        ("live", "churn:1", 100.0, None, 100.0),
        ("dark", "churn:2", 0.0, 100.0, 0.0),
    ]
    updated = home(
        "endpoints", "update", "shadowed", "--variant", "a=churn:2", "--variant", "b=churn:1",
        "--variant", "dark=churn:1", "--weights", "a=75%,b=25%", "--shadow", "dark=50%",
    ).ok()  # fmt: skip
    assert updated.out == (
        "endpoint shadowed now at config 2 (update): a=churn:2 75%, b=churn:1 25%, "
        "dark=churn:1 shadow 50%\n"
    )
    shown, listing, hist, hist_json = (
        r.ok()
        for r in home.many(
            ["endpoints", "show", "shadowed"],
            ["endpoints", "list"],
            ["endpoints", "history", "shadowed"],
            ["endpoints", "history", "shadowed", "--json"],
        )
    )
    assert "variant dark" in shown.out
    assert (
        "share      shadow 50% (answers no request; gets a copy of 50% of the requests the "
        "production variants answer)"
    ) in shown.out, shown.out
    assert "share      75% (weight 75)" in shown.out
    assert re.search(r"│ shadowed\s+│ 2 \(update\)\s+│ a=churn:2 75%", listing.out), listing.out
    assert "dark=churn:1 shadow 50%" in listing.out
    assert "dark=churn:2 shadow 100%" in hist.out and "dark=churn:1 shadow 50%" in hist.out
    assert [[v["shadow"] for v in c["variants"]] for c in hist_json.json()] == [
        [None, 100.0],
        [None, None, 50.0],
    ]


def test_shares_that_round_to_0_or_100_are_shown_as_they_are(home: Any) -> None:
    """A shadow sampling 0.0001% gets copies and one at 99.999% misses some; a variant with
    a 0.001% share gets requests: none of them reads as 0% or 100%."""
    created = home(
        "endpoints", "create", "tiny", "--variant", "live=churn:1", "--variant", "rare=churn:1",
        "--variant", "dark=churn:2", "--weights", "live=99999,rare=1", "--shadow", "dark=0.0001%",
    ).ok()  # fmt: skip
    assert created.out == (
        "endpoint tiny now at config 1 (create): live=churn:1 99.999%, rare=churn:1 0.001%, "
        "dark=churn:2 shadow 0.0001%\n"
    )
    home(
        "endpoints", "update", "tiny", "--variant", "live=churn:1", "--variant", "dark=churn:2",
        "--shadow", "dark=99.999%",
    ).ok()  # fmt: skip
    shown = home("endpoints", "show", "tiny").ok()
    assert "share      shadow 99.999% (answers no request; gets a copy of 99.999%" in shown.out
    assert "share      100% (weight 1)" in shown.out


# id, arguments, exit code, words the error line must contain
BAD: list[tuple[str, list[str], int, list[str]]] = [
    ("sampling-too-high", ["--shadow", "dark=150"], INVALID, ["'dark'", "from 0 to 100, got 150"]),
    ("sampling-unknown-variant", ["--shadow", "red=10"], INVALID, ["unknown variant 'red'"]),
    ("only-shadows", ["--shadow", "dark=10", "--shadow", "live=10"], INVALID,
     ["a shadow cannot be the only variant", "production variant"]),
    ("weight-for-a-shadow", ["--shadow", "dark=10", "--weights", "live=1,dark=1"], INVALID,
     ["'dark' is a shadow", "takes no weight"]),
    ("percent-not-100", ["--weights", "live=90%,dark=5%"], INVALID,
     ["the weights add up to 95%, not 100%"]),
    ("percent-mixed", ["--weights", "live=90%,dark=10"], INVALID, ["mix percentages"]),
]  # fmt: skip


def test_bad_shadows_and_percentages_are_refused_changing_nothing(home: Any) -> None:
    before = endpoint_state(home)
    variants = ["--variant", "live=churn:1", "--variant", "dark=churn:2"]
    calls = [["endpoints", "update", "mirror", *variants, *extra] for _, extra, _, _ in BAD]
    calls += [
        ["endpoints", "create", "new", *variants, "--shadow", "dark=lots"],
        ["endpoints", "create", "new", *variants, "--shadow", "dark=1", "--shadow", "dark=2"],
        ["endpoints", "weights", "mirror", "dark=1"],
        ["endpoints", "weights", "mirror", "live=90%"],
    ]
    results = home.many(*calls)
    for (case, _, code, words), result in zip(BAD, results, strict=False):
        line = result.error_line(code)
        for word in words:
            assert word in line, (case, line)
    not_a_number, twice, shadow_weight, percent = results[len(BAD) :]
    assert not_a_number.code == 2 and "'--shadow'" in not_a_number.err
    assert "expected a percentage such as 10%, got 'lots'" in not_a_number.err
    assert twice.code == 2 and "'dark' is given twice" in twice.err
    assert "'dark' is a shadow" in shadow_weight.error_line(INVALID)
    assert "add up to 90%, not 100%" in percent.error_line(INVALID)
    assert endpoint_state(home) == before


def test_a_guarded_update_carries_its_shadow(home: Any) -> None:
    started = home(
        "endpoints", "update", "guarded", "--variant", "live=churn:2", "--variant",
        "dark=churn:1", "--shadow", "dark=100", "--strategy", "canary", "--json",
    ).ok().json()  # fmt: skip
    # Prepare: the old config as it was, the new variants at 0 %, the new shadow sampling.
    assert _variants(started["config"]) == [
        ("live", "churn:1", 1.0, None, 100.0),
        ("dark", "churn:2", 0.0, 10.0, 0.0),
        ("live.next", "churn:2", 0.0, None, 0.0),
        ("dark.next", "churn:1", 0.0, 100.0, 0.0),
    ]
    target = started["deployment"]["target"]
    assert [(v["name"], v["weight"], v["shadow"]) for v in target] == [
        ("live", 1.0, None),
        ("dark", 0.0, 100.0),
    ]
