"""An endpoint created while a server runs, whose model takes a while to load there: until it
is loaded the server says it is not ready (``/ping`` 503, V2 not ready) and answers its
callers ``ModelNotReadyException`` (429; V2 503), as it does for a model that failed to load.
Until this was fixed the server answered ``/ping`` 200 and the callers 404 ("endpoint … is
not deployed") for as long as the load took."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Trust
from tests.e2e.conftest import Server
from tests.waiting import wait_for


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """Versions ``m:1`` and ``m:2`` of a model predicting ``2 * row[0]`` whose load, in a
    process with ``HOLD_FILE`` set (the server, not this test) while that file exists, notes
    that it began in ``LOADING_FILE`` and waits until the file is gone. Endpoint ``api``
    serves ``m:1``."""
    code = tmp_path / "model"
    code.mkdir()
    (code / "model.py").write_text(
        textwrap.dedent(
            """
            import os
            import time
            from pathlib import Path

            import numpy as np


            class Model:
                def load(self, artifacts_dir):
                    hold = os.environ.get("HOLD_FILE")
                    if hold is None or not Path(hold).exists():
                        return
                    Path(os.environ["LOADING_FILE"]).touch()
                    deadline = time.monotonic() + 120
                    while Path(hold).exists() and time.monotonic() < deadline:
                        time.sleep(0.05)

                def predict(self, data):
                    return np.asarray(data, dtype=float)[:, 0] * 2.0
            """
        )
    )
    p = build(load_settings({}, home=tmp_path / "home"))
    for _ in range(2):
        p.registry.register("m", code, flavor="pyfunc", trust=Trust(user_code=True))
    p.endpoints.create("api", {"main": "m:1"})
    yield p
    p.close()


def test_an_endpoint_whose_model_is_loading_is_not_ready_and_not_unknown(
    platform: Platform, serve: Callable[..., Server], tmp_path: Path
) -> None:
    hold, loading = tmp_path / "hold", tmp_path / "loading"
    server = serve(workers=1, HOLD_FILE=str(hold), LOADING_FILE=str(loading))
    client = server.client()
    hold.touch()
    platform.endpoints.create("new", {"main": "m:2"})
    try:
        wait_for("the server to begin loading m:2", loading.exists)

        answer = client.post("/endpoints/new/invocations", json=[1.0])
        assert answer.status_code == 429, answer.text
        assert answer.headers["x-amzn-errortype"] == "ModelNotReadyException"
        assert "'new' is not ready" in answer.json()["message"], answer.text
        assert "loading m:2" in answer.json()["message"], answer.text
        v2 = client.post(
            "/v2/models/new/infer",
            json={
                "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 1], "data": [1]}]
            },
        )
        assert v2.status_code == 503, v2.text
        assert client.get("/v2/models/new/ready").status_code == 400
        assert client.get("/ping").status_code == 503
        assert client.get("/v2/health/ready").status_code == 400
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert list(ready.json()["loading"]) == ["new"], ready.text
        assert re.fullmatch(r"loading m:2 \(\d+ s\)", ready.json()["loading"]["new"])

        # The endpoint it served before goes on answering meanwhile.
        other = client.post("/endpoints/api/invocations", json=[3.0])
        assert other.status_code == 200 and other.json()["predictions"] == [6.0], other.text
    finally:
        hold.unlink()

    wait_for("the server ready", lambda: client.get("/ping").status_code, lambda s: s == 200)
    answer = client.post("/endpoints/new/invocations", json=[4.0])
    assert answer.status_code == 200 and answer.json()["predictions"] == [8.0], answer.text
    assert client.get("/readyz").json()["loading"] == {}
    client.close()
