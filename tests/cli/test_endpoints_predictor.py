"""``modelyard endpoints create|update --predictor`` and what ``endpoints show`` says about
predictors, through the installed console script against a real store.

The servers ``show`` reads are status rows in the store, written as a server process writes
them (``ServerStore.report``): two live servers that disagree and one that serves an older
config, so the view must pick and group the right reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelyard import errors
from modelyard.cli.render import to_jsonable
from modelyard.domain import ServerStatus

COMPILED_REASON = "compiled (onnxruntime tree ensemble): 2,069 predictions agree"
NATIVE_REASON = "native: 3 of 2,048 predictions differ by up to 2e-04"


def endpoint_state(cli: Any) -> Any:
    """Every endpoint with its full history."""
    platform = cli.platform()
    try:
        eps = platform.endpoints
        return {e.name: to_jsonable([e, eps.history(e.name)]) for e in eps.list_endpoints()}
    finally:
        platform.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 and churn:2 (XGBoost gbtree boosters: they compile) and dart:1 (an XGBoost dart
    booster: it does not)."""
    import xgboost as xgb

    cli = make_cli(tmp_path_factory.mktemp("predictor") / "home")
    frame = model_files.frame
    dart = xgb.train(
        {"objective": "rank:pairwise", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(frame, label=(frame["age"] > 0).astype(int)),
        num_boost_round=2,
    )
    platform = cli.platform()
    try:
        reg = platform.registry
        example = model_files.example
        reg.register("churn", model_files.xgb_json, flavor="xgboost", input_example=example)
        reg.register("churn", model_files.xgb_ubj, flavor="xgboost", input_example=example)
        reg.register("dart", dart, flavor="xgboost", input_example=example)
    finally:
        platform.close()
    return cli


def report(cli: Any, pid: int, config: int, predictors: dict[str, Any], *, behind: int = 0) -> None:
    """Write server ``web:PID``'s status as a live server ``behind`` plan revisions behind the
    current one would, serving config ``config`` of endpoint ``api`` with ``predictors``."""
    report_status(cli, pid, {"api": config}, {"api": predictors}, behind=behind)


def report_status(
    cli: Any, pid: int, endpoints: dict[str, int], predictors: dict[str, Any], *, behind: int = 0
) -> None:
    """Write server ``web:PID``'s status (see :func:`report`)."""
    from modelyard.storage.sql.engine import make_engine
    from modelyard.storage.sql.server_store import SqlServerStore

    platform = cli.platform()
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        SqlServerStore(engine).report(
            ServerStatus(
                host="web",
                pid=pid,
                url=None,
                revision=platform.servers.plan_revision() - behind,
                heartbeat_s=3600.0,  # live for the whole test
                started_at=datetime.now(UTC),
                endpoints=endpoints,
                predictors=predictors,
            )
        )
    finally:
        engine.dispose()
        platform.close()


def choice(kind: str, reason: str, row_us: float | None, native_us: float | None) -> Any:
    return {
        "kind": kind,
        "reason": reason,
        "row_us": row_us,
        "native_row_us": native_us,
        "prepare_s": 0.1,
        "cached": False,
    }


def test_create_update_and_show_the_predictors(home: Any) -> None:
    created = home(
        "endpoints", "create", "api", "--variant", "blue=churn:1", "--variant", "green=churn:2",
        "--predictor", "compiled", "--predictor", "blue=native", "--json",
    ).ok().json()  # fmt: skip
    assert [(v["name"], v["predictor"]) for v in created["config"]["variants"]] == [
        ("blue", "native"),
        ("green", "compiled"),
    ]
    home(
        "endpoints", "update", "api", "--variant", "blue=churn:2", "--variant", "green=churn:1",
        "--predictor", "green=compiled",
    ).ok()  # fmt: skip
    fast = choice("compiled", COMPILED_REASON, 9.3, 241.6)
    report(home, 1, 2, {"blue": choice("native", NATIVE_REASON, None, None), "green": fast})
    report(home, 2, 2, {"blue": choice("compiled", COMPILED_REASON, 11.0, 250.4), "green": fast})
    # Still on config 1: its word is about other models, so it must not count.
    report(home, 3, 1, {"blue": choice("compiled", "compiled (stale)", 1.0, 2.0)}, behind=1)
    text, as_json = home.many(["endpoints", "show", "api"], ["endpoints", "show", "api", "--json"])
    lines = text.ok().out.splitlines()
    blue = lines.index("  variant blue")
    assert lines[blue + 4 : blue + 8] == [
        "    predictor  auto",
        "    serving    differs between the 2 live servers on config 2:",
        f"      1 server  {COMPILED_REASON} · 11 µs/row (native 250 µs)",
        f"      1 server  {NATIVE_REASON}",
    ], text.out
    green = lines.index("  variant green")
    assert lines[green + 4 : green + 6] == [
        "    predictor  compiled",
        f"    serving    {COMPILED_REASON} · 9.3 µs/row (native 242 µs)",
    ], text.out
    assert "stale" not in text.out
    data = as_json.ok().json()
    assert [(v["name"], v["predictor"]) for v in data["config"]["variants"]] == [
        ("blue", "auto"),
        ("green", "compiled"),
    ]
    by_server = {s["server"]: s["predictors"] for s in data["servers"]}
    assert by_server["web:1"]["blue"]["reason"] == NATIVE_REASON
    assert by_server["web:2"]["green"] == fast


# id, arguments, words the one error line must contain (a refusal of the service, exit 2)
REFUSED = [
    ("dart-compiled", ["endpoints", "create", "d", "--variant", "a=churn:1", "--variant",
                       "b=dart:1", "--predictor", "b=compiled"],
     ["variant 'b' (dart:1) cannot use the compiled predictor: "
      "objective 'rank:pairwise' is not compiled"]),
    ("unknown-variant", ["endpoints", "create", "new", "--variant", "blue=churn:1",
                         "--predictor", "red=native"], ["predictors name unknown variant red"]),
]  # fmt: skip

# id, arguments, words click's last "Error:" line must contain (usage errors: exit 2)
USAGE = [
    ("bad-value", ["endpoints", "create", "new", "--variant", "blue=churn:1", "--predictor",
                   "blue=fast"], ["'--predictor'", "'fast'", "auto, native, compiled",
                                  "'blue=fast'"]),
    ("bad-bare-value", ["endpoints", "update", "ep", "--variant", "blue=churn:1",
                        "--predictor", "Compiled"], ["'Compiled'", "auto, native, compiled"]),
    ("bare-twice", ["endpoints", "create", "new", "--variant", "blue=churn:1", "--predictor",
                    "native", "--predictor", "compiled"], ["'--predictor'", "twice"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_runs(home: Any) -> dict[str, Any]:
    """Every refused command, run concurrently, with the endpoints before and after."""
    platform = home.platform()
    try:
        platform.endpoints.create("ep", {"blue": "churn:1"})
    finally:
        platform.close()
    calls = {case[0]: case[1] for case in [*REFUSED, *USAGE]}
    before = endpoint_state(home)
    results = dict(zip(calls, home.many(*calls.values()), strict=True))
    return {"before": before, "after": endpoint_state(home), "results": results}


@pytest.mark.parametrize(("case", "words"), [(c[0], c[2]) for c in REFUSED])
def test_refusals_are_one_error_line(bad_runs: dict[str, Any], case: str, words: list[str]) -> None:
    line = bad_runs["results"][case].error_line(errors.InvalidInput.exit_code)
    for word in words:
        assert word in line, f"{case}: {word!r} not in {line!r}"


@pytest.mark.parametrize(("case", "words"), [(c[0], c[2]) for c in USAGE])
def test_bad_predictor_values_are_usage_errors(
    bad_runs: dict[str, Any], case: str, words: list[str]
) -> None:
    result = bad_runs["results"][case]
    assert result.code == 2, result
    assert result.err.startswith("Usage: modelyard endpoints"), result.err
    assert "Traceback" not in result.err and result.out == ""
    error_line = result.err.strip().splitlines()[-1]
    for word in words:
        assert word in error_line, f"{case}: {word!r} not in {error_line!r}"


def test_refused_commands_change_nothing(bad_runs: dict[str, Any]) -> None:
    assert "ep" in bad_runs["before"], "the snapshot must see the endpoint"
    assert bad_runs["after"] == bad_runs["before"]


def test_show_says_when_no_server_can_tell(home: Any) -> None:
    """Rendered in-process (no live server at first, then servers that cannot answer)."""
    from modelyard.cli.render import endpoint_detail
    from modelyard.domain import Predictor

    platform = home.platform()
    try:
        solo = platform.endpoints.create(
            "solo", {"main": "churn:1"}, predictors={"main": Predictor.NATIVE}
        )
        none = endpoint_detail(solo, [])
        report_status(home, 7, {"other": 1}, {})
        elsewhere = endpoint_detail(solo, platform.servers.for_endpoint("solo"))
        report_status(home, 8, {"solo": 1}, {})  # a server that reports no predictors
        silent = endpoint_detail(solo, platform.servers.for_endpoint("solo"))
    finally:
        platform.close()
    assert "    predictor  native\n    serving    unknown: no live server\n" in none
    assert "    serving    unknown: no live server serves config 1 yet\n" in elsewhere
    assert "    serving    not reported (the server does not report predictors)\n" in silent
    assert endpoint_detail(solo).endswith("    predictor  native\n    capture    off"), (
        "no servers: no guess"
    )
