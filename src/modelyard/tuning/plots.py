"""Plots of a tuning study: optimisation history and hyperparameter importance, as PNG (for a
README or a report) and interactive HTML (Plotly, with its script beside the pages)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import MissingDependency, StorageNotWritable

if TYPE_CHECKING:
    import optuna


def write_plots(study: optuna.Study, folder: Path, objective: str) -> list[Path]:
    """Write ``optimization_history.{png,html}`` and, when at least two trials completed,
    ``param_importances.{png,html}`` into ``folder``. Returns the files written.

    Raises:
        MissingDependency: matplotlib or plotly is not installed.
        StorageNotWritable: the folder cannot be written.
    """
    import optuna

    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
        import plotly  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(f"plots need matplotlib and plotly ({exc})") from exc
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageNotWritable(f"cannot write plots to {folder}: {exc.strerror}") from None
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    written: list[Path] = []
    vis = optuna.visualization
    with warnings.catch_warnings():
        # optuna.visualization.matplotlib is marked experimental; the plots are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plots: list[tuple[str, Any, Any]] = [
            (
                "optimization_history",
                vis.plot_optimization_history,
                vis.matplotlib.plot_optimization_history,
            )
        ]
        if len(complete) >= 2 and len(complete[0].params) >= 1:
            plots.append(
                (
                    "param_importances",
                    vis.plot_param_importances,
                    vis.matplotlib.plot_param_importances,
                )
            )
        for stem, interactive, static in plots:
            html, png = folder / f"{stem}.html", folder / f"{stem}.png"
            figure = interactive(study, target_name=objective)
            axes = static(study, target_name=objective)
            fig = axes.figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            try:
                # One plotly.min.js beside the pages instead of 4.7 MB inside each; works offline.
                figure.write_html(str(html), include_plotlyjs="directory")
                fig.savefig(png, dpi=110)
            except OSError as exc:
                why = exc.strerror
                raise StorageNotWritable(f"cannot write plots to {folder}: {why}") from None
            finally:
                plt.close(fig)
            written += [png, html]
    script = folder / "plotly.min.js"
    if script.is_file():
        written.append(script)
    return written
