r"""Calibration metrics, reliability curves and temperature scaling for classifiers.

A classifier is *calibrated* when its predicted probabilities match observed
frequencies: among jets given :math:`P(\text{label}=1) = 0.8`, 80 % carry label 1.
Binary models (score :math:`p = P(\text{label}=1)`, shape ``(N,)``) are aalearn's main
case; multi-class probabilities ``(N, C)`` are supported everywhere.

Metrics (:math:`n` jets, bins :math:`B_b` of the confidence, :math:`w_b = |B_b|/n`):

.. math::

    \mathrm{ECE} = \sum_b w_b\,\lvert \mathrm{acc}(B_b) - \mathrm{conf}(B_b) \rvert, \quad
    \mathrm{RMSCE} = \Bigl(\sum_b w_b\,(\mathrm{acc}(B_b) - \mathrm{conf}(B_b))^2\Bigr)^{1/2}, \quad
    \mathrm{MCE} = \max_b \lvert \mathrm{acc}(B_b) - \mathrm{conf}(B_b) \rvert,

.. math::

    \mathrm{Brier} = \frac{1}{n}\sum_i \sum_k (p_{ik} - y_{ik})^2, \qquad
    \mathrm{NLL} = -\frac{1}{n}\sum_i \ln p_i(y_i).

The ECE family uses the **top label**: the confidence is the largest class probability
(:math:`\max(p, 1-p)` for a binary score) and a prediction is correct when that class is
the label. Physicists usually calibrate the score itself (the likelihood-ratio trick
uses :math:`p/(1-p)`, arXiv:1506.02169); :func:`reliability_curve` therefore also returns,
for binary scores, the mean score against the observed fraction of label 1 per bin.

Binning is explicit: ``n_bins`` bins of equal width on :math:`[0, 1]` (``"uniform"``, as
in Guo et al.; for binary scores the top-label confidence lies in :math:`[0.5, 1]`, so
only the upper half of the bins is populated) or of equal population (``"quantile"``,
the "adaptive" ECE). Bins are closed on the right, :math:`(e_b, e_{b+1}]`, the first
also on the left.

References:
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural
    Networks", ICML 2017, arXiv:1706.04599 (ECE, temperature scaling).

    M. P. Naeini, G. F. Cooper, M. Hauskrecht, "Obtaining Well Calibrated Probabilities
    Using Bayesian Binning", AAAI 2015 (ECE and MCE).

    G. W. Brier, "Verification of forecasts expressed in terms of probability",
    Monthly Weather Review 78 (1950).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=20_000)
    >>> y = (rng.uniform(size=p.size) < p).astype(int)  # calibrated by construction
    >>> expected_calibration_error(y, p) < 0.02
    True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from scipy.special import expit, logsumexp, softmax

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.validation import check_labels
from aalearn.uncertainty.decomposition import _as_probs, _check_simplex

__all__ = [
    "CALIBRATION_NORMS",
    "CALIBRATION_STRATEGIES",
    "ReliabilityCurve",
    "TemperatureScaling",
    "brier_score",
    "calibration_summary",
    "expected_calibration_error",
    "negative_log_likelihood",
    "reliability_curve",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Norms of :func:`expected_calibration_error`: ECE, RMS calibration error, MCE.
CALIBRATION_NORMS: tuple[str, ...] = ("l1", "l2", "max")
#: Binning strategies: equal width on [0, 1] or equal population.
CALIBRATION_STRATEGIES: tuple[str, ...] = ("uniform", "quantile")


# --------------------------------------------------------------------------- validation
def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an integer, got {n_bins!r}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be ≥ 1, got {n_bins}")
    return int(n_bins)


def _check_choice(value: Any, *, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
    return value


def _multiclass_labels(labels: Any, *, n: int, n_classes: int) -> IntArray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional class indices, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"labels has {arr.shape[0]} entries but probs has {n} rows")
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"labels must be integer class indices, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError("labels contains NaN/inf")
        if not np.all(arr == np.round(arr)):
            raise ValueError("labels must be integer class indices, found non-integer values")
    out = arr.astype(np.int64)
    if out.min() < 0 or out.max() >= n_classes:
        raise ValueError(
            f"labels must be class indices in 0..{n_classes - 1} for {n_classes} probability columns, "
            f"found values in [{out.min()}, {out.max()}]"
        )
    return out


def _check_labels_probs(labels: Any, probs: Any) -> tuple[IntArray, FloatArray]:
    """Validated ``(labels, probs)``: binary ``(N,)`` scores or multi-class ``(N, C)`` rows."""
    p = _as_probs(probs, name="probs")
    if p.ndim == 1:
        y = check_labels(labels, name="labels", n=p.shape[0])
    elif p.ndim == 2:
        _check_simplex(p, name="probs")
        y = _multiclass_labels(labels, n=p.shape[0], n_classes=p.shape[1])
    else:
        raise ValueError(
            f"probs must have shape (N,) (binary scores P(label=1)) or (N, C) (multi-class), got {p.shape}"
        )
    return y, p


def _top_label(labels: IntArray, probs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Top-label confidence and correctness (as 0/1 floats)."""
    if probs.ndim == 1:
        pred = (probs >= 0.5).astype(np.int64)
        conf = np.where(pred == 1, probs, 1.0 - probs)
    else:
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(probs.shape[0]), pred]
    return conf, (pred == labels).astype(np.float64)


def _edges(values: FloatArray, n_bins: int, strategy: str) -> FloatArray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:  # all values equal: one bin
        edges = np.array([edges[0], edges[0]])
    return np.asarray(edges, dtype=np.float64)


def _binned(
    values: FloatArray, target: FloatArray, edges: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Counts, mean value and mean target per bin ``(e_b, e_{b+1}]`` (NaN where empty)."""
    n_bins = edges.size - 1
    idx = np.searchsorted(edges[1:-1], values, side="left")
    counts = np.bincount(idx, minlength=n_bins).astype(np.int64)
    sum_v = np.bincount(idx, weights=values, minlength=n_bins)
    sum_t = np.bincount(idx, weights=target, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_v = np.where(counts > 0, sum_v / counts, np.nan)
        mean_t = np.where(counts > 0, sum_t / counts, np.nan)
    return counts, mean_v, mean_t


# --------------------------------------------------------------------------- metrics
def expected_calibration_error(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    strategy: str = "uniform",
) -> float:
    r"""Top-label expected calibration error (ECE), its RMS version or the maximum (MCE).

    With the top-label confidence :math:`c_i` (:math:`\max(p_i, 1-p_i)` for a binary
    score, :math:`\max_k p_{ik}` for multi-class), correctness :math:`a_i` (predicted
    class = label; binary threshold :math:`p \ge 0.5`), bins :math:`B_b` of :math:`c` and
    :math:`w_b = |B_b|/n`:

    .. math::

        \text{l1: } \sum_b w_b\,|\bar a_b - \bar c_b|, \qquad
        \text{l2: } \Bigl(\sum_b w_b\,(\bar a_b - \bar c_b)^2\Bigr)^{1/2}, \qquad
        \text{max: } \max_{b:\,|B_b|>0} |\bar a_b - \bar c_b| .

    Empty bins contribute nothing. Binned estimators are biased upwards for small
    samples (a perfectly calibrated model of :math:`n` jets has an ECE of order
    :math:`\sqrt{n_\text{bins}/n}`), so compare models on the same jets and binning.

    Args:
        labels: Labels ``(N,)``: 0/1 for binary scores, class indices for multi-class.
        probs: Binary scores :math:`P(\text{label}=1)` ``(N,)`` or probabilities ``(N, C)``.
        n_bins: Number of bins (≥ 1); ``"quantile"`` may merge bins with equal edges.
        norm: ``"l1"`` (ECE), ``"l2"`` (RMS calibration error) or ``"max"`` (MCE).
        strategy: ``"uniform"`` (equal width on [0, 1]) or ``"quantile"`` (equal mass).

    Returns:
        The calibration error in [0, 1].

    Raises:
        TypeError: For non-numeric input or a non-integer ``n_bins``.
        ValueError: For mismatched lengths, empty input, NaN/inf, probabilities outside
            [0, 1], bad labels, ``n_bins < 1`` or an unknown ``norm``/``strategy``.

    Example:
        >>> y = np.array([1, 1, 0, 0])
        >>> p = np.array([0.9, 0.9, 0.9, 0.1])  # confidence 0.9 each, 3 of 4 correct
        >>> round(expected_calibration_error(y, p, n_bins=10), 6)
        0.15
    """
    n_bins = _check_n_bins(n_bins)
    norm = _check_choice(norm, name="norm", choices=CALIBRATION_NORMS)
    strategy = _check_choice(strategy, name="strategy", choices=CALIBRATION_STRATEGIES)
    y, p = _check_labels_probs(labels, probs)
    conf, correct = _top_label(y, p)
    counts, mean_conf, acc = _binned(conf, correct, _edges(conf, n_bins, strategy))
    used = counts > 0
    gaps = np.abs(acc[used] - mean_conf[used])
    weights = counts[used] / conf.size
    if norm == "l1":
        return float(np.sum(weights * gaps))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps**2)))
    return float(gaps.max())


def brier_score(labels: npt.ArrayLike, probs: npt.ArrayLike) -> float:
    r"""Brier score, a proper scoring rule (lower is better).

    .. math::

        \text{binary: } \frac{1}{n}\sum_i (p_i - y_i)^2, \qquad
        \text{multi-class: } \frac{1}{n}\sum_i \sum_{k} (p_{ik} - [y_i = k])^2 .

    The binary form is that of ``sklearn.metrics.brier_score_loss``; the multi-class
    form applied to two columns ``[1 - p, p]`` gives twice the binary value.

    Args:
        labels: Labels ``(N,)``: 0/1 for binary scores, class indices for multi-class.
        probs: Binary scores :math:`P(\text{label}=1)` ``(N,)`` or probabilities ``(N, C)``.

    Returns:
        The Brier score (binary in [0, 1], multi-class in [0, 2]).

    Raises:
        TypeError, ValueError: As for :func:`expected_calibration_error`.

    Example:
        >>> brier_score([1, 0], [0.8, 0.4])
        0.1
    """
    y, p = _check_labels_probs(labels, probs)
    if p.ndim == 1:
        return float(np.mean((p - y) ** 2))
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def negative_log_likelihood(labels: npt.ArrayLike, probs: npt.ArrayLike, eps: float = 1e-12) -> float:
    r"""Mean negative log-likelihood (cross-entropy) in nats, a proper scoring rule.

    .. math::

        -\frac{1}{n}\sum_i \bigl[y_i \ln p_i + (1-y_i)\ln(1-p_i)\bigr] \;\text{(binary)},
        \qquad -\frac{1}{n}\sum_i \ln p_{i y_i} \;\text{(multi-class)},

    with probabilities clipped to :math:`[\epsilon, 1-\epsilon]` (binary) or below at
    :math:`\epsilon` (multi-class), so that a confidently wrong prediction costs
    :math:`-\ln\epsilon` instead of infinity.

    Args:
        labels: Labels ``(N,)``: 0/1 for binary scores, class indices for multi-class.
        probs: Binary scores :math:`P(\text{label}=1)` ``(N,)`` or probabilities ``(N, C)``.
        eps: Clipping constant in :math:`(0, 0.5)`.

    Returns:
        The mean NLL.

    Raises:
        TypeError, ValueError: As for :func:`expected_calibration_error`, or for a bad ``eps``.

    Example:
        >>> round(negative_log_likelihood([1, 0], [0.5, 0.5]), 6) == round(float(np.log(2)), 6)
        True
    """
    if not isinstance(eps, (float, int)) or isinstance(eps, bool) or not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
    y, p = _check_labels_probs(labels, probs)
    if p.ndim == 1:
        pc = np.clip(p, eps, 1.0 - eps)
        return float(-np.mean(np.where(y == 1, np.log(pc), np.log1p(-pc))))
    py = np.clip(p[np.arange(p.shape[0]), y], eps, None)
    return float(-np.mean(np.log(py)))


# --------------------------------------------------------------------------- reliability
@dataclass
class ReliabilityCurve:
    r"""Per-bin statistics for a reliability diagram.

    Top-label view (any classifier): bins of the confidence :math:`c` with edges
    ``edges``; ``confidence`` is the mean :math:`c` and ``accuracy`` the fraction of
    correct predictions in each bin. Probability view (binary only): bins of the score
    :math:`p = P(\text{label}=1)` with edges ``prob_edges``; ``prob_mean`` is the mean
    score and ``frac_positive`` the observed fraction of label 1. A calibrated model lies
    on the diagonal in both views. Empty bins hold NaN (and a count of 0).

    Attributes:
        edges: Bin edges of the confidence, shape ``(B + 1,)``.
        confidence: Mean confidence per bin, ``(B,)``.
        accuracy: Accuracy per bin, ``(B,)``.
        counts: Jets per bin, ``(B,)``.
        strategy: ``"uniform"`` or ``"quantile"``.
        n_classes: 2 for binary scores, ``C`` for multi-class.
        prob_edges: Bin edges of the score (binary), else ``None``.
        prob_mean: Mean score :math:`P(\text{label}=1)` per bin (binary), else ``None``.
        frac_positive: Fraction of label 1 per bin (binary), else ``None``.
        prob_counts: Jets per score bin (binary), else ``None``.
    """

    edges: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    counts: IntArray
    strategy: str = "uniform"
    n_classes: int = 2
    prob_edges: FloatArray | None = None
    prob_mean: FloatArray | None = None
    frac_positive: FloatArray | None = None
    prob_counts: IntArray | None = None

    @property
    def binary(self) -> bool:
        """Whether the curve was built from binary scores (the probability view is present)."""
        return self.prob_mean is not None

    @property
    def n_bins(self) -> int:
        """Number of confidence bins (may be below the requested number for ``"quantile"``)."""
        return int(self.counts.shape[0])

    def accuracy_errors(self) -> FloatArray:
        r"""Binomial standard errors :math:`\sqrt{a(1-a)/n}` of ``accuracy`` (NaN for empty bins)."""
        return _binomial_errors(self.accuracy, self.counts)

    def frac_positive_errors(self) -> FloatArray:
        r"""Binomial standard errors of ``frac_positive`` (binary only)."""
        if self.frac_positive is None or self.prob_counts is None:
            raise ValueError("frac_positive_errors needs a binary reliability curve (probability view)")
        return _binomial_errors(self.frac_positive, self.prob_counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (NaN of empty bins become ``None``)."""
        return dict(to_jsonable(self))


def _binomial_errors(frac: FloatArray, counts: IntArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.sqrt(frac * (1.0 - frac) / counts), np.nan)


def reliability_curve(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
) -> ReliabilityCurve:
    r"""Binned confidence versus accuracy (and, for binary scores, score versus fraction of label 1).

    Args:
        labels: Labels ``(N,)``: 0/1 for binary scores, class indices for multi-class.
        probs: Binary scores :math:`P(\text{label}=1)` ``(N,)`` or probabilities ``(N, C)``.
        n_bins: Number of bins (≥ 1).
        strategy: ``"uniform"`` (equal width on [0, 1]) or ``"quantile"`` (equal mass;
            edges from the quantiles of the confidence, respectively the score, with
            duplicate edges merged).

    Returns:
        The :class:`ReliabilityCurve`.

    Raises:
        TypeError, ValueError: As for :func:`expected_calibration_error`.

    Example:
        >>> c = reliability_curve([0, 1, 1, 1], [0.25, 0.7, 0.85, 0.95], n_bins=5)
        >>> c.counts.tolist(), c.prob_counts.tolist()
        ([0, 0, 0, 2, 2], [0, 1, 0, 1, 2])
    """
    n_bins = _check_n_bins(n_bins)
    strategy = _check_choice(strategy, name="strategy", choices=CALIBRATION_STRATEGIES)
    y, p = _check_labels_probs(labels, probs)
    conf, correct = _top_label(y, p)
    edges = _edges(conf, n_bins, strategy)
    counts, mean_conf, acc = _binned(conf, correct, edges)
    curve = ReliabilityCurve(
        edges=edges,
        confidence=mean_conf,
        accuracy=acc,
        counts=counts,
        strategy=strategy,
        n_classes=2 if p.ndim == 1 else int(p.shape[1]),
    )
    if p.ndim == 1:
        prob_edges = _edges(p, n_bins, strategy)
        prob_counts, prob_mean, frac_pos = _binned(p, y.astype(np.float64), prob_edges)
        curve.prob_edges, curve.prob_mean = prob_edges, prob_mean
        curve.frac_positive, curve.prob_counts = frac_pos, prob_counts
    return curve


# --------------------------------------------------------------------------- temperature scaling
def _check_logits(logits: Any) -> FloatArray:
    arr = np.asarray(logits)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"logits must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0 or (arr.ndim == 2 and arr.shape[1] < 2):
        raise ValueError(
            "logits must have shape (N,) (binary logits of P(label=1)) or (N, C) with C ≥ 2 and N ≥ 1, "
            f"got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"logits contains {int((~np.isfinite(arr)).sum())} NaN/inf value(s)")
    return arr


def _nll_logits(z: FloatArray, y: IntArray, temperature: float) -> float:
    """Mean NLL of logits divided by ``temperature`` (numerically stable)."""
    s = z / temperature
    if z.ndim == 1:
        sign = 2.0 * y - 1.0
        return float(np.mean(np.logaddexp(0.0, -sign * s)))
    return float(np.mean(logsumexp(s, axis=1) - s[np.arange(s.shape[0]), y]))


class TemperatureScaling:
    r"""Post-hoc calibration by a single temperature :math:`T > 0` on the logits (Guo et al. 2017).

    .. math::

        \hat p = \sigma(z / T) \;\text{(binary)}, \qquad
        \hat p = \mathrm{softmax}(z / T) \;\text{(multi-class)}, \qquad
        T^\ast = \arg\min_{T > 0} \mathrm{NLL}(T)

    on held-out data (never the training set). :math:`T > 1` softens an overconfident
    model, :math:`T < 1` sharpens an underconfident one; the ranking of jets, and hence
    the ROC curve and accuracy, is unchanged. The NLL is convex in :math:`1/T`, so the
    bounded Brent search over :math:`\ln T` (``scipy.optimize.minimize_scalar``) finds the
    global minimum within ``bounds``; a warning is issued when it lands on a bound.

    Args:
        bounds: Search interval :math:`[T_\min, T_\max]` for :math:`T`.

    Attributes:
        temperature: The fitted :math:`T` (1.0 before :meth:`fit`).
        nll_before: Mean NLL at :math:`T = 1` on the fit data (``None`` before fit).
        nll_after: Mean NLL at :math:`T^\ast` on the fit data (``None`` before fit).

    Reference:
        C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural
        Networks", ICML 2017, arXiv:1706.04599.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(scale=2.0, size=50_000)
        >>> y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(int)
        >>> ts = TemperatureScaling().fit(3.0 * z, y)  # overconfident logits
        >>> round(ts.temperature, 1)
        3.0
        >>> ts.transform(np.array([0.0])).tolist()
        [0.5]
    """

    def __init__(self, *, bounds: tuple[float, float] = (1e-2, 1e2)) -> None:
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi):
            raise ValueError(f"bounds must be two finite numbers 0 < T_min < T_max, got {bounds!r}")
        self.bounds = (lo, hi)
        self.temperature: float = 1.0
        self.nll_before: float | None = None
        self.nll_after: float | None = None
        self._fitted = False
        self._n_classes: int | None = None  # None: binary logits (N,)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has been called."""
        return self._fitted

    def fit(self, logits: npt.ArrayLike, labels: npt.ArrayLike) -> TemperatureScaling:
        """Fit :math:`T` by minimising the NLL of ``labels`` under ``logits / T``.

        Args:
            logits: Binary logits of :math:`P(\\text{label}=1)` ``(N,)`` or multi-class
                logits ``(N, C)``, from held-out data.
            labels: Labels ``(N,)``: 0/1 (binary) or class indices (multi-class).

        Returns:
            ``self``.

        Raises:
            TypeError, ValueError: For non-numeric or non-finite logits, a wrong shape or
                bad labels.
        """
        z = _check_logits(logits)
        if z.ndim == 1:
            y = check_labels(labels, name="labels", n=z.shape[0])
        else:
            y = _multiclass_labels(labels, n=z.shape[0], n_classes=z.shape[1])
        lo, hi = math.log(self.bounds[0]), math.log(self.bounds[1])
        res = minimize_scalar(
            lambda u: _nll_logits(z, y, math.exp(u)),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-7},
        )
        u = float(res.x)
        if min(u - lo, hi - u) < 1e-4:
            warnings.warn(
                f"the fitted temperature {math.exp(u):.4g} lies on the search bound {self.bounds}; "
                "the logits may carry no information about the labels (or separate them perfectly)",
                RuntimeWarning,
                stacklevel=2,
            )
        self.temperature = math.exp(u)
        self.nll_before = _nll_logits(z, y, 1.0)
        self.nll_after = _nll_logits(z, y, self.temperature)
        self._n_classes = None if z.ndim == 1 else int(z.shape[1])
        self._fitted = True
        return self

    def transform_logits(self, logits: npt.ArrayLike) -> FloatArray:
        """Calibrated logits :math:`z / T` (float64), same shape as ``logits``."""
        if not self.is_fitted:
            raise RuntimeError("TemperatureScaling is not fitted: call fit(logits, labels) first")
        z = _check_logits(logits)
        fitted_on = "binary logits (N,)" if self._n_classes is None else f"logits (N, {self._n_classes})"
        if z.shape[1:] != (() if self._n_classes is None else (self._n_classes,)):
            raise ValueError(f"the scaler was fitted on {fitted_on}, got shape {z.shape}")
        return z / self.temperature

    def transform(self, logits: npt.ArrayLike) -> FloatArray:
        r"""Calibrated probabilities :math:`\sigma(z/T)` (binary) or :math:`\mathrm{softmax}(z/T)`."""
        s = self.transform_logits(logits)
        if s.ndim == 1:
            return np.asarray(expit(s), dtype=np.float64)
        return np.asarray(softmax(s, axis=1), dtype=np.float64)

    def __repr__(self) -> str:
        state = f"temperature={self.temperature:.4g}" if self.is_fitted else "unfitted"
        return f"TemperatureScaling({state})"


def calibration_summary(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    strategy: str = "uniform",
) -> dict[str, Any]:
    """ECE (with the given norm and binning), Brier score and NLL in one JSON-ready dictionary.

    Args:
        labels: Labels ``(N,)``: 0/1 for binary scores, class indices for multi-class.
        probs: Binary scores ``(N,)`` or probabilities ``(N, C)``.
        n_bins: Number of bins of the ECE.
        norm: Norm of the ECE (``"l1"``, ``"l2"``, ``"max"``).
        strategy: Binning of the ECE (``"uniform"``, ``"quantile"``).

    Returns:
        ``{"ece", "brier", "nll", "n_bins", "norm", "strategy", "n"}``.

    Example:
        >>> s = calibration_summary([0, 1], [0.3, 0.6], n_bins=5)
        >>> sorted(s)
        ['brier', 'ece', 'n', 'n_bins', 'nll', 'norm', 'strategy']
    """
    y, p = _check_labels_probs(labels, probs)
    return {
        "ece": expected_calibration_error(y, p, n_bins=n_bins, norm=norm, strategy=strategy),
        "brier": brier_score(y, p),
        "nll": negative_log_likelihood(y, p),
        "n_bins": int(n_bins),
        "norm": norm,
        "strategy": strategy,
        "n": int(y.shape[0]),
    }
