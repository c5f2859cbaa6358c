"""Every error class in ``modelyard.errors`` can be built from a message alone: a client turns
an error answer's ``error_code`` back into its class with nothing but the answer's message
(``predictor.error_from_answer``), and a class that needed more raised TypeError there."""

from __future__ import annotations

import pickle

import httpx
import pytest

from modelyard import errors
from modelyard.errors import ModelyardError
from modelyard.predictor import error_from_answer


def _classes() -> list[type[ModelyardError]]:
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, ModelyardError)
    ]
    assert len(found) > 20  # the tree, not an empty walk
    return sorted(found, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", _classes(), ids=lambda cls: cls.__name__)
def test_each_error_class_is_built_from_a_message(cls: type[ModelyardError]) -> None:
    error = cls("what went wrong")
    assert "what went wrong" in error.message
    again = pickle.loads(pickle.dumps(error))  # worker processes send errors back pickled
    assert type(again) is cls and again.message == error.message


@pytest.mark.parametrize("cls", _classes(), ids=lambda cls: cls.__name__)
def test_an_answer_with_each_error_code_becomes_its_class(cls: type[ModelyardError]) -> None:
    body = {"message": "what went wrong", "error_code": cls.code}
    answer = httpx.Response(cls.http_status, json=body)
    error = error_from_answer(answer)
    assert error.code == cls.code and "what went wrong" in error.message
