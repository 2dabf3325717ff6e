r"""Does the uncertainty of a language model detect its wrong answers? The metrics.

Metrics, for a question set with gold answers (quality :math:`q_i \in \{0, 1\}`: the
greedy answer is correct) and an uncertainty score :math:`u_i` per question:

* **AUROC** of :math:`u` for detecting wrong answers (0.5 = chance, 1 = perfect);
* **PRR**, the prediction-rejection ratio (Malinin & Gales; lm-polygraph's normalised
  ``PredictionRejectionArea``): reject the most uncertain questions first; the area under
  the curve of the mean quality of the kept questions versus the rejected fraction,
  normalised between random rejection (0) and the oracle that rejects wrong answers first (1):

  .. math::

      \mathrm{PRR} = \frac{\mathrm{AUC}_u - \mathrm{AUC}_\text{random}}
                          {\mathrm{AUC}_\text{oracle} - \mathrm{AUC}_\text{random}} .

  The area is the mean over the rejection levels :math:`0, 1/n, \dots` up to
  ``max_rejection`` (``prr``: all; ``prr_50``: the first half, as recent papers report,
  arXiv:2505.20045). The random baseline is its exact expectation (the mean quality at
  every level) rather than an average over permutations; ties in :math:`u` are resolved by
  their expectation too (each tied group contributes its mean quality);
* **risk–coverage** curves for abstention (risk = error rate among the answered
  questions, coverage = fraction answered) and their area **AURC** (lower is better);
* **calibration** of the normalised confidences (:func:`aalearn.llm.scores.confidence`)
  as :math:`P(\text{correct})`: ECE over equal-width bins of the confidence, computed from
  :func:`aalearn.uncertainty.reliability_curve` (its probability view).

References:
    A. Malinin, M. Gales, "Uncertainty Estimation in Autoregressive Structured
    Prediction", ICLR 2021, arXiv:2002.07650 (prediction rejection ratio).

    R. Vashurin et al., "Benchmarking Uncertainty Quantification Methods for Large Language
    Models with LM-Polygraph", TACL 2025, arXiv:2406.15627.

    Y. Geifman, R. El-Yaniv, "Selective Classification for Deep Neural Networks", NeurIPS
    2017, arXiv:1705.08500 (risk–coverage).

    K. Zhu et al., arXiv:2306.04528 (PDR); J. Cohen, "Statistical Power Analysis for the
    Behavioral Sciences" (1988) (Cohen's h).

Example:
    >>> correct = np.array([1, 1, 0, 0, 1, 0])
    >>> prediction_rejection_ratio(1 - correct, correct)  # the oracle's own ranking
    1.0
    >>> auroc_wrong(np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7]), correct)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.llm.scores import SCORES
from aalearn.uncertainty.calibration import reliability_curve

__all__ = [
    "auroc_wrong",
    "cohens_h",
    "confidence_calibration",
    "confidence_of",
    "method_values",
    "prediction_rejection_ratio",
    "rejection_curve",
    "risk_coverage_curve",
    "score_metrics",
]

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- metrics
def _paired(uncertainty: Any, quality: Any) -> tuple[FloatArray, FloatArray]:
    u = np.asarray(uncertainty, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if u.ndim != 1 or q.ndim != 1 or u.size != q.size:
        raise ValueError(
            f"uncertainty and quality must be 1-d of equal length, got shapes {u.shape} and {q.shape}"
        )
    if u.size == 0:
        raise ValueError("no questions to evaluate")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(q))):
        raise ValueError("uncertainty and quality must be finite (drop questions whose score is missing)")
    return u, q


def _tie_averaged(u: FloatArray, q: FloatArray) -> FloatArray:
    """Qualities in increasing order of ``u``, each tied group replaced by its mean (expected value
    under random tie-breaking)."""
    order = np.argsort(u, kind="stable")
    us, qs = u[order], q[order].copy()
    _, start, counts = np.unique(us, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        if c > 1:
            qs[s : s + c] = qs[s : s + c].mean()
    return qs


def rejection_curve(
    uncertainty: npt.ArrayLike, quality: npt.ArrayLike, *, max_rejection: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Mean quality of the kept questions versus the fraction rejected (most uncertain first).

    Args:
        uncertainty: Score per question (higher = more uncertain).
        quality: Quality per question (1 = correct).
        max_rejection: Largest rejected fraction in (0, 1].

    Returns:
        ``(rejected_fraction, mean_quality)``: levels :math:`0, 1/n, \\dots` (at least one).

    Example:
        >>> rejection_curve([0.1, 0.9], [1, 0])[1].tolist()
        [0.5, 1.0]
    """
    if not isinstance(max_rejection, (int, float)) or not 0.0 < max_rejection <= 1.0:
        raise ValueError(f"max_rejection must lie in (0, 1], got {max_rejection!r}")
    u, q = _paired(uncertainty, quality)
    n = u.size
    n_levels = max(1, int(max_rejection * n))
    qs = _tie_averaged(u, q)
    cums = np.cumsum(qs)
    kept = np.arange(n, n - n_levels, -1)
    return (n - kept) / n, cums[kept - 1] / kept


def prediction_rejection_ratio(
    uncertainty: npt.ArrayLike, quality: npt.ArrayLike, *, max_rejection: float = 1.0
) -> float | None:
    """Normalised prediction-rejection ratio: 0 for random rejection, 1 for the oracle.

    Args:
        uncertainty: Score per question (higher = more uncertain).
        quality: Quality per question (1 = correct; any real quality works).
        max_rejection: Part of the rejection curve used (``0.5``: PRR\\@50 %).

    Returns:
        The PRR, or ``None`` when the oracle is no better than random (all qualities equal).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> q = rng.integers(0, 2, 4000)
        >>> abs(prediction_rejection_ratio(rng.uniform(size=4000), q)) < 0.05
        True
    """
    u, q = _paired(uncertainty, quality)
    area = float(np.mean(rejection_curve(u, q, max_rejection=max_rejection)[1]))
    oracle = float(np.mean(rejection_curve(-q, q, max_rejection=max_rejection)[1]))
    random = float(np.mean(q))
    if oracle - random <= 1e-12:
        return None
    return (area - random) / (oracle - random)


def auroc_wrong(uncertainty: npt.ArrayLike, correct: npt.ArrayLike) -> float | None:
    """AUROC of the uncertainty for detecting wrong answers (``None`` if all right or all wrong).

    Example:
        >>> auroc_wrong([0.2, 0.8, 0.5], [1, 0, 1])
        1.0
    """
    from sklearn.metrics import roc_auc_score

    u, c = _paired(uncertainty, correct)
    wrong = (c < 0.5).astype(np.int64)
    if wrong.min() == wrong.max():
        return None
    return float(roc_auc_score(wrong, u))


def risk_coverage_curve(uncertainty: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Risk (error rate of the answered questions) versus coverage, answering the least uncertain first.

    Returns:
        ``(coverage, risk)`` at coverages :math:`1/n, \\dots, 1`; the AURC is ``risk.mean()``.

    Example:
        >>> risk_coverage_curve([0.1, 0.9], [1, 0])[1].tolist()
        [0.0, 0.5]
    """
    u, c = _paired(uncertainty, correct)
    errors = _tie_averaged(u, 1.0 - c)
    k = np.arange(1, u.size + 1)
    return k / u.size, np.cumsum(errors) / k


def confidence_calibration(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 10
) -> tuple[float, Any]:
    """ECE of confidences as :math:`P(\\text{correct})`, with the reliability curve.

    Uses :func:`aalearn.uncertainty.reliability_curve` with the confidence as the binary
    score and correctness as the label; the ECE is the population-weighted mean of
    :math:`|\\text{fraction correct} - \\text{mean confidence}|` over non-empty bins.

    Returns:
        ``(ece, curve)``.

    Example:
        >>> round(confidence_calibration([0.9, 0.9, 0.9, 0.9], [1, 1, 1, 0])[0], 6)
        0.15
    """
    conf, c = _paired(confidence, correct)
    if np.any((conf < 0) | (conf > 1)):
        raise ValueError("confidences must lie in [0, 1]")
    curve = reliability_curve(c.astype(np.int64), conf, n_bins=n_bins)
    counts = np.asarray(curve.prob_counts)
    used = counts > 0
    gaps = np.abs(np.asarray(curve.frac_positive)[used] - np.asarray(curve.prob_mean)[used])
    return float(np.sum(counts[used] / counts.sum() * gaps)), curve


def cohens_h(p_clean: float, p_perturbed: float) -> float:
    r"""Cohen's h of two accuracies, :math:`2\arcsin\sqrt{p_\text{clean}} - 2\arcsin\sqrt{p_\text{pert}}`.

    Positive for a drop; defined at zero accuracy (unlike the PDR); :math:`|h| \le \pi`.

    Example:
        >>> round(cohens_h(0.5, 0.5), 6), round(cohens_h(1.0, 0.0), 4)
        (0.0, 3.1416)
    """
    for name, p in (("p_clean", p_clean), ("p_perturbed", p_perturbed)):
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(2 * math.asin(math.sqrt(p_clean)) - 2 * math.asin(math.sqrt(p_perturbed)))


def method_values(records: Sequence[Mapping[str, Any]], method: str) -> tuple[FloatArray, FloatArray]:
    """Finite scores of ``method`` and the matching correctness (1/0) over per-question records.

    Args:
        records: Per question, a mapping with ``"scores"`` (method → value or ``None``) and ``"correct"``.
        method: Score name.

    Returns:
        ``(uncertainty, correct)``, questions without a finite score left out.

    Example:
        >>> recs = [{"scores": {"msp": 0.2}, "correct": True}, {"scores": {}, "correct": False}]
        >>> method_values(recs, "msp")
        (array([0.2]), array([1.]))
    """
    u, c = [], []
    for r in records:
        v = r["scores"].get(method)
        if v is not None and math.isfinite(v):
            u.append(float(v))
            c.append(1.0 if r["correct"] else 0.0)
    return np.asarray(u), np.asarray(c)


def confidence_of(method: str, value: float) -> float:
    """The normalised confidence in [0, 1] of a score value (``exp(-max(u, 0))`` for unknown names).

    Example:
        >>> round(confidence_of("unknown", 1.0), 4)
        0.3679
    """
    spec = SCORES.get(method)
    return spec.to_confidence(value) if spec is not None else float(math.exp(-max(value, 0.0)))


def score_metrics(records: Sequence[Mapping[str, Any]], method: str, n_bins: int = 10) -> dict[str, Any]:
    """AUROC, PRR, PRR\\@50 %, AURC, ECE, mean and count of one score over per-question records.

    Args:
        records: As for :func:`method_values`.
        method: Score name.
        n_bins: Bins of the ECE.

    Returns:
        ``{"n", "auroc", "prr", "prr_50", "aurc", "ece"}`` (``None`` where undefined), plus
        ``"mean"`` when the score is present at all.

    Example:
        >>> recs = [{"scores": {"msp": u}, "correct": c} for u, c in [(0.1, True), (0.9, False)]]
        >>> score_metrics(recs, "msp")["auroc"]
        1.0
    """
    u, c = method_values(records, method)
    out: dict[str, Any] = {
        "n": int(u.size),
        "auroc": None,
        "prr": None,
        "prr_50": None,
        "aurc": None,
        "ece": None,
    }
    if u.size == 0:
        return out
    out["mean"] = float(np.mean(u))
    out["auroc"] = auroc_wrong(u, c)
    out["prr"] = prediction_rejection_ratio(u, c)
    out["prr_50"] = prediction_rejection_ratio(u, c, max_rejection=0.5)
    out["aurc"] = float(np.mean(risk_coverage_curve(u, c)[1]))
    conf = np.array([confidence_of(method, v) for v in u])
    out["ece"] = confidence_calibration(conf, c, n_bins=n_bins)[0]
    return out
