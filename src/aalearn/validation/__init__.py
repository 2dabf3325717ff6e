"""Validate an alternative sample (for example adversarial jets) against the nominal one.

* :func:`validate_samples` -- per-feature KS, χ² and Jensen-Shannon checks of the
  marginal distributions and a check of the Pearson correlation matrix, with
  multiple-testing corrections, returning a :class:`ValidationReport`;
* :func:`plot_overlays` and :func:`plot_correlation_change` -- the matching figures
  (matplotlib, imported only when a figure is drawn).

See :mod:`aalearn.validation.checks` for the definitions and caveats.
"""

from __future__ import annotations

from aalearn.validation.checks import (
    CORRECTIONS,
    KNOWN_CHECKS,
    CorrelationCheck,
    FeatureCheck,
    ValidationConfig,
    ValidationReport,
    adjust_pvalues,
    chi2_unequal_totals,
    correlation_matrix,
    histogram_jsd,
    validate_samples,
)
from aalearn.validation.plots import plot_correlation_change, plot_overlays

__all__ = [
    "CORRECTIONS",
    "KNOWN_CHECKS",
    "CorrelationCheck",
    "FeatureCheck",
    "ValidationConfig",
    "ValidationReport",
    "adjust_pvalues",
    "chi2_unequal_totals",
    "correlation_matrix",
    "histogram_jsd",
    "plot_correlation_change",
    "plot_overlays",
    "validate_samples",
]
