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
* :mod:`~aalearn.surrogates.representation` -- what a surrogate learns (``"jet"``:
  five jet observables, or the 87 ``"features"``);
* :mod:`~aalearn.surrogates.amplification`, :mod:`~aalearn.surrogates.closure` and
  :mod:`~aalearn.surrogates.study` -- statistical amplification, downstream closure and
  their combined :class:`SurrogateStudy` result;
* :mod:`~aalearn.surrogates.models` -- the generative models (zuko flow, flow matching);
  imported on first attribute access, as they need torch.

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

from aalearn.surrogates.amplification import (
    AmplificationResult,
    amplification_from_samples,
    amplification_study,
    bootstrap_indices,
    plot_amplification,
    train_ensemble,
)
from aalearn.surrogates.closure import ClosureResult, ClosureVariant, closure_test, plot_closure
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
from aalearn.surrogates.representation import JET_OBSERVABLES, jet_observables, representation_rows
from aalearn.surrogates.study import SurrogateStudy
from aalearn.surrogates.twosample import C2STResult, c2st
from aalearn.surrogates.validate import SurrogateValidation, validate_samples
from aalearn.surrogates.verdict import Check, Verdict, statistical_checks

# The generative models need torch (a few seconds to import): their subpackage and names
# are imported on first access, so that `import aalearn.surrogates` (and the CLI) stays fast.
_LAZY_SUBMODULES: tuple[str, ...] = ("models",)
_LAZY_NAMES: dict[str, str] = {
    "SURROGATE_FORMAT": "models",
    "SURROGATE_TRAIN_CONFIG": "models",
    "FlowMatchingSurrogate": "models",
    "FlowSurrogate": "models",
    "Surrogate": "models",
    "load_surrogate": "models",
    "make_surrogate": "models",
}

__all__ = [
    "FEATURE_KINDS",
    "JET_FEATURES",
    "JET_OBSERVABLES",
    "AmplificationResult",
    "C2STResult",
    "Check",
    "ClosureResult",
    "ClosureVariant",
    "MetricValue",
    "NullTest",
    "SurrogateStudy",
    "SurrogateValidation",
    "Verdict",
    "amplification_from_samples",
    "amplification_study",
    "bootstrap_indices",
    "c2st",
    "closure_test",
    "correlation_difference",
    "empirical_pvalue",
    "feature_matrix",
    "fpd",
    "jet_features",
    "jet_observables",
    "kpd",
    "marginal_distances",
    "mmd_poly_unbiased",
    "null_distribution",
    "plot_amplification",
    "plot_closure",
    "pvalue_to_sigma",
    "representation_rows",
    "statistical_checks",
    "tail_coverage",
    "train_ensemble",
    "validate_samples",
]


def __getattr__(name: str) -> Any:
    """Import the generative models (torch) lazily."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"aalearn.surrogates.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"aalearn.surrogates.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'aalearn.surrogates' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Eager and lazy public names."""
    return sorted([*__all__, *_LAZY_SUBMODULES, *_LAZY_NAMES])
