"""Evaluation: accuracy, ROC AUC and background rejection of binary jet taggers.

Example:
    >>> from aalearn.evaluation import evaluate_scores
    >>> evaluate_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]).auc
    1.0
"""

from __future__ import annotations

from aalearn.evaluation.metrics import (
    DEFAULT_SIGNAL_EFFICIENCIES,
    MAX_ROC_POINTS,
    EvaluationResult,
    background_rejection,
    evaluate_model,
    evaluate_scores,
)

__all__ = [
    "DEFAULT_SIGNAL_EFFICIENCIES",
    "MAX_ROC_POINTS",
    "EvaluationResult",
    "background_rejection",
    "evaluate_model",
    "evaluate_scores",
]
