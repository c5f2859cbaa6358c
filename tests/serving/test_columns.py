"""The column buffers between the event loop and the monitoring threads: a consumer takes whole
records only, in order, while a producer thread appends (real threads, no lock); the calls
buffer hands over each sampled call's capture fields with its own record; groups of records
are found whatever their order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from modelyard.serving.calls import CallBuffer
from modelyard.serving.columns import ColumnBuffer, grouped, numbers, picked
from tests.waiting import DEADLINE_S

RECORDS = 200_000


def test_a_consumer_takes_whole_records_in_order_while_a_producer_appends() -> None:
    buffer = ColumnBuffer("odq", limit=RECORDS)
    names, halves, squares = (c.append for c in buffer.columns)
    started = threading.Event()

    def produce() -> None:
        started.set()
        for i in range(RECORDS):
            names(str(i))
            halves(i / 2)
            squares(i * i)
            buffer.added += 1

    producer = threading.Thread(target=produce)
    producer.start()
    assert started.wait(DEADLINE_S)
    taken: list[tuple[list[str], np.ndarray, np.ndarray]] = []
    while producer.is_alive() or len(buffer):
        name, half, square = buffer.take()
        assert len(name) == len(half) == len(square)  # never part of a record
        taken.append((name, numbers(half), numbers(square)))
    producer.join()
    assert sum(len(t[0]) for t in taken) == RECORDS
    names_seen = [n for t in taken for n in t[0]]
    index = np.array([int(n) for n in names_seen])
    assert np.array_equal(index, np.arange(RECORDS))  # in order, none lost or repeated
    assert np.array_equal(np.concatenate([t[1] for t in taken]), index / 2)
    assert np.array_equal(np.concatenate([t[2] for t in taken]), index * index)
    assert buffer.taken == buffer.added == RECORDS
    assert all(len(column) == 0 for column in buffer.columns)


def test_room_follows_the_limit_and_numbers_come_back_typed() -> None:
    buffer = ColumnBuffer("dq", limit=2)
    buffer.append(0.5, 7)
    assert buffer.room()
    buffer.append(1.5, -1)
    assert not buffer.room()
    floats, ints = buffer.take()
    assert numbers(floats).dtype == np.float64 and numbers(ints).dtype == np.int64
    assert numbers(ints).tolist() == [7, -1] and buffer.room()


def test_a_sampled_calls_fields_are_taken_with_its_own_record() -> None:
    calls = CallBuffer(limit=1000)
    variants, endpoints, rows, predictions = (c.append for c in calls.dense)
    positions, ids, protocols, starts, latencies = (c.append for c in calls.sparse)
    for i in range(10):
        if i % 3 == 0:  # sampled: its capture fields first, with its position
            positions(calls.added)
            ids(f"id-{i}")
            protocols("sagemaker")
            starts(float(i))
            latencies(i / 1000)
        variants("main")
        endpoints("api")
        rows(np.full((1, 2), i))
        predictions(np.array([i]))
        calls.added += 1
    # A sampled call half recorded (its capture fields, not yet its record): left for later.
    positions(calls.added)
    ids("id-10")
    protocols("sagemaker")
    starts(10.0)
    latencies(0.01)

    first = calls.take()
    assert len(first) == 10
    assert first.sampled.tolist() == [0, 3, 6, 9]
    assert first.inference_ids == ["id-0", "id-3", "id-6", "id-9"]
    assert numbers(first.starts).tolist() == [0.0, 3.0, 6.0, 9.0]

    variants("main")
    endpoints("api")
    rows(np.full((1, 2), 10))
    predictions(np.array([10]))
    calls.added += 1
    second = calls.take()
    assert len(second) == 1 and second.sampled.tolist() == [0]  # its position in this block
    assert second.inference_ids == ["id-10"] and second.rows[0][0, 0] == 10
    assert len(calls.take()) == 0


@pytest.mark.parametrize(
    ("keys", "groups"),
    [
        ((["a", "a", "a"],), [(("a",), None)]),
        ((["a", "b", "a", "c"],), [(("a",), [0, 2]), (("b",), [1]), (("c",), [3])]),
        ((["x", "x", "x"], [1, 2, 1]), [(("x", 1), [0, 2]), (("x", 2), [1])]),
    ],
    ids=["one-group", "three-groups", "two-keys"],
)
def test_records_are_grouped_by_key_in_order_of_first_appearance(
    keys: tuple[list[object], ...], groups: list[tuple[tuple[object, ...], list[int] | None]]
) -> None:
    found = [(key, None if at is None else at.tolist()) for key, at in grouped(*keys)]
    assert found == groups
    assert grouped([]) == []
    values = ["v0", "v1", "v2", "v3"]
    assert picked(values, None) is values
    assert picked(values, np.array([3, 1])) == ["v3", "v1"]
