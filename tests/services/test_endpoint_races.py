"""Two processes changing one endpoint at the same moment, on SQLite and PostgreSQL.

:class:`EndpointService` changes an endpoint optimistically: it reads the current config,
spends seconds loading and warming the models the change names, then writes the new config only
if the endpoint is still at the config it read (``add_config(expected_current=…)``; the
endpoint's row is locked for the check, SQLite's write lock does the same). So of two changes
based on the same config, exactly one is written and the other is refused with ``Conflict``:
never two configs with the same parent, which would silently drop the first change.

The processes are spawned (each with its own engine, as two CLI commands or two machines), and
lined up with barriers. In the first test a second barrier sits in the service's model check,
the step between its read and its write, so every round is a true race; the second test uses
the production wiring and lines the processes up only at the start. Two creates of one name
race the same way (one is refused with ``AlreadyExists`` on both backends), and two
``modelyard endpoints update`` commands show the refusal as exit status 4.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Batching, ModelVersion, Predictor
from modelyard.errors import Conflict
from modelyard.services.endpoints import EndpointService, PredictorCheck
from tests.conftest import module_database

ROUNDS = 5
MODELYARD = str(Path(sys.executable).parent / "modelyard")
WAIT_S = 60  # how long a process waits for the other at a barrier before the test fails
UNCHECKED = PredictorCheck("native", "native: not checked")  # what the stand-in checks say


@dataclass
class Store:
    url: str
    home: Path
    platform: Platform


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A database on each backend with versions 1-3 of a small XGBoost model ``churn``."""
    import xgboost as xgb

    with module_database(request) as url:
        home = tmp_path_factory.mktemp("races")
        platform = build(load_settings({}, home=home, db_url=url))
        rng = np.random.default_rng(5)
        x = rng.normal(size=(200, 4))
        y = (x[:, 0] > 0).astype(int)
        for rounds in (1, 2, 3):
            booster = xgb.train(
                {"objective": "binary:logistic", "nthread": 1},
                xgb.DMatrix(x, label=y),
                num_boost_round=rounds,
            )
            platform.registry.register("churn", booster, flavor="xgboost", input_example=x[:2])
        yield Store(url, home, platform)
        platform.close()


def _changes_with_rendezvous(
    url: str, home: Path, endpoint: str, side: str, start: Any, read: Any
) -> list[tuple[str, int | str]]:
    """In a spawned process: ``ROUNDS`` updates of ``endpoint`` to variant ``side``, each lined
    up with the other process at the start and again after both have read the current config.

    Returns each round's outcome: ``("ok", config number)`` or ``("conflict", message)``.
    """
    platform = build(load_settings({}, home=home, db_url=url))

    def both_have_read(_: ModelVersion, __: Predictor) -> PredictorCheck:
        # The service checks the models after reading the current config and before writing:
        # waiting here for the other process makes both read before either writes.
        read.wait(WAIT_S)
        return UNCHECKED

    service = EndpointService(
        platform.endpoint_store, resolve=platform.registry.get_version, check_model=both_have_read
    )
    version = {"a": 2, "b": 3}[side]
    outcomes: list[tuple[str, int | str]] = []
    try:
        for r in range(ROUNDS):
            start.wait(WAIT_S)
            try:
                # Another batching each round: a side that won the round before would
                # otherwise ask for the config the endpoint serves, and write nothing.
                changed = service.update(
                    endpoint, {side: f"churn:{version}"}, batching={side: Batching(2 + r)}
                )
                outcomes.append(("ok", changed.config.number))
            except Conflict as exc:
                outcomes.append((exc.code, exc.message))
    finally:
        platform.close()
    return outcomes


def _changes_lined_up(
    url: str, home: Path, endpoint: str, side: str, start: Any
) -> list[tuple[str, int | str]]:
    """In a spawned process, with the production wiring: ``ROUNDS`` changes of ``endpoint``
    (side ``a`` replaces its models, side ``b`` moves its weights), each lined up with the
    other process at the start only."""
    platform = build(load_settings({}, home=home, db_url=url))
    outcomes: list[tuple[str, int | str]] = []
    try:
        for i in range(ROUNDS):
            start.wait(WAIT_S)
            try:
                if side == "a":  # never the config it serves: that would write nothing
                    v = 1 + (i + 1) % 3
                    changed = platform.endpoints.update(
                        endpoint, {"blue": f"churn:{v}", "green": f"churn:{v % 3 + 1}"}
                    )
                else:
                    changed = platform.endpoints.set_weights(endpoint, {"blue": 0.1 * (i + 1)})
                outcomes.append(("ok", changed.config.number))
            except Conflict as exc:
                outcomes.append((exc.code, exc.message))
    finally:
        platform.close()
    return outcomes


@dataclass
class Racers:
    """Two spawned worker processes and a manager for the barriers that line them up; started
    once for the module (a new interpreter costs seconds on a busy 2-core machine)."""

    pool: ProcessPoolExecutor
    manager: Any

    def race(self, target: Any, *args: Any, barriers: int) -> dict[str, list[Any] | Any]:
        """Run ``target(*args, side, *barriers)`` in both processes, sides ``a`` and ``b``.

        A process blocked at a barrier holds its worker, so the two calls run in different
        processes.
        """
        lineup = [self.manager.Barrier(2) for _ in range(barriers)]
        futures = {s: self.pool.submit(target, *(*args, s, *lineup)) for s in ("a", "b")}
        return {side: future.result(timeout=240) for side, future in futures.items()}


@pytest.fixture(scope="module")
def racers() -> Iterator[Racers]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(2, mp_context=ctx) as pool:
        yield Racers(pool, manager)


def _chain(platform: Platform, endpoint: str) -> list[tuple[int, int | None]]:
    """Every config of ``endpoint`` as (number, the config it was based on), oldest first."""
    numbers = [c.number for c in platform.endpoints.history(endpoint)]
    return [(n, platform.endpoint_store.get_config(endpoint, n)[1]) for n in numbers]


def test_two_updates_based_on_the_same_config_one_wins_one_conflicts(
    store: Store, racers: Racers
) -> None:
    platform = store.platform
    platform.endpoints.create("raced", {"first": "churn:1"})
    revision = platform.endpoint_store.revision()

    results = racers.race(_changes_with_rendezvous, store.url, store.home, "raced", barriers=2)

    winners = []
    for r, outcomes in enumerate(zip(results["a"], results["b"], strict=True)):
        kinds = sorted(kind for kind, _ in outcomes)
        assert kinds == ["conflict", "ok"], f"round {r}: {outcomes}"
        (side, (_, number)) = next(
            (s, o) for s, o in zip("ab", outcomes, strict=True) if o[0] == "ok"
        )
        loser = next(o for o in outcomes if o[0] == "conflict")
        assert f"expected {r + 1}" in str(loser[1]), loser
        assert number == r + 2, f"round {r}: the winner wrote config {number}"
        winners.append(side)
    history = platform.endpoints.history("raced")
    assert [c.number for c in history] == list(range(1, ROUNDS + 2)), "dense, no duplicate"
    assert [c.variants[0].name for c in history[1:]] == winners, "each config is its winner's"
    assert _chain(platform, "raced") == [(1, None)] + [(n, n - 1) for n in range(2, ROUNDS + 2)]
    assert platform.endpoints.get("raced").config.number == ROUNDS + 1
    # One revision per written config: the refused changes left nothing behind.
    assert platform.endpoint_store.revision() == revision + ROUNDS
    last = {"a": ("churn", 2), "b": ("churn", 3)}[winners[-1]]
    other = {"a": ("churn", 3), "b": ("churn", 2)}[winners[-1]]
    assert platform.endpoint_store.endpoints_serving(*last) == ["raced"]
    assert platform.endpoint_store.endpoints_serving(*other) == []


def test_changes_lined_up_at_the_start_never_lose_one(store: Store, racers: Racers) -> None:
    platform = store.platform
    platform.endpoints.create("lined-up", {"blue": "churn:1", "green": "churn:2"})

    results = racers.race(_changes_lined_up, store.url, store.home, "lined-up", barriers=1)

    chain = _chain(platform, "lined-up")
    numbers = [n for n, _ in chain]
    written = sorted(n for o in (*results["a"], *results["b"]) for kind, n in [o] if kind == "ok")
    assert numbers == list(range(1, len(numbers) + 1)), "dense, no duplicate"
    assert written == numbers[1:], "every change reported written is recorded, once"
    # Never a lost update: each config is based on the one before it, so no change was made
    # from a config another change had already replaced.
    assert chain == [(1, None)] + [(n, n - 1) for n in numbers[1:]]
    for r, outcomes in enumerate(zip(results["a"], results["b"], strict=True)):
        assert [kind for kind, _ in outcomes].count("ok") >= 1, f"round {r}: {outcomes}"
    conflicts = [o for o in (*results["a"], *results["b"]) if o[0] != "ok"]
    assert all(kind == "conflict" for kind, _ in conflicts), conflicts
    assert len(written) + len(conflicts) == 2 * ROUNDS
    print(f"\n{len(conflicts)} of {ROUNDS} rounds raced into a conflict")


def _creates_with_rendezvous(
    url: str, home: Path, endpoint: str, side: str, read: Any
) -> tuple[str, str]:
    """In a spawned process: create ``endpoint``, lined up with the other process after both
    have checked the name is free."""
    platform = build(load_settings({}, home=home, db_url=url))
    service = EndpointService(
        platform.endpoint_store,
        resolve=platform.registry.get_version,
        check_model=lambda *_: (read.wait(WAIT_S), UNCHECKED)[1],
    )
    try:
        service.create(endpoint, {side: "churn:1"})
        return ("ok", "")
    except Conflict as exc:
        return (exc.code, exc.message)
    finally:
        platform.close()


def test_two_creates_of_one_name_one_wins_the_other_already_exists(
    store: Store, racers: Racers
) -> None:
    results = racers.race(_creates_with_rendezvous, store.url, store.home, "born-twice", barriers=1)

    assert sorted(kind for kind, _ in results.values()) == ["already_exists", "ok"], results
    assert "already exists" in next(m for k, m in results.values() if k == "already_exists")
    assert [c.number for c in store.platform.endpoints.history("born-twice")] == [1]


# -- the CLI ---------------------------------------------------------------------------------


def _cli_env(store: Store) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_HOME": str(store.home), "MODELYARD_DB_URL": store.url})
    return env


def _waiting_for_the_row(conn: sa.Connection, database: str) -> int:
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    )


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_cli_updates_based_on_the_same_config_one_exits_4(store: Store) -> None:
    """Two ``modelyard endpoints update`` commands. The test holds the endpoint's row until
    both have read the current config and wait to write (PostgreSQL shows who waits for a
    lock; SQLite does not, so there the race runs through the service tests above)."""
    platform = store.platform
    platform.endpoints.create("cli-raced", {"first": "churn:1"})
    engine = sa.create_engine(store.url, poolclass=sa.NullPool)
    database = str(sa.make_url(store.url).database)
    commands = [
        [MODELYARD, "endpoints", "update", "cli-raced", "--variant", f"{side}=churn:{v}"]
        for side, v in (("a", 2), ("b", 3))
    ]
    # The watcher reads pg_stat_activity outside any transaction: inside one, PostgreSQL
    # shows the same snapshot of it on every read.
    with (
        engine.connect() as holder,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher,
    ):
        holder.execute(sa.text("SELECT id FROM endpoints WHERE name = 'cli-raced' FOR UPDATE"))
        processes = [
            subprocess.Popen(
                argv, env=_cli_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for argv in commands
        ]
        deadline = time.monotonic() + WAIT_S
        while _waiting_for_the_row(watcher, database) < 2:
            finished = [p.args for p in processes if p.poll() is not None]
            assert not finished, f"a command ended before it could race: {finished}"
            assert time.monotonic() < deadline, "both commands waiting for the endpoint"
            time.sleep(0.05)
        holder.commit()  # lets both go: the first to lock the row writes
    ends = [p.communicate(timeout=WAIT_S) for p in processes]
    engine.dispose()
    codes = [p.returncode for p in processes]
    assert sorted(codes) == [0, 4], (codes, ends)
    _, err = ends[codes.index(4)]
    assert err.startswith("error: endpoint 'cli-raced' changed meanwhile"), err
    assert "expected 1" in err, err
    history = platform.endpoints.history("cli-raced")
    assert [c.number for c in history] == [1, 2]
    assert history[-1].variants[0].name == "ab"[codes.index(0)], "the winner's config is current"
