"""Text classification (sentiment and the like): one text column, a bag of words or tf-idf, then
a linear model or XGBoost.

The result is a scikit-learn ``Pipeline(features=ColumnTransformer(vectorizer on the text
column), model=…)``: it takes a table holding the text column, which is what an endpoint
receives. The linear model predicts the original labels; the XGBoost one predicts class
indices, whose labels ``TrainedModel.classes`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, MissingDependency
from modelyard.training.algorithms._metrics import evaluate
from modelyard.training.algorithms._prepare import (
    Task,
    check_task,
    encode_labels,
    example_rows,
    infer_task,
    target_of,
)
from modelyard.training.algorithms._sklearn import convergence_warnings, skops_trusted_types
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel, hp_table
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.training.data import Dataset

_MAX_SEED = 2**31 - 1


class TextClassifier(Algorithm):
    """Bag-of-words / tf-idf features of one text column, classified by a linear model or
    gradient-boosted trees."""

    name = "text-classifier"
    flavor = "sklearn"
    hyperparameters = hp_table(
        Hyperparameter("text_column", "str", None, help="the text column; the only one if unset"),
        Hyperparameter(
            "vectorizer", "choice", "tfidf", choices=("tfidf", "count"), help="word weighting"
        ),
        Hyperparameter("ngram_max", "int", 1, 1, 3, help="longest word n-gram"),
        Hyperparameter("max_features", "int", None, 1, 10_000_000, help="vocabulary size cap"),
        Hyperparameter("min_df", "int", 1, 1, 1_000_000, help="min documents holding a term"),
        Hyperparameter("lowercase", "bool", True, help="lowercase the text first"),
        Hyperparameter(
            "model", "choice", "linear", choices=("linear", "xgboost"), help="the classifier"
        ),
        Hyperparameter("C", "float", 1.0, 0, 1e6, low_open=True, help="linear: inverse regul."),
        Hyperparameter("max_iter", "int", 1000, 1, 1_000_000, help="linear: solver iterations"),
        Hyperparameter("num_round", "int", 100, 1, 10_000, help="xgboost: boosting rounds"),
        Hyperparameter("max_depth", "int", 6, 0, 64, help="xgboost: tree depth"),
        Hyperparameter("eta", "float", 0.3, 0, 1, help="xgboost: learning rate"),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed"),
        Hyperparameter("nthread", "int", 1, 1, 1024, help="xgboost: threads"),
    )

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        hp = self.validate(hp)
        column = _text_column(train, hp["text_column"])
        text = _texts(train, column, "train")
        target = target_of(train, self.name, "train")
        if infer_task(target) is Task.REGRESSION:
            raise InvalidInput(
                f"{self.name} needs class labels; the target {target.name!r} looks like a "
                "continuous number"
            )
        task = Task.BINARY if target.nunique() <= 2 else Task.MULTICLASS
        check_task(task, target, self.name)
        classes: tuple[Any, ...] = ()
        labels: Any = target
        if hp["model"] == "xgboost":
            labels, classes = encode_labels(target)
        channels = [("train", text, labels)]
        if validation is not None:
            valid_target = target_of(validation, self.name, "validation")
            valid_labels = (
                encode_labels(valid_target, classes, "validation")[0] if classes else valid_target
            )
            channels.append(("validation", _texts(validation, column, "validation"), valid_labels))

        features = ColumnTransformer([("text", self._vectorizer(hp), column)], sparse_threshold=1.0)
        pipeline = Pipeline([("features", features), ("model", self._model(hp))])
        with convergence_warnings() as caught:
            try:
                pipeline.fit(text, labels)
            except ValueError as exc:  # "empty vocabulary", min_df above the document count
                raise InvalidInput(f"{self.name} could not learn from {column!r}: {exc}") from exc
        metrics: dict[str, float] = {}
        for channel, x, y in channels:
            metrics.update(evaluate(pipeline, task, channel, x, y))
        if progress is not None:
            progress(1, 1, metrics)
        return TrainedModel(
            model=pipeline,
            flavor=self.flavor,
            metrics=metrics,
            input_example=example_rows(text),
            trusted_types=skops_trusted_types(pipeline),
            classes=classes,
            warnings=tuple(caught),
        )

    @staticmethod
    def _vectorizer(hp: Mapping[str, Any]) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        vectorizer_class = TfidfVectorizer if hp["vectorizer"] == "tfidf" else CountVectorizer
        return vectorizer_class(
            ngram_range=(1, hp["ngram_max"]),
            max_features=hp["max_features"],
            min_df=hp["min_df"],
            lowercase=hp["lowercase"],
        )

    @staticmethod
    def _model(hp: Mapping[str, Any]) -> Any:
        if hp["model"] == "linear":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=hp["C"], max_iter=hp["max_iter"], random_state=hp["seed"])
        try:
            from xgboost import XGBClassifier
        except ImportError as exc:
            raise MissingDependency(
                f"xgboost is not installed ({exc}): pip install xgboost"
            ) from exc
        return XGBClassifier(
            n_estimators=hp["num_round"],
            max_depth=hp["max_depth"],
            learning_rate=hp["eta"],
            random_state=hp["seed"],
            n_jobs=hp["nthread"],
            verbosity=0,
        )


def _text_column(data: Dataset, given: str | None) -> str:
    """The text column: ``given``, or the only feature column.

    Raises:
        InvalidInput: ``given`` is not a column, or there are several and none was named.
    """
    columns = [str(c) for c in data.features.columns]
    if given is not None:
        if given not in columns:
            raise InvalidInput(
                f"text_column {given!r} is not in the training data; its columns are: "
                f"{', '.join(columns)}"
            )
        return given
    if len(columns) != 1:
        raise InvalidInput(
            "text-classifier needs one text column, and the training data has "
            f"{len(columns)}: {', '.join(columns)}; name it with text_column=COLUMN"
        )
    return columns[0]


def _texts(data: Dataset, column: str, channel: str) -> pd.DataFrame:
    """The one-column table of texts (missing text as "") the pipeline takes.

    Raises:
        InvalidInput: the column is missing from this channel, or holds numbers, not text.
    """
    from pandas.api.types import is_numeric_dtype

    if column not in data.features.columns:
        raise InvalidInput(f"the {channel} data has no text column {column!r}")
    values = data.features[column]
    if is_numeric_dtype(values):
        raise InvalidInput(
            f"the {channel} column {column!r} holds numbers ({values.dtype}), not text"
        )
    return values.fillna("").astype(str).to_frame(name=column)
