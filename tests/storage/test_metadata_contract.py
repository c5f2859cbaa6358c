"""The MetadataStore contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelyard.domain import ColumnSpec, ModelRef, Signature, Source, Trust, VersionStatus
from modelyard.errors import (
    AliasNotFound,
    AlreadyExists,
    ModelNotFound,
    NotFound,
    VersionNotFound,
    VersionProtected,
)
from modelyard.storage.base import NewVersion
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore


@pytest.fixture
def store(db_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(make_engine(db_url))
    yield s
    s.close()


def new(name: str = "churn", **kw: object) -> NewVersion:
    fields: dict[str, object] = dict(
        name=name,
        flavor="xgboost",
        model_format="ubj",
        artifact_digest="ab" * 32,
        size_bytes=10,
        source=Source("upload", "/tmp/m.ubj"),
        trust=Trust(),
    )
    fields.update(kw)
    return NewVersion(**fields)  # type: ignore[arg-type]


def snapshot(store: SqlMetadataStore) -> tuple[object, ...]:
    models = store.list_models()
    return (models, [store.list_versions(m.name) for m in models])


def test_versions_are_numbered_per_model_and_never_reused(store: SqlMetadataStore) -> None:
    assert [store.create_version(new()).version for _ in range(3)] == [1, 2, 3]
    assert store.create_version(new("other")).version == 1
    store.delete_version("churn", 3)
    assert store.create_version(new()).version == 4
    assert [v.version for v in store.list_versions("churn")] == [1, 2, 4]


def test_version_round_trips_every_field(store: SqlMetadataStore) -> None:
    sig = Signature(
        inputs=(ColumnSpec("float64", "age"), ColumnSpec("int64", "plan")),
        outputs=(ColumnSpec("float32"),),
    )
    created = store.create_version(
        new(
            signature=sig,
            params={"eta": "0.1"},
            metrics={"auc": 0.91},
            tags={"team": "risk"},
            description="first",
            trust=Trust(pickle=True),
            options={"entry": "m:M"},
            aliases=("staging",),
        )
    )
    got = store.get_version(ModelRef("churn", version=1))
    assert got == created
    assert got.signature == sig
    assert (got.params, got.metrics, got.tags) == ({"eta": "0.1"}, {"auc": 0.91}, {"team": "risk"})
    assert got.trust.pickle is True and got.aliases == ("staging",)
    assert got.created_at.tzinfo is not None


def test_references_resolve(store: SqlMetadataStore) -> None:
    for _ in range(3):
        store.create_version(new())
    store.set_alias("churn", "production", 2)
    assert store.get_version(ModelRef.parse("churn@production")).version == 2
    assert store.get_version(ModelRef.parse("churn")).version == 3
    store.set_status("churn", 3, VersionStatus.ARCHIVED)
    assert store.get_version(ModelRef.parse("churn")).version == 2, "latest skips archived"
    assert store.get_version(ModelRef.parse("churn:3")).status is VersionStatus.ARCHIVED


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("nope", ModelNotFound),
        ("churn:9", VersionNotFound),
        ("churn@prod", AliasNotFound),
        ("nope@prod", ModelNotFound),
    ],
)
def test_unknown_references(store: SqlMetadataStore, ref: str, error: type[Exception]) -> None:
    store.create_version(new())
    with pytest.raises(error):
        store.get_version(ModelRef.parse(ref))


def test_latest_of_a_model_without_ready_versions(store: SqlMetadataStore) -> None:
    store.create_version(new())
    store.set_status("churn", 1, VersionStatus.ARCHIVED)
    with pytest.raises(VersionNotFound, match="no ready version"):
        store.get_version(ModelRef("churn"))


def test_duplicate_model_changes_nothing(store: SqlMetadataStore) -> None:
    store.create_model("churn", "first", {"team": "a"})
    before = snapshot(store)
    with pytest.raises(AlreadyExists, match="churn"):
        store.create_model("churn", "second")
    assert snapshot(store) == before


def test_alias_moves_and_deletes(store: SqlMetadataStore) -> None:
    store.create_version(new())
    store.create_version(new())
    # Each write tells the version it replaced (None: the alias was new).
    assert store.set_alias("churn", "production", 1).replaced is None
    moved = store.set_alias("churn", "production", 2)
    assert (moved.target.version, moved.replaced) == (2, 1)
    assert store.set_alias("churn", "production", 2).replaced == 2
    assert store.get_model("churn").aliases == {"production": 2}
    assert store.get_version(ModelRef("churn", version=1)).aliases == ()
    store.delete_alias("churn", "production")
    with pytest.raises(AliasNotFound):
        store.delete_alias("churn", "production")


def test_alias_to_missing_version_changes_nothing(store: SqlMetadataStore) -> None:
    store.create_version(new())
    store.set_alias("churn", "production", 1)
    before = snapshot(store)
    with pytest.raises(VersionNotFound):
        store.set_alias("churn", "production", 7)
    assert snapshot(store) == before


def test_register_with_alias_takes_it_over(store: SqlMetadataStore) -> None:
    store.create_version(new(aliases=("production",)))
    store.create_version(new(aliases=("production",)))
    assert store.get_model("churn").aliases == {"production": 2}


def test_tags_set_remove_and_fail_atomically(store: SqlMetadataStore) -> None:
    store.create_version(new())
    store.set_tags("churn", None, {"team": "risk"})
    store.set_tags("churn", 1, {"stage": "qa", "owner": "ann"})
    store.set_tags("churn", 1, {"stage": "prod"}, remove=("owner",))
    assert store.get_model("churn").tags == {"team": "risk"}
    assert store.get_version(ModelRef("churn", version=1)).tags == {"stage": "prod"}
    before = snapshot(store)
    with pytest.raises(NotFound, match="no tag 'missing'"):
        store.set_tags("churn", 1, {"stage": "changed"}, remove=("missing",))
    assert snapshot(store) == before


def test_aliased_version_cannot_be_deleted(store: SqlMetadataStore) -> None:
    store.create_version(new())
    store.set_alias("churn", "production", 1)
    with pytest.raises(VersionProtected, match="production"):
        store.delete_version("churn", 1)
    assert store.get_version(ModelRef("churn", version=1)).version == 1


def test_a_held_version_cannot_be_archived_or_deleted_nor_an_archived_one_aliased(
    store: SqlMetadataStore, db_url: str
) -> None:
    # The store's own checks, on both backends (the registry's guards come first in use).
    from modelyard.domain import Variant
    from modelyard.storage.sql.endpoint_store import SqlEndpointStore

    for _ in range(3):
        store.create_version(new())
    store.set_alias("churn", "production", 1)
    engine = make_engine(db_url)
    try:
        SqlEndpointStore(engine).create_endpoint("api", (Variant("main", "churn", 2, 1.0),))
    finally:
        engine.dispose()
    for number, words in ((1, "aliased as production"), (2, "served by endpoint api")):
        with pytest.raises(VersionProtected, match=words):
            store.set_status("churn", number, VersionStatus.ARCHIVED)
        with pytest.raises(VersionProtected, match=words):
            store.delete_version("churn", number)
    store.set_status("churn", 3, VersionStatus.ARCHIVED)
    with pytest.raises(VersionProtected, match="churn:3 is archived"):
        store.set_alias("churn", "staging", 3)
    statuses = [v.status for v in store.list_versions("churn")]
    assert statuses == [VersionStatus.READY, VersionStatus.READY, VersionStatus.ARCHIVED]
    assert store.get_model("churn").aliases == {"production": 1}


def test_list_models_and_describe(store: SqlMetadataStore) -> None:
    store.create_version(new("b"))
    store.create_version(new("a"))
    store.update_model("a", description="the a model")
    listed = store.list_models()
    assert [m.name for m in listed] == ["a", "b"]
    assert listed[0].description == "the a model" and listed[0].latest_version == 1
    info = store.describe()
    assert info["schema_revision"] == info["schema_head"]
    assert (info["models"], info["versions"]) == (2, 2)


def test_missing_model_operations(store: SqlMetadataStore) -> None:
    for call in (
        lambda: store.list_versions("nope"),
        lambda: store.set_alias("nope", "a", 1),
        lambda: store.set_tags("nope", None, {"a": "b"}),
        lambda: store.update_model("nope", description="x"),
        lambda: store.delete_version("nope", 1),
    ):
        with pytest.raises(ModelNotFound):
            call()
