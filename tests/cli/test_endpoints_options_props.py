"""Property-based tests of the endpoint commands' option parsing (issue 14's fuzzing layer).

Generated command lines (names, ``--variant``, ``--weights``, ``--batch-size``) run in-process
through the CLI's own entry point against a real SQLite store. Whatever the arguments:

- the command ends with a documented exit code (0, 2 bad input, 3 not found, 4 conflict), never
  with an exception escaping the CLI's one error translator;
- a refused command changes nothing in the store;
- an accepted one serves exactly the variants that were asked for, each with the share its
  weight gives (finite, adding up to 100 %).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from modelyard.cli.main import run
from modelyard.cli.render import shares

EXIT_CODES = {0, 2, 3, 4}

# Well-formed values are drawn more often than hostile ones (a command is accepted only when
# every part is well-formed), so that both the accepting and the refusing paths are exercised.
variant_keys = st.sampled_from(
    ["a", "b", "blue"] * 4 + ["a\n", " a", "a b", "", "-x", "v" * 300, "é"]
)
refs = st.sampled_from(["good"] * 6 + ["bad", "text"]).flatmap(
    lambda kind: {
        "good": st.sampled_from(["cancer:1", "cancer:2", "cancer@prod", "cancer"]),
        "bad": st.sampled_from(
            ["cancer:99", "nope:1", "cancer:0", "cancer:1\n", " cancer:1", "cancer:1:2", ""]
        ),
        "text": st.text(max_size=20),
    }[kind]
)
weight_values = st.one_of(
    st.floats(min_value=0, max_value=1e300).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e308", "1.7e308", "0", "-0", "1e-320", "nan", "inf", "1_0", "x", ""]),
)
weights_text = st.lists(
    st.builds(lambda k, v: f"{k}={v}", variant_keys, weight_values), max_size=3
).map(",".join)
batch_text = st.builds(
    lambda k, v: f"{k}={v}",
    variant_keys,
    st.one_of(st.integers(-5, 200_000).map(str), st.sampled_from(["big", "1.5", "9" * 400])),
)
endpoint_names = st.one_of(
    st.sampled_from(["ep", "ep.2"]),
    st.sampled_from(["ep\n", "e p", "", "-ep", "e" * 129, "api"]),
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with cancer:1, cancer:2 (alias prod) and the endpoint ``api`` (a=cancer:1);
    MODELYARD_HOME points at it while this module runs."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    home = tmp_path_factory.mktemp("props") / "home"
    data = load_breast_cancer(as_frame=True)
    features = data.data.iloc[:, :4].set_axis(["f0", "f1", "f2", "f3"], axis=1)
    platform = build(load_settings({}, home=home))
    try:
        for rounds in (2, 3):
            booster = xgb.train(
                {"objective": "binary:logistic", "nthread": 1},
                xgb.DMatrix(features, label=data.target),
                num_boost_round=rounds,
            )
            platform.registry.register(
                "cancer", booster, flavor="xgboost", input_example=features.head(3)
            )
        platform.registry.set_alias("cancer", "prod", 2)
        platform.endpoints.create("api", {"a": "cancer:1"})
    finally:
        platform.close()
    saved = {k: v for k, v in os.environ.items() if k.startswith("MODELYARD_")}
    for key in saved:
        del os.environ[key]
    os.environ["MODELYARD_HOME"] = str(home)
    try:
        yield home
    finally:
        del os.environ["MODELYARD_HOME"]
        os.environ.update(saved)


def state(home: Path) -> Any:
    from modelyard.bootstrap import build
    from modelyard.cli.render import to_jsonable
    from modelyard.config import load_settings

    platform = build(load_settings({}, home=home))
    try:
        eps = platform.endpoints
        return {e.name: to_jsonable([e, eps.history(e.name)]) for e in eps.list_endpoints()}
    finally:
        platform.close()


def modelyard(*argv: str) -> tuple[int, str]:
    """Run the CLI in this process; its exit code and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run(list(argv))
    return code, err.getvalue()


def check_accepted(home: Path, name: str, variants: dict[str, str]) -> None:
    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    platform = build(load_settings({}, home=home))
    try:
        config = platform.endpoints.get(name).config
        assert [v.name for v in config.variants] == list(variants)
        assert [v.requested for v in config.variants] == list(variants.values())
        share = shares(config)
        assert all(math.isfinite(s) and 0 <= s <= 100 for s in share.values()), share
        assert math.isclose(sum(share.values()), 100.0, rel_tol=1e-9), share
        platform.endpoints.delete(name)
    finally:
        platform.close()


@settings(max_examples=60)
@given(
    name=endpoint_names,
    variants=st.one_of(
        st.lists(st.tuples(variant_keys, refs), min_size=1, max_size=3, unique_by=lambda v: v[0]),
        st.lists(st.tuples(variant_keys, refs), min_size=0, max_size=3),
    ),
    weights=st.sampled_from([False, False, True]).flatmap(
        lambda given: weights_text if given else st.none()
    ),
    batch=st.sampled_from([False, False, True]).flatmap(
        lambda given: batch_text if given else st.none()
    ),
)
@example(name="ep", variants=[("a", "cancer:1"), ("a", "cancer:2")], weights=None, batch=None)
@example(name="ep", variants=[("a", "cancer:1"), ("b", "cancer:2")], weights="a=1e308,b=1e308",
         batch=None)  # fmt: skip
@example(name="ep\n", variants=[("a", "cancer:1")], weights=None, batch=None)
def test_endpoints_create_parses_or_refuses_cleanly(
    home: Path, name: str, variants: list[tuple[str, str]], weights: str | None, batch: str | None
) -> None:
    argv = ["endpoints", "create", name]
    for key, ref in variants:
        argv += ["--variant", f"{key}={ref}"]
    if weights is not None:
        argv += ["--weights", weights]
    if batch is not None:
        argv += ["--batch-size", batch]
    before = state(home)
    code, err = modelyard(*argv)
    event(f"exit {code}")
    assert code in EXIT_CODES, (code, err)
    assert len(err) < 3000, err
    if code != 0:
        assert state(home) == before
        return
    keys = [key for key, _ in variants]
    assert len(set(keys)) == len(keys), "a repeated --variant must be refused"
    check_accepted(home, name, dict(variants))


@settings(max_examples=60)
@given(
    weights=st.one_of(
        st.builds(lambda v: f"a={v}", weight_values),
        st.lists(st.builds(lambda v: f"a={v}", weight_values), max_size=2).map(",".join),
    )
)
@example(weights="a=1e308")
@example(weights="a=inf")
@example(weights="a=1,a=2")
def test_endpoints_weights_parses_or_refuses_cleanly(home: Path, weights: str) -> None:
    before = state(home)
    code, err = modelyard("endpoints", "weights", "api", weights)
    event(f"exit {code}")
    assert code in EXIT_CODES, (code, err)
    after = state(home)
    if code != 0:
        assert after == before
        return
    variants = after["api"][0]["config"]["variants"]
    assert len(variants) == 1 and math.isfinite(variants[0]["weight"]) and variants[0]["weight"] > 0
