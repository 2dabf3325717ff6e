"""Is a generative fast simulation safe to use? Surrogate validation with null-calibrated metrics.

* :mod:`~aalearn.surrogates.metrics` -- FPD and KPD as jetnet (Kansal et al.,
  arXiv:2211.10295), per-feature W1/KS, correlation difference, tail coverage;
* :mod:`~aalearn.surrogates.null` -- reference-versus-reference nulls, p-values, σ;
* :mod:`~aalearn.surrogates.twosample` -- classifier two-sample test and the
  classifier-weight map of where the surrogate fails;
* :mod:`~aalearn.surrogates.features` -- jet-level features (physics observables, EFPs);
* :mod:`~aalearn.surrogates.verdict` -- :class:`Check`, :class:`Verdict` and the decision rule;
* :mod:`~aalearn.surrogates.validate` -- :func:`validate_samples`, the whole suite;
* :mod:`~aalearn.surrogates.plots` -- figures for the report;
* ``models``, ``amplification``, ``closure`` -- the generative models (zuko flow, flow
  matching), statistical amplification and downstream closure; imported lazily
  (torch, zuko) on first attribute access.

Example:
    >>> import numpy as np
    >>> from aalearn.surrogates import validate_samples
    >>> rng = np.random.default_rng(1)
    >>> result = validate_samples(rng.normal(size=(600, 2)), rng.normal(size=(300, 2)), features="all",
    ...                           n_null=10, c2st_classifier=None)
    >>> result.verdict.safe
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from aalearn.surrogates.features import FEATURE_KINDS, JET_FEATURES, feature_matrix, jet_features
from aalearn.surrogates.metrics import (
    MetricValue,
    correlation_difference,
    fpd,
    kpd,
    marginal_distances,
    mmd_poly_unbiased,
    tail_coverage,
)
from aalearn.surrogates.null import NullTest, empirical_pvalue, null_distribution, pvalue_to_sigma
from aalearn.surrogates.twosample import C2STResult, c2st
from aalearn.surrogates.validate import SurrogateValidation, validate_samples
from aalearn.surrogates.verdict import Check, Verdict, statistical_checks

# The generative-model half of the suite (another work package): submodules and the
# names they export, imported on first access so that `import aalearn.surrogates`
# needs neither torch nor zuko. LEAD: keep this map in sync with the __all__ lists of
# models.py, amplification.py, closure.py and workflow.py (name -> submodule).
_LAZY_SUBMODULES: tuple[str, ...] = ("models", "amplification", "closure", "workflow")
_LAZY_NAMES: dict[str, str] = {
    "SURROGATE_FORMAT": "models",
    "FlowMatchingSurrogate": "models",
    "FlowSurrogate": "models",
    "Surrogate": "models",
    "load_surrogate": "models",
    "make_surrogate": "models",
    "AmplificationResult": "amplification",
    "amplification_from_samples": "amplification",
    "amplification_study": "amplification",
    "bootstrap_indices": "amplification",
    "plot_amplification": "amplification",
    "train_ensemble": "amplification",
    "ClosureResult": "closure",
    "ClosureVariant": "closure",
    "closure_test": "closure",
    "plot_closure": "closure",
    "JET_OBSERVABLES": "workflow",
    "jet_observables": "workflow",
    "load_rows": "workflow",
    "surrogate_study": "workflow",
    "train_surrogate_file": "workflow",
}

__all__ = [
    "FEATURE_KINDS",
    "JET_FEATURES",
    "C2STResult",
    "Check",
    "MetricValue",
    "NullTest",
    "SurrogateValidation",
    "Verdict",
    "c2st",
    "correlation_difference",
    "empirical_pvalue",
    "feature_matrix",
    "fpd",
    "jet_features",
    "kpd",
    "marginal_distances",
    "mmd_poly_unbiased",
    "null_distribution",
    "pvalue_to_sigma",
    "statistical_checks",
    "tail_coverage",
    "validate_samples",
]


def __getattr__(name: str) -> Any:
    """Import the generative-model submodules and their names lazily."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"aalearn.surrogates.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"aalearn.surrogates.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'aalearn.surrogates' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Eager and lazy public names."""
    return sorted([*__all__, *_LAZY_SUBMODULES, *_LAZY_NAMES])
