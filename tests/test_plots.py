"""Figures for the notebooks: the right panels, bars and bins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.modeling.data import TIME
from helpers.reports import plots


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({TIME: pd.date_range("2011-01-01", periods=n, freq="h"),
                         "temp": rng.random(n), "weathersit": rng.choice(["clear", "rain", "mist"], n),
                         "bikers": rng.integers(0, 500, n)})


def test_distributions_use_histograms_for_numbers_and_bars_for_levels() -> None:
    fig = plots.feature_distributions(_frame(), ["temp", "weathersit"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["temp", "weathersit"]
    assert len(visible[0].patches) == 30  # histogram bins
    assert sorted(t.get_text() for t in visible[1].get_xticklabels()) == ["clear", "mist", "rain"]
    assert len(plots.target_distribution(_frame(), "bikers").axes[0].patches) == 40


def test_correlation_heatmap_writes_every_value() -> None:
    corr = _frame()[["temp", "bikers"]].corr()
    texts = [t.get_text() for t in plots.correlation_heatmap(corr).axes[0].texts]
    assert texts == [f"{v:.2f}" for v in corr.to_numpy().ravel()]


def test_residual_panels_and_importance_order() -> None:
    frame = _frame()
    predictions = pd.DataFrame({TIME: frame[TIME], "actual": frame["bikers"], "predicted": frame["bikers"] * 0.9})
    predictions["residual"] = predictions["actual"] - predictions["predicted"]
    assert len(plots.residuals(predictions).axes) == 3
    importance = pd.Series({"hr": 0.5, "temp": 0.1, "hum": 0.3})
    labels = [t.get_text() for t in plots.feature_importance(importance).axes[0].get_yticklabels()]
    assert labels == ["temp", "hum", "hr"]  # largest on top


def test_inline_display_is_only_set_up_inside_a_kernel() -> None:
    assert plots.show_figures_inline() is False
    png = plots._figure_png(plots.target_distribution(_frame(), "bikers"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
