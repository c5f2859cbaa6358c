"""Deleting a model version while another process points an endpoint or an alias at it, on
PostgreSQL.

``modelyard models delete churn:3`` checks that no alias points at the version and no endpoint
serves it, then deletes it; ``modelyard endpoints update … --variant main=churn:3`` (or
``models alias``) on another machine checks that the version exists, then writes. PostgreSQL
runs both at once, and the foreign keys to the version keep the store consistent whichever
commits first. The one that loses must be told what it would have been told a moment later
(the version is served or aliased; the version does not exist), not a foreign-key violation
naming the store's tables. Each test holds one side's write uncommitted until the other waits
for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import pytest
import sqlalchemy as sa

from modelyard.domain import ConfigChange, ModelRef, Variant, VersionStatus
from modelyard.errors import VersionNotFound, VersionProtected
from modelyard.storage.sql.endpoint_store import SqlEndpointStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import endpoints, model_versions, serving_versions
from tests.storage.held_writes import delete_version, insert_alias, version_id, while_held
from tests.storage.test_metadata_contract import new

DELETE_VERSION_3 = partial(delete_version, model="churn", version=3)


class Stores:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.registry = SqlMetadataStore(self.engine)
        self.endpoints = SqlEndpointStore(self.engine)


@pytest.fixture
def stores(pg_schema_url: str) -> Iterator[Stores]:
    s = Stores(pg_schema_url)
    for _ in range(3):
        s.registry.create_version(new())
    s.endpoints.create_endpoint("churn-api", (Variant("main", "churn", 1, 1.0),))
    yield s
    s.engine.dispose()


def _serve_version_3(conn: sa.Connection) -> None:
    """Point the endpoint's serving row at churn:3, as an endpoint update does."""
    endpoint_id = conn.execute(
        sa.select(endpoints.c.id).where(endpoints.c.name == "churn-api")
    ).scalar_one()
    conn.execute(
        serving_versions.update()
        .where(serving_versions.c.endpoint_id == endpoint_id)
        .values(version_id=version_id(conn, "churn", 3))
    )


def test_deleting_a_version_an_endpoint_just_took_says_it_is_served(stores: Stores) -> None:
    outcome = while_held(
        stores.url, _serve_version_3, lambda: stores.registry.delete_version("churn", 3)
    )

    assert isinstance(outcome, VersionProtected), outcome
    assert "served by endpoint churn-api" in str(outcome), outcome
    assert [v.version for v in stores.registry.list_versions("churn")] == [1, 2, 3]


def test_an_endpoint_change_to_a_version_just_deleted_says_it_does_not_exist(
    stores: Stores,
) -> None:
    outcome = while_held(
        stores.url,
        DELETE_VERSION_3,
        lambda: stores.endpoints.add_config(
            "churn-api",
            (Variant("main", "churn", 3, 1.0),),
            ConfigChange.UPDATE,
            expected_current=1,
            parent=1,
        ),
    )

    assert isinstance(outcome, VersionNotFound), outcome
    assert "model version churn:3 does not exist" in str(outcome), outcome
    assert stores.endpoints.get_endpoint("churn-api").config.number == 1, "nothing changed"


def test_deleting_a_version_an_alias_just_took_says_it_is_aliased(stores: Stores) -> None:
    outcome = while_held(
        stores.url,
        partial(insert_alias, model="churn", alias="production", version=3),
        lambda: stores.registry.delete_version("churn", 3),
    )

    assert isinstance(outcome, VersionProtected), outcome
    assert "aliased as production" in str(outcome), outcome


def test_aliasing_a_version_just_deleted_says_it_does_not_exist(stores: Stores) -> None:
    outcome = while_held(
        stores.url, DELETE_VERSION_3, lambda: stores.registry.set_alias("churn", "production", 3)
    )

    assert isinstance(outcome, VersionNotFound), outcome
    assert "has no version 3" in str(outcome), outcome
    assert stores.registry.get_model("churn").aliases == {}


# Archiving races the same way: the registry checks that no alias or endpoint holds the
# version, then archives it; a version archived while served or aliased is what its rule
# forbids.


def _archive_version_3(conn: sa.Connection) -> None:
    """Archive churn:3 as the store does: its row locked, then its status written."""
    row = version_id(conn, "churn", 3)
    conn.execute(sa.select(model_versions.c.id).where(model_versions.c.id == row).with_for_update())
    conn.execute(
        model_versions.update().where(model_versions.c.id == row).values(status="archived")
    )


@pytest.mark.parametrize(
    ("hold", "words"),
    [
        (_serve_version_3, "served by endpoint churn-api"),
        (
            partial(insert_alias, model="churn", alias="production", version=3),
            "aliased as production",
        ),
    ],
    ids=["an-endpoint", "an-alias"],
)
def test_archiving_a_version_just_taken_says_what_holds_it(
    stores: Stores, hold: Callable[[sa.Connection], None], words: str
) -> None:
    outcome = while_held(
        stores.url, hold, lambda: stores.registry.set_status("churn", 3, VersionStatus.ARCHIVED)
    )

    assert isinstance(outcome, VersionProtected), outcome
    assert words in str(outcome), outcome
    assert stores.registry.get_version(ModelRef("churn", version=3)).status is VersionStatus.READY


def test_aliasing_a_version_just_archived_says_it_is_archived(stores: Stores) -> None:
    outcome = while_held(
        stores.url,
        _archive_version_3,
        lambda: stores.registry.set_alias("churn", "production", 3),
    )

    assert isinstance(outcome, VersionProtected), outcome
    assert "churn:3 is archived" in str(outcome), outcome
    assert stores.registry.get_model("churn").aliases == {}


def test_tagging_a_version_just_deleted_says_it_does_not_exist(stores: Stores) -> None:
    outcome = while_held(
        stores.url, DELETE_VERSION_3, lambda: stores.registry.set_tags("churn", 3, {"k": "v"})
    )

    assert isinstance(outcome, VersionNotFound), outcome
    assert "has no version 3" in str(outcome), outcome
