"""Baseline servers for ``benchmarks/serving.py``: a thin XGBoost server and an empty one.

Both are Starlette apps, run by uvicorn as app factories (one call per worker process)::

    BENCH_MODEL_PATH=model.ubj uvicorn --factory reference_server:create_reference_app
    uvicorn --factory reference_server:create_empty_app

``create_reference_app`` is what a thin hand-written model server does: parse the JSON body
with orjson, build a 2-D float array, call ``booster.inplace_predict`` directly in the
handler (on the event loop, one thread), answer ``{"predictions": [...]}``. No routing to
models, no metrics, no validation beyond what numpy and xgboost do.

``create_empty_app`` is the same app answering a constant without parsing the body or
touching a model: the ceiling this HTTP stack reaches on the machine.
"""

from __future__ import annotations

import os

import numpy as np
import orjson
import xgboost
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MODEL_PATH_ENV = "BENCH_MODEL_PATH"
INVOCATIONS_PATH = "/invocations"
_EMPTY_ANSWER = orjson.dumps({"predictions": [0.5]})


def _json(body: bytes) -> Response:
    """Wrap already-serialised JSON in a response."""
    return Response(body, media_type="application/json")


def _rows(payload: object) -> np.ndarray:
    """Turn ``{"instances": rows}`` or bare ``rows`` into a 2-D float32 array."""
    rows = payload["instances"] if isinstance(payload, dict) else payload
    array = np.asarray(rows, dtype=np.float32)
    return array.reshape(1, -1) if array.ndim == 1 else array


def _app(endpoint) -> Starlette:
    """The one-route app both servers share."""
    return Starlette(routes=[Route(INVOCATIONS_PATH, endpoint, methods=["POST"])])


def create_reference_app() -> Starlette:
    """Load the booster named by ``$BENCH_MODEL_PATH`` and serve its predictions."""
    booster = xgboost.Booster()
    booster.load_model(os.environ[MODEL_PATH_ENV])
    booster.set_param({"nthread": 1})

    async def invocations(request: Request) -> Response:
        features = _rows(orjson.loads(await request.body()))
        predictions = booster.inplace_predict(features)
        return _json(orjson.dumps({"predictions": predictions.tolist()}))

    return _app(invocations)


def create_empty_app() -> Starlette:
    """Read the request body and answer a constant prediction."""

    async def invocations(request: Request) -> Response:
        await request.body()
        return _json(_EMPTY_ANSWER)

    return _app(invocations)
