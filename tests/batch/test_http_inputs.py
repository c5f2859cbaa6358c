"""Inputs read over HTTP(S), as a presigned object-store URL gives them
(``https://bucket…/day.csv?X-Amz-Signature=…``): the query is no part of the file's name, so
the format comes from ``day.csv`` and the output is ``day.csv.out``. The name once kept the
query: the format could not be told without a content type, and the output file's name (and
the job's state beside it) held the URL's signature in clear."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelyard.batch import list_inputs
from modelyard.batch.coordinator import run_job
from tests.batch.support import Model, csv_text, features, request

ROWS = features(9, seed=5)
SECRET = "S3cret-Sig"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Nothing on the test's stderr."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``day.csv``; yields its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "day.csv").write_bytes(csv_text(ROWS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_query_is_no_part_of_the_input_name(
    model: Model, served: str, tmp_path: Path
) -> None:
    url = f"{served}/day.csv?X-Amz-Signature={SECRET}&X-Amz-Expires=300"
    (found,) = list_inputs(url)
    assert found.name == "day.csv"

    out = tmp_path / "out"
    run_job(request(model, url, out), model.source, job="http-query")  # format from ".csv"
    assert (out / "day.csv.out").read_bytes() == model.csv(ROWS)
    written = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert not [p for p in written if SECRET in p], written
