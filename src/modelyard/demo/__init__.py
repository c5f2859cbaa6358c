"""``modelyard demo``: the platform end to end on a real model, in seconds, offline.

Trains two XGBoost classifiers on scikit-learn's bundled breast-cancer data set, registers
both, points the ``production`` alias at the first and then moves it to the better second,
loads ``breast-cancer@production`` back through the registry and checks that it predicts
exactly what the model in memory predicts (:func:`run_demo`). Then it deploys both on the
endpoint ``breast-cancer`` (blue: the previous production version, green: the new one,
90/10), starts the real server in this process, sends validation rows over HTTP and shows
which variant answered how often and how fast (:func:`run_full_demo`). Re-running adds two
more versions and updates the endpoint.
"""

from modelyard.demo.registry_story import DemoResult, run_demo
from modelyard.demo.serving_story import Traffic, deploy, run_full_demo

__all__ = ["DemoResult", "Traffic", "deploy", "run_demo", "run_full_demo"]
