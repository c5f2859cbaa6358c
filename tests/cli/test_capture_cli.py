"""``endpoints create|update --capture/--capture-redact``, what ``endpoints show`` says about
capture, and ``capture list|export``, through the installed console script on a real store.

Refused values change nothing. The captured files ``capture`` reads are written where servers
write them (``<home>/artifacts/capture``), the way they write them.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard import errors
from modelyard.cli.render import to_jsonable
from modelyard.domain.capture import partition
from modelyard.storage.capture_files import CaptureFolder
from tests.cli.conftest import serve_churn


def endpoint_state(cli: Any) -> Any:
    platform = cli.platform()
    try:
        eps = platform.endpoints
        return {e.name: to_jsonable([e, eps.history(e.name)]) for e in eps.list_endpoints()}
    finally:
        platform.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1, an XGBoost model of age, tenure, spend and visits."""
    return serve_churn(make_cli(tmp_path_factory.mktemp("capture") / "home"), model_files, "ep")


def test_create_update_and_show_capture(home: Any) -> None:
    created = home(
        "endpoints", "create", "api", "--variant", "blue=churn:1", "--variant", "green=churn:1",
        "--capture", "10", "--capture", "green=100%", "--capture-redact", "age",
        "--capture-redact", "spend:drop", "--json",
    ).ok().json()  # fmt: skip
    redact = [{"name": "age", "mode": "hash"}, {"name": "spend", "mode": "drop"}]
    assert [(v["name"], v["capture"]) for v in created["config"]["variants"]] == [
        ("blue", {"percent": 10.0, "redact": redact}),
        ("green", {"percent": 100.0, "redact": redact}),
    ]
    shown = home("endpoints", "show", "api").ok().out
    assert "    capture    10% of requests, redacting age (hash), spend (drop)\n" in shown
    assert "    capture    100% of requests, redacting age (hash), spend (drop)\n" in shown
    # An update sets capture anew: it says which variants stopped capturing.
    updated = home("endpoints", "update", "api", "--variant", "blue=churn:1")
    assert updated.code == 0, updated.err
    assert "    capture    off\n" in home("endpoints", "show", "api").ok().out
    assert updated.err.startswith("note: capture stopped for blue (was 10%)"), updated.err
    # Nothing captured before: no notice (ok() checks that stderr is empty).
    home("endpoints", "update", "api", "--variant", "blue=churn:1", "--batch-size", "blue=8").ok()


# id, arguments, words the one error line must contain (refused by the service: exit 2)
REFUSED = [
    ("unknown-field", ["endpoints", "create", "new", "--variant", "blue=churn:1", "--capture",
                       "5", "--capture-redact", "ssn"],
     ["variant 'blue' (churn:1) has no input 'ssn' to redact", "age, tenure, spend, visits"]),
]  # fmt: skip

# id, arguments, words click's last "Error:" line must contain (usage errors: exit 2)
USAGE = [
    ("too-much", ["endpoints", "create", "new", "--variant", "blue=churn:1", "--capture",
                  "150"], ["'--capture'", "0..100", "'150'"]),
    ("not-a-number", ["endpoints", "update", "ep", "--variant", "blue=churn:1", "--capture",
                      "blue=lots"], ["'--capture'", "a number from 0 to 100", "'blue=lots'"]),
    ("bare-twice", ["endpoints", "update", "ep", "--variant", "blue=churn:1", "--capture", "5",
                    "--capture", "10"], ["'--capture'", "twice"]),
    ("bad-mode", ["endpoints", "update", "ep", "--variant", "blue=churn:1", "--capture", "5",
                  "--capture-redact", "age:erase"], ["'--capture-redact'", "'erase'"]),
    ("redact-alone", ["endpoints", "update", "ep", "--variant", "blue=churn:1",
                      "--capture-redact", "age"], ["'--capture-redact'", "--capture PERCENT"]),
    ("bad-since", ["capture", "export", "ep", "--since", "yesterday", "-o", "x.parquet"],
     ["not a time: 'yesterday'"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_runs(home: Any) -> dict[str, Any]:
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
def test_bad_values_are_usage_errors(bad_runs: dict[str, Any], case: str, words: list[str]) -> None:
    result = bad_runs["results"][case]
    assert result.code == 2, result
    assert "Traceback" not in result.err and result.out == ""
    line = result.err.strip().splitlines()[-1]
    for word in words:
        assert word in line, f"{case}: {word!r} not in {line!r}"


def test_refused_commands_change_nothing(bad_runs: dict[str, Any], home: Any) -> None:
    assert "ep" in bad_runs["before"]
    assert bad_runs["after"] == bad_runs["before"]
    assert not (home.home / "x.parquet").exists()


def _write_captured(
    home: Any,
    endpoint: str,
    times: list[datetime],
    ages: list[float],
    callers: list[str | None] | None = None,
) -> None:
    """A file of captured rows, as a server writes it under the default capture root (with
    ``callers``, the callers' ids column)."""
    table = pa.table(
        {
            "inference_id": [f"id{i}" for i in range(len(times))],
            "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
            "variant": ["blue"] * len(times),
            "model": ["churn"] * len(times),
            "model_version": pa.array([1] * len(times), type=pa.int64()),
            "latency_ms": [2.0] * len(times),
            "row": pa.array([0] * len(times), type=pa.int32()),
            "protocol": ["sagemaker"] * len(times),
            "input.age": ages,
            "output.prediction": [0.5] * len(times),
        }
    )
    if callers is not None:
        table = table.append_column("caller_inference_id", pa.array(callers, type=pa.string()))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    folder = CaptureFolder(str(home.home / "artifacts" / "capture"))
    folder.write(
        f"{partition(endpoint, times[0])}/part-{times[0]:%H%M%S}.parquet", buffer.getvalue()
    )


def test_capture_list_counts_the_rows_sent_with_a_callers_inference_id(home: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _write_captured(home, "callers", [now - timedelta(minutes=20)], [30.0])  # no column
    times = [now - timedelta(minutes=10, seconds=s) for s in range(3)]
    _write_captured(home, "callers", times, [1.0, 2.0, 3.0], ["order-7", None, "order-9"])
    listed = home("capture", "list", "callers", "--json").ok().json()
    assert sorted((f["rows"], f["caller_ids"]) for f in listed) == [(1, 0), (3, 2)]
    text = home("capture", "list", "callers").ok().out
    assert "2 rows sent with a caller's InferenceId" in text


def test_capture_list_and_export(home: Any, tmp_path: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=3)
    _write_captured(home, "shop", [old, old + timedelta(seconds=1)], [30.0, 31.0])
    _write_captured(home, "shop", [now - timedelta(minutes=10)], [42.0])

    listed = home("capture", "list", "shop", "--json").ok().json()
    assert [(f["rows"], f["hour"][:13]) for f in listed] == [
        (2, old.isoformat()[:13]),
        (1, (now - timedelta(minutes=10)).isoformat()[:13]),
    ]
    text = home("capture", "list", "shop").ok().out
    assert "3 rows in 2 files under" in text
    # On an 80-column terminal (or a pipe), every number is still there; the name is cut.
    narrow = home("capture", "list", "shop", env=home.env(COLUMNS="80")).ok().out
    lines = [line.split("│")[1:-1] for line in narrow.splitlines() if line.startswith("│")]
    when = [{k: datetime.fromisoformat(f[k]) for k in ("hour", "first", "last")} for f in listed]
    assert [[cell.strip() for cell in line[:5]] for line in lines] == [
        [f"{t['hour']:%Y-%m-%d}", f"{t['hour']:%H}", str(f["rows"]), f"{t['first']:%H:%M:%S}",
         f"{t['last']:%H:%M:%S}"]
        for f, t in zip(listed, when, strict=True)
    ]  # fmt: skip
    assert all(line[5].strip().endswith("KiB") and line[6].strip() for line in lines)
    assert max(len(line) for line in narrow.splitlines() if line[0] in "┏┃┡│└") == 80
    assert "no captured rows" in home("capture", "list", "ep").ok().out.lower()

    out = tmp_path / "rows.parquet"
    done = home("capture", "export", "shop", "--since", "1h", "-o", out, "--json").ok().json()
    assert (done["rows"], done["files"]) == (1, 1)
    assert list(pd.read_parquet(out)["input.age"]) == [42.0]
    since, until = (
        (old - timedelta(minutes=1)).isoformat(),
        (old + timedelta(seconds=1)).isoformat(),
    )
    window = ["--since", since, "--until", until, "-o", out]
    refused = home("capture", "export", "shop", *window)
    assert refused.error_line(errors.AlreadyExists.exit_code) == (
        f"error: {out} already exists; pass --overwrite to replace it"
    )
    assert list(pd.read_parquet(out)["input.age"]) == [42.0]  # the earlier export, untouched
    line = home("capture", "export", "shop", *window, "--overwrite").ok().out
    assert line.startswith("Wrote 1 rows from 1 captured files") and str(out) in line
    assert list(pd.read_parquet(out)["input.age"]) == [30.0]
    # The suffix names the format: CSV and JSON Lines are text, another suffix is refused.
    as_csv = tmp_path / "rows.csv"
    as_jsonl = tmp_path / "rows.jsonl"
    as_text = tmp_path / "rows.txt"
    assert home("capture", "export", "shop", *window[:4], "-o", as_csv).ok().out.endswith("(CSV)\n")
    assert list(pd.read_csv(as_csv)["input.age"]) == [30.0]
    home("capture", "export", "shop", *window[:4], "-o", as_jsonl).ok()
    assert list(pd.read_json(as_jsonl, lines=True)["input.age"]) == [30.0]
    wrong = home("capture", "export", "shop", *window[:4], "-o", as_text)
    assert "'rows.txt' (suffix '.txt'); name it .parquet" in wrong.error_line(2)
    assert not as_text.exists()

    # A typo is refused before anything is written; a real endpoint's empty window is not.
    typo = tmp_path / "typo.parquet"
    for args, error, words in [
        (["nosuch"], errors.EndpointNotFound, "'nosuch' does not exist and has no captured rows"),
        (["ep", "--variant", "red"], errors.VariantNotFound,
         "never had a variant 'red'; its variants: blue"),
    ]:  # fmt: skip
        refused = home("capture", "export", *args, "--since", "1h", "-o", typo)
        assert words in refused.error_line(error.exit_code)
        assert not typo.exists()
    assert "'nosuch' does not exist" in home("capture", "list", "nosuch").error_line(
        errors.EndpointNotFound.exit_code
    )
    empty = home("capture", "export", "ep", "--variant", "blue", "--since", "1h", "-o", typo)
    assert empty.code == 0 and empty.out.startswith("Wrote 0 rows"), empty.err
    assert len(pd.read_parquet(typo)) == 0
    # Said on stderr: capture may be off (a script reading stdout gets the same line).
    assert empty.err.startswith("note: endpoint ep captured no rows in that window"), empty.err


def test_capture_export_writes_to_an_fsspec_url(home: Any, tmp_path: Any) -> None:
    """``-o`` takes a URL: written through fsspec at the URL's path, not as a local file named
    after the URL; a protocol whose package is missing is one error line, and nothing local."""
    now = datetime.now(UTC).replace(microsecond=0)
    _write_captured(home, "urls", [now - timedelta(minutes=5)], [55.0])
    target = tmp_path / "exported" / "rows.parquet"
    target.parent.mkdir()
    url = f"local://{target}"
    done = home("capture", "export", "urls", "--since", "1h", "-o", url, "--json").ok().json()
    assert (done["rows"], done["path"]) == (1, url)
    assert list(pd.read_parquet(target)["input.age"]) == [55.0]

    refused = home("capture", "export", "urls", "--since", "1h", "-o", "s3://bucket/rows.parquet")
    line = refused.error_line(errors.StorageUnavailable.exit_code)
    assert "s3://bucket/rows.parquet" in line and "s3fs" in line
    assert not Path("s3:").exists()  # where the command's working directory would have it


@pytest.fixture
def bare(tmp_path: Path, make_cli: Any) -> Any:
    """A home of its own (nothing registered: capture commands need no model), so that
    pruning every endpoint touches no other test's captures."""
    return make_cli(tmp_path / "home")


def test_capture_prune_deletes_whole_old_hours(bare: Any) -> None:
    """``capture prune NAME --before`` deletes the partition hours that ended before the
    cutoff (a dry run first counts them); the current hour's rows stay; refusals change
    nothing."""
    home = bare
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=3)
    _write_captured(home, "prune", [old, old + timedelta(seconds=1)], [30.0, 31.0])
    _write_captured(home, "prune", [old + timedelta(hours=1)], [32.0])
    _write_captured(home, "prune", [now - timedelta(seconds=30)], [42.0])
    _write_captured(home, "other", [old], [50.0])

    def rows(endpoint: str) -> int:
        return sum(f["rows"] for f in home("capture", "list", endpoint, "--json").ok().json())

    for args, words in [
        (["prune", "--before", "1d", "--all"], ["NAME or --all (not both)"]),
        (["--before", "1d"], ["NAME or --all (not both)"]),
    ]:
        result = home("capture", "prune", *args)
        assert result.code == 2 and result.out == "", result
        assert all(w in result.err for w in words), result.err
    future = home("capture", "prune", "prune", "--before", (now + timedelta(hours=2)).isoformat())
    assert "in the future" in future.error_line(errors.InvalidInput.exit_code)
    # A typo is refused (as list and export refuse it), not reported as 0 files deleted.
    for dry in ((), ("--dry-run",)):
        typo = home("capture", "prune", "prnue", "--before", "1d", *dry)
        assert "'prnue' does not exist and has no captured rows" in typo.error_line(
            errors.EndpointNotFound.exit_code
        )
    assert (rows("prune"), rows("other")) == (4, 1)

    dry = home("capture", "prune", "prune", "--before", "1d", "--dry-run", "--json").ok().json()
    assert (dry["files"], dry["hours"], dry["dry_run"], dry["endpoints"]) == (2, 2, True, ["prune"])
    assert rows("prune") == 4

    line = home("capture", "prune", "prune", "--before", "1d").ok().out
    assert line.startswith("Deleted 2 files") and "2 partition hours of prune" in line
    assert (rows("prune"), rows("other")) == (1, 1)

    everything = home("capture", "prune", "--all", "--before", "1d", "--json").ok().json()
    assert (everything["endpoints"], everything["files"]) == (["other", "prune"], 1)
    assert rows("prune") == 1
    # ``other`` was never an endpoint in the store: with its last file gone, it is unknown.
    gone = home("capture", "list", "other")
    assert "'other' does not exist and has no captured rows" in gone.error_line(
        errors.EndpointNotFound.exit_code
    )


def test_the_scheduler_loop_applies_the_capture_retention(bare: Any) -> None:
    """With ``MODELYARD_CAPTURE_RETENTION_D`` set, a pass of the scheduler loop (what
    ``modelyard serve`` runs beside its workers) deletes the captured hours older than it;
    without it, nothing is deleted."""
    home = bare
    now = datetime.now(UTC).replace(microsecond=0)
    _write_captured(home, "kept", [now - timedelta(days=5)], [1.0])
    _write_captured(home, "kept", [now - timedelta(days=1)], [2.0])
    _write_captured(home, "kept", [now - timedelta(seconds=10)], [3.0])

    def ages() -> list[float]:
        return list(pd.read_parquet(home.home / "artifacts" / "capture" / "kept")["input.age"])

    home("scheduler", "--once").ok()
    assert sorted(ages()) == [1.0, 2.0, 3.0]  # no retention set: everything kept
    home("scheduler", "--once", env=home.env(MODELYARD_CAPTURE_RETENTION_D="2")).ok()
    assert sorted(ages()) == [2.0, 3.0]
    refused = home("scheduler", "--once", env=home.env(MODELYARD_CAPTURE_RETENTION_D="0"))
    assert refused.code != 0 and "capture_retention_d" in refused.err
    assert sorted(ages()) == [2.0, 3.0]
