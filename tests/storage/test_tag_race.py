"""Two writers setting one tag at the same moment, on PostgreSQL.

``modelyard models tag churn:3 validated=yes`` sets a tag, whether or not it was there: of two
run together (two machines, two CI jobs), both succeed and the later one's value is kept.
PostgreSQL runs the two transactions at once: a write that deletes the tag and inserts it
again clashes with the other's uncommitted insert on the tag key and fails with
``AlreadyExists``, for a command that creates nothing. The tests hold the first writer's tag
uncommitted until the second waits for it, for a version's tag and a model's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from modelyard.domain import ModelRef
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import model_tags, models, version_tags
from tests.storage.held_writes import version_id, while_held
from tests.storage.test_metadata_contract import new


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(make_engine(pg_schema_url))
    s.create_version(new())
    yield s
    s.close()


def _tag_version_1(conn: sa.Connection) -> None:
    conn.execute(
        version_tags.insert().values(
            version_id=version_id(conn, "churn", 1), key="validated", value="first"
        )
    )


def _tag_the_model(conn: sa.Connection) -> None:
    model_id = conn.execute(sa.select(models.c.id).where(models.c.name == "churn")).scalar()
    conn.execute(model_tags.insert().values(model_id=model_id, key="team", value="first"))


def test_two_writers_setting_one_version_tag_both_succeed(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = while_held(
        pg_schema_url, _tag_version_1, lambda: store.set_tags("churn", 1, {"validated": "yes"})
    )

    assert not isinstance(outcome, Exception), outcome
    assert store.get_version(ModelRef("churn", version=1)).tags == {"validated": "yes"}


def test_two_writers_setting_one_model_tag_both_succeed(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = while_held(
        pg_schema_url, _tag_the_model, lambda: store.set_tags("churn", None, {"team": "risk"})
    )

    assert not isinstance(outcome, Exception), outcome
    assert store.get_model("churn").tags == {"team": "risk"}
