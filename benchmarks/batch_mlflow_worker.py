"""Runs in MLflow's virtualenv for ``batch_mlflow.py``: saves the benchmark's booster as an
MLflow XGBoost model whose signature declares its 30 features as float32 (the dtype XGBoost
predicts in), the way a user logs it with ``infer_signature`` on float32 data.

    benchmarks/.venvs/mlflow/bin/python benchmarks/batch_mlflow_worker.py MODEL.ubj OUT_DIR

Prints one JSON line: the saved model's folder and its signature.
"""

from __future__ import annotations

import json
import sys


def main(model_path: str, out_dir: str) -> None:
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    booster = xgb.Booster()
    booster.load_model(model_path)
    inputs = Schema([ColSpec(DataType.float, name) for name in booster.feature_names])
    outputs = Schema([ColSpec(DataType.float)])
    signature = ModelSignature(inputs=inputs, outputs=outputs)
    mlflow.xgboost.save_model(booster, out_dir, signature=signature, model_format="ubj")
    print(json.dumps({"model_dir": out_dir, "signature": signature.to_dict()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
