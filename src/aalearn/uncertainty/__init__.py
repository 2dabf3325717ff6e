r"""Predictive uncertainty and calibration for aalearn classifiers.

* :mod:`~aalearn.uncertainty.decomposition` — entropy decomposition of :math:`M` member
  predictions into total = aleatoric + epistemic (:func:`decompose`, :func:`entropy`).
* :mod:`~aalearn.uncertainty.predictors` — where the members come from:
  :class:`DeepEnsemble`, :class:`MCDropout`, :class:`LastLayerLaplace`, all with
  ``member_probs(x)`` → ``(M, N)`` and ``predict(x)`` → :class:`UncertaintyDecomposition`.
* :mod:`~aalearn.uncertainty.calibration` — ECE/RMSCE/MCE, Brier score, NLL, reliability
  curves and :class:`TemperatureScaling`.
* :mod:`~aalearn.uncertainty.plots` — reliability diagrams and uncertainty histograms
  (needs matplotlib, ``pip install "aalearn[report]"``).

Binary models (score :math:`p = P(\text{label}=1)`, shape ``(N,)``) are the main case;
the array functions also take multi-class probabilities ``(N, C)``.

Example:
    >>> import numpy as np
    >>> from aalearn.uncertainty import decompose, expected_calibration_error
    >>> members = np.array([[0.9, 0.2], [0.7, 0.3]])
    >>> d = decompose(members)
    >>> bool(np.allclose(d.total, d.aleatoric + d.epistemic))
    True
    >>> expected_calibration_error([1, 0], d.mean, n_bins=5) >= 0
    True
"""

from __future__ import annotations

from aalearn.uncertainty.calibration import (
    CALIBRATION_NORMS,
    CALIBRATION_STRATEGIES,
    ReliabilityCurve,
    TemperatureScaling,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)
from aalearn.uncertainty.decomposition import UncertaintyDecomposition, decompose, entropy
from aalearn.uncertainty.plots import plot_reliability, plot_uncertainty_histograms
from aalearn.uncertainty.predictors import (
    DEFAULT_PRIOR_PRECISION_GRID,
    DROPOUT_TYPES,
    DeepEnsemble,
    LastLayerLaplace,
    MCDropout,
    UncertaintyPredictor,
    add_dropout_before_output,
)

__all__ = [
    "CALIBRATION_NORMS",
    "CALIBRATION_STRATEGIES",
    "DEFAULT_PRIOR_PRECISION_GRID",
    "DROPOUT_TYPES",
    "DeepEnsemble",
    "LastLayerLaplace",
    "MCDropout",
    "ReliabilityCurve",
    "TemperatureScaling",
    "UncertaintyDecomposition",
    "UncertaintyPredictor",
    "add_dropout_before_output",
    "brier_score",
    "calibration_summary",
    "decompose",
    "entropy",
    "expected_calibration_error",
    "negative_log_likelihood",
    "plot_reliability",
    "plot_uncertainty_histograms",
    "reliability_curve",
]
