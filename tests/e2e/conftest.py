"""Real servers on 127.0.0.1 for end-to-end tests: a platform with registered XGBoost models
and a `modelyard serve` process (several workers when asked) reading the same store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings

N_FEATURES = 30
MODELYARD = str(Path(sys.executable).parent / "modelyard")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_request(port: int, head: bytes) -> bytes:
    """Send raw bytes (say, request headers without their body) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < _answer_length(answer):
            chunk = sock.recv(65536)  # the head and the body may come in separate packets
            if not chunk:
                break
            answer += chunk
        return answer


def _answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(answer) + 1  # no length: read until the server closes


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_HOME": str(home), "MODELYARD_PLAN_POLL_S": "0.2", **extra})
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kw)

    def invoke_variant(
        self, endpoint: str, row: float, variant: str, timeout: float = 60
    ) -> httpx.Response:
        """Invoke ``endpoint``'s ``variant`` (SageMaker's ``TargetVariant``) with one row."""
        return httpx.post(
            f"{self.url}/endpoints/{endpoint}/invocations",
            json=[row],
            headers={"X-Amzn-SageMaker-Target-Variant": variant},
            timeout=timeout,
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    """Three XGBoost boosters on one task, each giving different scores, plus probe rows."""
    import xgboost as xgb
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=3000, n_features=N_FEATURES, random_state=3)
    names = [f"f{i}" for i in range(N_FEATURES)]
    boosters = [
        xgb.train(
            {"objective": "binary:logistic", "max_depth": d, "nthread": 1},
            xgb.DMatrix(x, label=y, feature_names=names),
            num_boost_round=r,
        )
        for d, r in ((2, 5), (4, 20), (6, 40))
    ]
    return {"boosters": boosters, "x": x, "names": names}


@pytest.fixture
def platform(tmp_path: Path, models: dict[str, Any]) -> Iterator[Platform]:
    import pandas as pd

    p = build(load_settings({}, home=tmp_path / "home"))
    example = pd.DataFrame(models["x"][:5], columns=models["names"])
    for booster in models["boosters"]:
        p.registry.register("churn", booster, flavor="xgboost", input_example=example)
    yield p
    p.close()


@pytest.fixture
def serve(platform: Platform, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(workers: int = 1, **env: str) -> Server:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        argv = [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [*argv, "--workers", str(workers)],
                env=clean_env(platform.settings.home, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def expected(models: dict[str, Any], version: int, rows: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    booster = models["boosters"][version - 1]
    return np.asarray(booster.predict(xgb.DMatrix(rows, feature_names=models["names"])))


@pytest.fixture
def boto3_client() -> Iterator[Callable[[str], Any]]:
    import boto3
    from botocore.config import Config

    made: list[Any] = []

    def make(url: str) -> Any:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="not-a-secret",
            # No retries: a lost request must not hide behind a second attempt.
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()  # its pooled connections, before the warnings filter sees them
