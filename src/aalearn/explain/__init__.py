"""Interpretability: which physics a tagger uses and which features the attacks exploit.

* :mod:`~aalearn.explain.attributions` -- captum attributions (Integrated Gradients,
  gradient-SHAP, DeepLIFT, saliency) of the logit, importance in σ units, grouping;
* :mod:`~aalearn.explain.observables` -- correlation and mutual information of the output
  with jet observables, per class and at fixed ΣpT;
* :mod:`~aalearn.explain.sanity` -- completeness, the model-randomisation test of Adebayo
  et al. (arXiv:1810.03292) and stability under 0.1σ perturbations;
* :mod:`~aalearn.explain.attack` -- mean |δ|/σ of adversarial jets and the overlap of the
  most-attacked with the most-attributed features;
* :func:`explain_model` -- all of it in one call, returning an :class:`ExplanationResult`.

Example:
    >>> import numpy as np, torch
    >>> res = explain_model(torch.nn.Linear(3, 1), np.ones((10, 3)), steps=8, n_sanity=5)
    >>> [r["feature"] for r in res.to_dict()["feature_importance"]][:1][0].startswith("f")
    True
"""

from __future__ import annotations

from aalearn.explain.attack import AttackExplanation, explain_attack
from aalearn.explain.attributions import METHODS, Attributions, attribute, sigma_importance
from aalearn.explain.explainer import explain_model
from aalearn.explain.observables import jet_observables, observable_correlations
from aalearn.explain.result import ExplanationResult
from aalearn.explain.sanity import SanityReport, completeness_error, randomization_test, stability

__all__ = [
    "METHODS",
    "AttackExplanation",
    "Attributions",
    "ExplanationResult",
    "SanityReport",
    "attribute",
    "completeness_error",
    "explain_attack",
    "explain_model",
    "jet_observables",
    "observable_correlations",
    "randomization_test",
    "sigma_importance",
    "stability",
]
