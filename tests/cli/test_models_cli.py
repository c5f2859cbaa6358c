"""``modelyard models …`` through the installed console script: the success path of every
command, and every bad input ending with its documented exit code, one clear ``error:`` line, no
traceback, and the store untouched."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from modelyard import errors

DIGEST = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """A home holding churn:1 (aliased production), churn:2, churn-ubj:1, clf:1 (skops) and
    clf-pickle:1, all but churn:2 registered by the CLI.

    The registering runs are kept on the fixture (``registry.runs``) for the tests to check.
    """
    cli = make_cli(tmp_path_factory.mktemp("registry") / "home")
    cli.platform().close()  # create the database first; the registrations then run side by side
    first, ubj, classifier, pickled = cli.many(
        ["models", "register", "churn", model_files.xgb_json, "--flavor", "xgboost",
         "--input-example", model_files.example, "--alias", "production",
         "--param", "max_depth=3", "--param", "eta=0.3",
         "--metric", "auc=0.91", "--metric", "accuracy=0.88",
         "--tag", "team=growth", "--description", "first churn model"],
        ["models", "register", "churn-ubj", model_files.xgb_ubj, "-f", "xgboost", "--json"],
        ["models", "register", "clf", model_files.skops, "--flavor", "sklearn",
         "--input-example", model_files.example, "--json"],
        ["models", "register", "clf-pickle", model_files.pickle, "--flavor", "sklearn",
         "--trust-pickle", "--input-example", model_files.example, "--json"],
    )  # fmt: skip
    platform = cli.platform()
    try:  # a second churn version, without an input example (saves a start-up)
        platform.registry.register("churn", model_files.xgb_ubj, flavor="xgboost")
    finally:
        platform.close()
    cli.runs = {"first": first, "ubj": ubj, "classifier": classifier, "pickled": pickled}
    return cli


def test_register_reports_the_new_version(registry: Any, model_files: Any) -> None:
    first = registry.runs["first"].ok()
    assert re.fullmatch(
        r"Registered churn:1 \(xgboost, sha256 [0-9a-f]{12}…, aliases production\)\n", first.out
    ), first.out

    second = registry.runs["ubj"].ok().json()
    assert (second["ref"], second["version"], second["flavor"]) == ("churn-ubj:1", 1, "xgboost")
    assert second["model_format"] == "ubj" and second["status"] == "ready"
    assert DIGEST.match(second["artifact_digest"])
    assert [c["name"] for c in second["signature"]["inputs"]] == list(model_files.frame.columns)
    assert second["aliases"] == [] and second["params"] == {}
    assert datetime.fromisoformat(second["created_at"]).tzinfo is not None

    classifier = registry.runs["classifier"].ok().json()
    assert (classifier["ref"], classifier["flavor"]) == ("clf:1", "sklearn")
    assert classifier["model_format"] == "skops"
    assert classifier["trust"] == {"pickle": False, "user_code": False, "types": []}

    # Refused without --trust-pickle (see BAD_INPUTS), accepted with it, and recorded.
    pickled = registry.runs["pickled"].ok().json()
    assert (pickled["ref"], pickled["model_format"]) == ("clf-pickle:1", "pickle")
    assert pickled["trust"]["pickle"] is True


def test_read_commands_in_text_and_json(registry: Any, model_files: Any) -> None:
    (listing, listing_json, shown, shown_json, versions, versions_json, info, info_json) = (
        r.ok()
        for r in registry.many(
            ["models", "list"],
            ["models", "list", "--json"],
            ["models", "show", "churn@production"],
            ["models", "show", "churn@production", "--json"],
            ["models", "versions", "churn"],
            ["models", "versions", "churn", "--json"],
            ["store", "info"],
            ["store", "info", "--json"],
        )
    )
    models = {m["name"]: m for m in listing_json.json()}
    assert sorted(models) == ["churn", "churn-ubj", "clf", "clf-pickle"]
    assert models["churn"]["latest_version"] == 2
    assert models["churn"]["aliases"] == {"production": 1}
    datetime.fromisoformat(models["churn"]["updated_at"])
    for text in ("churn", "clf", "production→1"):
        assert text in listing.out

    version = shown_json.json()
    assert (version["ref"], version["aliases"]) == ("churn:1", ["production"])
    assert version["params"] == {"max_depth": "3", "eta": "0.3"}
    assert version["metrics"] == {"auc": 0.91, "accuracy": 0.88}
    assert version["tags"] == {"team": "growth"}
    assert version["description"] == "first churn model"
    assert version["source"] == {"kind": "upload", "uri": str(model_files.xgb_json)}
    assert version["signature"]["outputs"], "the input example should give the outputs"
    for text in (
        "churn:1",
        "xgboost",
        "max_depth=3",
        "auc=0.91",
        "team=growth",
        "production",
        "age, tenure, spend, visits",
        "sha256:" + version["artifact_digest"],
    ):
        assert text in shown.out, (text, shown.out)

    assert [(v["ref"], v["aliases"]) for v in versions_json.json()] == [
        ("churn:1", ["production"]),
        ("churn:2", []),
    ]
    assert re.search(r"│\s+1 │ xgboost │ ready\s+│ production", versions.out), versions.out
    assert re.search(r"│\s+2 │ xgboost │ ready\s+│ -", versions.out), versions.out

    store = info_json.json()
    assert store["backend"] == "sqlite"
    assert store["schema_revision"] == store["schema_head"] is not None
    assert (store["models"], store["versions"]) == (4, 5)
    assert store["home"] == str(registry.home)
    assert store["artifact_url"].startswith(str(registry.home))
    assert store["metadata_url"] == f"sqlite:///{registry.home}/modelyard.db"
    assert str(registry.home) in info.out and "sqlite" in info.out


def test_verify_loads_and_predicts_on_the_stored_example(registry: Any) -> None:
    churn, clf, no_example = registry.many(
        ["models", "verify", "churn@production"],
        ["models", "verify", "clf", "--json"],
        ["models", "verify", "churn:2"],
    )
    assert churn.ok().out.startswith("OK churn:1:") and "predicted 5 example rows" in churn.out
    assert clf.ok().json()["predicted_rows"] == 5
    assert "no input example stored" in no_example.ok().out


# id, arguments, expected error, words the message must contain
BAD_INPUTS: list[tuple[str, list[str], type[errors.ModelyardError], list[str]]] = [
    ("unknown-model", ["models", "show", "nope"], errors.ModelNotFound, ["'nope'"]),
    ("unknown-model-versions", ["models", "versions", "nope"], errors.ModelNotFound, ["'nope'"]),
    ("unknown-version", ["models", "show", "churn:99"], errors.VersionNotFound, ["churn", "99"]),
    ("unknown-alias", ["models", "show", "churn@staging"], errors.AliasNotFound, ["'staging'"]),
    ("duplicate-create", ["models", "create", "churn"], errors.AlreadyExists, ["'churn'"]),
    ("invalid-name", ["models", "create", "bad name"], errors.InvalidName, ["'bad name'"]),
    ("ref-a:b:c", ["models", "show", "a:b:c"], errors.InvalidReference, ["'a:b:c'"]),
    ("ref-zero", ["models", "show", "churn:0"], errors.InvalidReference, ["'churn:0'", "from 1"]),
    ("ref-negative", ["models", "show", "churn:-1"], errors.InvalidReference, ["'churn:-1'"]),
    ("unknown-flavor", ["models", "register", "churn", "{xgb_json}", "--flavor", "caffe"],
     errors.UnknownFlavor, ["'caffe'", "xgboost"]),
    ("not-a-model", ["models", "register", "churn", "{text}", "--flavor", "xgboost"],
     errors.InvalidModelFile, ["notes.txt", "XGBoost"]),
    # LightGBM printed "[LightGBM] [Fatal] …" on the C-level stderr before the error line.
    ("not-a-lightgbm-model", ["models", "register", "churn", "{text}", "--flavor", "lightgbm"],
     errors.InvalidModelFile, ["notes.txt", "LightGBM"]),
    ("missing-file", ["models", "register", "churn", "{folder}/absent.json", "-f", "xgboost"],
     errors.InvalidModelFile, ["absent.json"]),
    ("pickle-untrusted", ["models", "register", "clf", "{pickle}", "--flavor", "sklearn"],
     errors.UnsafeModelFormat, ["pickle", "--trust-pickle"]),
    ("example-too-narrow", ["models", "register", "churn", "{xgb_json}", "-f", "xgboost",
                            "--input-example", "{narrow}"],
     errors.SignatureMismatch, ["visits"]),
    ("bad-signature", ["models", "register", "churn", "{xgb_json}", "-f", "xgboost",
                       "--signature", "{bad_signature}"], errors.InvalidInput, ["dtype"]),
    ("metric-not-a-number", ["models", "register", "churn", "{xgb_json}", "-f", "xgboost",
                             "--metric", "auc=high"], errors.InvalidInput, ["'auc'", "number"]),
    ("archive-aliased", ["models", "archive", "churn:1"], errors.VersionProtected,
     ["churn:1", "production"]),
    ("delete-aliased", ["models", "delete", "churn:1", "--yes"], errors.VersionProtected,
     ["churn:1", "production"]),
    ("delete-unconfirmed", ["models", "delete", "churn:2"], errors.InvalidInput,
     ["churn:2", "--yes"]),
    ("alias-unknown-version", ["models", "alias", "churn", "production", "99"],
     errors.VersionNotFound, ["99"]),
    ("alias-delete-unknown", ["models", "alias", "churn", "staging", "--delete"],
     errors.AliasNotFound, ["'staging'"]),
    ("tag-remove-absent", ["models", "tag", "churn", "--remove", "nope"], errors.NotFound,
     ["'nope'"]),
    ("verify-unknown", ["models", "verify", "clf:7"], errors.VersionNotFound, ["7"]),
    # issue 14, defect 5: `$` matched before a final newline, so these were accepted and then
    # could never be shown or used.
    ("name-trailing-newline", ["models", "create", "other\n"], errors.InvalidName,
     ["'other\\n'"]),
    ("register-name-trailing-newline", ["models", "register", "churn\n", "{xgb_json}", "-f",
                                        "xgboost"], errors.InvalidName, ["'churn\\n'"]),
    ("alias-trailing-newline", ["models", "alias", "churn", "staging\n", "1"],
     errors.InvalidName, ["'staging\\n'"]),
    ("ref-trailing-newline", ["models", "show", "churn\n"], errors.InvalidReference,
     ["'churn\\n'"]),
    # defect 12: a 10,000-character value is cut in the message, not echoed whole
    ("name-10000-characters", ["models", "create", "n" * 10_000], errors.InvalidName,
     ["characters cut", "invalid model name"]),
]  # fmt: skip

# id, arguments, words click's "Error:" line must contain (usage errors: exit 2)
USAGE_ERRORS: list[tuple[str, list[str], list[str]]] = [
    ("param-without-equals", ["models", "register", "churn", "{xgb_json}", "-f", "xgboost",
                              "--param", "depth"], ["--param", "'depth'", "KEY=VALUE"]),
    ("tag-without-equals", ["models", "create", "other", "--tag", "team"], ["--tag", "'team'"]),
    ("flavor-missing", ["models", "register", "churn", "{xgb_json}"], ["--flavor"]),
    ("alias-without-version", ["models", "alias", "churn", "production"], ["VERSION"]),
    ("tag-nothing", ["models", "tag", "churn"], ["KEY=VALUE"]),
    ("unknown-command", ["models", "frobnicate"], ["frobnicate"]),
    ("tag-given-twice", ["models", "create", "other", "--tag", "team=a", "--tag", "team=b"],
     ["--tag", "'team'", "twice"]),
    ("unknown-command-10000-characters", ["models", "f" * 10_000], ["characters cut"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_runs(registry: Any, model_files: Any) -> dict[str, Any]:
    """Every bad command, run concurrently against the registry, with snapshots around them."""
    calls = {case[0]: case[1] for case in [*BAD_INPUTS, *USAGE_ERRORS]}
    paths = {k: v for k, v in vars(model_files).items() if hasattr(v, "is_file")}
    argv = {k: [a.format(**paths) for a in args] for k, args in calls.items()}
    before = registry.snapshot()
    results = dict(zip(argv, registry.many(*argv.values()), strict=True))
    return {"before": before, "after": registry.snapshot(), "results": results}


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
    assert result.err.startswith("Usage: modelyard models"), result.err
    assert "Traceback" not in result.err and result.out == ""
    error_line = result.err.strip().splitlines()[-1]
    assert len(result.err) < 3000, f"{case}: {len(result.err)} characters on stderr"
    assert error_line.startswith("Error: "), result.err
    for word in words:
        assert word in error_line, f"{case}: {word!r} not in {error_line!r}"


def test_bad_inputs_leave_the_store_unchanged(bad_runs: dict[str, Any]) -> None:
    assert bad_runs["before"]["versions"]["churn"], "the snapshot must see the registry"
    assert bad_runs["after"] == bad_runs["before"]


def test_an_input_example_of_rows_without_a_header(cli: Any, model_files: Any) -> None:
    """Rows as SageMaker sends them (numpy's savetxt writes them so) have no header: the first
    row became the signature's feature names ('6.620714814034843743e-01') and was lost from the
    example, and a one-row file was refused as holding no rows."""
    import numpy as np

    rows = model_files.folder / "rows-no-header.csv"
    np.savetxt(rows, model_files.frame.head(3).to_numpy(), delimiter=",")
    one = model_files.folder / "one-row.csv"
    np.savetxt(one, model_files.frame.head(1).to_numpy(), delimiter=",")
    three, single = cli.many(
        ["models", "register", "rows", model_files.xgb_ubj, "-f", "xgboost",
         "--input-example", rows, "--json"],
        ["models", "register", "one", model_files.xgb_ubj, "-f", "xgboost",
         "--input-example", one, "--json"],
    )  # fmt: skip
    for run in (three, single):
        names = [c["name"] for c in run.ok().json()["signature"]["inputs"]]
        assert len(names) == 4 and all(n is None or n.isalpha() for n in names), names
    platform = cli.platform()
    try:
        example = platform.registry.input_example("rows:1")
        assert example is not None
        np.testing.assert_allclose(example.to_numpy(), model_files.frame.head(3).to_numpy())
    finally:
        platform.close()


def test_alias_tag_archive_restore_delete(cli: Any, model_files: Any) -> None:
    platform = cli.platform()
    try:
        for _ in range(2):  # setup through the Python API: the CLI's register is tested above
            platform.registry.register("scratch", model_files.xgb_ubj, flavor="xgboost")
    finally:
        platform.close()

    pointed, model_tag, version_tag = cli.many(
        ["models", "alias", "scratch", "production", "1"],
        ["models", "tag", "scratch", "team=growth"],
        ["models", "tag", "scratch:2", "stage=candidate", "owner=ml"],
    )
    assert pointed.ok().out == "Alias scratch@production → scratch:1\n"
    assert model_tag.ok().out == "Tagged scratch: team=growth\n"
    assert version_tag.ok().out == "Tagged scratch:2: stage=candidate owner=ml\n"

    moved, untag = cli.many(
        ["models", "alias", "scratch", "production", "2"],
        ["models", "tag", "scratch:2", "--remove", "owner"],
    )
    assert moved.ok().out == "Moved alias scratch@production from scratch:1 to scratch:2\n"
    assert untag.ok().out == "Tagged scratch:2: -owner\n"
    archived, alias_tag = cli.many(
        ["models", "archive", "scratch:1"],
        ["models", "tag", "scratch@production", "reviewed=yes"],  # production is 2 by now
    )
    assert archived.ok().out == "Archived scratch:1\n"
    alias_tag.ok()
    state = cli.snapshot()
    first, second = state["versions"]["scratch"]
    assert (first["status"], first["aliases"], first["tags"]) == ("archived", [], {})
    assert (second["status"], second["aliases"]) == ("ready", ["production"])
    assert second["tags"] == {"stage": "candidate", "reviewed": "yes"}
    assert state["models"][0]["tags"] == {"team": "growth"}

    assert cli("models", "restore", "scratch:1").ok().out == "Restored scratch:1\n"
    deleted, unaliased = cli.many(
        ["models", "delete", "scratch:1", "--yes"],
        ["models", "alias", "scratch", "production", "--delete"],
    )
    assert deleted.ok().out == "Deleted scratch:1\n"
    assert unaliased.ok().out == "Removed alias scratch@production\n"
    state = cli.snapshot()
    assert [(v["version"], v["status"], v["aliases"]) for v in state["versions"]["scratch"]] == [
        (2, "ready", [])
    ]
    assert state["models"][0]["aliases"] == {}


def test_text_users_wrote_is_printed_as_written_never_as_markup(cli: Any, model_files: Any) -> None:
    # Tags, descriptions and parameter values are the user's text: Rich read '[/x]' in them as
    # a closing tag (a MarkupError traceback, after the change was stored) and '[red]' as a
    # style (the text vanished from the output).
    registered = cli(
        "models", "register", "brackets", model_files.xgb_ubj, "--flavor", "xgboost",
        "--description", "scores [red]churn[/x]", "--param", "depth=[/x]",
    )  # fmt: skip
    assert registered.ok().out.startswith("Registered brackets:1 ")
    tagged, tagged_version = cli.many(
        ["models", "tag", "brackets", "team=[/usd]"],
        ["models", "tag", "brackets:1", "note=[bold]kept[/bold]"],
    )
    assert tagged.ok().out == "Tagged brackets: team=[/usd]\n"
    assert tagged_version.ok().out == "Tagged brackets:1: note=[bold]kept[/bold]\n"
    shown = cli("models", "show", "brackets:1").ok().out
    assert "scores [red]churn[/x]" in shown
    assert "depth=[/x]" in shown
    assert "note=[bold]kept[/bold]" in shown
