"""One seeded factory for the taggers every training entry point builds.

The training workflow, the deep-ensemble trainer, the adversarial-sample detector and
the nuisance study all build a registered architecture (:data:`aalearn.models.ARCHITECTURES`)
the same way: the torch RNG seeded with the run's seed right before construction (so the
initial weights depend on the seed only, and the caller's global RNG state is left
untouched), PyTorch's BatchNorm momentum 0.1 for the TopoDNN, and optionally the fixed
input standardisation fitted on the training features. :func:`build_tagger` is that recipe.

Example:
    >>> import numpy as np
    >>> a = build_tagger("topodnn", 3, seed=1, hidden=(4,))
    >>> b = build_tagger("topodnn", 3, seed=1, hidden=(4,))
    >>> bool((a.output.weight == b.output.weight).all()), a.batchnorm_momentum
    (True, 0.1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt
import torch
from torch import nn

import aalearn.models.robust  # noqa: F401 - registers the "robust" architecture
from aalearn.core.seeding import seeded
from aalearn.models.checkpoint import ARCHITECTURES

__all__ = ["ARCHITECTURE_DEFAULTS", "build_tagger"]

#: Constructor defaults per architecture, applied before the caller's keywords. The
#: TopoDNN uses PyTorch's BatchNorm momentum (0.1): the Keras model's 0.99 (momentum 0.01
#: here) needs far more steps than a few thousand jets give for the running statistics
#: to converge.
ARCHITECTURE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"topodnn": {"batchnorm_momentum": 0.1}}


def build_tagger(
    architecture: str,
    n_features: int,
    seed: int,
    *,
    fit_x: npt.ArrayLike | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered architecture with the torch RNG seeded by ``seed``.

    Args:
        architecture: Registered architecture name (``"topodnn"``, ``"robust"``, ...).
        n_features: Number of input features.
        seed: Seed of the initial weights (the global torch RNG is forked and restored).
        fit_x: Training features to fit the input standardisation on
            (``model.fit_input_scaling(fit_x)``); ``None`` leaves it unfitted.
        device: Device to move the model to (default: where it was built, the CPU).
        **kwargs: Further constructor arguments; they override
            :data:`ARCHITECTURE_DEFAULTS`.

    Returns:
        The new model (in train mode).

    Raises:
        ValueError: For an unknown architecture.

    Example:
        >>> import numpy as np
        >>> m = build_tagger("topodnn", 2, seed=0, hidden=(3,), fit_x=np.ones((4, 2)))
        >>> m.input_mean.tolist()
        [1.0, 1.0]
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    defaults = ARCHITECTURE_DEFAULTS.get(architecture, {})
    options: dict[str, Any] = {"n_features": n_features, **defaults, **kwargs}
    with seeded(seed):
        model = ARCHITECTURES[architecture](**options)
    if fit_x is not None:
        model.fit_input_scaling(fit_x)  # type: ignore[operator]
    if device is not None:
        model.to(device)
    return model
