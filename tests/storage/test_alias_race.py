"""Two writers pointing one new alias at the same moment, on PostgreSQL.

Setting an alias points it or moves it: of two ``modelyard models alias churn production N``
run together (two machines), both succeed and the later one's version is where the alias
points. PostgreSQL runs the two transactions at once, so neither sees the other's row until it
commits: a write that inserts the alias only when an update found none would clash with the
other's insert on the alias key and fail with ``AlreadyExists``, for a command that creates
nothing. The tests hold the first writer's row uncommitted until the second waits for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from modelyard.domain import ModelRef
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from tests.storage.held_writes import insert_alias, while_held
from tests.storage.test_metadata_contract import new

ALIAS_VERSION_1 = partial(insert_alias, model="churn", alias="production", version=1)


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(make_engine(pg_schema_url))
    for _ in range(2):
        s.create_version(new())
    yield s
    s.close()


def test_two_writers_setting_a_new_alias_both_succeed(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = while_held(
        pg_schema_url, ALIAS_VERSION_1, lambda: store.set_alias("churn", "production", 2)
    )

    assert not isinstance(outcome, Exception), outcome
    assert store.get_model("churn").aliases == {"production": 2}, "the later writer's version"


def test_registering_with_a_new_alias_while_it_is_set_succeeds(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = while_held(
        pg_schema_url,
        ALIAS_VERSION_1,
        lambda: store.create_version(new(aliases=("production",))),
    )

    assert not isinstance(outcome, Exception), outcome
    assert store.get_version(ModelRef("churn", alias="production")).version == 3
