"""``endpoints feedback --file``: how a labels file is read (``cli/feedback.py:read_labels``),
before any label reaches the feedback service.

- A UTF-8 file as spreadsheets save it (a byte order mark first) is read like any other.
- A CSV line with more fields than the header is refused naming the line, not cut.
- A file of more labels than one request takes is judged whole: one bad label stores none.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.cli.feedback import read_labels
from modelyard.errors import InvalidInput

ID = "01a24b01a495702aa9b2a09afa945f56"


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a byte order mark, which made the first column
    '\\ufeffinference_id': the file was refused as missing its inference_id column."""
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"\xef\xbb\xbfinference_id,label,row\r\n" + ID.encode() + b",1,0\r\n")
    assert read_labels(labels) == [{"inference_id": ID, "label": 1, "row": 0}]
    lines = tmp_path / "labels.jsonl"  # and JSON refused it as "Unexpected UTF-8 BOM"
    lines.write_bytes(b'\xef\xbb\xbf{"inference_id": "' + ID.encode() + b'", "label": 1}\n')
    assert read_labels(lines) == [{"inference_id": ID, "label": 1}]


def test_a_csv_line_with_more_fields_than_the_header_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    """An unquoted comma in a label (``New York, NY``) gave the line one field too many: the
    label was cut at the comma and the rest dropped, so a wrong label was sent as accepted."""
    labels = tmp_path / "labels.csv"
    labels.write_text(
        f'inference_id,label\n{ID},"Boston, MA"\n{ID},New York, NY\n', encoding="utf-8"
    )
    with pytest.raises(InvalidInput, match=r"labels.csv line 3 has 3 fields; the header has 2"):
        read_labels(labels)


def test_a_file_of_more_than_one_request_of_labels_is_refused_whole(
    make_cli: Any, tmp_path: Path
) -> None:
    """A file was sent in batches of 10,000: a bad label in a later batch left the earlier
    batches stored (half a file taken, exit 2), and a malformed item was named by its place in
    its batch ("feedback item 1" for the 10,002nd). It is now judged as one batch."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelyard.bootstrap import serving_app
    from modelyard.domain import CaptureConfig
    from tests.serving.asgi_support import lifespan

    cli = make_cli(tmp_path / "home")
    platform = cli.platform()
    try:
        frame = pd.DataFrame(np.random.default_rng(1).normal(size=(50, 2)), columns=["a", "b"])
        model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
        platform.registry.register("score", model, flavor="sklearn", input_example=frame[:3])
        platform.endpoints.create(
            "api", {"main": "score:1"}, capture={"main": CaptureConfig.parse(100)}
        )

        async def predict() -> str:
            async with lifespan(serving_app(platform.settings)) as client:
                answer = await client.post("/endpoints/api/invocations", json=[[1.0, 0.0]] * 3)
                assert answer.status_code == 200, answer.text
                return str(answer.headers["x-modelyard-inference-id"])

        inference_id = asyncio.run(predict())  # its shutdown wrote the captured rows
    finally:
        platform.close()
    good = [
        json.dumps({"inference_id": inference_id, "row": i % 3, "label": i % 2})
        for i in range(10_001)
    ]
    wrong, malformed = tmp_path / "wrong.jsonl", tmp_path / "malformed.jsonl"
    last = {"inference_id": inference_id, "row": 0}
    wrong.write_text("\n".join([*good, json.dumps({**last, "label": "yes"})]) + "\n")
    malformed.write_text("\n".join([*good, json.dumps({**last, "label": None})]) + "\n")
    refused, unparsed = cli.many(
        ("endpoints", "feedback", "api", "--file", wrong),
        ("endpoints", "feedback", "api", "--file", malformed),
    )
    assert '"yes"' in refused.error_line(2) and inference_id in refused.err
    assert "feedback item 10001 " in unparsed.error_line(2)
    platform = cli.platform()
    try:
        (point,) = platform.feedback.quality("api", window=timedelta(hours=1))
        assert point.rows == 0  # nothing of either file was stored
    finally:
        platform.close()
