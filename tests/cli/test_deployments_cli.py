"""``modelyard endpoints update … --strategy``, ``modelyard deployments …`` and ``modelyard
controller --once`` as processes on a real store with real XGBoost models: JSON and text
shapes, a deployment moved by controller passes, steering, and every bad input refused with
one error line and its exit code, changing nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import SCRIPT, CliResult

ROOT = Path(__file__).resolve().parents[2]


class Run:
    """Runs the console script with MODELYARD_HOME set to ``cli.home``."""

    def __init__(self, cli: Any) -> None:
        self.cli = cli

    def __call__(self, *args: str) -> CliResult:
        proc = subprocess.run(
            [str(SCRIPT), *args],
            env=self.cli.env(),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        return CliResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)

    def state(self, endpoint: str) -> tuple[Any, ...]:
        """The endpoint's configs and deployments, read in-process."""
        platform = self.cli.platform()
        try:
            history = platform.endpoints.history(endpoint)
            configs = [(c.number, c.change, c.variants) for c in history]
            return configs, platform.deployments.list_deployments(endpoint)
        finally:
            platform.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Run:
    """churn:1 and churn:2 (the same XGBoost file) and endpoints ``api`` and ``quiet`` serving
    churn:1 (one test each: xdist may run them in either order)."""
    cli = make_cli(tmp_path_factory.mktemp("deployments") / "home")
    platform = cli.platform()
    try:
        for _ in range(2):
            platform.registry.register(
                "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
            )
        for name in ("api", "quiet"):
            platform.endpoints.create(name, {"main": "churn:1"})
    finally:
        platform.close()
    return Run(cli)


def test_bad_deployments_are_refused_and_change_nothing(home: Run) -> None:
    before = home.state("quiet")
    cases = [
        (["--strategy", "linear", "--step", "30%"], 2, "equal steps of 30% never reach 100%"),
        (["--strategy", "linear", "--step", "120%"], 2, "must be at most 100%, got 120%"),
        (["--strategy", "canary", "--alarm", "nope"], 3, "alarm 'nope' does not exist"),
        (["--strategy", "canary", "--wait", "10m", "--bake", "10m", "--max-duration", "15m"],
         2, "maximum duration (15m) must be longer than the waits and the bake together (20m)"),
        (["--strategy", "all-at-once", "--wait", "5m"], 2, "all-at-once update takes no"),
        (["--strategy", "sideways"], 2, "unknown deployment strategy 'sideways'"),
        (["--weights", "blue=1", "--strategy", "canary"], 2, "weights name unknown variant blue"),
        # A zero duration is read as zero, and the service names the field it does not fit
        # (once: "not a duration: '0'", and "a duration must be longer than zero" for any).
        (["--strategy", "canary", "--wait", "0"], 2, "the wait must be longer than zero"),
        (["--strategy", "canary", "--max-duration", "0h"], 2,
         "the maximum duration must be longer than zero"),
        (["--strategy", "blue-green", "--bake", "0h"], 2,
         "a blue-green deployment needs a bake longer than zero"),
    ]  # fmt: skip
    for extra, code, message in cases:
        line = home("endpoints", "update", "quiet", "--variant", "main=churn:2", *extra)
        assert message in line.error_line(code), (extra, line.err)
    usage = home("endpoints", "update", "quiet", "--variant", "main=churn:2", "--wait", "5m")
    assert usage.code == 2 and "go with --strategy" in usage.err
    # Usage errors (exit 2) of the options' readers, each naming the value.
    refused = [
        (("--strategy", "canary", "--canary-size", "ten"), "expected a percentage such as 10%"),
        # float() reads it as 20
        (("--strategy", "linear", "--step", "\u0662\u0660"),
         "expected a percentage such as 10%, got '\u0662\u0660'"),
        (("--strategy", "canary", "--wait", "5"),
         "Invalid value for '--wait': not a duration: '5'"),
        # it was read as 5 minutes
        (("--strategy", "canary", "--wait", "5M"),
         "Invalid value for '--wait': not a duration: '5M'; units are lower-case"),
    ]  # fmt: skip
    for extra, words in refused:
        result = home("endpoints", "update", "quiet", "--variant", "main=churn:2", *extra)
        assert result.code == 2, (extra, result.err)
        assert words in result.err, (extra, result.err)
    # The config it serves: nothing to deploy (a canary once compared churn:1 with itself).
    for extra in ([], ["--strategy", "canary"], ["--strategy", "all-at-once"]):
        same = home("endpoints", "update", "quiet", "--variant", "main=churn:1", *extra).ok()
        assert same.out.startswith(
            "endpoint quiet already serves this config (config 1: main=churn:1 100%); nothing "
            "changed"
        ), (extra, same.out)
        said = home("endpoints", "update", "quiet", "--variant", "main=churn:1", *extra, "--json")
        assert said.ok().json()["changed"] is False, extra  # scripts can tell too
    assert "has no earlier config" in home("deployments", "rollback", "quiet").error_line(2)
    assert "has no deployment" in home("deployments", "show", "quiet").error_line(3)
    # Listed as having no deployment, with exit 0, before.
    assert "endpoint name" in home("deployments", "list", "bad name!").error_line(2)
    assert "'nowhere'" in home("deployments", "list", "--endpoint", "nowhere").error_line(3)
    assert home.state("quiet") == before


def test_a_canary_started_moved_steered_and_rolled_back(home: Run) -> None:
    started = home(
        "endpoints", "update", "api", "--variant", "main=churn:2", "--strategy", "canary",
        "--canary-size", "25%", "--wait", "1m", "--bake", "0", "--min-requests", "5", "--json",
    ).ok().json()  # fmt: skip
    deployment = started["deployment"]
    assert deployment["state"] == "RUNNING" and deployment["plan"]["strategy"] == "canary"
    assert [s["percent"] for s in deployment["plan"]["steps"]] == [0.0, 25.0]
    assert {v["name"]: v["share"] for v in started["config"]["variants"]} == {
        "main": 100.0,
        "main.next": 0.0,
    }
    again = home("endpoints", "update", "api", "--variant", "main=churn:2", "--strategy", "linear")
    assert f"has deployment {deployment['id']} running (canary" in again.error_line(4)

    moved = home("controller", "--once").ok()
    assert f"deployment {deployment['id']}: advance: step 1 (prepare) passed" in moved.out
    listed = home("deployments", "list", "--json").ok().json()
    assert [(d["id"], d["state"], d["step"]) for d in listed] == [(deployment["id"], "RUNNING", 1)]
    assert "RUNNING" in home("deployments", "list").ok().out
    # One endpoint's, by NAME (as `show NAME`) or --endpoint; another's is empty.
    for only in (["api"], ["--endpoint", "api"], ["api", "--endpoint", "api"]):
        mine = home("deployments", "list", *only, "--json").ok().json()
        assert [d["id"] for d in mine] == [deployment["id"]]
    # No such endpoint, and no deployment of one left: said, as capture list says it (exit 3).
    assert "'elsewhere' does not exist" in home("deployments", "list", "elsewhere").error_line(3)
    both = home("deployments", "list", "api", "--endpoint", "other")
    assert "give the endpoint once, as NAME or --endpoint" in both.error_line(2)

    assert "paused at step 2/2 shift 25%" in home("deployments", "pause", "api").ok().out
    assert "was paused already" in home("deployments", "pause", "api").ok().out
    shown = home("deployments", "show", "api", "--json").ok().json()
    assert shown["state"] == "PAUSED"
    assert [s["kind"] for s in shown["history"]] == ["prepare", "shift"]
    assert [x["action"] for x in shown["decisions"]] == ["start", "advance", "pause"]
    servers = {c["name"]: c for c in shown["decisions"][1]["checks"]}["servers"]
    assert servers["verdict"] == "pass" and servers["values"]["live"] == 0
    text = home("deployments", "show", "api").ok().out
    assert "Deployment 1 of api" in text and "main=churn:2 (as main.next)" in text
    assert "2. shift 25% for 1m: config 3" in text and "pass         servers" in text
    assert "resumed at step 2/2" in home("deployments", "resume", "api").ok().out

    back = home("deployments", "rollback", "api").ok().out
    assert "ROLLED_BACK: rolled back by hand at step 2 (shift 25%)" in back
    assert "now at config 4 (rollback): main=churn:1 100%" in back
    assert "no active deployment" in home("deployments", "stop", "api").error_line(4)
    assert "nothing to decide" in home("controller", "--once").ok().out


def test_an_endpoint_rollback_after_a_deployment_succeeded_says_so(
    tmp_path: Path, make_cli: Any, model_files: Any
) -> None:
    """`endpoints rollback` right after a deployment completed put the old model back, but
    `deployments show` went on saying SUCCEEDED (`deployments rollback` said ROLLED_BACK)."""
    from datetime import UTC, datetime, timedelta

    from modelyard.domain.deployment_decisions import Action
    from modelyard.domain.metrics import SeriesRow
    from modelyard.storage.sql.engine import make_engine
    from modelyard.storage.sql.metric_store import SqlMetricStore
    from tests.services.deployment_parts import served_stats

    home = Run(make_cli(tmp_path / "home"))
    platform = home.cli.platform()
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        for _ in range(2):
            platform.registry.register(
                "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
            )
        platform.endpoints.create("api", {"main": "churn:1"})
        platform.deployments.start("api", {"main": "churn:2"}, strategy="canary", wait="1m",
                                   bake="0", min_requests=5)  # fmt: skip
        now = datetime.now(UTC)
        moved = platform.deployment_controller.run_once(now)
        assert [d.action for d in moved] == [Action.ADVANCE]
        minute = now.replace(second=0, microsecond=0)
        SqlMetricStore(engine).write([
            SeriesRow("api", variant, minute, 60, "vm:1:0", served_stats(50))
            for variant in ("main", "main.next")
        ])  # fmt: skip
        done = platform.deployment_controller.run_once(now + timedelta(minutes=2))
        assert [d.action for d in done] == [Action.COMPLETE]
    finally:
        engine.dispose()
        platform.close()

    back = home("endpoints", "rollback", "api").ok().out
    assert "ROLLED_BACK: rolled back by hand after it succeeded" in back
    assert "now at config 5 (rollback): main=churn:1 100%" in back
    shown = home("deployments", "show", "api", "--json").ok().json()
    assert shown["state"] == "ROLLED_BACK"
    assert shown["reason"].startswith("rolled back by hand after it succeeded")
    assert [x["action"] for x in shown["decisions"]][-1] == "rollback"
