"""Training: one loop for binary logit classifiers with early stopping and pluggable per-batch losses.

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN
    >>> from aalearn.training import train_classifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 100)
    >>> X = rng.normal(size=(100, 2)) + y[:, None]
    >>> hist = train_classifier(TopoDNN(2, (4,)), X[:80], y[:80], X[80:], y[80:], epochs=2, progress=False)
    >>> len(hist.val_loss)
    2
"""

from __future__ import annotations

import aalearn.training.inferno  # registers the "inferno" and "neos" strategies
import aalearn.training.inferno_templates  # noqa: F401  (registers the "inferno-templates" strategy)
from aalearn.training.configs import DETECTOR_CONFIG, ENSEMBLE_CONFIG, NUISANCE_CONFIG, TAGGER_CONFIG
from aalearn.training.detector import (
    AdversarialDetector,
    DetectionResult,
    Detector,
    cross_run_test,
    detection_metrics,
    fooled_mask,
    threshold_at_fpr,
)
from aalearn.training.ensemble import train_ensemble, train_topodnn_ensemble
from aalearn.training.strategies import AdversarialTraining, RDSAAugmentation, gradient_attack_names
from aalearn.training.strategy import (
    STRATEGIES,
    Batch,
    NominalStrategy,
    Strategy,
    TrainingData,
    get_strategy,
    register_strategy,
)
from aalearn.training.trainer import (
    CHECKPOINT_FILE,
    FINAL_MODEL_FILE,
    BatchLoss,
    TrainingHistory,
    bce_batch_loss,
    l1_penalty,
    train_classifier,
)

__all__ = [
    "CHECKPOINT_FILE",
    "DETECTOR_CONFIG",
    "ENSEMBLE_CONFIG",
    "FINAL_MODEL_FILE",
    "NUISANCE_CONFIG",
    "STRATEGIES",
    "TAGGER_CONFIG",
    "AdversarialDetector",
    "AdversarialTraining",
    "Batch",
    "BatchLoss",
    "DetectionResult",
    "Detector",
    "NominalStrategy",
    "RDSAAugmentation",
    "Strategy",
    "TrainingData",
    "TrainingHistory",
    "bce_batch_loss",
    "cross_run_test",
    "detection_metrics",
    "fooled_mask",
    "get_strategy",
    "gradient_attack_names",
    "l1_penalty",
    "register_strategy",
    "threshold_at_fpr",
    "train_classifier",
    "train_ensemble",
    "train_topodnn_ensemble",
]
