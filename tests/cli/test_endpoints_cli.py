"""``modelyard endpoints …`` and ``modelyard invoke`` through the installed console script.

The endpoint commands run against a real store: the success path of every command, and every
bad input ending with its exit code, one ``error:`` line and the store unchanged. ``invoke``
talks over real HTTP to a ``modelyard serve`` process started for this module.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard import errors
from modelyard.cli.render import to_jsonable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint_state(cli: Any) -> dict[str, Any]:
    """Every endpoint with its full history, plus the registry snapshot."""
    platform = cli.platform()
    try:
        eps = platform.endpoints
        state = {e.name: to_jsonable([e, eps.history(e.name)]) for e in eps.list_endpoints()}
    finally:
        platform.close()
    return {"endpoints": state, "registry": cli.snapshot()}


def corrupt_model_file(platform: Any, ref: str) -> None:
    """Overwrite the stored model file of ``ref`` so that its checksum no longer matches."""
    from modelyard.storage import packages

    version = platform.registry.get_version(ref)
    manifest = packages.read_manifest(platform.artifacts, version.artifact_digest)
    digest = next(f["sha256"] for f in manifest["files"] if f["path"].startswith("model/"))
    blob = Path(platform.settings.resolved_artifact_url) / "sha256" / digest[:2] / digest
    blob.write_bytes(b"garbage")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 and churn:2 (production), broken:1 (its model file corrupted after
    registering), and the endpoint ``api`` (blue=churn:1 90%, green=churn:2 10%, config 1)."""
    cli = make_cli(tmp_path_factory.mktemp("endpoints") / "home")
    platform = cli.platform()
    try:
        reg = platform.registry
        example = model_files.example
        reg.register("churn", model_files.xgb_json, flavor="xgboost", input_example=example)
        reg.register("churn", model_files.xgb_ubj, flavor="xgboost", input_example=example)
        reg.set_alias("churn", "production", 2)
        reg.register("broken", model_files.skops, flavor="sklearn", input_example=example)
        corrupt_model_file(platform, "broken:1")
        split = {"blue": 0.9, "green": 0.1}
        platform.endpoints.create("api", {"blue": "churn:1", "green": "churn:2"}, split)
    finally:
        platform.close()
    return cli


def test_create_weights_update_rollback_show_history_list_delete(home: Any) -> None:
    created = home(
        "endpoints", "create", "churn-api", "--variant", "blue=churn:1",
        "--variant", "green=churn@production", "--weights", "blue=0.9,green=0.1",
        "--batch-size", "blue=1", "--batch-wait-ms", "green=5", "--json",
    ).ok().json()  # fmt: skip
    assert created["name"] == "churn-api"
    assert (created["config"]["number"], created["config"]["change"]) == (1, "create")
    assert [
        (v["name"], v["ref"], v["requested"], v["weight"], v["batching"])
        for v in created["config"]["variants"]
    ] == [
        ("blue", "churn:1", "churn:1", 0.9, {"max_batch_size": 1, "max_wait_ms": 2.0}),
        ("green", "churn:2", "churn@production", 0.1, {"max_batch_size": 64, "max_wait_ms": 5.0}),
    ]
    assert [v["share"] for v in created["config"]["variants"]] == pytest.approx([90.0, 10.0])

    weighted = home("endpoints", "weights", "churn-api", "blue=0.5", "green=0.5").ok()
    assert weighted.out == (
        "endpoint churn-api now at config 2 (weights): blue=churn:1 50%, green=churn:2 50%\n"
    )
    updated = home(
        "endpoints", "update", "churn-api", "--variant", "blue=churn:2", "--variant",
        "green=churn:1", "--weights", "blue=3,green=1",
    ).ok()  # fmt: skip
    assert updated.out == (
        "endpoint churn-api now at config 3 (update): blue=churn:2 75%, green=churn:1 25%\n"
    )
    rolled = home("endpoints", "rollback", "churn-api").ok()
    assert rolled.out == (
        "endpoint churn-api now at config 4 (rollback): blue=churn:1 50%, green=churn:2 50%\n"
    )

    shown, shown_json, hist, hist_json, listing, listing_json = (
        r.ok()
        for r in home.many(
            ["endpoints", "show", "churn-api"],
            ["endpoints", "show", "churn-api", "--json"],
            ["endpoints", "history", "churn-api"],
            ["endpoints", "history", "churn-api", "--json"],
            ["endpoints", "list"],
            ["endpoints", "list", "--json"],
        )
    )
    current = shown_json.json()["config"]
    assert (current["number"], current["change"]) == (4, "rollback")
    assert [(v["name"], v["ref"], v["weight"], v["batching"]["max_batch_size"]) for v in current[
        "variants"]] == [("blue", "churn:1", 0.5, 1), ("green", "churn:2", 0.5, 64)]  # fmt: skip
    for text in (
        "Endpoint churn-api",
        "config   4 (rollback,",
        "variant blue",
        "churn:1 (requested churn:1)",
        "churn:2 (requested churn@production)",
        "50% (weight 0.5)",
        "off (one request at a time)",
        "up to 64 rows, waiting at most 5 ms",
    ):
        assert text in shown.out, (text, shown.out)

    assert [(c["number"], c["change"]) for c in hist_json.json()] == [
        (1, "create"),
        (2, "weights"),
        (3, "update"),
        (4, "rollback"),
    ]
    assert re.search(r"│\s+3 │ update\s+│ [\d: -]+ │ blue=churn:2 75%", hist.out), hist.out
    assert "green=churn:1 25%" in hist.out

    assert [(e["name"], e["config"]["number"]) for e in listing_json.json()] == [
        ("api", 1),
        ("churn-api", 4),
    ]
    assert re.search(r"│ churn-api\s+│ 4 \(rollback\)\s+│ blue=churn:1 50%", listing.out)

    assert home("endpoints", "delete", "churn-api", "--yes").ok().out == (
        "Deleted endpoint churn-api\n"
    )
    assert list(endpoint_state(home)["endpoints"]) == ["api"]


# id, arguments, expected error, words the message must contain
BAD_INPUTS: list[tuple[str, list[str], type[errors.ModelyardError], list[str]]] = [
    ("unknown-endpoint", ["endpoints", "show", "nope"], errors.EndpointNotFound, ["'nope'"]),
    ("weights-unknown-endpoint", ["endpoints", "weights", "nope", "blue=1"],
     errors.EndpointNotFound, ["'nope'"]),
    ("duplicate-create", ["endpoints", "create", "api", "--variant", "blue=churn:1"],
     errors.AlreadyExists, ["'api'"]),
    ("unknown-version", ["endpoints", "create", "new", "--variant", "blue=churn:99"],
     errors.VersionNotFound, ["churn", "99"]),
    ("unknown-model", ["endpoints", "update", "api", "--variant", "blue=nope:1"],
     errors.ModelNotFound, ["'nope'"]),
    ("malformed-weights", ["endpoints", "create", "new", "--variant", "blue=churn:1",
                           "--weights", "blue:0.5"], errors.InvalidInput,
     ["'blue:0.5'", "VARIANT=NUMBER"]),
    ("weights-unknown-variant", ["endpoints", "weights", "api", "red=1"], errors.InvalidInput,
     ["'api'", "red", "blue, green"]),
    ("weights-all-zero", ["endpoints", "weights", "api", "blue=0,green=0"], errors.InvalidInput,
     ["above 0"]),
    # Percentages share out all the traffic, to `update --weights` as to `endpoints weights`
    # (update gave green 0% silently).
    ("weights-percent-leaves-one-out", ["endpoints", "weights", "api", "blue=100%"],
     errors.InvalidInput, ["every production variant of endpoint 'api' (missing: green)"]),
    ("update-percent-leaves-one-out", ["endpoints", "update", "api", "--variant",
                                       "blue=churn:1", "--variant", "green=churn:1",
                                       "--weights", "blue=100%"], errors.InvalidInput,
     ["every production variant of endpoint 'api' (missing: green)"]),
    ("rollback-nothing", ["endpoints", "rollback", "api"], errors.InvalidInput,
     ["'api'", "no earlier config"]),
    ("delete-unconfirmed", ["endpoints", "delete", "api"], errors.InvalidInput,
     ["api", "--yes"]),
    ("batch-size-zero", ["endpoints", "update", "api", "--variant", "blue=churn:1",
                         "--batch-size", "blue=0"], errors.InvalidInput,
     ["'blue'", "max_batch_size"]),
    ("broken-model", ["endpoints", "update", "api", "--variant", "blue=broken:1"],
     errors.ArtifactCorrupted, ["'blue'", "broken:1"]),
    # issue 14, defect 3: the sum overflowed to inf, was shown as nan% and sent all to green
    ("weights-sum-overflows", ["endpoints", "create", "new", "--variant", "blue=churn:1",
                               "--variant", "green=churn:2", "--weights",
                               "blue=1e308,green=1e308"], errors.InvalidInput,
     ["blue=1e+308", "largest number"]),
    ("weights-overflow-on-reweight", ["endpoints", "weights", "api", "blue=1.7e308,green=1e308"],
     errors.InvalidInput, ["largest number"]),
    # An infinite weight (inf, or 1e400 read as inf) was refused as "must be >= 0, got inf",
    # a wrong reason: inf is >= 0; it is not a finite number.
    ("weight-inf-on-create", ["endpoints", "create", "new", "--variant", "blue=churn:1",
                              "--variant", "green=churn:2", "--weights", "blue=inf,green=1"],
     errors.InvalidInput, ["'blue'", "must be a finite number", "got 'inf'"]),
    ("weight-1e400-on-update", ["endpoints", "update", "api", "--variant", "blue=churn:1",
                                "--variant", "green=churn:2", "--weights", "blue=1,green=1e400"],
     errors.InvalidInput, ["'green'", "must be a finite number", "got '1e400'"]),
    ("weight-negative", ["endpoints", "weights", "api", "blue=-1"],
     errors.InvalidInput, ["'blue'", "must be >= 0", "got -1"]),
    ("weight-given-twice", ["endpoints", "weights", "api", "blue=1,blue=2"],
     errors.InvalidInput, ["'blue'", "twice"]),
    # defect 5: names and references are matched whole, so a final newline is refused
    ("name-trailing-newline", ["endpoints", "create", "new\n", "--variant", "blue=churn:1"],
     errors.InvalidName, ["'new\\n'"]),
    ("variant-trailing-newline", ["endpoints", "create", "new", "--variant", "blue\n=churn:1"],
     errors.InvalidName, ["variant name"]),
    ("ref-trailing-newline", ["endpoints", "create", "new", "--variant", "blue=churn:1\n"],
     errors.InvalidReference, ["'churn:1\\n'"]),
    # defect 12: cut, not echoed whole
    ("name-10000-characters", ["endpoints", "create", "e" * 10_000, "--variant",
                               "blue=churn:1"], errors.InvalidName, ["characters cut"]),
]  # fmt: skip

# id, arguments, words click's "Error:" line must contain (usage errors: exit 2)
USAGE_ERRORS: list[tuple[str, list[str], list[str]]] = [
    ("variant-without-equals", ["endpoints", "create", "new", "--variant", "blue"],
     ["--variant", "'blue'"]),
    ("batch-size-not-a-number", ["endpoints", "create", "new", "--variant", "blue=churn:1",
                                 "--batch-size", "blue=big"], ["--batch-size", "big"]),
    # issue 14, defect 4: the second `a` replaced the first, and only churn:2 was served
    ("variant-given-twice", ["endpoints", "create", "new", "--variant", "a=churn:1",
                             "--variant", "a=churn:2"], ["--variant", "'a'", "twice"]),
    ("batch-size-10000-characters", ["endpoints", "create", "new", "--variant",
                                     "blue=churn:1", "--batch-size", "blue=" + "9" * 10_000],
     ["--batch-size", "characters cut"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_runs(home: Any) -> dict[str, Any]:
    """Every bad command, run concurrently, with the store's state before and after."""
    calls = {case[0]: case[1] for case in [*BAD_INPUTS, *USAGE_ERRORS]}
    before = endpoint_state(home)
    results = dict(zip(calls, home.many(*calls.values()), strict=True))
    return {"before": before, "after": endpoint_state(home), "results": results}


@pytest.mark.parametrize(
    ("args", "error", "words"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_clear_error_line(
    bad_runs: dict[str, Any], request: pytest.FixtureRequest, args: list[str],
    error: type[errors.ModelyardError], words: list[str],
) -> None:  # fmt: skip
    case = request.node.callspec.id
    line = bad_runs["results"][case].error_line(error.exit_code)
    for word in words:
        assert word in line, f"{case}: {word!r} not in {line!r}"


@pytest.mark.parametrize(
    ("args", "words"), [c[1:] for c in USAGE_ERRORS], ids=[c[0] for c in USAGE_ERRORS]
)
def test_usage_error_shows_click_usage(
    bad_runs: dict[str, Any], request: pytest.FixtureRequest, args: list[str], words: list[str]
) -> None:
    case = request.node.callspec.id
    result = bad_runs["results"][case]
    assert result.code == 2, result
    assert result.err.startswith("Usage: modelyard endpoints"), result.err
    assert "Traceback" not in result.err and result.out == ""
    error_line = result.err.strip().splitlines()[-1]
    assert len(result.err) < 3000, f"{case}: {len(result.err)} characters on stderr"
    for word in words:
        assert word in error_line, f"{case}: {word!r} not in {error_line!r}"


def test_weights_help_is_the_same_for_update_and_weights(cli: Any) -> None:
    """One meaning, said once: ``--weights`` and ``endpoints weights`` show the same text."""
    from modelyard.cli.endpoints import WEIGHTS_HELP

    def flat(text: str) -> str:  # the words, without the table's borders
        return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())

    for command in ("create", "update", "weights"):
        shown = flat(cli("endpoints", command, "--help", env=cli.env(COLUMNS="400")).ok().out)
        assert flat(WEIGHTS_HELP) in shown, command


def test_bad_inputs_leave_the_store_unchanged(bad_runs: dict[str, Any]) -> None:
    assert "api" in bad_runs["before"]["endpoints"], "the snapshot must see the endpoint"
    assert bad_runs["after"] == bad_runs["before"]


# -- invoke, against a real server -----------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any
) -> Iterator[tuple[Any, str]]:
    """``modelyard serve`` on a free port, serving ``churn-api`` (blue=churn:1, green=churn:2,
    the same booster saved as JSON and as UBJ). Yields the CLI and the server's URL."""
    folder = tmp_path_factory.mktemp("invoke")
    cli = make_cli(folder / "home")
    platform = cli.platform()
    try:
        for path in (model_files.xgb_json, model_files.xgb_ubj):
            platform.registry.register(
                "churn", path, flavor="xgboost", input_example=model_files.example
            )
        platform.endpoints.create("churn-api", {"blue": "churn:1", "green": "churn:2"})
    finally:
        platform.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(cli.script), "serve", "--port", str(port)],
            env=cli.env(MODELYARD_PLAN_POLL_S="0.2"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts a server slowly
        while True:
            assert process.poll() is None, f"server exited: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready in 180 s: {log.read_text()[-3000:]}"
            time.sleep(0.1)
        yield cli, url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


ANSWERED = re.compile(r"variant (blue|green), model (churn:[12]), inference id ([0-9a-f]{32})\n")


def test_invoke_prints_predictions_and_who_answered(
    server: tuple[Any, str], model_files: Any, tmp_path: Path
) -> None:
    import xgboost as xgb

    cli, url = server
    rows = model_files.frame.iloc[:3]
    expected = model_files.booster.predict(xgb.DMatrix(rows))
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(rows.to_csv(index=False, header=False))
    one_row = "[" + ", ".join(repr(float(x)) for x in rows.iloc[0]) + "]"
    data, from_file, green, as_csv = cli.many(
        ["invoke", "churn-api", "--url", url, "--data", one_row],
        ["invoke", "churn-api", "--url", url, "--file", csv_file, "--json"],
        ["invoke", "churn-api", "--url", url, "--data", one_row, "--variant", "green", "--json"],
        ["invoke", "churn-api", "--url", url, "--file", csv_file, "--accept", "text/csv",
         "--routing-key", "customer-7"],
    )  # fmt: skip

    assert data.code == 0, data.err
    assert np.allclose(data.json()["predictions"], expected[:1], rtol=1e-6, atol=1e-6)
    match = ANSWERED.fullmatch(data.err)
    assert match and match[2] == {"blue": "churn:1", "green": "churn:2"}[match[1]], data.err

    answer = from_file.ok().json()
    assert np.allclose(answer["predictions"], expected, rtol=1e-6, atol=1e-6)
    assert answer["endpoint"] == "churn-api" and answer["content_type"] == "application/json"
    assert (answer["variant"], answer["model_version"]) in {
        ("blue", "churn:1"),
        ("green", "churn:2"),
    }
    assert re.fullmatch(r"[0-9a-f]{32}", answer["inference_id"])

    chosen = green.ok().json()
    assert (chosen["variant"], chosen["model_version"]) == ("green", "churn:2")
    assert np.allclose(chosen["predictions"], expected[:1], rtol=1e-6, atol=1e-6)

    assert as_csv.code == 0 and ANSWERED.fullmatch(as_csv.err), as_csv.err
    assert np.allclose([float(x) for x in as_csv.out.split()], expected, rtol=1e-6, atol=1e-6)


def test_invoke_sends_csv_lines_given_with_data_as_csv(
    server: tuple[Any, str], model_files: Any
) -> None:
    """--data takes CSV lines, as its help says: they were sent as application/json unless
    --content-type said otherwise, and the server answered 'malformed JSON' (exit 2). A body
    that is not a JSON shape (every one opens with [ or {) now goes as text/csv."""
    import xgboost as xgb

    cli, url = server
    rows = model_files.frame.iloc[:2]
    expected = model_files.booster.predict(xgb.DMatrix(rows))
    lines = rows.to_csv(index=False, header=False)
    as_csv, one_line, as_json = cli.many(
        ["invoke", "churn-api", "--url", url, "--data", lines, "--json"],
        ["invoke", "churn-api", "--url", url, "--data", lines.splitlines()[0], "--json"],
        ["invoke", "churn-api", "--url", url, "--data", " {nope"],
    )
    assert np.allclose(as_csv.ok().json()["predictions"], expected, rtol=1e-6, atol=1e-6)
    assert np.allclose(one_line.ok().json()["predictions"], expected[:1], rtol=1e-6, atol=1e-6)
    assert "malformed JSON" in as_json.error_line(2), "a JSON shape is still sent as JSON"


def test_invoke_goes_where_modelyard_serving_url_says(server: tuple[Any, str]) -> None:
    """Without --url, the server the Python Predictor would ask (MODELYARD_SERVING_URL);
    --url still wins."""
    cli, url = server
    row = "[30.0, 12.0, 80.5, 3.0]"
    told = cli("invoke", "churn-api", "--data", row, "--json",
               env=cli.env(MODELYARD_SERVING_URL=url)).ok().json()  # fmt: skip
    assert told["endpoint"] == "churn-api" and len(told["predictions"]) == 1
    nowhere = cli("invoke", "churn-api", "--data", row, "--url", "http://127.0.0.1:9",
                  env=cli.env(MODELYARD_SERVING_URL=url))  # fmt: skip
    assert nowhere.code == 6 and "http://127.0.0.1:9" in nowhere.err, nowhere.err


# id, arguments after the endpoint's URL, exit code, words the error line must contain
INVOKE_ERRORS: list[tuple[str, list[str], int, list[str]]] = [
    ("too-few-features", ["churn-api", "--data", "[1, 2]"], 2, ["expected 4 features", "got 2"]),
    ("not-json", ["churn-api", "--data", "{nope"], 2, ["malformed JSON"]),
    ("unsupported-type", ["churn-api", "--data", "1,2,3,4", "--content-type", "text/plain"], 2,
     ["text/plain"]),
    ("unknown-endpoint", ["nope", "--data", "[1, 2, 3, 4]"], 3, ["'nope'"]),
    ("unknown-variant", ["churn-api", "--data", "[1, 2, 3, 4]", "--variant", "red"], 3,
     ["'red'", "blue, green"]),
    ("missing-file", ["churn-api", "--file", "/nonexistent/rows.csv"], 2, ["rows.csv"]),
    # each travels in an HTTP header: a traceback (UnicodeEncodeError) or 'request failed', exit 1
    ("non-ascii-variant", ["churn-api", "--data", "[1, 2, 3, 4]", "--variant", "grün"], 2,
     ["--variant", "'grün'", "ASCII"]),
    ("newline-routing-key", ["churn-api", "--data", "[1, 2, 3, 4]", "--routing-key", "a\nb"], 2,
     ["--routing-key", "'a\\nb'"]),
    ("non-ascii-routing-key", ["churn-api", "--data", "[1, 2, 3, 4]", "--routing-key", "é"], 2,
     ["--routing-key", "'é'"]),
    ("non-ascii-accept", ["churn-api", "--data", "[1, 2, 3, 4]", "--accept", "téxt/csv"], 2,
     ["--accept", "'téxt/csv'"]),
]  # fmt: skip


def test_invoke_errors_are_one_line_with_the_servers_message(server: tuple[Any, str]) -> None:
    cli, url = server
    no_server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    results = cli.many(
        *[["invoke", *args[:1], "--url", url, *args[1:]] for _, args, _, _ in INVOKE_ERRORS],
        ["invoke", "churn-api", "--url", no_server, "--data", "[1, 2, 3, 4]"],
        ["invoke", "churn-api"],  # no body
    )
    for (case, _, code, words), result in zip(INVOKE_ERRORS, results, strict=False):
        line = result.error_line(code)
        for word in words:
            assert word in line, f"{case}: {word!r} not in {line!r}"
    unreachable = results[-2].error_line(errors.StorageUnavailable.exit_code)
    assert no_server in unreachable and "modelyard serve" in unreachable, unreachable
    assert results[-1].code == 2 and "--data or --file" in results[-1].err


def test_invoke_refuses_a_timeout_no_clock_can_hold(cli: Any) -> None:
    """'--timeout inf' (or 1e300) passed the option's minimum and crashed in the socket layer
    with a traceback: 'OverflowError: timestamp out of range for platform time_t'."""
    results = cli.many(
        *[["invoke", "churn-api", "--url", f"http://127.0.0.1:{free_port()}", "--data",
           "[1, 2, 3, 4]", "--timeout", value] for value in ("inf", "1e300", "nan")]
    )  # fmt: skip
    for result in results:
        assert result.code == 2 and "Traceback" not in result.err, result.err
        assert "Invalid value for '--timeout'" in result.err and result.out == "", result.err


def test_capture_changes_every_variants_share_only(home: Any) -> None:
    """``endpoints capture NAME PERCENT``: the share of every variant, redactions and the rest
    kept; a share outside 0-100 changes nothing."""
    home(
        "endpoints", "create", "cap-api", "--variant", "a=churn:1", "--variant", "b=churn:1",
        "--capture", "a=10", "--capture-redact", "spend:drop",
    ).ok()  # fmt: skip
    changed = home("endpoints", "capture", "cap-api", "25%", "--json").ok().json()
    assert changed["config"]["change"] == "capture"
    assert [(v["name"], v["capture"]) for v in changed["config"]["variants"]] == [
        ("a", {"percent": 25.0, "redact": [{"name": "spend", "mode": "drop"}]}),
        ("b", {"percent": 25.0, "redact": [{"name": "spend", "mode": "drop"}]}),
    ]
    before = home("endpoints", "show", "cap-api", "--json").ok().json()
    line = home("endpoints", "capture", "cap-api", "150").error_line(2)
    assert "150" in line and "100" in line, line
    assert home("endpoints", "show", "cap-api", "--json").ok().json() == before
    home("endpoints", "delete", "cap-api", "--yes").ok()


def test_invoke_out_of_time_ends_with_its_own_error(cli: Any) -> None:
    """A server that takes the connection and never answers: '--timeout' running out ended
    with exit 1, a plain error no script could tell from a model's failure. It is a
    ServerTimeout: the storage-and-servers exit code (6), naming the URL and the time."""
    with socket.socket() as silent:  # listens (the kernel completes the connection), never reads
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = cli("invoke", "churn-api", "--url", url, "--data", "[1, 2, 3, 4]",
                     "--timeout", "0.5")  # fmt: skip
    line = result.error_line(errors.ServerTimeout.exit_code)
    assert line == f"error: no answer from {url} within 0.5 s (raise --timeout to wait longer)"
