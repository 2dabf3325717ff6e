"""Models: the TopoDNN reference tagger, its Keras-weights loader, checkpoints and inference.

Binary classifiers in aalearn return **logits** of :math:`P(\\text{label}=1)` with shape
``(N,)``; :func:`predict_proba` turns features into probabilities. With the challenge's
labels (:data:`aalearn.data.LABEL_TOP` = 0) that is the probability of the W class.

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN, predict_proba
    >>> model = TopoDNN()
    >>> predict_proba(model, np.zeros((2, 87), dtype=np.float32)).shape
    (2,)
"""

from __future__ import annotations

from aalearn.models.checkpoint import (
    ARCHITECTURES,
    SHIPPED_MODELS,
    architecture_name,
    load_checkpoint,
    load_model,
    register_architecture,
    save_checkpoint,
)
from aalearn.models.factory import ARCHITECTURE_DEFAULTS, build_tagger
from aalearn.models.keras import load_keras_topodnn
from aalearn.models.predict import model_n_features, predict_logits, predict_proba
from aalearn.models.robust import FEATURE_KINDS, RobustJetTagger
from aalearn.models.topodnn import DEFAULT_HIDDEN, TopoDNN

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_DEFAULTS",
    "DEFAULT_HIDDEN",
    "FEATURE_KINDS",
    "SHIPPED_MODELS",
    "RobustJetTagger",
    "TopoDNN",
    "architecture_name",
    "build_tagger",
    "load_checkpoint",
    "load_keras_topodnn",
    "load_model",
    "model_n_features",
    "predict_logits",
    "predict_proba",
    "register_architecture",
    "save_checkpoint",
]
