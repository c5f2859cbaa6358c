"""The FeedbackStore contract on every backend: labels round-trip with their JSON type, a later
label for the same key replaces the earlier one, windows select by serving time and variant,
a batch is all or nothing, and purging removes only what it names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from modelyard.domain.feedback import GroundTruth
from modelyard.errors import Conflict
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import feedback
from tests.conftest import module_database

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest) -> Iterator[tuple[SqlFeedbackStore, sa.Engine]]:
    with module_database(request) as url:
        engine = make_engine(url)
        SqlMetadataStore(engine)  # creates the schema
        yield SqlFeedbackStore(engine), engine
        engine.dispose()


@pytest.fixture
def store(module_store: tuple[SqlFeedbackStore, sa.Engine]) -> SqlFeedbackStore:
    store, engine = module_store
    with engine.begin() as conn:
        conn.execute(feedback.delete())
    return store


def truth(
    inference_id: str = "a" * 32,
    label: object = 1,
    *,
    row: int = 0,
    endpoint: str = "churn-api",
    variant: str = "blue",
    minutes: float = 0,
    prediction: object = 0.83,
) -> GroundTruth:
    return GroundTruth(
        endpoint=endpoint,
        inference_id=inference_id,
        row=row,
        label=label,  # type: ignore[arg-type]
        variant=variant,
        model="churn",
        model_version=3,
        served_at=T0 + timedelta(minutes=minutes),
        prediction=prediction,  # type: ignore[arg-type]
    )


def strip(found: list[GroundTruth]) -> list[GroundTruth]:
    """The records without the store-stamped received_at."""
    return [
        GroundTruth(**{**{f: getattr(t, f) for f in t.__slots__}, "received_at": None})  # type: ignore[arg-type]
        for t in found
    ]


def test_labels_round_trip_with_their_json_types(store: SqlFeedbackStore) -> None:
    sent = [
        truth("id-int", 1, minutes=1),
        truth("id-float", 2.75, minutes=2, prediction=2.5),
        truth("id-str", "churned", minutes=3, prediction=[0.1, 0.9]),
        truth("id-bool", True, minutes=4, prediction=None),
        truth("id-str-number", "1", minutes=5, prediction="1"),
    ]
    before = datetime.now(UTC)
    assert store.put(sent) == 5
    found = store.labels("churn-api", since=T0)
    assert strip(found) == sent
    # The JSON type survives: "1" stays a string, True a boolean, 1 an int.
    assert [type(t.label) for t in found] == [int, float, str, bool, str]
    assert all(t.received_at is not None for t in found)
    assert all(abs(t.received_at - before) < timedelta(seconds=30) for t in found)  # type: ignore[operator]


def test_a_later_label_replaces_the_earlier_one(store: SqlFeedbackStore) -> None:
    store.put([truth("x", 0), truth("x", "late", row=1)])
    first = store.get("churn-api", ["x"])
    store.put([truth("x", 1, prediction=0.4)])
    second = store.get("churn-api", ["x"])
    assert [(t.row, t.label, t.prediction) for t in second] == [(0, 1, 0.4), (1, "late", 0.83)]
    assert second[0].received_at >= first[0].received_at  # type: ignore[operator]


def test_within_one_batch_the_last_label_of_a_key_wins(store: SqlFeedbackStore) -> None:
    assert store.put([truth("x", 0), truth("y", 5), truth("x", 1)]) == 2
    assert [(t.inference_id, t.label) for t in store.get("churn-api", ["x", "y"])] == [
        ("x", 1),
        ("y", 5),
    ]


def test_windows_select_by_serving_time_endpoint_and_variant(store: SqlFeedbackStore) -> None:
    store.put(
        [
            truth("early", minutes=-1),
            truth("start", minutes=0),
            truth("green", minutes=10, variant="green"),
            truth("end", minutes=60),
            truth("other", minutes=5, endpoint="fraud"),
        ]
    )
    window = store.labels("churn-api", since=T0, until=T0 + timedelta(hours=1))
    assert [t.inference_id for t in window] == ["start", "green"]
    blue = store.labels("churn-api", since=T0, variant="blue")
    assert [t.inference_id for t in blue] == ["start", "end"]
    assert [t.inference_id for t in store.labels("fraud", since=T0)] == ["other"]
    assert store.labels("nothing", since=T0) == []


def test_get_reads_many_ids_and_leaves_out_unlabelled_ones(store: SqlFeedbackStore) -> None:
    ids = [f"{i:032x}" for i in range(1200)]  # more than one IN list
    store.put([truth(i, n % 2) for n, i in enumerate(ids)])
    found = store.get("churn-api", [*ids, "never-labelled"])
    assert [t.inference_id for t in found] == sorted(ids)
    assert store.get("fraud", ids) == []


def test_a_batch_the_database_refuses_changes_nothing(store: SqlFeedbackStore) -> None:
    store.put([truth("kept", 0)])
    broken = truth("new", 1, variant=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(Conflict):
        store.put([truth("kept", 1), broken])
    assert [t.label for t in store.get("churn-api", ["kept", "new"])] == [0]


def test_purge_deletes_only_older_predictions_of_the_endpoint_named(
    store: SqlFeedbackStore,
) -> None:
    store.put(
        [
            truth("old", minutes=-30),
            truth("new", minutes=30),
            truth("old-fraud", minutes=-30, endpoint="fraud"),
        ]
    )
    assert store.purge("churn-api", served_before=T0) == 1
    assert [t.inference_id for t in store.labels("churn-api", since=T0 - timedelta(days=1))] == [
        "new"
    ]
    assert store.purge(None, served_before=T0 + timedelta(hours=1)) == 2
    assert store.labels("fraud", since=T0 - timedelta(days=1)) == []


def test_purge_of_every_endpoint_finds_each_name_however_they_sort(
    store: SqlFeedbackStore,
) -> None:
    # The names are found one after the other (the first after the last found): prefixes,
    # case, digits and non-ASCII must neither hide a name nor stop the walk early.
    names = ["a", "a-b", "ab", "B", "b", "z9", "z10", "été", "ü-api", "zz"]
    assert store.purge(None, served_before=T0) == 0  # no label at all: nothing to find
    store.put(
        [truth(f"old-{n}", minutes=-30, endpoint=n) for n in names]
        + [truth(f"new-{n}", minutes=30, endpoint=n) for n in names]
    )
    assert store.purge(None, served_before=T0) == len(names)
    for name in names:
        kept = store.labels(name, since=T0 - timedelta(days=1))
        assert [t.inference_id for t in kept] == [f"new-{name}"], name


def test_an_empty_batch_writes_nothing(store: SqlFeedbackStore) -> None:
    assert store.put([]) == 0
    assert store.labels("churn-api", since=T0 - timedelta(days=1)) == []
