"""Request and response bodies of the real-time inference server (SageMaker-runtime compatible).

``decode`` turns a request body into a C-contiguous 2-D float64 array, rows x features, in the
signature's feature order; ``negotiate`` picks the response type from ``Accept``; ``encode``
writes the predictions. This is the request path: orjson and numpy only, no pandas, nothing
compiled per request, and each format tries a fast path before a slow one that names the
offending row, line or feature.

Request formats (``Content-Type``, parameters ignored, case-insensitive; missing means JSON):

- ``application/json``: ``[x, ...]`` (one row), ``[[x, ...], ...]`` (rows),
  ``[{"name": x, ...}, ...]`` (records), ``{"instances": rows or records}``,
  ``{"inputs": {"name": [x, ...], ...}}`` (columns, all the same length) or
  ``{"inputs": rows}``. Named inputs are put in the signature's order and must carry exactly its
  features; a model whose features have no names refuses them (nothing says which name is
  which feature; a one-feature model takes any name), and without a signature they keep the first
  record's key order. For a
  one-feature model a flat list is one row per value. Booleans read as 1.0/0.0, and strings
  that are numbers (``"1.5"``; :mod:`~modelyard.domain.numbers` says which) as those numbers.
- ``application/x-npy``: numpy's ``.npy`` format, as the SageMaker SDK's ``NumpySerializer``
  writes it (:mod:`.npy`: 1-D is one row, 2-D rows x features; never unpickled).
- ``text/csv``: as SageMaker sends it: no header, comma-separated numbers, one row a line,
  read as RFC 4180 (:mod:`.csv_requests`, with the :mod:`csv` module, strict): quoted fields
  (``"1.5"``), ``\\r\\n`` or ``\\n`` line ends; blank lines (empty or only spaces), wherever
  they are, are skipped, so a one-column body writes a missing value as ``""`` or ``nan``, as
  :mod:`csv` writes it.

The same values mean the same in both formats:

- A number is an ASCII decimal numeral or a NaN or infinity spelling, ASCII spaces and tabs
  around it allowed (:mod:`~modelyard.domain.numbers`); what else ``float()`` takes (``1_000``,
  ``١٢``, a no-break space or a line end around a number) is refused, naming its row or line
  and column.

- Missing values: JSON ``null``, an empty CSV field (``""`` too) and ``NaN``/``nan`` (CSV, JSON
  strings, and the bare ``NaN`` token Python's ``json.dumps`` writes) become NaN and reach the
  model as missing; XGBoost and LightGBM treat NaN as missing natively.
- Infinity written as such (``inf``, ``-Infinity``; the bare ``Infinity`` token in JSON) is a
  float like any other; a numeral too large for a float64 (``1e400``, as a JSON number, a JSON
  string or a CSV field) is refused, naming its row (JSON) or line (CSV) and column.
- A UTF-8 byte order mark before the body is skipped; a body that is not UTF-8 is refused.

Responses: ``application/json`` is ``{"predictions": [...]}`` (1-D: numbers; 2-D: lists), NaN
and ±inf written as ``null`` (JSON has no such numbers), each float in the shortest text that
reads back to the same value of its own dtype (float32: ``0.83744717``), whatever the number of
rows, as in CSV and V2. ``text/csv`` is one prediction a line (2-D: a comma-joined row a line),
``\\n``-terminated, each float in that same shortest text (float64 through ``repr``, float32
through numpy's shortest repr, which :mod:`.float_text` writes through orjson for large
arrays), NaN as ``nan``; non-numeric predictions (class labels) go through :mod:`csv` quoting.
``application/x-npy`` is the predictions array as ``.npy`` (numbers, or labels as a text array;
never pickled), asked for by name:
``*/*`` and ``application/*`` still mean JSON.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelyard.codecs import npy
from modelyard.codecs.csv_requests import decode_csv
from modelyard.codecs.float_text import float16_for_json, float32_csv
from modelyard.codecs.json_shapes import (
    NO_ROWS,
    Matrix,
    clip,
    clip_names,
    feature_names,
    json_number,
    n_features,
    not_utf8,
    rows_from_json,
)
from modelyard.codecs.object_arrays import plain_value
from modelyard.codecs.text_rows import (
    is_text_dtype,
    table_from_csv,
    table_from_json,
    text_features,
)
from modelyard.domain.signature import Signature
from modelyard.errors import (
    InvalidPayload,
    ModelFailed,
    NotAcceptable,
    SignatureMismatch,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUPPORTED_CONTENT_TYPES", "decode", "encode", "negotiate"]

JSON = "application/json"
CSV = "text/csv"
NPY = npy.NPY
SUPPORTED_CONTENT_TYPES: tuple[str, ...] = (JSON, CSV, NPY)

_SUPPORTED = ", ".join(SUPPORTED_CONTENT_TYPES)
_EXACT_TYPES = {JSON: JSON, CSV: CSV, NPY: NPY}
_EXACT_ACCEPT = {
    "": JSON,
    "*/*": JSON,
    "application/*": JSON,
    JSON: JSON,
    "text/*": CSV,
    CSV: CSV,
    NPY: NPY,
}
_BOM = b"\xef\xbb\xbf"
_INF = float("inf")
_NINF = -_INF
_QUOTE = ord('"')  # an int: bytes membership is then one memchr, a fifth of b'"' in body
_BACKSLASH = ord("\\")
_UNDERSCORE = ord("_")
# An underscore between digits; it starts with the underscore so that re looks for that byte
# first, as memchr does (a class first scans every byte: 4x slower on a records body).
_DIGIT_SEPARATOR = re.compile(rb"_(?<=[0-9]_)[0-9]").search


def decode(
    body: bytes, content_type: str | None, signature: Signature | None
) -> Matrix | pd.DataFrame:
    """Parse a request body into a 2-D float64 array (rows x features) in the signature's
    feature order; for a model with a text feature, a DataFrame of its features instead
    (:mod:`.text_rows`).

    Args:
        body: The raw request body.
        content_type: The ``Content-Type`` header; None or empty means ``application/json``.
        signature: The model's signature; None (or one with no inputs) checks only that the
            rows agree with one another.

    Returns:
        A C-contiguous float64 array with at least one row and one column, or for a model
        taking text a DataFrame with the signature's columns (text as ``str``).

    Raises:
        UnsupportedMediaType: the content type is not JSON, CSV or npy.
        InvalidPayload: malformed JSON, an unknown shape, zero rows, ragged rows or a value that
            is not a number; the message names the row (JSON) or line (CSV) and the column.
        SignatureMismatch: a named feature is missing or unexpected, or the width differs from
            the signature's.
    """
    if not content_type:
        media = JSON
    else:
        media = _EXACT_TYPES.get(content_type) or _media_type(content_type)
        if media != NPY and ";" in content_type:
            body = _as_utf8(body, content_type)
    if signature is not None and text_features(signature) is not None:
        return _decode_table(body, media, signature)
    if media == CSV:
        array = decode_csv(body)
    elif media == NPY:
        array = npy.decode(body, n_features(signature))
    else:
        array = _decode_json(body, signature)
    width = array.shape[1]
    expected = n_features(signature)
    if expected is not None and width != expected:
        names = feature_names(signature)
        known = f" {clip_names(names)}" if names else ""
        raise SignatureMismatch(f"expected {expected} features{known}, got {width}")
    if width == 0:
        raise InvalidPayload("the rows hold no values")
    if array.shape[0] == 0:
        raise InvalidPayload(NO_ROWS)
    return array


def negotiate(accept: str | None) -> str:
    """Pick the response media type for an ``Accept`` header.

    No header, ``*/*`` and ``application/*`` give JSON, ``text/*`` gives CSV. With several
    ranges, the supported type with the highest q-value wins (a type takes the q of its most
    specific range; ``q=0`` refuses it); ties go to the range listed first, then to JSON.

    Returns:
        ``"application/json"``, ``"text/csv"`` or ``"application/x-npy"``.

    Raises:
        NotAcceptable: nothing in the header is a type the server writes.
    """
    if accept is None:
        return JSON
    hit = _EXACT_ACCEPT.get(accept)
    return hit if hit is not None else _negotiate(accept)


def encode(predictions: np.ndarray, media_type: str) -> bytes:
    """Write predictions as a response body of ``media_type`` (a result of :func:`negotiate`).

    Raises:
        NotAcceptable: ``media_type`` is not one the server writes, or is ``.npy`` for
            predictions of Python objects other than text.
        ModelFailed: the predictions cannot be written (objects that are not numbers or text).
    """
    array = np.asarray(predictions)
    if array.ndim == 0:
        array = array.reshape(1)
    if media_type == JSON:
        return _encode_json(array)
    if media_type == CSV:
        return _encode_csv(array)
    if media_type == NPY:
        return npy.encode(array)
    raise NotAcceptable(f"cannot write predictions as {clip(media_type)}: supported: {_SUPPORTED}")


# --- request ------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _EXACT_TYPES:
        return _EXACT_TYPES[media]
    hint = ""
    if media == "application/x-www-form-urlencoded":
        hint = " (curl -d sends this by default: add -H 'Content-Type: application/json')"
    raise UnsupportedMediaType(
        f"unsupported content type {clip(content_type)}{hint}: supported: {_SUPPORTED}"
    )


#: Charsets a body is read in as it is: UTF-8, and ASCII, which is a part of it.
_UTF8 = frozenset(("utf-8", "utf8", "us-ascii", "ascii"))


def _as_utf8(body: bytes, content_type: str) -> bytes:
    """``body`` in UTF-8, from the ``charset`` its content type names (a Java or R client may
    label a body ISO-8859-1 or UTF-16): read as UTF-8 whatever it said, a UTF-16 body was
    refused as malformed, naming nothing the client chose.

    Raises:
        UnsupportedMediaType: a charset Python does not know.
        InvalidPayload: the body is not valid in the charset named.
    """
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip('"').strip()
        if charset.lower() in _UTF8:
            return body
        try:
            text = body.decode(charset)  # base64 or zlib, codecs of bytes: a LookupError too
        except LookupError:
            raise UnsupportedMediaType(
                f"unsupported charset {clip(charset)} in content type {clip(content_type)}: "
                "send UTF-8, or a charset Python reads"
            ) from None
        except UnicodeDecodeError as exc:
            raise InvalidPayload(
                f"the body is not valid {clip(charset)} (byte {exc.start}), the charset its "
                "content type names"
            ) from None
        return text.encode("utf-8", "surrogatepass")
    return body


def _decode_table(body: bytes, media: str, signature: Signature) -> pd.DataFrame:
    if media == CSV:
        return table_from_csv(body, signature)
    if media == NPY:
        texts = [c.name or str(j) for j, c in enumerate(signature.inputs) if is_text_dtype(c.dtype)]
        raise UnsupportedMediaType(
            f"a {NPY} body holds numbers, and this model takes text in {clip_names(texts)}: "
            f"send {JSON} or {CSV}"
        )
    return table_from_json(_parsed_json(body), signature)


def _parsed_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _lenient_json(body, exc)


def _decode_json(body: bytes, signature: Signature | None) -> Matrix:
    obj = _parsed_json(body)
    array = rows_from_json(obj, signature)
    # numpy reads a string "1e400" as inf, and "1_000", "١٢" or "\\u00a01" as numbers, as
    # float() does; only a body with strings can hide one, and only an array holding inf, or a
    # body with a character or escape such a string needs, takes the exact pass, and then only
    # when some value is a string (feature names are strings too: "température", "q1_1").
    if _QUOTE in body and (_holds_inf(array) or (_maybe_not_numerals(body) and _holds_text(obj))):
        return rows_from_json(obj, signature, exact=True)
    return array


def _holds_text(obj: object) -> bool:
    """Whether a parsed JSON body holds a string among its values (an object's keys are
    names, not values)."""
    if type(obj) is not list and type(obj) is not dict:
        return type(obj) is str
    pending = [obj]
    while pending:
        item = pending.pop()
        values = item.values() if type(item) is dict else item
        for value in values:
            kind = type(value)
            if kind is str:
                return True
            if kind is list or kind is dict:
                pending.append(value)
    return False


def _maybe_not_numerals(body: bytes) -> bool:
    """Whether a string of the body could be one ``float()`` takes and the grammar of
    :mod:`~modelyard.domain.numbers` does not: one with a non-ASCII character, an escape (a
    control character is sent as one), or an underscore between digits."""
    return (
        not body.isascii()
        or _BACKSLASH in body
        or (_UNDERSCORE in body and _DIGIT_SEPARATOR(body) is not None)
    )


def _holds_inf(array: Matrix) -> bool:
    if array.size <= 64:  # a few values: a list scan costs a third of numpy's call overhead
        values = array.ravel().tolist()
        return _INF in values or _NINF in values
    return bool(np.isinf(array).any())


def _lenient_json(body: bytes, error: orjson.JSONDecodeError) -> object:
    """What orjson refuses and we take: a BOM first (CSV skips it, so JSON does too), the bare
    NaN/Infinity tokens Python's json.dumps writes, and a numeral that overflows (for the row
    pass to name); anything else is reported with orjson's error."""
    sent = body
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            error = exc
    if not body.strip():
        raise InvalidPayload(NO_ROWS) from None
    if b"NaN" in body or b"Infinity" in body or "infinity" in str(error):
        try:
            return json.loads(body.decode(), parse_float=json_number, parse_int=json_number)
        except (ValueError, RecursionError):
            pass
    problem = not_utf8(sent, error)  # its position in the body as sent
    if problem is not None:
        raise InvalidPayload(
            f"the JSON body is not UTF-8 text: {problem} (name another charset in the "
            "Content-Type: application/json; charset=…)"
        ) from None
    raise InvalidPayload(f"malformed JSON: {error}") from None


# --- response ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _negotiate(accept: str) -> str:
    if not accept.strip():
        return JSON
    # candidate -> (q, specificity, position) of the most specific range that matches it
    best: dict[str, tuple[float, int, int]] = {}
    for position, part in enumerate(accept.split(",")):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        if not media:
            continue
        q = _quality(params)
        for candidate in SUPPORTED_CONTENT_TYPES:
            specificity = _specificity(media, candidate)
            if specificity >= 0 and (candidate not in best or specificity > best[candidate][1]):
                best[candidate] = (q, specificity, position)
    ranked = sorted(
        (-q, position, SUPPORTED_CONTENT_TYPES.index(candidate), candidate)
        for candidate, (q, _, position) in best.items()
        if q > 0
    )
    if not ranked:
        raise NotAcceptable(
            f"cannot answer in any type the Accept header {clip(accept, 100)} allows: "
            f"supported: {_SUPPORTED}"
        )
    return ranked[0][3]


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 1.0  # a malformed q is ignored rather than turned into a refusal
            return 0.0 if q < 0 else q if q <= 1 else 1.0  # NaN and q > 1 read as 1
    return 1.0


def _specificity(media: str, candidate: str) -> int:
    if media == candidate:
        return 2
    if media == "*/*":
        return 0
    if media.endswith("/*") and candidate.startswith(media[:-1]):
        return 1
    return -1


def _encode_json(array: np.ndarray) -> bytes:
    if not array.flags.c_contiguous:
        # orjson takes only C-ordered arrays; the fallback through Python objects would write
        # the same values in other text (1e-07, not 1e-7), so a column of a 2-D result (one
        # row is C-ordered, many are not) would print differently from a single row.
        array = np.ascontiguousarray(array)
    if array.dtype == np.float16:
        array = float16_for_json(array)
    try:
        return orjson.dumps({"predictions": array}, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        pass  # dtypes orjson does not take natively (str, object, float16): via Python objects
    try:
        return _json_of_objects({"predictions": array.tolist()})
    except orjson.JSONEncodeError as exc:
        why = exc.__cause__ if isinstance(exc.__cause__, ValueError) else exc
        message = f"cannot write predictions of dtype {array.dtype} as JSON: {why}"
        raise ModelFailed(message) from None


def _json_of_objects(value: object) -> bytes:
    """``value`` as JSON: NumPy scalars and bytes (labels) inside objects as the values they
    hold, a mapping's keys that are numbers, booleans or None (a class label) as their text,
    as Python's ``json`` writes them (``{0: 0.3}`` as ``{"0":0.3}``).

    Raises:
        orjson.JSONEncodeError: a value or key JSON cannot hold.
    """
    try:
        return orjson.dumps(value, default=plain_value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        # A mapping keyed by NumPy scalars (dict(zip(model.classes_, probabilities))), which
        # orjson's option does not take: its keys as the Python values they hold, then again.
        return orjson.dumps(_plain_keys(value), default=plain_value, option=orjson.OPT_NON_STR_KEYS)


def _plain_key(key: object) -> object:
    """A mapping's key as JSON writes it: a NumPy scalar or bytes as the value it holds, as
    the mapping's values are written (``object_arrays.plain_value``); others as they are."""
    if isinstance(key, np.generic | bytes):
        try:
            return plain_value(key)
        except (TypeError, ValueError):
            return key
    return key


def _plain_keys(value: object) -> object:
    """``value`` with every mapping's NumPy scalar and bytes keys as the values they hold."""
    if isinstance(value, dict):
        return {_plain_key(k): _plain_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_keys(v) for v in value]
    return value


def _encode_csv(array: np.ndarray) -> bytes:
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    kind = array.dtype.kind
    if array.dtype == np.float32:
        return float32_csv(array)
    if kind == "f" and array.dtype != np.float64:
        text = array.astype(str).tolist()  # numpy's shortest repr for float32/float16
    elif kind in "fiub":
        text = array.tolist()
        if array.ndim == 1:
            return ("\n".join(map(repr, text)) + "\n").encode() if text else b""
        return "".join(",".join(map(repr, row)) + "\n" for row in text).encode()
    else:
        buffer = io.StringIO()
        rows = array.tolist() if array.ndim == 2 else [[v] for v in array.tolist()]
        if kind in "OSc":  # objects, bytes (labels), complex: each value as JSON writes it
            rows = _plain_rows(rows, array.dtype)
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue().encode()
    if array.ndim == 1:
        return ("\n".join(text) + "\n").encode() if text else b""
    return "".join(",".join(row) + "\n" for row in text).encode()


def _plain_rows(rows: list[list[Any]], dtype: np.dtype[Any]) -> list[list[Any]]:
    """CSV rows of values CSV writes as themselves (``object_arrays.plain_value``), not
    Python's text of them (``b'cat'``, ``(1+2j)``, ``{'a': 1}``).

    Raises:
        ModelFailed: a value CSV cannot hold, naming its type (a mapping or list: and JSON).
    """
    try:
        return [[plain_value(value) for value in row] for row in rows]
    except ValueError as exc:
        raise ModelFailed(f"cannot write predictions of dtype {dtype} as CSV: {exc}") from None
    except TypeError as exc:
        name = str(exc)
        hint = ""
        if name in ("dict", "list", "tuple") and _json_writes(rows):
            hint = ": ask for application/json"
        raise ModelFailed(f"cannot write predictions holding {name} as CSV{hint}") from None


def _json_writes(rows: list[list[Any]]) -> bool:
    """Whether JSON writes every value of ``rows`` (what CSV refused may be written there)."""
    try:
        _json_of_objects(rows)
    except orjson.JSONEncodeError:
        return False
    return True
