"""Every service that lists takes ``limit`` through one rule (:func:`limit_of`), over real
stores: from Python, 0, -1 (SQL's "no limit"), True (an int to Python), 2.5, "10" and an int
past 64 bits (an OverflowError out of the database driver) are refused as InvalidInput naming
the argument and the value, before anything is read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import InvalidInput

List = Callable[[Platform, Any], list[Any]]
LISTINGS: dict[str, List] = {
    "alarms.history": lambda p, limit: p.alarms.history("slow", limit),
    "monitors.runs": lambda p, limit: p.monitors.runs("api", limit),
    "schedules.runs": lambda p, limit: p.schedules.runs("nightly", limit),
    "deployments.list_deployments": lambda p, limit: p.deployments.list_deployments("api", limit),
    "deployments.list_deployments (all)": lambda p, limit: p.deployments.list_deployments(
        None, limit
    ),
    "jobs.list_jobs": lambda p, limit: p.jobs.list_jobs(None, limit),
    "tuning.list_jobs": lambda p, limit: p.tuning.list_jobs(None, limit),
}
REFUSED: list[tuple[Any, str]] = [
    (0, "got 0"),
    (-1, "got -1"),
    (True, "got bool True"),
    (2.5, "got float 2.5"),
    ("10", "got str '10'"),
    (10**30, "got 1000000000000000000000000000000"),
]


@pytest.fixture
def platform(db_url: str, tmp_path: Path, breast_cancer: Any) -> Iterator[Platform]:
    from sklearn.linear_model import LogisticRegression

    x_train, _, y_train, _ = breast_cancer
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url, metrics=False))
    model = LogisticRegression(max_iter=50).fit(x_train.iloc[:, :3], y_train)
    p.registry.register("cancer", model, flavor="sklearn", input_example=x_train.iloc[:3, :3])
    p.endpoints.create("api", {"blue": "cancer:1"})
    p.alarms.create(
        "slow", endpoint="api", metric="latency_p99_ms", comparison=">", threshold=100.0
    )
    p.monitors.schedule("api", every="1h")
    yield p
    p.close()


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_limit_that_is_not_a_count_is_refused_by_name(platform: Platform, listing: str) -> None:
    read = LISTINGS[listing]
    for given, said in REFUSED:
        with pytest.raises(InvalidInput) as refused:
            read(platform, given)
        assert str(refused.value).startswith("limit must be "), str(refused.value)
        assert str(refused.value).endswith(said), str(refused.value)
