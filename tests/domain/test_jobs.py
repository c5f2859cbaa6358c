"""How a job records its hyperparameters."""

from __future__ import annotations

import json

import numpy as np

from modelyard.domain import hyperparameter_texts


def test_strings_stay_and_other_values_are_json_as_the_sagemaker_sdk_sends_them() -> None:
    texts = hyperparameter_texts(
        {"eta": "0.1", "flag": False, "n": 3, "lr": 0.25, "layers": ["a", "b"], "opts": {"k": 1}}
    )
    assert texts == {
        "eta": "0.1",
        "flag": "false",
        "n": "3",
        "lr": "0.25",
        "layers": '["a", "b"]',
        "opts": '{"k": 1}',
    }


def test_numpy_values_count_as_the_numbers_they_hold() -> None:
    texts = hyperparameter_texts({"n": np.int64(5), "on": np.bool_(True), "w": np.arange(2)})
    assert {k: json.loads(v) for k, v in texts.items()} == {"n": 5, "on": True, "w": [0, 1]}


def test_a_value_json_cannot_hold_keeps_its_text() -> None:
    assert hyperparameter_texts({"s": {1, 2}}) == {"s": "{1, 2}"}
