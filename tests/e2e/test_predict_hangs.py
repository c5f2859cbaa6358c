"""A model whose predict hangs, on a real ``modelyard serve``: its caller gets SageMaker's
``ModelError`` (424) once ``MODELYARD_PREDICT_TIMEOUT_S`` has passed, instead of waiting for
ever, and the other variants of the same worker go on answering though the hung call still
holds the thread it began on. So whether the model is slow (its calls go to the predict
thread) or fast: a fast pyfunc model used to predict on the event loop, where the hung call
stopped the whole worker, its own caller's timeout included."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Trust
from tests.e2e.conftest import Server
from tests.waiting import wait_for

HANG = 999.0  # the row the model never answers
ANSWER_WAIT_S = 120  # many times the server's 4 s timeout, on a slow machine


@pytest.fixture(params=[0.01, 0.0], ids=["slow-model", "fast-model"])
def platform(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Platform]:
    """Endpoint ``api``: variants ``stuck`` and ``fine`` of a pyfunc model that predicts
    ``2 * row[0]`` in 10 ms, or at once, except that it never returns for a row of ``HANG``,
    noting in ``tmp_path / "hung"`` that it began."""
    code = tmp_path / "model"
    code.mkdir()
    (code / "model.py").write_text(
        textwrap.dedent(
            f"""
            import threading
            import time

            import numpy as np

            HUNG = {str(tmp_path / "hung")!r}


            class Model:
                def load(self, artifacts_dir):
                    pass

                def predict(self, data):
                    rows = np.asarray(data, dtype=float)
                    if (rows[:, 0] == {HANG}).any():
                        open(HUNG, "w").close()
                        threading.Event().wait()  # for ever
                    time.sleep({request.param})
                    return rows[:, 0] * 2.0
            """
        )
    )
    p = build(load_settings({}, home=tmp_path / "home"))
    p.registry.register("m", code, flavor="pyfunc", trust=Trust(user_code=True))
    p.registry.register("m", code, flavor="pyfunc", trust=Trust(user_code=True))
    p.endpoints.create("api", {"stuck": "m:1", "fine": "m:2"})
    yield p
    p.close()


def test_a_hung_predict_answers_model_error_and_other_variants_go_on(
    platform: Platform, serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(workers=1, MODELYARD_PREDICT_TIMEOUT_S="4")
    for variant in ("stuck", "fine"):  # both measured (slow, or fast)
        answer = server.invoke_variant("api", 1.0, variant, ANSWER_WAIT_S)
        assert answer.json()["predictions"] == [2.0]

    hung: list[httpx.Response | Exception] = []

    def send_hang() -> None:
        try:
            hung.append(server.invoke_variant("api", HANG, "stuck", ANSWER_WAIT_S))
        except httpx.HTTPError as exc:
            hung.append(exc)

    sender = threading.Thread(target=send_hang)
    sender.start()
    wait_for("the model hung on the predict thread", (tmp_path / "hung").exists)
    try:
        other = server.invoke_variant("api", 3.0, "fine", ANSWER_WAIT_S)
    finally:
        sender.join(ANSWER_WAIT_S)
    assert other.status_code == 200, other.text
    assert other.json()["predictions"] == [6.0]
    assert other.headers["x-modelyard-variant"] == "fine"

    [answer] = hung
    assert isinstance(answer, httpx.Response), repr(answer)
    assert answer.status_code == 424, answer.text
    assert answer.headers["x-amzn-errortype"] == "ModelError"
    message = answer.json()["message"]
    assert "m:1 did not answer within 4 s" in message, message
    assert answer.json()["inference_id"] == answer.headers["x-modelyard-inference-id"]

    # And goes on doing so once the hung call's caller has had its answer.
    again = server.invoke_variant("api", 4.0, "fine", ANSWER_WAIT_S)
    assert again.status_code == 200 and again.json()["predictions"] == [8.0]
