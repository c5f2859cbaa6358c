"""A model whose own code calls ``sys.exit`` (argparse does, on an argument it refuses), on a
real ``modelyard serve``: the caller gets SageMaker's ``ModelError`` (424), a version that
exits while loading is reported as failing to load, and the server goes on serving. Until
this was fixed, the ``SystemExit`` left the model call and stopped the server's event loop:
one request took every endpoint of the server down."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Trust
from tests.e2e.conftest import Server
from tests.waiting import wait_for

EXIT = 7.0  # the row the model exits on


def _model(folder: Path, predict_delay_s: float, load: str = "pass") -> Path:
    folder.mkdir()
    (folder / "model.py").write_text(
        textwrap.dedent(
            f"""
            import os
            import sys
            import time

            import numpy as np


            class Model:
                def load(self, artifacts_dir):
                    {load}

                def predict(self, data):
                    rows = np.asarray(data, dtype=float)
                    if (rows[:, 0] == {EXIT}).any():
                        sys.exit("usage: predict [-h] rows")
                    time.sleep({predict_delay_s})
                    return rows[:, 0] * 2.0
            """
        )
    )
    return folder


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """Endpoint ``api``: variants ``fast`` and ``slow`` (10 ms a call) of a model that exits
    on a row of ``EXIT``; ``m:3`` exits when loaded in a process that has ``EXIT_IN_LOAD`` set
    (the server, not this test)."""
    p = build(load_settings({}, home=tmp_path / "home"))
    trust = Trust(user_code=True)
    p.registry.register("m", _model(tmp_path / "fast", 0.0), flavor="pyfunc", trust=trust)
    p.registry.register("m", _model(tmp_path / "slow", 0.01), flavor="pyfunc", trust=trust)
    exits = 'if "EXIT_IN_LOAD" in os.environ: sys.exit(2)'
    p.registry.register("m", _model(tmp_path / "exits", 0.0, exits), flavor="pyfunc", trust=trust)
    p.endpoints.create("api", {"fast": "m:1", "slow": "m:2"})
    yield p
    p.close()


def test_a_model_that_exits_fails_its_request_and_the_server_goes_on(
    platform: Platform, serve: Callable[..., Server]
) -> None:
    server = serve(workers=1, EXIT_IN_LOAD="1")
    for _ in range(5):  # both measured
        for variant in ("fast", "slow"):
            assert server.invoke_variant("api", 1.0, variant).json()["predictions"] == [2.0]

    for variant in ("fast", "slow"):
        answer = server.invoke_variant("api", EXIT, variant)
        assert answer.status_code == 424, answer.text
        assert answer.headers["x-amzn-errortype"] == "ModelError"
        assert "raised SystemExit" in answer.json()["message"]
        again = server.invoke_variant("api", 3.0, variant)
        assert again.status_code == 200, again.text
        assert again.json()["predictions"] == [6.0]

    platform.endpoints.create("loads", {"main": "m:3"})

    def load_failed() -> bool:
        failures = httpx.get(f"{server.url}/readyz", timeout=10).json()["failures"]
        return "loads" in failures and "m:3 failed to load: SystemExit(2)" in failures["loads"]

    wait_for("the server reports that m:3 exited while loading", load_failed)
    assert server.process.poll() is None
    assert server.invoke_variant("api", 4.0, "slow").json()["predictions"] == [8.0]
