"""Property-based tests of the registry's name handling over a real store (issue 14's fuzzing
layer): a name the registry accepts can be shown and used by that same name afterwards, and a
refused one leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ModelRef
from modelyard.errors import AlreadyExists, InvalidName, InvalidReference, NotFound
from tests.conftest import module_database

names = st.one_of(
    st.text(st.sampled_from("abcXYZ019_.-"), min_size=1, max_size=130),
    st.builds(
        lambda a, b: a + b,
        st.text(st.sampled_from("abc1"), min_size=1, max_size=8),
        st.sampled_from(["\n", "\r", " ", "\t", "\x00", "é", "/", ":", "@", "\u2028", ""]),
    ),
    st.text(max_size=40),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """One store per backend for the whole module (Hypothesis runs many examples per test)."""
    home = tmp_path_factory.mktemp("registry-props") / "home"
    with module_database(request) as db_url:
        p = build(load_settings({}, home=home, db_url=db_url))
        try:
            yield p
        finally:
            p.close()


def models(platform: Platform) -> list[tuple[str, str | None, dict[str, str]]]:
    return [(m.name, m.description, dict(m.tags)) for m in platform.registry.list_models()]


@settings(max_examples=100)
@given(name=names, tag=names)
@example(name="churn\n", tag="team")
@example(name="churn", tag="team\n")
@example(name="c" * 10_000, tag="team")
def test_an_accepted_model_name_is_usable_and_a_refused_one_changes_nothing(
    platform: Platform, name: str, tag: str
) -> None:
    registry = platform.registry
    before = models(platform)
    try:
        registry.create_model(name, "described", {tag: "x"})
    except InvalidName as exc:
        assert len(str(exc)) < 500
        assert models(platform) == before
        return
    except AlreadyExists:  # accepted by an earlier example
        assert name in [m[0] for m in before]
        assert models(platform) == before
        return
    assert registry.get_model(name).name == name
    assert ModelRef.parse(name) == ModelRef(name)
    assert [m for m in models(platform) if m[0] == name] == [(name, "described", {tag: "x"})]


@settings(max_examples=100)
@given(text=names)
@example(text="nobody\n")
def test_looking_up_any_name_is_found_or_a_typed_error(platform: Platform, text: str) -> None:
    for lookup in (platform.registry.get_model, platform.registry.get_version):
        try:
            lookup(text)
        except (InvalidName, InvalidReference, NotFound):
            continue
