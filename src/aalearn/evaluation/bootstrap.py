r"""Bootstrap confidence intervals of classifier metrics (AUC, accuracy, background rejection).

The nonparametric bootstrap (Efron, "Bootstrap methods: another look at the jackknife",
Ann. Statist. 7 (1979) 1; percentile intervals as in Efron & Tibshirani, *An Introduction
to the Bootstrap*, 1993): the jets are resampled with replacement ``n_boot`` times, the
metric is recomputed on each resample, and the interval is the
:math:`(\alpha/2, 1-\alpha/2)` percentile range of the replicas; the standard error is
their standard deviation. For the accuracy the standard error agrees with the binomial
:math:`\sqrt{p(1-p)/n}` and for the AUC with the Hanley–McNeil formula (tested).

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000); s = np.clip(y * 0.3 + rng.uniform(0, 0.7, 2000), 0, 1)
    >>> ci = bootstrap_metrics(y, s, n_boot=50, seed=0)["auc"]
    >>> ci.low < ci.value < ci.high
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score, roc_curve

from aalearn.core.validation import check_array
from aalearn.data.dataset import LABEL_TOP
from aalearn.evaluation.metrics import background_rejection

__all__ = ["Interval", "bootstrap_metric", "bootstrap_metrics"]

FloatArray = npt.NDArray[np.float64]
Metric = Callable[[npt.NDArray[np.int64], FloatArray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval.

    Attributes:
        value: The metric on the full sample.
        low: Lower end of the percentile interval.
        high: Upper end.
        std: Bootstrap standard error.
        level: Confidence level of the interval.
        n: Number of jets.
        n_boot: Number of bootstrap replicas that gave a finite value.
    """

    value: float
    low: float
    high: float
    std: float
    level: float
    n: int
    n_boot: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields."""
        return asdict(self)


def bootstrap_metric(
    metric: Metric,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    n_boot: int = 200,
    level: float = 0.68,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``metric(labels, scores)``.

    Args:
        metric: Function of ``(labels, scores)``; replicas where it is not finite (for
            example an AUC of a one-class resample) are dropped.
        labels: Labels ``(N,)``.
        scores: Scores ``(N,)``.
        n_boot: Number of resamples (≥ 10).
        level: Confidence level in (0, 1); 0.68 gives a ±1σ-like interval.
        seed: Seed of the resampling.

    Returns:
        The :class:`Interval`.

    Raises:
        ValueError: For mismatched shapes, fewer than 2 jets, ``n_boot < 10`` or a bad level.
    """
    y = np.asarray(labels).astype(np.int64)
    s = check_array(scores, name="scores", ndim=1, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must have the same shape")
    if len(y) < 2:
        raise ValueError(f"the bootstrap needs at least 2 jets, got {len(y)}")
    if int(n_boot) < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    value = float(metric(y, s))
    reps = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, len(y), len(y))
        v = float(metric(y[idx], s[idx]))
        if np.isfinite(v):
            reps.append(v)
    if not reps:
        return Interval(value, float("nan"), float("nan"), float("nan"), level, len(y), 0)
    arr = np.asarray(reps)
    lo, hi = np.quantile(arr, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(lo), float(hi), float(arr.std(ddof=1)), level, len(y), len(arr))


def _accuracy(y: npt.NDArray[np.int64], s: FloatArray) -> float:
    return float(np.mean((s > 0.5).astype(np.int64) == y))


def _auc(signal_label: int) -> Metric:
    def auc(y: npt.NDArray[np.int64], s: FloatArray) -> float:
        if np.unique(y).size < 2:
            return float("nan")
        # the signal class is the positive class; scores are P(label = 1)
        pos = (y == signal_label).astype(np.int64)
        return float(roc_auc_score(pos, s if signal_label == 1 else 1.0 - s))

    return auc


def _rejection(signal_label: int, efficiency: float) -> Metric:
    def rejection(y: npt.NDArray[np.int64], s: FloatArray) -> float:
        if np.unique(y).size < 2:
            return float("nan")
        pos = (y == signal_label).astype(np.int64)
        fpr, tpr, _ = roc_curve(pos, s if signal_label == 1 else 1.0 - s)
        return float(background_rejection(fpr, tpr, efficiency))

    return rejection


def bootstrap_metrics(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    signal_label: int = LABEL_TOP,
    signal_efficiencies: Sequence[float] = (0.3, 0.5),
    n_boot: int = 200,
    level: float = 0.68,
    seed: int = 0,
) -> Mapping[str, Interval]:
    r"""AUC, accuracy and background rejection :math:`1/\varepsilon_B` at given signal efficiencies.

    The scores are :math:`P(\text{label}=1)` (aalearn's convention); the signal class
    (``signal_label``, top = 0 by default) is the positive class of the ROC curve, as in
    :func:`aalearn.evaluation.evaluate_scores`.

    Returns:
        ``{"auc": ..., "accuracy": ..., "rejection_at_30": ..., ...}`` of :class:`Interval`.
    """
    out: dict[str, Interval] = {
        "auc": bootstrap_metric(_auc(signal_label), labels, scores, n_boot=n_boot, level=level, seed=seed),
        "accuracy": bootstrap_metric(_accuracy, labels, scores, n_boot=n_boot, level=level, seed=seed),
    }
    for eff in signal_efficiencies:
        out[f"rejection_at_{round(100 * eff)}"] = bootstrap_metric(
            _rejection(signal_label, eff), labels, scores, n_boot=n_boot, level=level, seed=seed
        )
    return out
