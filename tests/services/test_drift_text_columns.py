"""A model that takes text whose values read as numbers (zip codes): a baseline or drift data
file is read with those columns as written. pandas read ``02139`` as the number 2139, so the
baseline failed with numpy's "ufunc 'isnan' not supported" (the model refused numbers), and
the same data checked against it read as a type change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.codecs.text_rows import is_text_dtype
from modelyard.config import load_settings
from modelyard.domain.drift import Verdict


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 400).astype(float),
            "zip": rng.choice(["02139", "94105", "10001"], 400),
        }
    )
    labels = ((frame["zip"] == "02139") | (frame["age"] > 60)).astype(int)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["zip"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(frame, labels)
    made = build(load_settings({}, home=tmp_path / "home"))
    made.registry.register("zips", model, flavor="sklearn", input_example=frame[:5])
    made.endpoints.create("api", {"main": "zips:1"})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    # A JSON reader makes numbers of codes sent unquoted: they are taken as their digits.
    frame.assign(zip=frame["zip"].astype(int)).to_json(
        tmp_path / "numbers.jsonl", orient="records", lines=True
    )
    yield made
    made.close()


def test_the_stored_example_of_codes_warms_and_verifies_the_model(platform: Platform) -> None:
    """The fixture's endpoint was created: its warm-up read the example's "02139" as a number
    (the model then refused it, and the endpoint could not serve); verify read it so too."""
    assert platform.registry.verify("zips:1")[1] == 5
    example = platform.registry.input_example("zips:1")
    assert example is not None and example["zip"].tolist()[0] in {"02139", "94105", "10001"}


def test_a_text_column_of_codes_is_sketched_and_compared_as_text(
    platform: Platform, tmp_path: Path
) -> None:
    platform.drift.set_baseline("zips:1", str(tmp_path / "rows.csv"))
    baseline = platform.drift.baseline("zips:1")
    assert baseline is not None
    (zips,) = [c for c in baseline.column_profiles if c.name == "zip"]
    assert zips.kind == "categorical"
    for data, codes in (("rows.csv", True), ("rows.jsonl", True), ("numbers.jsonl", False)):
        (report,) = platform.drift.drift("api", data=str(tmp_path / data))
        zip_result = next(f for f in report.features if f.name == "zip")
        if codes:  # the same rows: no drift, no type change
            assert zip_result.verdict is Verdict.NO_DRIFT, (data, zip_result)
            assert not [q for q in report.quality if "zip" in str(q)], (data, report.quality)
        else:  # 2139 is not 02139: the leading zero is lost, which drift shows
            assert zip_result.verdict is Verdict.DRIFT, (data, zip_result)


def _zip_model() -> tuple[object, pd.DataFrame]:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"age": [30.0, 41.0, 52.0, 63.0] * 5, "zip": ["02139", "94105"] * 10})
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["zip"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression()).fit(frame, [0, 1, 1, 0] * 5)
    return model, frame


def test_a_csv_example_is_read_with_the_given_signatures_text_columns_as_written(
    tmp_path: Path,
) -> None:
    """An input example from a CSV file: a column the signature gives as text is read as
    written. It was read as numbers (2139), so the model refused its own example and the
    version could not be registered from a CSV at all."""
    model, frame = _zip_model()
    frame.to_csv(tmp_path / "example.csv", index=False)
    signature = {
        "inputs": [{"name": "age", "dtype": "float64"}, {"name": "zip", "dtype": "str"}],
        "outputs": [{"dtype": "int64"}],
    }
    platform = build(load_settings({}, home=tmp_path / "home"))
    try:
        version = platform.registry.register(
            "zips", model, flavor="sklearn", input_example=str(tmp_path / "example.csv"),
            signature=signature,
        )  # fmt: skip
        assert version.signature is not None
        assert [c.dtype for c in version.signature.inputs] == ["float64", "str"]
        example = platform.registry.input_example("zips:1")
        assert example is not None and example["zip"].tolist()[:2] == ["02139", "94105"]
        assert platform.registry.verify("zips:1")[1] == len(example)
    finally:
        platform.close()


def test_a_pipeline_that_encodes_text_says_so_in_its_own_signature(tmp_path: Path) -> None:
    """Without a signature or an example, a pipeline's encoders tell which columns are text: its
    signature said float64 for every column (scikit-learn keeps no types), so requests sending
    the codes as text were refused; from a CSV example they were read as numbers, which the
    model refused at registration."""
    model, frame = _zip_model()
    frame.to_csv(tmp_path / "example.csv", index=False)
    platform = build(load_settings({}, home=tmp_path / "home"))
    try:
        bare = platform.registry.register("zips", model, flavor="sklearn")
        from_csv = platform.registry.register(
            "zips", model, flavor="sklearn", input_example=str(tmp_path / "example.csv")
        )
        for version in (bare, from_csv):
            assert version.signature is not None
            kinds = {c.name: c.dtype for c in version.signature.inputs}
            assert is_text_dtype(kinds["zip"]) and kinds["age"] == "float64", kinds
        example = platform.registry.input_example(from_csv.ref)
        assert example is not None and example["zip"].tolist()[:2] == ["02139", "94105"]
    finally:
        platform.close()


def test_a_csv_example_the_model_refuses_as_numbers_says_how_to_give_its_text(
    tmp_path: Path,
) -> None:
    """A model whose code wants text that its signature cannot tell (a pyfunc): the CSV's codes
    read as numbers, which it refuses, and the error says that a CSV's digits are read as
    numbers and how to have them read as text."""
    from modelyard.domain import Trust
    from modelyard.errors import SignatureMismatch

    code = tmp_path / "codes.py"
    code.write_text(
        "import numpy as np\n\nclass Model:\n    def load(self, path):\n        pass\n"
        "    def predict(self, data):\n"
        "        if not all(isinstance(v, str) for v in data['zip']):\n"
        "            raise TypeError('zip codes are text')\n"
        "        return np.zeros(len(data))\n"
    )
    pd.DataFrame({"zip": ["02139", "94105"]}).to_csv(tmp_path / "example.csv", index=False)
    platform = build(load_settings({}, home=tmp_path / "home"))
    try:
        with pytest.raises(SignatureMismatch, match=r"text.*digits .* read as numbers.*signature"):
            platform.registry.register(
                "codes", code, flavor="pyfunc", input_example=str(tmp_path / "example.csv"),
                trust=Trust(user_code=True),
            )  # fmt: skip
        assert platform.registry.list_models() == []
        signature = {"inputs": [{"name": "zip", "dtype": "str"}], "outputs": [{"dtype": "float64"}]}
        platform.registry.register(
            "codes", code, flavor="pyfunc", input_example=str(tmp_path / "example.csv"),
            trust=Trust(user_code=True), signature=signature,
        )  # fmt: skip
    finally:
        platform.close()
