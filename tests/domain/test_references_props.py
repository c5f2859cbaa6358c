"""Property-based tests of name and reference parsing (issue 14's fuzzing layer).

Whatever text arrives, parsing either returns a value that round-trips exactly or raises our
own typed error; never another exception, and never a value that differs from what was typed
(the ``churn\\n`` defect: a trailing newline was accepted and the name could not be used).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from modelyard.domain import ModelRef, validate_name
from modelyard.domain.references import validate_metric_name
from modelyard.errors import MAX_MESSAGE, MAX_SHOWN, InvalidName, InvalidReference, shorten

ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# Text near the grammar finds more than uniform text: names, ':' and '@', digits, whitespace
# and control characters, and now and then anything at all.
name_chars = st.sampled_from("abcXYZ019_.-")
names = st.text(name_chars, min_size=0, max_size=140)
tricky = st.sampled_from(["\n", "\r\n", " ", "\t", "\x00", "é", "/", "..", "\u2028", ":", "@"])
near_names = st.builds(
    lambda a, b, c: a + b + c, names, st.one_of(st.just(""), tricky), st.one_of(names, tricky)
)
references = st.one_of(
    near_names,
    st.builds(lambda n, v: f"{n}:{v}", near_names, st.one_of(st.integers(-3, 10**20), names)),
    st.builds(lambda n, a: f"{n}@{a}", near_names, near_names),
    st.text(max_size=300),
)


@given(near_names | st.text(max_size=300))
@example("churn\n")
@example("a" * 10_000)
@example("a " * 5_000)  # found in review: short runs, long message
def test_a_name_is_accepted_exactly_or_refused_with_invalid_name(text: str) -> None:
    try:
        accepted = validate_name(text)
    except InvalidName as exc:
        assert ALLOWED.fullmatch(text) is None
        assert len(str(exc)) <= MAX_MESSAGE  # the value is quoted, cut when long
        return
    assert accepted == text
    assert ALLOWED.fullmatch(text) is not None


@given(near_names | st.text(max_size=300))
@example("validation:auc\n")
def test_a_metric_name_is_accepted_exactly_or_refused(text: str) -> None:
    try:
        accepted = validate_metric_name(text)
    except InvalidName:
        return
    assert accepted == text
    assert "\n" not in text and len(text) <= 128


@given(references)
@example("churn:3\n")
@example("churn@prod\n")
@example(" churn")
@example("churn:00")
def test_a_reference_round_trips_or_is_refused_with_invalid_reference(text: str) -> None:
    try:
        ref = ModelRef.parse(text)
    except InvalidReference as exc:
        assert len(str(exc)) <= MAX_MESSAGE
        return
    # What parses names exactly what was typed (version numbers aside: 007 is version 7).
    assert ModelRef.parse(str(ref)) == ref
    assert ALLOWED.fullmatch(ref.name) is not None
    if ref.alias is not None:
        assert ALLOWED.fullmatch(ref.alias) is not None
        assert str(ref) == text
    elif ref.version is not None:
        assert ref.version >= 1
        assert text == f"{ref.name}:{text.partition(':')[2]}"
    else:
        assert str(ref) == text


@given(
    st.text(max_size=1_000)
    | st.builds(
        lambda a, b: a + b, st.text(max_size=50), st.text("ab", min_size=150, max_size=3_000)
    )
)
def test_shorten_keeps_short_runs_and_cuts_long_ones(text: str) -> None:
    out = shorten(text)
    if len(text) <= MAX_SHOWN:
        assert out == text
    for run in text.split():
        if len(run) <= MAX_SHOWN:
            assert run in out
        else:
            assert run not in out and f"[{len(run) - 2 * (MAX_SHOWN // 3)} characters cut]" in out
