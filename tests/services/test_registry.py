"""The registry service end to end: real models, real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Trust
from modelyard.errors import (
    ArtifactCorrupted,
    ArtifactMissing,
    InvalidInput,
    InvalidModelFile,
    InvalidName,
    ModelFailed,
    SignatureMismatch,
    UnknownFlavor,
    UnsafeModelFormat,
    VersionProtected,
)


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


@pytest.fixture(scope="module")
def booster(breast_cancer: Any) -> Any:
    import xgboost as xgb

    x_train, _, y_train, _ = breast_cancer
    return xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x_train, label=y_train),
        num_boost_round=15,
    )


def state(platform: Platform) -> tuple[Any, ...]:
    models = platform.registry.list_models()
    return models, [platform.registry.list_versions(m.name) for m in models]


def refused_changing_nothing(platform: Platform, attempts: list[tuple[str, Any]]) -> None:
    """Each attempt raises InvalidInput matching its words, and the registry is as it was."""
    before = state(platform)
    for words, attempt in attempts:
        with pytest.raises(InvalidInput, match=words):
            attempt()
    assert state(platform) == before


def test_xgboost_round_trip_with_example(
    platform: Platform, booster: Any, breast_cancer: Any
) -> None:
    _, x_test, _, _ = breast_cancer
    reg = platform.registry
    mv = reg.register(
        "cancer",
        booster,
        flavor="xgboost",
        input_example=x_test.head(5),
        params={"max_depth": 3},
        metrics={"auc": 0.97},
        aliases=["production"],
    )
    assert (mv.version, mv.aliases, mv.params, mv.metrics) == (
        1,
        ("production",),
        {"max_depth": "3"},
        {"auc": 0.97},
    )
    assert mv.signature is not None and mv.signature.feature_names == list(x_test.columns)
    loaded = reg.load("cancer@production")
    np.testing.assert_allclose(loaded.predict(x_test), booster.inplace_predict(x_test), rtol=1e-6)
    loaded.unload()
    example = reg.input_example("cancer:1")
    assert (
        example is not None and list(example.columns) == list(x_test.columns) and len(example) == 5
    )


def test_an_unnamed_example_keeps_the_models_own_feature_names(
    platform: Platform, booster: Any, breast_cancer: Any, tmp_path: Path
) -> None:
    """An input example without names (an array, a headerless CSV, both documented) gave a
    signature without names though the booster names its features, so a server put JSON
    records' fields in the order they came: {"b": …, "a": …} answered with the features
    swapped, silently. The signature now takes the model's own names; a model that names
    none stays positional."""
    import xgboost as xgb

    _, x_test, _, y_test = breast_cancer
    headerless = tmp_path / "rows.csv"
    headerless.write_text(x_test.head(5).to_csv(index=False, header=False))
    names = list(x_test.columns)
    for example in (x_test.head(5).to_numpy(), headerless):
        mv = platform.registry.register("cancer", booster, flavor="xgboost", input_example=example)
        assert mv.signature is not None and mv.signature.feature_names == names, example
    unnamed = xgb.train({"nthread": 1}, xgb.DMatrix(x_test.to_numpy(), label=y_test), 2)
    mv = platform.registry.register(
        "plain", unnamed, flavor="xgboost", input_example=x_test.head(5).to_numpy()
    )
    assert mv.signature is not None and mv.signature.feature_names is None


def test_every_flavor_round_trips(platform: Platform, breast_cancer: Any, tmp_path: Path) -> None:
    import lightgbm as lgb
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, _ = breast_cancer
    xa_train, xa_test = x_train.to_numpy(np.float32), x_test.to_numpy(np.float32)
    lgbm = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lgb.Dataset(xa_train, label=y_train.to_numpy()),
        num_boost_round=10,
    )
    logreg = LogisticRegression(max_iter=5000).fit(xa_train, y_train)
    onnx_model = to_onnx(logreg, xa_train[:1])
    code = tmp_path / "pyfunc"
    code.mkdir()
    (code / "model.py").write_text(
        "import numpy as np\n\nclass Model:\n"
        "    def load(self, artifacts_dir):\n        self.w = 2.0\n"
        "    def predict(self, data):\n"
        "        return np.asarray(data, dtype=float).sum(axis=1) * self.w\n"
    )
    cases = [
        ("lightgbm", lgbm, lgbm.predict(xa_test)),
        ("sklearn", logreg, logreg.predict(xa_test)),
        ("onnx", onnx_model, logreg.predict(xa_test)),
        ("pyfunc", code, xa_test.astype(float).sum(axis=1) * 2.0),
    ]
    with pytest.raises(UnsafeModelFormat, match="trust the model's code to register it") as no:
        platform.registry.register("m-pyfunc", code, flavor="pyfunc")
    assert "--" not in no.value.message  # said to CLI and Python users alike
    for flavor, model, expected in cases:
        mv = platform.registry.register(
            f"m-{flavor}",
            model,
            flavor=flavor,
            input_example=xa_test[:3],
            trust=Trust(user_code=flavor == "pyfunc"),
        )
        loaded = platform.registry.load(mv.ref)
        np.testing.assert_allclose(
            np.asarray(loaded.predict(xa_test)).ravel(),
            np.ravel(expected),
            rtol=1e-5,
            err_msg=flavor,
        )
        loaded.unload()
    assert platform.registry.get_version("m-pyfunc").trust.user_code is True


def test_bad_inputs_change_nothing(
    platform: Platform, booster: Any, breast_cancer: Any, tmp_path: Path
) -> None:
    _, x_test, _, _ = breast_cancer
    reg = platform.registry
    reg.register("cancer", booster, flavor="xgboost")
    before = state(platform)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a model")
    swapped = list(x_test.columns)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    renamed = [swapped[0], "a new name", *swapped[2:]]
    attempts: list[tuple[type[Exception], Any]] = [
        (UnknownFlavor, lambda: reg.register("cancer", booster, flavor="tensorflow")),
        (
            SignatureMismatch,
            lambda: reg.register(
                "cancer", booster, flavor="xgboost", signature={"inputs": [{"dtype": "float64"}]}
            ),
        ),
        (InvalidModelFile, lambda: reg.register("cancer", text, flavor="xgboost")),
        (  # the model's own feature names in another order: each value in another's place
            SignatureMismatch,
            lambda: reg.register(
                "cancer",
                booster,
                flavor="xgboost",
                signature={"inputs": [{"dtype": "float64", "name": n} for n in swapped]},
            ),
        ),
        (  # ...or one of them moved, beside a new name
            SignatureMismatch,
            lambda: reg.register(
                "cancer",
                booster,
                flavor="xgboost",
                signature={"inputs": [{"dtype": "float64", "name": n} for n in renamed]},
            ),
        ),
        (
            InvalidModelFile,
            lambda: reg.register("cancer", tmp_path / "absent.json", flavor="xgboost"),
        ),
        (
            SignatureMismatch,
            lambda: reg.register(
                "cancer", booster, flavor="xgboost", input_example=x_test.iloc[:3, :10]
            ),
        ),
        (InvalidName, lambda: reg.register("bad name!", booster, flavor="xgboost")),
        (
            InvalidName,
            lambda: reg.register("cancer", booster, flavor="xgboost", aliases=["no way"]),
        ),
        (
            InvalidInput,
            lambda: reg.register("cancer", booster, flavor="xgboost", metrics={"auc": "high"}),
        ),
        (
            InvalidInput,
            lambda: reg.register(
                "cancer", booster, flavor="xgboost", metrics={"auc": float("nan")}
            ),
        ),
        (
            InvalidInput,
            lambda: reg.register(
                "cancer", booster, flavor="xgboost", input_example=tmp_path / "none.csv"
            ),
        ),
    ]
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
    assert state(platform) == before


def test_aliases_given_as_one_text_are_refused_not_split_into_letters(
    platform: Platform, booster: Any
) -> None:
    # aliases="production" from Python: iterating the text made the aliases p, r, o, d, …
    reg = platform.registry
    reg.register("cancer", booster, flavor="xgboost")
    staged = reg.stage(booster, flavor="xgboost")
    words = r"aliases must be a list of names.*'prod'"
    refused_changing_nothing(
        platform,
        [
            (words, lambda: reg.register("cancer", booster, flavor="xgboost", aliases="prod")),
            (words, lambda: reg.register_staged("cancer", staged, aliases="prod")),
        ],
    )
    mv = reg.register("cancer", booster, flavor="xgboost", aliases=("prod",))
    assert mv.aliases == ("prod",)


def test_tag_values_and_descriptions_that_are_not_text_are_refused_naming_them(
    platform: Platform, booster: Any
) -> None:
    # From Python: a number was a TypeError from inside the check ('argument of type 'int' is
    # not iterable'), and a tag value None a Conflict from the database's NOT NULL, after the
    # model had been staged.
    reg = platform.registry
    reg.register("cancer", booster, flavor="xgboost")
    attempts: list[tuple[str, Any]] = [
        (
            r"value of tag 'team' must be text, got int 1",
            lambda: reg.register("cancer", booster, flavor="xgboost", tags={"team": 1}),
        ),
        (
            r"value of tag 'team' must be text, got None",
            lambda: reg.register("cancer", booster, flavor="xgboost", tags={"team": None}),
        ),
        (
            r"description must be text, got int 5",
            lambda: reg.register("cancer", booster, flavor="xgboost", description=5),
        ),
        (r"value of tag 'k' must be text", lambda: reg.set_tags("cancer", {"k": 2})),
        (r"value of tag 'k' must be text", lambda: reg.set_tags("cancer:1", {"k": None})),
        (r"description must be text", lambda: reg.set_description("cancer", 5)),
        (r"description must be text", lambda: reg.create_model("other", description=["x"])),
    ]
    refused_changing_nothing(platform, attempts)


def test_numbers_out_of_range_or_of_the_wrong_kind_are_refused_naming_them(
    platform: Platform, booster: Any
) -> None:
    # From Python: a version past what the database holds was a raw OverflowError, True was
    # taken as version 1; a metric of 10**400 was an OverflowError, True a metric of 1.0; and
    # restore without a version "restored" the latest ready version.
    reg = platform.registry
    reg.register("cancer", booster, flavor="xgboost")
    reg.archive("cancer:1")
    reg.register("cancer", booster, flavor="xgboost")
    attempts: list[tuple[str, Any]] = [
        (r"version must be a whole number from 1 to", lambda: reg.set_alias("cancer", "a", 2**70)),
        (r"version must be a whole number from 1 to", lambda: reg.set_alias("cancer", "a", True)),
        (r"version must be a whole number from 1 to", lambda: reg.set_alias("cancer", "a", 0)),
        (
            r"metric 'auc' must be a number",
            lambda: reg.register("cancer", booster, flavor="xgboost", metrics={"auc": True}),
        ),
        (
            r"metric 'auc' must be finite",
            lambda: reg.register("cancer", booster, flavor="xgboost", metrics={"auc": 10**400}),
        ),
        (r"name the version to restore explicitly", lambda: reg.restore("cancer")),
    ]
    refused_changing_nothing(platform, attempts)
    assert reg.restore("cancer:1").status.value == "ready"
    assert reg.set_alias("cancer", "np", np.int64(2)).version == 2  # numpy's ints are ints


def test_lightgbm_trained_on_names_with_spaces_registers_and_keeps_the_models_order(
    platform: Platform,
) -> None:
    # scikit-learn's own breast-cancer frame names its features "mean radius", …: LightGBM
    # stores them as "mean_radius". The example the model was trained on must be accepted, and
    # one whose columns are in another order refused, not recorded in that order (the server
    # feeds features by the signature's order, and LightGBM reads them by position).
    import lightgbm as lgb
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(x, y)
    reg = platform.registry
    mv = reg.register("lgb-spaces", model, flavor="lightgbm", input_example=x.head(5))
    assert mv.signature is not None and mv.signature.feature_names == list(x.columns)
    loaded = reg.load(mv.ref)
    np.testing.assert_allclose(loaded.predict(x.head(20)), model.predict_proba(x.head(20))[:, 1])
    np.testing.assert_allclose(
        loaded.predict(x.head(20).to_numpy()), model.predict_proba(x.head(20))[:, 1]
    )
    loaded.unload()
    before = state(platform)
    with pytest.raises(SignatureMismatch, match="in another order"):
        reg.register("lgb-spaces", model, flavor="lightgbm", input_example=x.iloc[:5, ::-1])
    assert state(platform) == before


def test_a_model_answering_other_than_one_prediction_a_row_is_refused(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pyfunc that dropped a row was registered (and `verify` said "OK … predicted 4 example
    # rows" for 5), only for every server to refuse it at warm-up; one answering a scalar
    # crashed register with an IndexError traceback.
    reg = platform.registry
    example = np.arange(10.0).reshape(5, 2)
    answers = {
        "fewer": "np.zeros(len(data) - 1)",
        "scalar": "1.0",
        "more": "np.zeros((len(data) + 2, 2))",
    }
    before = state(platform)
    for name, answer in answers.items():
        code = tmp_path / f"{name}.py"
        code.write_text(
            "import numpy as np\n\nclass Model:\n    def load(self, path):\n        pass\n"
            f"    def predict(self, data):\n        return {answer}\n"
        )
        with pytest.raises(InvalidModelFile, match="for the 5 rows of the input example"):
            reg.register(
                name, code, flavor="pyfunc", input_example=example, trust=Trust(user_code=True)
            )
    assert state(platform) == before
    # A model whose answers change after registration (its code reads the environment here;
    # a library upgrade in real life) fails verify instead of passing it.
    code = tmp_path / "drifting.py"
    code.write_text(
        "import os\nimport numpy as np\n\nclass Model:\n    def load(self, path):\n        pass\n"
        "    def predict(self, data):\n"
        "        return np.zeros(len(data) - int(os.environ.get('DROP_ROWS', '0')))\n"
    )
    mv = reg.register(
        "drifting", code, flavor="pyfunc", input_example=example, trust=Trust(user_code=True)
    )
    assert reg.verify(mv.ref)[1] == 5
    monkeypatch.setenv("DROP_ROWS", "1")
    with pytest.raises(ModelFailed, match=r"drifting:1 returned 4 predictions for the 5 rows"):
        reg.verify(mv.ref)
    # ...and one that now raises (or answers ragged rows) fails it with the model's error
    # and where its code raised it, not a traceback out of verify.
    monkeypatch.setenv("DROP_ROWS", "x")
    with pytest.raises(
        ModelFailed,
        match=r"drifting:1 cannot predict on its input example: ValueError: invalid literal"
        r".* \(drifting\.py, line 8\)",
    ):
        reg.verify(mv.ref)


def test_feature_names_holding_control_characters_are_refused(
    platform: Platform, booster: Any
) -> None:
    """The CLI, the logs and the report print feature names: an escape sequence in one reached
    the terminal as a command (clearing it, say)."""
    names = [f"f{i}" for i in range(30)]
    names[3] = "\x1b[2Jwiped"
    inputs = [{"dtype": "float64", "name": n} for n in names]
    before = state(platform)
    with pytest.raises(InvalidInput, match=r"control characters: '\\x1b\[2Jwiped'"):
        platform.registry.register(
            "cancer", booster, flavor="xgboost", signature={"inputs": inputs}
        )
    assert state(platform) == before


def test_default_sklearn_path_refuses_a_pickle(
    platform: Platform, breast_cancer: Any, tmp_path: Path
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x_train, x_test, y_train, _ = breast_cancer
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x_train, y_train)
    path = tmp_path / "tree.pkl"
    path.write_bytes(pickle.dumps(tree))
    with pytest.raises(UnsafeModelFormat, match="trust"):
        platform.registry.register("tree", path, flavor="sklearn")
    assert platform.registry.list_models() == []
    mv = platform.registry.register("tree", path, flavor="sklearn", trust=Trust(pickle=True))
    assert mv.trust.pickle is True
    loaded = platform.registry.load("tree")
    np.testing.assert_array_equal(loaded.predict(x_test), tree.predict(x_test))
    loaded.unload()


def _blob(platform: Platform, digest: str) -> Path:
    return Path(platform.settings.resolved_artifact_url) / "sha256" / digest[:2] / digest


def test_tampered_or_missing_artifact_is_refused(platform: Platform, booster: Any) -> None:
    from modelyard.storage import packages

    mv = platform.registry.register("cancer", booster, flavor="xgboost")
    manifest = packages.read_manifest(platform.artifacts, mv.artifact_digest)
    weights = next(f for f in manifest["files"] if f["path"].startswith("model/"))
    blob = _blob(platform, weights["sha256"])
    original = blob.read_bytes()
    blob.write_bytes(original[: len(original) // 2])
    with pytest.raises(ArtifactCorrupted, match=weights["sha256"]):
        platform.registry.load("cancer:1")
    blob.unlink()
    with pytest.raises(ArtifactMissing, match=weights["sha256"]):
        platform.registry.load("cancer:1")
    blob.write_bytes(original)
    platform.registry.load("cancer:1").unload()
    assert not list((platform.settings.home / "tmp" / "loaded").iterdir()), "unload cleans up"


def test_protection_rules(platform: Platform, booster: Any) -> None:
    reg = platform.registry
    for _ in range(3):
        reg.register("cancer", booster, flavor="xgboost")
    reg.set_alias("cancer", "production", 1)
    with pytest.raises(VersionProtected, match="production"):
        reg.delete_version("cancer:1")
    with pytest.raises(VersionProtected, match="production"):
        reg.archive("cancer:1")
    with pytest.raises(InvalidInput, match="NAME:VERSION"):
        reg.delete_version("cancer")
    reg.add_guard(lambda v: "serves endpoint churn-api" if v.version == 2 else None)
    with pytest.raises(VersionProtected, match="churn-api"):
        reg.delete_version("cancer:2")
    archived = reg.archive("cancer:3")
    assert archived.status.value == "archived"
    assert reg.get_version("cancer").version == 2
    with pytest.raises(VersionProtected, match="archived"):
        reg.set_alias("cancer", "staging", 3)
    reg.restore("cancer:3")
    assert reg.delete_version("cancer:3").version == 3
    assert [v.version for v in reg.list_versions("cancer")] == [1, 2]


@pytest.fixture
def tiny_home(tmp_path: Path) -> Iterator[Path]:
    import os
    import subprocess

    home = tmp_path / "tiny"
    home.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr}")
        pytest.skip(f"mount not permitted here: {done.stderr.strip()}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_full_or_read_only_home_is_refused_cleanly(tiny_home: Path, booster: Any) -> None:
    import subprocess

    from modelyard.errors import StorageNotWritable

    db = tiny_home.parent / "meta.db"  # the database lives elsewhere: only artifacts fill up
    platform = build(load_settings({}, home=tiny_home, db_url=f"sqlite:///{db}"))
    reg = platform.registry
    reg.register("cancer", booster, flavor="xgboost")
    filler = tiny_home / "filler"
    with pytest.raises(OSError), filler.open("wb") as out:
        while True:  # fill the disk to the last byte
            out.write(b"\0" * 4096)
            out.flush()
    with pytest.raises(StorageNotWritable, match="No space left"):
        reg.register("cancer", booster, flavor="xgboost")
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_home)], check=True)
    with pytest.raises(StorageNotWritable):
        reg.register("cancer", booster, flavor="xgboost")
    assert [v.version for v in reg.list_versions("cancer")] == [1]
    platform.close()


def test_a_nul_character_is_refused_alike_on_every_backend(platform: Platform) -> None:
    """Found by the property-based tests: on PostgreSQL a lookup of ``"\\x00"`` failed as
    "metadata database error" (503), while SQLite answered "not found"."""
    from modelyard.errors import InvalidInput, InvalidName, InvalidReference

    reg = platform.registry
    reg.create_model("m")
    before = state(platform)
    attempts: list[tuple[type[Exception], Any]] = [
        (InvalidName, lambda: reg.get_model("\x00")),
        (InvalidName, lambda: reg.list_versions("m\x00")),
        (InvalidReference, lambda: reg.get_version("m\x00:1")),
        (InvalidName, lambda: reg.delete_alias("m", "prod\x00")),
        (InvalidName, lambda: platform.endpoints.get("e\x00")),
        (InvalidInput, lambda: reg.create_model("n", description="a\x00b")),
        (InvalidInput, lambda: reg.set_description("m", "a\x00b")),
        (InvalidInput, lambda: reg.set_tags("m", {"team": "a\x00"})),
    ]
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
    assert state(platform) == before


def test_a_value_the_database_cannot_hold_is_invalid_input(pg_url: str, tmp_path: Path) -> None:
    """Below the service's checks, the store turns PostgreSQL's refusal into bad input."""
    from modelyard.errors import InvalidInput

    p = build(load_settings({}, home=tmp_path / "home", db_url=pg_url))
    try:
        with pytest.raises(InvalidInput, match="cannot store a value"):
            p.metadata.create_model("m", "a\x00b", None)
        assert p.registry.list_models() == []
    finally:
        p.close()
