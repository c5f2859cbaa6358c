"""``columns_for``: how rows decoded for one model's signature become another's (a shadow gets
the rows decoded for the production variant it shadows)."""

from __future__ import annotations

import pytest

from modelyard.domain.signature import ColumnSpec, Signature, columns_for


def named(*names: str) -> Signature:
    return Signature(inputs=tuple(ColumnSpec("float64", n) for n in names))


def unnamed(count: int) -> Signature:
    return Signature(inputs=tuple(ColumnSpec("float64") for _ in range(count)))


def test_the_same_columns_in_the_same_order_go_as_they_are() -> None:
    assert columns_for(named("a", "b", "c"), named("a", "b", "c")) is None


def test_another_order_or_fewer_columns_are_picked_by_name() -> None:
    assert columns_for(named("c", "a", "b"), named("a", "b", "c")) == (2, 0, 1)
    assert columns_for(named("b"), named("a", "b", "c")) == (1,)
    # The first columns, in order, are still a pick: the rows are wider than the model takes.
    assert columns_for(named("a", "b"), named("a", "b", "c")) == (0, 1)


def test_a_named_input_the_rows_lack_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"inputs 'd', 'e' that the rows do not have") as caught:
        columns_for(named("a", "d", "e"), named("a", "b"))
    assert "(they have 'a', 'b')" in str(caught.value)
    with pytest.raises(ValueError, match=r"takes input 'd' that"):
        columns_for(named("d"), named("a"))
    # A wide model's names are cut short: the first eight, and how many in all.
    wide = named(*(f"f{i}" for i in range(300)))
    with pytest.raises(ValueError) as caught:
        columns_for(named("f0", "extra"), wide)
    assert str(caught.value).endswith("(they have 'f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', "
                                      "'f7', ... (300 in all))")  # fmt: skip


def test_without_names_only_the_counts_can_be_checked() -> None:
    assert columns_for(unnamed(3), unnamed(3)) is None
    assert columns_for(unnamed(3), named("x", "y", "z")) is None
    assert columns_for(named("x", "y", "z"), unnamed(3)) is None
    with pytest.raises(ValueError, match="takes 4 features, the rows have 3"):
        columns_for(unnamed(4), named("a", "b", "c"))
    with pytest.raises(ValueError, match="takes 2 features, the rows have 3"):
        columns_for(named("a", "b"), unnamed(3))


def test_a_signature_that_says_nothing_checks_nothing() -> None:
    empty = Signature(inputs=())
    for target, source in ((None, named("a")), (named("a"), None), (empty, named("a")),
                           (named("a"), empty), (None, None)):  # fmt: skip
        assert columns_for(target, source) is None


def test_input_names_are_the_features_names_or_their_positions_as_capture_writes_them() -> None:
    assert named("a", "b").input_names == ["a", "b"]
    assert unnamed(3).input_names == ["0", "1", "2"]
    partly = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("float64")))
    assert partly.input_names == ["0", "1"]  # one unnamed feature: all are read by position
    assert Signature(inputs=()).input_names == []
