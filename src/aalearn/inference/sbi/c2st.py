"""Classifier two-sample test (C2ST) with sbibm's protocol, computed by sbi's ``c2st``.

The accuracy of a classifier trained to tell two samples apart, estimated by 5-fold
cross-validation: 0.5 when they come from the same distribution, 1 when they do not
overlap (Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017,
arXiv:1610.06545). The settings are those of sbibm's ``sbibm.metrics.c2st`` (Lueckmann
et al., "Benchmarking Simulation-Based Inference", AISTATS 2021, arXiv:2101.04653), which
the published numbers used: scikit-learn ``MLPClassifier`` with two ReLU hidden layers of
``10 * dim`` units, Adam, ``max_iter = 10000``, no early stopping; both samples z-scored
with the mean and standard deviation of the first (the reference); ``KFold(5,
shuffle=True, random_state=seed)``; mean accuracy over the folds. The computation itself
is sbi's ``sbi.utils.metrics.c2st`` with ``classifier="mlp"`` and these classifier
arguments (sbi's default ``"mlp"`` settings use early stopping and ``max_iter=1000``, so
they are overridden).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    >>> 0.4 < c2st(a, b) < 0.6
    True
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.validation import check_array

__all__ = ["c2st", "sbibm_classifier_kwargs"]


def sbibm_classifier_kwargs(dim: int) -> dict[str, Any]:
    """The ``MLPClassifier`` arguments of sbibm's C2ST for ``dim``-dimensional samples.

    Example:
        >>> sbibm_classifier_kwargs(2)["hidden_layer_sizes"]
        (20, 20)
    """
    return {
        "activation": "relu",
        "hidden_layer_sizes": (10 * dim, 10 * dim),
        "max_iter": 10000,
        "solver": "adam",
    }


def c2st(
    reference: npt.ArrayLike,
    samples: npt.ArrayLike,
    *,
    seed: int = 1,
    n_folds: int = 5,
    blas_threads: int | None = 1,
) -> float:
    """C2ST accuracy between ``reference`` and ``samples`` (sbibm protocol, sbi's implementation).

    Args:
        reference: ``(n, D)`` samples of the reference distribution (also used for the
            z-scoring, as in sbibm).
        samples: ``(m, D)`` samples to compare.
        seed: Seed of the classifier and of the fold split (sbibm uses 1).
        n_folds: Cross-validation folds.
        blas_threads: BLAS threads for the classifier (threadpoolctl; ``None``: unchanged).
            The MLP is small, so one thread is usually fastest and avoids oversubscription.

    Returns:
        Mean cross-validated accuracy (0.5: indistinguishable, 1: separated).

    Raises:
        ValueError: For mismatched dimensions, non-finite values, or fewer than
            ``n_folds`` rows.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> c2st(rng.normal(size=(300, 1)), rng.normal(5.0, 1.0, size=(300, 1))) > 0.95
        True
    """
    import torch

    a = check_array(reference, name="reference", ndim=2, dtype=np.float64)
    b = check_array(samples, name="samples", ndim=2, dtype=np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"reference has {a.shape[1]} columns but samples have {b.shape[1]}; they must match")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if min(a.shape[0], b.shape[0]) < n_folds:
        raise ValueError(f"need at least {n_folds} rows in each sample, got {a.shape[0]} and {b.shape[0]}")
    metrics = require("sbi.utils.metrics", purpose="the classifier two-sample test (sbi's c2st)")
    limits: Any = contextlib.nullcontext()
    if blas_threads is not None:
        limits = require("threadpoolctl", purpose="limiting BLAS threads").threadpool_limits(
            int(blas_threads)
        )
    with limits:
        value = metrics.c2st(
            torch.as_tensor(a, dtype=torch.float32),
            torch.as_tensor(b, dtype=torch.float32),
            seed=int(seed),
            n_folds=int(n_folds),
            classifier="mlp",
            classifier_kwargs=sbibm_classifier_kwargs(a.shape[1]),
            z_score=True,
        )
    return float(value)
