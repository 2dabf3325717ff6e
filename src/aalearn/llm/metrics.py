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
  :func:`aalearn.uncertainty.reliability_curve` (its probability view);
* **uncertainty of the metrics**: percentile bootstrap intervals (questions resampled with
  replacement, :func:`bootstrap_intervals`) for AUROC, PRR, PRR\@50 % and ECE, and a
  small-sample warning (:data:`SMALL_SAMPLE`): with a handful of questions, or of wrong
  answers, an AUROC of 1 or a PRR of −4 says little.

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
    "SMALL_SAMPLE",
    "auroc_wrong",
    "bootstrap_intervals",
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

#: A score's metrics get a ``warning`` below these counts: ``(questions, wrong answers, right answers)``.
SMALL_SAMPLE: tuple[int, int, int] = (50, 10, 10)


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
    us, qs = u[order], q[order]
    _, inv, counts = np.unique(us, return_inverse=True, return_counts=True)
    return np.asarray(np.bincount(inv, weights=qs) / counts, dtype=np.float64)[inv]


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


def _auroc_fast(u: FloatArray, wrong: FloatArray) -> float | None:
    """Mann–Whitney AUROC with mid-ranks for ties (equals sklearn's ``roc_auc_score``)."""
    n_pos = float(wrong.sum())
    n_neg = wrong.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inv, counts = np.unique(u, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # mid-ranks, 1-based
    return float((ranks[wrong > 0.5].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _prr_pair(u: FloatArray, q: FloatArray) -> tuple[float | None, float | None]:
    """PRR and PRR@50 % in one pass (the arithmetic of :func:`prediction_rejection_ratio`)."""
    n = u.size
    cums = np.cumsum(_tie_averaged(u, q))
    cumo = np.cumsum(np.sort(q)[::-1])  # the oracle rejects the worst first
    random = float(np.mean(q))
    out: list[float | None] = []
    for rej in (1.0, 0.5):
        kept = np.arange(n, n - max(1, int(rej * n)), -1)
        area, oracle = float(np.mean(cums[kept - 1] / kept)), float(np.mean(cumo[kept - 1] / kept))
        out.append(None if oracle - random <= 1e-12 else (area - random) / (oracle - random))
    return out[0], out[1]


def _ece_uniform(conf: FloatArray, correct: FloatArray, n_bins: int) -> float:
    """ECE over equal-width bins ``(e_b, e_{b+1}]`` (the binning of :func:`confidence_calibration`)."""
    idx = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], conf, side="left")
    counts = np.bincount(idx, minlength=n_bins)
    sum_c = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_y = np.bincount(idx, weights=correct, minlength=n_bins)
    used = counts > 0
    return float(np.sum(np.abs(sum_y[used] - sum_c[used])) / conf.size)


def bootstrap_intervals(
    uncertainty: npt.ArrayLike,
    correct: npt.ArrayLike,
    confidence: npt.ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    n_bins: int = 10,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of AUROC, PRR, PRR\\@50 % and ECE (questions resampled).

    A resample in which a metric is undefined (all answers right or all wrong) is skipped
    for that metric; a metric defined in fewer than half the resamples gets ``None``.

    Args:
        uncertainty: Score per question.
        correct: 1 for a correct answer.
        confidence: Normalised confidence per question (``None``: no ECE interval).
        n_boot: Bootstrap resamples.
        level: Coverage of the interval.
        n_bins: Bins of the ECE.
        seed: Seed of the resampling.

    Returns:
        ``{"auroc": [lo, hi], "prr": ..., "prr_50": ..., "ece": ...}`` (``None`` where undefined).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> c = rng.integers(0, 2, 200)
        >>> lo, hi = bootstrap_intervals(rng.normal(size=200) - c, c, n_boot=200)["auroc"]
        >>> bool(lo < 0.760 < hi)  # the true AUROC, Φ(1/√2)
        True
    """
    u, c = _paired(uncertainty, correct)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {"auroc": [], "prr": [], "prr_50": [], "ece": []}
    wrong = (c < 0.5).astype(np.float64)
    for _ in range(n_boot):
        idx = rng.integers(0, u.size, u.size)
        ub, cb = u[idx], c[idx]
        a = _auroc_fast(ub, wrong[idx])
        if a is not None:
            values["auroc"].append(a)
        for key, v in zip(("prr", "prr_50"), _prr_pair(ub, cb), strict=True):
            if v is not None:
                values[key].append(v)
        if conf is not None:
            values["ece"].append(_ece_uniform(conf[idx], cb, n_bins))
    alpha = (1.0 - level) / 2
    out: dict[str, list[float] | None] = {}
    for key, vals in values.items():
        if len(vals) < max(1, n_boot // 2):
            out[key] = None
        else:
            lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
            out[key] = [float(lo), float(hi)]
    return out


def score_metrics(
    records: Sequence[Mapping[str, Any]],
    method: str,
    n_bins: int = 10,
    *,
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """AUROC, PRR, PRR\\@50 %, AURC, ECE with bootstrap intervals, mean and count of one score.

    Args:
        records: As for :func:`method_values`.
        method: Score name.
        n_bins: Bins of the ECE.
        n_boot: Bootstrap resamples of the intervals (0: none).
        seed: Seed of the bootstrap.

    Returns:
        ``{"n", "n_wrong", "auroc", "prr", "prr_50", "aurc", "ece", "ci", "ci_level",
        "small_sample", "warning"}`` (``None`` where undefined; ``ci`` maps ``auroc``, ``prr``,
        ``prr_50`` and ``ece`` to 95 % intervals), plus ``"mean"`` when the score is present.

    Example:
        >>> recs = [{"scores": {"msp": u}, "correct": c} for u, c in [(0.1, True), (0.9, False)]]
        >>> score_metrics(recs, "msp")["auroc"]
        1.0
    """
    u, c = method_values(records, method)
    n_wrong = int(np.sum(c < 0.5))
    small = u.size < SMALL_SAMPLE[0] or n_wrong < SMALL_SAMPLE[1] or u.size - n_wrong < SMALL_SAMPLE[2]
    out: dict[str, Any] = {
        "n": int(u.size),
        "n_wrong": n_wrong,
        "auroc": None,
        "prr": None,
        "prr_50": None,
        "aurc": None,
        "ece": None,
        "ci": {"auroc": None, "prr": None, "prr_50": None, "ece": None},
        "ci_level": 0.95,
        "small_sample": bool(small),
        "warning": (
            f"small sample: {u.size} questions, {n_wrong} wrong, {u.size - n_wrong} right "
            f"(fewer than {SMALL_SAMPLE[0]} / {SMALL_SAMPLE[1]} / {SMALL_SAMPLE[2]}); the metrics are "
            "indicative only, see their intervals"
            if small
            else None
        ),
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
    if n_boot:
        out["ci"] = bootstrap_intervals(u, c, conf, n_boot=n_boot, n_bins=n_bins, seed=seed)
    return out
