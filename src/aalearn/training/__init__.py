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

from aalearn.training.trainer import (
    BatchLoss,
    TrainingHistory,
    bce_batch_loss,
    l1_penalty,
    train_classifier,
)

__all__ = ["BatchLoss", "TrainingHistory", "bce_batch_loss", "l1_penalty", "train_classifier"]
