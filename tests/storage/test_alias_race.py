"""Two writers pointing one new alias at the same moment, on PostgreSQL.

Setting an alias points it or moves it: of two ``modelyard models alias churn production N``
run together (two machines), both succeed and the later one's version is where the alias
points. PostgreSQL runs the two transactions at once, so neither sees the other's row until it
commits: a write that inserts the alias only when an update found none would clash with the
other's insert on the alias key and fail with ``AlreadyExists``, for a command that creates
nothing. The tests hold the first writer's row uncommitted until the second waits for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from modelyard.domain import ModelRef
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from tests.storage.held_writes import insert_alias, move_alias, while_held
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


def test_the_alias_command_names_the_version_its_write_moved_the_alias_from(
    store: SqlMetadataStore, pg_schema_url: str, tmp_path: Path
) -> None:
    """``modelyard models alias churn production 2`` said where the alias was from a read
    made before its write: when another machine moved the alias in between (here, from 3
    to 1, held uncommitted until the command waits for it), it said "from churn:3", a
    version the alias had not pointed at when it moved."""
    store.create_version(new())  # churn:3
    store.set_alias("churn", "production", 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_HOME": str(tmp_path / "home"), "MODELYARD_DB_URL": pg_schema_url})
    command = [str(Path(sys.executable).parent / "modelyard"), "models", "alias"]
    done = while_held(
        pg_schema_url,
        partial(move_alias, model="churn", alias="production", version=1),
        lambda: subprocess.run(
            [*command, "churn", "production", "2"], env=env, capture_output=True, text=True
        ),
    )

    assert isinstance(done, subprocess.CompletedProcess), done
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Moved alias churn@production from churn:1 to churn:2"
    assert store.get_model("churn").aliases == {"production": 2}


def test_setting_an_alias_tells_the_version_it_replaced_as_the_write_found_it(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    """The alias is new when the store looks, and another writer's insert of it is held:
    the write waits for it, and replaces that writer's version."""
    moved = while_held(
        pg_schema_url, ALIAS_VERSION_1, lambda: store.set_alias("churn", "production", 2)
    )

    assert not isinstance(moved, Exception), moved
    assert (moved.target.version, moved.replaced) == (2, 1)
