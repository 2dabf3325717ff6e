r"""Standard jet-tagging metrics: accuracy, ROC AUC and background rejection.

Scores are :math:`s = P(\text{label}=1 \mid x)`, the output of aalearn's binary models.
The **signal** class (default :data:`aalearn.data.LABEL_TOP` = 0, the top jets) is the
positive class of the ROC curve; the discriminant that grows with signal-likeness is
therefore :math:`s` when the signal label is 1 and :math:`1 - s` when it is 0. AUC is
invariant under this choice (swapping the classes and reversing the score gives the same
curve, mirrored), so it equals the usual ``roc_auc_score(labels, scores)``.

For a signal efficiency :math:`\varepsilon_S` (true-positive rate) the background
efficiency :math:`\varepsilon_B(\varepsilon_S)` is read off the ROC curve by linear
interpolation, and the **background rejection** is :math:`1/\varepsilon_B` — the figure of
merit of the top-tagging comparison (Kasieczka et al., arXiv:1902.09914, quoted at
:math:`\varepsilon_S = 0.3` and 0.5). When :math:`\varepsilon_B = 0` the rejection is
:math:`+\infty`; :meth:`EvaluationResult.to_dict` writes it as the string ``"inf"`` so the
output stays valid JSON (``null`` is reserved for "undefined", for example with a
single class).

Accuracy uses the challenge's rule: predict label 1 when :math:`s > 0.5`
(Keras ``binary_accuracy``).

**Sample weights.** With per-jet weights :math:`w_i` (for example the spectrum weights
of :mod:`aalearn.data.reweight`) the accuracy is :math:`\sum_i w_i [\hat y_i = y_i] /
\sum_i w_i`, and the ROC curve, AUC and rejections are those of
:func:`sklearn.metrics.roc_curve` / :func:`~sklearn.metrics.roc_auc_score` with
``sample_weight``: every count becomes a sum of weights. Without weights the unweighted
code path runs unchanged.

**Intervals.** With ``n_boot > 0`` every figure also gets a confidence interval
(:mod:`aalearn.evaluation.bootstrap`): Clopper–Pearson for the unweighted accuracy, the
label-stratified percentile bootstrap for the AUC, the rejections and a weighted
accuracy. They appear under ``intervals`` in :meth:`EvaluationResult.to_dict` and as
``"<figure> 68% CI"`` columns in :meth:`EvaluationResult.summary`.

References:
    G. Kasieczka et al., "The Machine Learning Landscape of Top Taggers",
    SciPost Phys. 7, 014 (2019), arXiv:1902.09914.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn

from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_array, check_labels, check_probability
from aalearn.data.dataset import LABEL_TOP, JetDataset
from aalearn.evaluation.bootstrap import DEFAULT_LEVEL, Interval, bootstrap_metrics
from aalearn.models.predict import predict_proba

__all__ = [
    "DEFAULT_SIGNAL_EFFICIENCIES",
    "MAX_ROC_POINTS",
    "EvaluationResult",
    "background_rejection",
    "evaluate_model",
    "evaluate_scores",
]

#: ROC curves are downsampled to at most this many points for storage.
MAX_ROC_POINTS = 500
#: Default signal efficiencies at which the background rejection is reported.
DEFAULT_SIGNAL_EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)

FloatArray = npt.NDArray[np.float64]


def _json_float(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return None
    return float(value)


@dataclass
class EvaluationResult:
    """Metrics of a binary classifier on a labelled sample (a :class:`~aalearn.core.result.Result`).

    Attributes:
        n: Number of jets.
        n_signal: Jets with the signal label.
        n_background: Jets with the other label.
        signal_label: Label treated as signal (positive class of the ROC curve).
        threshold: Threshold on :math:`P(\\text{label}=1)` used for the accuracy.
        accuracy: Fraction of jets with ``(score > threshold) == label``.
        auc: ROC AUC with the signal as positive class; ``None`` for a single class.
        background_rejection: :math:`1/\\varepsilon_B` at each signal efficiency
            (``inf`` when :math:`\\varepsilon_B = 0`, ``None`` for a single class).
        fpr: Background efficiencies of the (downsampled) ROC curve, or empty.
        tpr: Signal efficiencies of the (downsampled) ROC curve, or empty.
        scores_signal: Scores :math:`P(\\text{label}=1)` of the signal jets (for plots).
        scores_background: Scores :math:`P(\\text{label}=1)` of the background jets.
        notes: Human-readable remarks (for example why AUC is undefined).
        weighted: Whether the metrics are weighted by per-jet sample weights (the counts
            ``n``, ``n_signal``, ``n_background`` stay jet counts).
        intervals: Figure (``accuracy``, ``auc``, ``rejection@0.3``, ...) → its
            :class:`~aalearn.evaluation.bootstrap.Interval`; empty unless requested.
    """

    n: int
    n_signal: int
    n_background: int
    signal_label: int
    threshold: float
    accuracy: float
    auc: float | None
    background_rejection: dict[float, float | None]
    fpr: FloatArray = field(default_factory=lambda: np.empty(0))
    tpr: FloatArray = field(default_factory=lambda: np.empty(0))
    scores_signal: FloatArray = field(default_factory=lambda: np.empty(0))
    scores_background: FloatArray = field(default_factory=lambda: np.empty(0))
    notes: list[str] = field(default_factory=list)
    weighted: bool = False
    intervals: dict[str, Interval] = field(default_factory=dict)

    def rejection_at(self, signal_efficiency: float) -> float | None:
        """Background rejection at one of the evaluated signal efficiencies.

        Raises:
            KeyError: If that efficiency was not evaluated.
        """
        for eff, value in self.background_rejection.items():
            if math.isclose(eff, signal_efficiency):
                return value
        raise KeyError(
            f"signal efficiency {signal_efficiency} was not evaluated "
            f"(available: {sorted(self.background_rejection)})"
        )

    def to_dict(self, *, include_curves: bool = False) -> dict[str, Any]:
        """JSON-serialisable summary.

        Infinite rejections become the string ``"inf"``; undefined values are ``None``.
        Rejection keys are the efficiencies formatted as strings (``"0.3"``). When
        intervals were computed, ``intervals`` maps each figure to ``{"value", "low",
        "high", "std", "level", "n", "n_boot", "method"}``.

        Args:
            include_curves: Also include ``fpr``, ``tpr``, ``scores_signal`` and
                ``scores_background`` as lists.

        Example:
            >>> res = evaluate_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
            >>> res.to_dict()["background_rejection"]
            {'0.3': 'inf', '0.5': 'inf'}
        """
        out: dict[str, Any] = {
            "n": self.n,
            "n_signal": self.n_signal,
            "n_background": self.n_background,
            "signal_label": self.signal_label,
            "threshold": self.threshold,
            "accuracy": _json_float(self.accuracy),
            "auc": _json_float(self.auc),
            "background_rejection": {f"{k:g}": _json_float(v) for k, v in self.background_rejection.items()},
            "notes": list(self.notes),
        }
        if self.weighted:
            out["weighted"] = True
        if self.intervals:
            out["intervals"] = {
                k: {f: _json_float(v) if isinstance(v, float) else v for f, v in iv.to_dict().items()}
                for k, iv in self.intervals.items()
            }
        if include_curves:
            out["fpr"] = self.fpr.tolist()
            out["tpr"] = self.tpr.tolist()
            out["scores_signal"] = self.scores_signal.tolist()
            out["scores_background"] = self.scores_background.tolist()
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One terminal row: ``n``, ``accuracy``, ``auc`` and ``rejection@EFF`` per signal efficiency.

        With intervals, each figure is followed by a ``"<figure> 68% CI"`` column
        ``"[low, high]"`` (level as computed) and the row ends with ``n_boot``.

        Example:
            >>> evaluate_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]).summary()[0]["auc"]
            1.0
        """
        row: dict[str, Any] = {"n": self.n, "accuracy": self.accuracy, "auc": self.auc}
        for eff, value in sorted(self.background_rejection.items()):
            row[f"rejection@{eff:g}"] = value
        if not self.intervals:
            return [row]
        out: dict[str, Any] = {}
        for key, value in row.items():
            out[key] = value
            iv = self.intervals.get(key)
            if iv is not None and math.isfinite(iv.low):
                out[f"{key} {100 * iv.level:g}% CI"] = iv.bracket()
        boots = [iv.n_boot for iv in self.intervals.values() if iv.method != "clopper-pearson"]
        if boots:
            out["n_boot"] = max(boots)
        return [out]

    def add_to(self, report: ReportBuilder) -> None:
        """A performance section with the metrics table (the apps add ROC and score plots)."""
        report.add_section(
            "Performance",
            text="Accuracy at threshold 0.5, ROC AUC, background rejection 1/ε_B at fixed signal efficiency.",
            table=self.summary()[0],
        )


def background_rejection(fpr: npt.ArrayLike, tpr: npt.ArrayLike, signal_efficiency: float) -> float:
    r"""Background rejection :math:`1/\varepsilon_B` at a signal efficiency, from a ROC curve.

    :math:`\varepsilon_B` is the smallest background efficiency at which the curve reaches
    :math:`\varepsilon_S` exactly, or the linear interpolation between the two neighbouring
    ROC points otherwise.

    Args:
        fpr: Background efficiencies of the ROC points (non-decreasing).
        tpr: Signal efficiencies of the ROC points (non-decreasing, ending at 1).
        signal_efficiency: :math:`\varepsilon_S` in (0, 1].

    Returns:
        :math:`1/\varepsilon_B`, or ``inf`` when :math:`\varepsilon_B = 0`.

    Example:
        >>> background_rejection([0.0, 0.5, 1.0], [0.0, 1.0, 1.0], 0.5)
        4.0
    """
    fpr_a = np.asarray(fpr, dtype=np.float64)
    tpr_a = np.asarray(tpr, dtype=np.float64)
    eff = check_probability(signal_efficiency, name="signal_efficiency")
    if fpr_a.shape != tpr_a.shape or fpr_a.ndim != 1 or fpr_a.size == 0:
        raise ValueError("fpr and tpr must be non-empty 1-D arrays of the same length")
    above = np.nonzero(tpr_a >= eff)[0]
    if above.size == 0:
        raise ValueError(f"the ROC curve never reaches signal efficiency {eff}")
    i = int(above[0])
    if tpr_a[i] == eff or i == 0:
        eps_b = float(fpr_a[i])
    else:
        t0, t1, f0, f1 = tpr_a[i - 1], tpr_a[i], fpr_a[i - 1], fpr_a[i]
        eps_b = float(f0 + (f1 - f0) * (eff - t0) / (t1 - t0))
    return math.inf if eps_b <= 0 else 1.0 / eps_b


def _downsample(fpr: FloatArray, tpr: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    if fpr.size <= max_points:
        return fpr, tpr
    idx = np.unique(np.round(np.linspace(0, fpr.size - 1, max_points)).astype(np.int64))
    return fpr[idx], tpr[idx]


def _check_weights(sample_weight: npt.ArrayLike | None, n: int) -> FloatArray | None:
    if sample_weight is None:
        return None
    w = check_array(sample_weight, name="sample_weight", ndim=1, dtype=np.float64)
    if w.size != n:
        raise ValueError(f"sample_weight must have one weight per jet ({n}), got {w.size}")
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError("sample_weight must be non-negative with at least one positive weight")
    return w


def evaluate_scores(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    signal_label: int = LABEL_TOP,
    threshold: float = 0.5,
    signal_efficiencies: Sequence[float] = DEFAULT_SIGNAL_EFFICIENCIES,
    sample_weight: npt.ArrayLike | None = None,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> EvaluationResult:
    r"""Accuracy, ROC AUC and background rejection of scores :math:`P(\text{label}=1)`.

    Args:
        labels: True labels ``(N,)`` in {0, 1}.
        scores: :math:`P(\text{label}=1)` per jet, ``(N,)``, in [0, 1] (apply a sigmoid
            to logits first).
        signal_label: Label of the signal class (positive class of the ROC curve);
            default :data:`aalearn.data.LABEL_TOP` = 0.
        threshold: Predict label 1 where ``score > threshold``.
        signal_efficiencies: :math:`\varepsilon_S` values for the background rejection.
        sample_weight: Optional non-negative per-jet weights ``(N,)``: weighted accuracy,
            ROC curve and AUC (module docstring). ``None``: unweighted.
        n_boot: Bootstrap replicas of the intervals (``0``: no intervals; else ≥ 10).
        level: Confidence level of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        The :class:`EvaluationResult`. With only one class present the accuracy is still
        computed, AUC and rejections are ``None`` and a note says why.

    Raises:
        ValueError: For mismatched lengths, empty input, labels other than 0/1, scores
            outside [0, 1] or NaN, or a bad ``signal_label``/``threshold``.

    Example:
        >>> res = evaluate_scores([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> res.accuracy, res.auc
        (0.75, 0.75)
    """
    if signal_label not in (0, 1) or isinstance(signal_label, bool):
        raise ValueError(f"signal_label must be 0 or 1, got {signal_label!r}")
    threshold = check_probability(threshold, name="threshold")
    effs = [check_probability(e, name="signal efficiency") for e in signal_efficiencies]
    if any(e == 0 for e in effs):
        raise ValueError("signal efficiencies must lie in (0, 1]")
    s = check_array(scores, name="scores", ndim=1, dtype=np.float64)
    if s.size == 0:
        raise ValueError("scores is empty")
    if np.any((s < 0) | (s > 1)):
        raise ValueError(
            f"scores must be probabilities P(label=1) in [0, 1], found range [{s.min():g}, {s.max():g}]; "
            "apply a sigmoid to logits first"
        )
    y = check_labels(labels, name="labels", n=s.size)
    w = _check_weights(sample_weight, s.size)

    is_signal = y == signal_label
    n_signal = int(is_signal.sum())
    n_background = int(s.size - n_signal)
    hits = (s > threshold).astype(np.int64) == y
    accuracy = float(np.mean(hits)) if w is None else float(np.sum(w * hits) / np.sum(w))
    result = EvaluationResult(
        n=int(s.size),
        n_signal=n_signal,
        n_background=n_background,
        signal_label=int(signal_label),
        threshold=threshold,
        accuracy=accuracy,
        auc=None,
        background_rejection=dict.fromkeys(effs),
        scores_signal=s[is_signal],
        scores_background=s[~is_signal],
        weighted=w is not None,
    )
    if n_boot:
        result.intervals = _intervals(y, s, w, signal_label, threshold, effs, n_boot, level, seed)
    if n_signal == 0 or n_background == 0:
        present = "signal" if n_background == 0 else "background"
        result.notes.append(
            f"only {present} jets present: AUC and background rejection are undefined (reported as None)"
        )
        return result

    # Discriminant growing with signal-likeness; −s instead of 1 − s keeps float precision.
    discriminant = s if signal_label == 1 else -s
    if w is not None and (np.sum(w[is_signal]) <= 0 or np.sum(w[~is_signal]) <= 0):
        result.notes.append("one class has zero total weight: AUC and background rejection are undefined")
        return result
    result.auc = float(roc_auc_score(is_signal, discriminant, sample_weight=w))
    fpr, tpr, _ = roc_curve(is_signal, discriminant, sample_weight=w)
    result.background_rejection = {e: background_rejection(fpr, tpr, e) for e in effs}
    result.fpr, result.tpr = _downsample(fpr.astype(np.float64), tpr.astype(np.float64), MAX_ROC_POINTS)
    return result


def _intervals(
    y: npt.NDArray[np.int64],
    s: FloatArray,
    w: FloatArray | None,
    signal_label: int,
    threshold: float,
    effs: Sequence[float],
    n_boot: int,
    level: float,
    seed: int,
) -> dict[str, Interval]:
    """The intervals of :func:`evaluate_scores`, keyed like :meth:`EvaluationResult.summary`."""
    if y.size < 2:
        return {}
    boot = bootstrap_metrics(
        y,
        s,
        signal_label=signal_label,
        signal_efficiencies=effs,
        threshold=threshold,
        sample_weight=w,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
    out = {"accuracy": boot["accuracy"]}
    if math.isfinite(boot["auc"].value):
        out["auc"] = boot["auc"]
        for e in effs:
            out[f"rejection@{e:g}"] = boot[f"rejection_at_{round(100 * e)}"]
    return out


def evaluate_model(
    model: nn.Module,
    dataset: JetDataset,
    *,
    batch_size: int = 8192,
    signal_label: int = LABEL_TOP,
    threshold: float = 0.5,
    signal_efficiencies: Sequence[float] = DEFAULT_SIGNAL_EFFICIENCIES,
    sample_weight: npt.ArrayLike | None = None,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> EvaluationResult:
    """Evaluate a binary logit model on a labelled :class:`~aalearn.data.JetDataset`.

    Runs :func:`aalearn.models.predict_proba` (eval mode, no gradients) and
    :func:`evaluate_scores`.

    Args:
        model: Classifier returning logits of :math:`P(\\text{label}=1)`.
        dataset: Labelled jets whose feature layout matches the model.
        batch_size: Rows per forward pass.
        signal_label: Label of the signal class (default top = 0).
        threshold: Threshold on :math:`P(\\text{label}=1)` for the accuracy.
        signal_efficiencies: :math:`\\varepsilon_S` values for the background rejection.
        sample_weight: Optional per-jet weights (see :func:`evaluate_scores`).
        n_boot: Bootstrap replicas of the intervals (``0``: none; see :func:`evaluate_scores`).
        level: Confidence level of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        ValueError: If the dataset has no labels or its feature count does not match.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> ds = JetDataset(np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1]), ("a", "b", "c"))
        >>> evaluate_model(TopoDNN(n_features=3, hidden=(2,)), ds).n
        4
    """
    if dataset.labels is None:
        raise ValueError(f"dataset {dataset.source or '(unnamed)'} has no labels; evaluation needs labels")
    scores = predict_proba(model, dataset.features, batch_size=batch_size)
    return evaluate_scores(
        dataset.labels,
        scores,
        signal_label=signal_label,
        threshold=threshold,
        signal_efficiencies=signal_efficiencies,
        sample_weight=sample_weight,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
