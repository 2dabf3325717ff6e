"""Self-contained HTML reports: the page builder, standard plots and a render check.

* :class:`Report` -- sections of text, tables and matplotlib figures written as one
  HTML file with embedded PNGs (no network access needed to view it);
* :mod:`aalearn.report.plots` -- jet mass, multiplicity, feature grid, training curves,
  ROC (background rejection versus signal efficiency) and score distributions;
* :func:`render_check` -- opens the page in headless Chromium and counts the images
  that decoded, optionally taking a screenshot.

matplotlib (the ``report`` extra) is imported only when a figure is drawn.

Example:
    >>> import numpy as np
    >>> from aalearn.report import Report, plot_scores
    >>> report = Report("Tagger check")
    >>> report.add_section("Scores", figures=[plot_scores(np.array([0, 1]), np.array([0.8, 0.3]))])
    >>> "data:image/png;base64," in report.to_html()
    True
"""

from __future__ import annotations

from aalearn.report.html import Report, format_value, render_figure
from aalearn.report.plots import (
    DEFAULT_GRID_FEATURES,
    dataset_summary_table,
    plot_feature_grid,
    plot_jet_mass,
    plot_multiplicity,
    plot_roc,
    plot_scores,
    plot_training_curves,
)
from aalearn.report.render import RenderResult, find_chromium, render_check
from aalearn.report.run import RunPaths, write_run

__all__ = [
    "DEFAULT_GRID_FEATURES",
    "RenderResult",
    "Report",
    "RunPaths",
    "dataset_summary_table",
    "find_chromium",
    "format_value",
    "plot_feature_grid",
    "plot_jet_mass",
    "plot_multiplicity",
    "plot_roc",
    "plot_scores",
    "plot_training_curves",
    "render_check",
    "render_figure",
    "write_run",
]
