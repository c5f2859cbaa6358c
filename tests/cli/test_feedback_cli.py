"""``endpoints feedback --file``: how a labels file is read (``cli/feedback.py:read_labels``),
before any label reaches the feedback service.

- A UTF-8 file as spreadsheets save it (a byte order mark first) is read like any other.
- A CSV line with more fields than the header is refused naming the line, not cut.
"""

from __future__ import annotations

from pathlib import Path

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
