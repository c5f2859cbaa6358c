"""Serializers and deserializers for :class:`~modelyard.predictor.Predictor`, as the SageMaker
SDK's ``sagemaker.serializers`` / ``sagemaker.deserializers`` define them.

A serializer turns what you pass to ``predict`` into a request body and names its
``CONTENT_TYPE``; a deserializer names the response types it ``ACCEPT`` s and turns the body
back into Python objects::

    predictor.serializer = CSVSerializer()        # rows of numbers → "1.5,2,3\\n…"
    predictor.deserializer = NumpyDeserializer()  # the answer → a numpy array

==========================  ===================  ==========================================
class                       type                 Python side
==========================  ===================  ==========================================
``JSONSerializer``          application/json     lists, dicts, numpy arrays, DataFrames
``CSVSerializer``           text/csv             rows (lists, arrays, DataFrames), a string
``NumpySerializer``         application/x-npy    numpy arrays (lists are converted)
``JSONDeserializer``        application/json     the parsed JSON (``{"predictions": […]}``)
``CSVDeserializer``         text/csv             a list of rows of strings
``NumpyDeserializer``       application/x-npy    a numpy array (also reads JSON and CSV)
==========================  ===================  ==========================================

Bytes, a string and a file object are sent as they are by every serializer. numpy is imported
only when a numpy serializer is used.
"""

from __future__ import annotations

import csv
import io
import json
from abc import ABC, abstractmethod
from typing import Any

NPY = "application/x-npy"
JSON = "application/json"
CSV = "text/csv"


class BaseSerializer(ABC):
    """Turns ``predict``'s argument into a request body of :attr:`CONTENT_TYPE`."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:  # the SageMaker SDK's name
        """The ``Content-Type`` of the bodies this serializer writes."""
        return self.content_type

    def serialize(self, data: Any) -> bytes:
        """The request body for ``data``: bytes, a string or a file object as they are, else
        :meth:`_serialize`'s rendering.

        Raises:
            ValueError, TypeError: ``data`` cannot be written in this format.
        """
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        if isinstance(data, str):
            return data.encode("utf-8")
        read = getattr(data, "read", None)
        if callable(read):
            content = read()
            return content.encode("utf-8") if isinstance(content, str) else bytes(content)
        return self._serialize(data)

    @abstractmethod
    def _serialize(self, data: Any) -> bytes:
        """Render anything that is not already a body."""


class JSONSerializer(BaseSerializer):
    """Writes ``application/json``: lists, dicts and numbers as they are; numpy arrays and
    pandas objects through ``tolist()``/their records (a DataFrame → one record per row)."""

    def __init__(self, content_type: str = JSON) -> None:
        super().__init__(content_type)

    def _serialize(self, data: Any) -> bytes:
        return json.dumps(data, default=_jsonable).encode("utf-8")


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "columns"):  # a DataFrame: named features
        return to_dict(orient="records")
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, pandas Series
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class CSVSerializer(BaseSerializer):
    """Writes ``text/csv`` without a header, one row a line, as SageMaker sends it: a flat
    sequence of numbers is one row, a sequence of sequences (or a 2-D array, a DataFrame)
    is many."""

    def __init__(self, content_type: str = CSV) -> None:
        super().__init__(content_type)

    def _serialize(self, data: Any) -> bytes:
        values = getattr(data, "values", None)  # a DataFrame or Series: its array
        if values is None or callable(values):  # (a dict's values() is no array)
            values = data
        rows = values.tolist() if hasattr(values, "tolist") else list(values)
        if rows and not _is_row_list(rows):
            rows = [rows]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [[_csv_field(v) for v in row] for row in rows]
        )
        return buffer.getvalue().encode("utf-8")


def _is_row_list(rows: list[Any]) -> bool:
    return all(isinstance(r, list | tuple) for r in rows)


def _csv_field(value: Any) -> Any:
    # repr keeps every digit of a float (str would too on Python 3, but not numpy's float32).
    return repr(value) if isinstance(value, float) else value


class NumpySerializer(BaseSerializer):
    """Writes a numpy array in the ``.npy`` format (``application/x-npy``); a list is turned
    into an array (of ``dtype``, if given) first."""

    def __init__(self, dtype: Any = None, content_type: str = NPY) -> None:
        super().__init__(content_type)
        self.dtype = dtype

    def _serialize(self, data: Any) -> bytes:
        import numpy as np

        array = np.asarray(data, dtype=self.dtype)
        if array.dtype.hasobject:
            raise TypeError("cannot write an array of Python objects as .npy without pickle")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()


class BaseDeserializer(ABC):
    """Turns a response body into Python objects; :attr:`ACCEPT` is what it asks for."""

    def __init__(self, accept: str | tuple[str, ...]) -> None:
        self.accept = (accept,) if isinstance(accept, str) else tuple(accept)

    @property
    def ACCEPT(self) -> tuple[str, ...]:  # the SageMaker SDK's name
        """The media types this deserializer asks for, most wanted first."""
        return self.accept

    def deserialize(self, stream: Any, content_type: str) -> Any:
        """Read the body from ``stream`` (a file-like object, or bytes) of ``content_type``.

        Raises:
            ValueError: the body is not of a type this deserializer reads, or malformed.
        """
        body = stream if isinstance(stream, bytes | bytearray) else stream.read()
        media = content_type.split(";", 1)[0].strip().lower()
        return self._deserialize(bytes(body), media)

    @abstractmethod
    def _deserialize(self, body: bytes, media: str) -> Any:
        """Parse ``body`` of ``media`` (lower case, without parameters)."""


class JSONDeserializer(BaseDeserializer):
    """Reads ``application/json`` into Python objects: ``{"predictions": [...]}`` from a
    modelyard server."""

    def __init__(self, accept: str | tuple[str, ...] = JSON) -> None:
        super().__init__(accept)

    def _deserialize(self, body: bytes, media: str) -> Any:
        return json.loads(body.decode("utf-8"))


class CSVDeserializer(BaseDeserializer):
    """Reads ``text/csv`` into a list of rows, each a list of strings (as the SageMaker SDK's
    does: convert the fields you need)."""

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] = CSV) -> None:
        super().__init__(accept)
        self.encoding = encoding

    def _deserialize(self, body: bytes, media: str) -> Any:
        text = body.decode(self.encoding)
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


class NumpyDeserializer(BaseDeserializer):
    """Reads a response into a numpy array (of ``dtype``, if given): ``.npy`` bodies (never
    unpickling: ``allow_pickle`` must be asked for), JSON (a modelyard server's
    ``{"predictions": [...]}``, or any list; numbers and nulls read as floats and NaN) and
    CSV."""

    def __init__(
        self,
        dtype: Any = None,
        accept: str | tuple[str, ...] = NPY,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def _deserialize(self, body: bytes, media: str) -> Any:
        import numpy as np

        if media == NPY:
            array = np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
            return array if self.dtype is None else array.astype(self.dtype)
        if media == JSON:
            parsed = json.loads(body.decode("utf-8"))
            if isinstance(parsed, dict) and "predictions" in parsed:
                parsed = parsed["predictions"]
            array = np.array(parsed, dtype=self.dtype)
            if self.dtype is None and array.dtype.hasobject:
                # A server writes NaN as null (JSON has no NaN): numbers with nulls read as
                # floats with NaN, as the same answer in CSV or .npy does, not as objects.
                try:
                    return np.array(parsed, dtype=np.float64)
                except (TypeError, ValueError):
                    pass
            return array
        if media == CSV:
            rows = [r for r in csv.reader(io.StringIO(body.decode("utf-8"), newline="")) if r]
            array = np.array(rows, dtype=self.dtype or np.float64)
            # One prediction a line comes back 1-D, as it would from JSON.
            return array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array
        raise ValueError(f"cannot read a {media or 'typeless'} answer as a numpy array")
