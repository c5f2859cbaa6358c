"""Drift score names: a feature's score has its own namespace, so a feature called ``share`` or
``prediction`` cannot pass for (or overwrite) the dataset's share or the prediction's score."""

from __future__ import annotations

from modelyard.domain.drift import DriftReport, FeatureDrift, Verdict


def _feature(name: str, effect: float, verdict: Verdict = Verdict.NO_DRIFT) -> FeatureDrift:
    return FeatureDrift(name, "numeric", "ks", effect, 0.1, 0.5, 500, 500, verdict)


def test_features_named_like_fixed_scores_do_not_collide() -> None:
    report = DriftReport(
        endpoint="api",
        variant="blue",
        model="churn:1",
        window_start=None,
        window_end=None,
        baseline_rows=500,
        current_rows=500,
        features=(_feature("share", 0.9, Verdict.DRIFT), _feature("prediction", 0.8)),
        predictions=(_feature("prediction", 0.02),),
        quality=(),
        verdict=Verdict.DRIFT,
        drifted_share=0.5,
    )
    assert report.scores() == {
        "drift.share": 0.5,
        "drift.feature.share": 0.9,
        "drift.feature.prediction": 0.8,
        "drift.prediction": 0.02,
    }
