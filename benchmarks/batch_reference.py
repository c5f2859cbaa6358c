"""The reference for ``batch.py``: what a competent user scripts to score a CSV with XGBoost.

    python batch_reference.py MODEL.ubj INPUT.csv OUTPUT.csv

Reads the whole headerless CSV with pandas (named by the booster's features, as the booster
checks them), predicts with ``Booster.inplace_predict`` (every core), writes one prediction a
line with ``to_csv``. Prints one JSON line: rows, the time of each step, and this process's
peak resident set (``VmHWM``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(model_path: str, input_path: str, output_path: str) -> None:
    started = time.perf_counter()
    import pandas as pd
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(model_path)
    loaded = time.perf_counter()
    frame = pd.read_csv(input_path, header=None, names=booster.feature_names)
    read = time.perf_counter()
    predictions = booster.inplace_predict(frame)
    predicted = time.perf_counter()
    pd.Series(predictions).to_csv(output_path, header=False, index=False)
    written = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": len(frame),
                "import_and_load_s": loaded - started,
                "read_s": read - loaded,
                "predict_s": predicted - read,
                "write_s": written - predicted,
                "in_script_s": written - started,
                "vmhwm_mib": _peak_mib(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
