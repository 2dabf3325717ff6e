r"""Confidence intervals of every reported figure: AUC, accuracy, rejection, fooling ratio, challenge scores.

Two interval constructions, each reported with its level and the number of jets behind it
(:class:`Interval`):

* **Proportions** (accuracy, fooling ratio, unphysical fraction): the exact binomial
  Clopper–Pearson interval (C. J. Clopper & E. S. Pearson, Biometrika 26 (1934) 404),
  from the beta quantiles of :data:`scipy.stats.beta` (the closed form that
  :func:`scipy.stats.binomtest` also uses, without its per-call overhead); its coverage
  is at least the nominal level for every true proportion, also at 0 and 1 where a
  bootstrap collapses to a point.
* **Everything else** (AUC, background rejection, MAD, the challenge's Task-1 score
  :math:`\mathrm{FR}\,e^{-20\,\mathrm{MAD}}` and Task-2 mixed accuracy, differences): the
  nonparametric percentile bootstrap (B. Efron, Ann. Statist. 7 (1979) 1; Efron &
  Tibshirani, *An Introduction to the Bootstrap*, 1993), **stratified by label** (the
  signal and background jets are resampled separately, so every replica keeps both
  classes and their counts). Differences of figures measured on the same jets (clean
  vs attacked AUC, model A vs model B, clean vs adversarial accuracy) use a **paired**
  bootstrap: both figures are recomputed on the same resampled jets, so the row-by-row
  correlation cancels from the difference.

**Vectorised resampling.** A bootstrap replica is a vector of multiplicities
:math:`c_i` (how often jet :math:`i` is drawn). Every figure here is a function of
weighted sums over jets, so all replicas are computed at once from the ``(B, N)`` count
matrix: means are a matrix product, and the AUC is the weighted Mann–Whitney statistic
:math:`\sum_{i\in S} c_i\,(C^B_{<s_i} + \tfrac12 C^B_{=s_i}) / (C_S C_B)` from one sort of
the scores and cumulative sums of the background counts per tie group; the ROC curve
(hence :math:`1/\varepsilon_B`) comes from the same cumulative sums. B = 1000 replicas of
5000 jets take about 0.2 s. (:func:`scipy.stats.bootstrap` resamples index arrays, has no
strata, and needs an axis-vectorised statistic, which an AUC is not; hence this module.)

**Determinism.** The replicas depend only on ``seed``, the number of jets, the strata and
``n_boot`` (the count matrix is drawn in blocks whose size depends only on the number of
jets); there are no workers.

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000); s = np.clip(y * 0.3 + rng.uniform(0, 0.7, 2000), 0, 1)
    >>> ci = bootstrap_metrics(y, s, n_boot=50, seed=0)["auc"]
    >>> ci.low < ci.value < ci.high
    True
    >>> proportion_interval(90, 100, level=0.95).format()
    '0.9 [0.8238, 0.951] (95% CL, n=100)'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import beta

from aalearn.core.validation import check_array
from aalearn.data.dataset import LABEL_TOP

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "Interval",
    "attack_intervals",
    "bootstrap_aucs",
    "bootstrap_means",
    "bootstrap_metric",
    "bootstrap_metrics",
    "challenge_score_intervals",
    "check_interval_options",
    "mixed_accuracy_intervals",
    "proportion_interval",
    "resample_counts",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Metric = Callable[[npt.NDArray[np.int64], FloatArray], float]
#: A statistic of per-replica means: name → ``(B,)`` array in, ``(B,)`` array out.
MeanStatistic = Callable[[Mapping[str, FloatArray]], FloatArray]

#: Default number of bootstrap replicas.
DEFAULT_N_BOOT = 1000
#: Default confidence level: 0.68, a ±1σ-like interval.
DEFAULT_LEVEL = 0.68
#: Count-matrix entries per block (about 16 MB of float64): the block size in replicas
#: is ``max(1, _BLOCK_ENTRIES // N)``, a function of N only, so the draws do not depend on memory.
_BLOCK_ENTRIES = 1 << 21


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval.

    Attributes:
        value: The figure on the full sample.
        low: Lower end of the interval.
        high: Upper end.
        std: Standard error (bootstrap standard deviation, or :math:`\\sqrt{p(1-p)/n}`
            for a binomial proportion).
        level: Confidence level of the interval.
        n: Number of jets (trials, for a proportion) behind the figure.
        n_boot: Bootstrap replicas that gave a finite value (0 for an exact interval).
        method: ``"bootstrap"`` (stratified percentile), ``"paired bootstrap"`` or
            ``"clopper-pearson"``.
    """

    value: float
    low: float
    high: float
    std: float
    level: float
    n: int
    n_boot: int
    method: str = "bootstrap"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields (non-finite floats are handled by ``to_jsonable``)."""
        return asdict(self)

    def bracket(self, digits: int = 4) -> str:
        """``"[low, high]"`` with ``digits`` significant digits.

        Example:
            >>> Interval(0.5, 0.4, float("inf"), 0.1, 0.68, 100, 1000).bracket()
            '[0.4, inf]'
        """
        return f"[{_fmt(self.low, digits)}, {_fmt(self.high, digits)}]"

    def format(self, digits: int = 4) -> str:
        """``"value [low, high] (68% CL, n=N)"`` for tables and reports.

        Example:
            >>> Interval(0.5, 0.4, 0.6, 0.1, 0.68, 100, 1000).format()
            '0.5 [0.4, 0.6] (68% CL, n=100)'
        """
        return f"{_fmt(self.value, digits)} {self.bracket(digits)} ({100 * self.level:g}% CL, n={self.n})"


def _fmt(v: float, digits: int) -> str:
    if math.isfinite(v):
        return f"{v:.{digits}g}"
    return "inf" if v > 0 else ("-inf" if v < 0 else "nan")


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return float(level)


def _check_n_boot(n_boot: int) -> int:
    if int(n_boot) < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    return int(n_boot)


def check_interval_options(n_boot: int, level: float) -> None:
    """Refuse interval settings before any work starts (``n_boot`` 0 turns the bootstrap off).

    Example:
        >>> check_interval_options(1000, 0.68)
        >>> check_interval_options(1000, 68)
        Traceback (most recent call last):
        ...
        ValueError: level must lie in (0, 1), got 68
    """
    _check_level(level)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0 or 0 < n_boot < 10:
        raise ValueError(f"n_boot (--bootstrap) must be 0 (no bootstrap) or at least 10, got {n_boot!r}")


def proportion_interval(k: int, n: int, *, level: float = DEFAULT_LEVEL) -> Interval:
    """Clopper–Pearson (exact binomial) interval of the proportion ``k / n``.

    Args:
        k: Successes.
        n: Trials (> 0).
        level: Confidence level in (0, 1).

    Returns:
        The :class:`Interval` (``n_boot = 0``, ``method = "clopper-pearson"``); for
        ``n = 0`` the value and ends are NaN.

    Raises:
        ValueError: For ``k`` outside ``[0, n]`` or a bad level.

    Example:
        >>> iv = proportion_interval(100, 100, level=0.95)
        >>> iv.value, round(iv.low, 4), iv.high
        (1.0, 0.9638, 1.0)
    """
    level = _check_level(level)
    k, n = int(k), int(n)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, level, 0, 0, "clopper-pearson")
    if not 0 <= k <= n:
        raise ValueError(f"a proportion needs 0 <= k <= n, got k={k}, n={n}")
    a = (1 - level) / 2
    # Clopper–Pearson: the ends solve P(X >= k | low) = a and P(X <= k | high) = a
    low = float(beta.ppf(a, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - a, k + 1, n - k)) if k < n else 1.0
    p = k / n
    return Interval(p, low, high, math.sqrt(p * (1 - p) / n), level, n, 0, "clopper-pearson")


def resample_counts(
    n: int, *, strata: npt.ArrayLike | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = 0
) -> Iterator[FloatArray]:
    """Bootstrap multiplicities, in blocks: arrays ``(b, n)`` whose rows sum to ``n``.

    Each row is one replica: how many times each of the ``n`` rows is drawn. With
    ``strata`` the rows of each stratum are resampled within it (each stratum keeps its
    size). The blocks together hold ``n_boot`` replicas; the draws depend only on
    ``n``, the strata, ``n_boot`` and ``seed``.

    Example:
        >>> [c.sum(axis=1).tolist() for c in resample_counts(3, n_boot=2, seed=0)]
        [[3.0, 3.0]]
    """
    if n < 1:
        raise ValueError(f"the bootstrap needs at least 1 row, got {n}")
    if strata is None:
        groups = [np.arange(n)]
    else:
        st = np.asarray(strata)
        if st.shape != (n,):
            raise ValueError(f"strata must have one entry per row ({n}), got shape {st.shape}")
        groups = [np.flatnonzero(st == v) for v in np.unique(st)]
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ENTRIES // n)
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        idx = np.concatenate([g[rng.integers(0, g.size, (b, g.size))] for g in groups], axis=1)
        idx += (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _percentile(values: FloatArray, level: float) -> tuple[float, float, float, int]:
    """(low, high, std, number of finite replicas); ±inf replicas take part in the quantiles."""
    keep = ~np.isnan(values)
    arr = np.sort(values[keep])
    finite = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan, math.nan, 0
    # order statistics, no interpolation: well defined with infinite replicas
    lo = float(np.quantile(arr, (1 - level) / 2, method="lower"))
    hi = float(np.quantile(arr, (1 + level) / 2, method="higher"))
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return lo, hi, std, int(finite.size)


def _interval(value: float, reps: FloatArray, level: float, n: int, method: str) -> Interval:
    lo, hi, std, n_ok = _percentile(reps, level)
    return Interval(float(value), lo, hi, std, level, int(n), n_ok, method)


class _Ranked:
    """One sort of a discriminant, for the weighted AUC and ROC curve of many count vectors."""

    def __init__(self, positive: npt.NDArray[np.bool_], discriminant: FloatArray) -> None:
        self.order = np.argsort(discriminant, kind="mergesort")
        d = discriminant[self.order]
        #: last index of each tie group (ascending discriminant)
        self.ends = np.flatnonzero(np.r_[d[1:] != d[:-1], True])
        self.ties = self.ends.size < d.size
        self.pos = positive[self.order].astype(np.float64)

    def groups(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Signal and background weight per tie group, ascending discriminant: ``(b, G)`` each."""
        ws = np.take(w, self.order, axis=1)
        p = ws * self.pos
        q = ws - p
        if not self.ties:
            return p, q
        # group sums as differences of cumulative sums at the group ends
        return (
            np.diff(np.cumsum(p, axis=1)[:, self.ends], axis=1, prepend=0.0),
            np.diff(np.cumsum(q, axis=1)[:, self.ends], axis=1, prepend=0.0),
        )


def _auc_from_groups(p: FloatArray, q: FloatArray) -> FloatArray:
    """Weighted Mann–Whitney AUC: P(s_signal > s_background) + ½ P(tie)."""
    below = np.cumsum(q, axis=1) - q
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((p * (below + 0.5 * q)).sum(axis=1) / (p.sum(axis=1) * q.sum(axis=1)))


def _rejection_from_groups(p: FloatArray, q: FloatArray, efficiency: float) -> FloatArray:
    """1/ε_B at signal efficiency ``efficiency``, as :func:`aalearn.evaluation.background_rejection`."""
    tps = np.cumsum(p[:, ::-1], axis=1)
    fps = np.cumsum(q[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([np.zeros((len(p), 1)), tps / tps[:, -1:]], axis=1)
        fpr = np.concatenate([np.zeros((len(p), 1)), fps / fps[:, -1:]], axis=1)
    i = np.argmax(tpr >= efficiency, axis=1)[:, None]
    t1, f1 = np.take_along_axis(tpr, i, 1)[:, 0], np.take_along_axis(fpr, i, 1)[:, 0]
    im = np.maximum(i - 1, 0)
    t0, f0 = np.take_along_axis(tpr, im, 1)[:, 0], np.take_along_axis(fpr, im, 1)[:, 0]
    exact = (t1 == efficiency) | (i[:, 0] == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eps_b = np.where(exact, f1, f0 + (f1 - f0) * (efficiency - t0) / np.where(exact, 1.0, t1 - t0))
        return np.where(eps_b <= 0, np.inf, 1.0 / eps_b)


def _labels_scores(
    labels: npt.ArrayLike, scores: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None
) -> tuple[IntArray, FloatArray, FloatArray | None]:
    y = np.asarray(labels).astype(np.int64)
    s = check_array(scores, name="scores", ndim=1, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must have the same shape")
    if len(y) < 2:
        raise ValueError(f"the bootstrap needs at least 2 jets, got {len(y)}")
    w = None
    if sample_weight is not None:
        w = check_array(sample_weight, name="sample_weight", ndim=1, dtype=np.float64)
        if w.shape != s.shape or np.any(w < 0):
            raise ValueError("sample_weight must be non-negative with one weight per jet")
    return y, s, w


def bootstrap_metric(
    metric: Metric,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    n_boot: int = 200,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of any ``metric(labels, scores)`` (unstratified, one call per replica).

    The generic, slow path for a metric that is not a weighted sum; the figures of
    :func:`bootstrap_metrics` and :func:`bootstrap_aucs` are vectorised instead.

    Args:
        metric: Function of ``(labels, scores)``; replicas where it is NaN (for
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

    Example:
        >>> acc = lambda y, s: float(np.mean((s > 0.5) == y))
        >>> bootstrap_metric(acc, [0, 1, 0, 1], [0.2, 0.9, 0.7, 0.6], n_boot=20).value
        0.75
    """
    y, s, _ = _labels_scores(labels, scores)
    n_boot, level = _check_n_boot(n_boot), _check_level(level)
    rng = np.random.default_rng(seed)
    value = float(metric(y, s))
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        reps[b] = float(metric(y[idx], s[idx]))
    return _interval(value, reps, level, len(y), "bootstrap")


def bootstrap_metrics(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    signal_label: int = LABEL_TOP,
    signal_efficiencies: Sequence[float] = (0.3, 0.5),
    threshold: float = 0.5,
    sample_weight: npt.ArrayLike | None = None,
    n_boot: int = 200,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Mapping[str, Interval]:
    r"""AUC, accuracy and background rejection :math:`1/\varepsilon_B` at signal efficiencies, with intervals.

    The scores are :math:`P(\text{label}=1)` (aalearn's convention); the signal class
    (``signal_label``, top = 0 by default) is the positive class of the ROC curve, as in
    :func:`aalearn.evaluation.evaluate_scores`. AUC and rejections: bootstrap stratified
    by label (vectorised); accuracy (``score > threshold``): Clopper–Pearson, or the
    stratified bootstrap of the weighted accuracy when ``sample_weight`` is given.

    Returns:
        ``{"auc": ..., "accuracy": ..., "rejection_at_30": ..., ...}`` of :class:`Interval`.
        With a single class the AUC and rejection intervals are NaN (``n_boot = 0``).

    Raises:
        ValueError: For mismatched shapes, ``n_boot < 10`` or a bad level.

    Example:
        >>> r = bootstrap_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], n_boot=20)
        >>> r["auc"].value, r["accuracy"].value
        (0.75, 0.5)
    """
    y, s, w = _labels_scores(labels, scores, sample_weight)
    n_boot, level = _check_n_boot(n_boot), _check_level(level)
    kw: dict[str, Any] = {"n_boot": n_boot, "level": level, "seed": seed}
    positive = y == signal_label
    hits = ((s > threshold).astype(np.int64) == y).astype(np.float64)
    effs = [float(e) for e in signal_efficiencies]
    if positive.all() or not positive.any():  # AUC and rejection undefined, as in evaluate_scores
        nan = Interval(math.nan, math.nan, math.nan, math.nan, level, len(y), 0)
        one: dict[str, Interval] = {"auc": nan}
        if w is None:
            one["accuracy"] = proportion_interval(int(hits.sum()), len(y), level=level)
        else:
            one["accuracy"] = bootstrap_means({"h": hits * w, "w": w}, lambda m: m["h"] / m["w"], **kw)
        return {**one, **{f"rejection_at_{round(100 * e)}": nan for e in effs}}
    ranked = _Ranked(positive, s if signal_label == 1 else -s)
    base = np.ones((1, len(y))) if w is None else w[None, :]

    def stats(c: FloatArray) -> dict[str, FloatArray]:
        cw = c if w is None else c * w
        p, q = ranked.groups(cw)
        out = {"auc": _auc_from_groups(p, q)}
        for e in effs:
            out[f"rejection_at_{round(100 * e)}"] = _rejection_from_groups(p, q, e)
        if w is not None:
            out["accuracy"] = (cw @ hits) / cw.sum(axis=1)
        return out

    values = {k: float(v[0]) for k, v in stats(np.ones((1, len(y)))).items()}
    reps = _collect(stats, len(y), y, n_boot, seed)
    out: dict[str, Interval] = {"auc": _interval(values["auc"], reps["auc"], level, len(y), "bootstrap")}
    if w is None:
        out["accuracy"] = proportion_interval(int(hits.sum()), len(y), level=level)
    else:
        acc = float((base @ hits)[0] / base.sum())
        out["accuracy"] = _interval(acc, reps["accuracy"], level, len(y), "bootstrap")
    for e in effs:
        key = f"rejection_at_{round(100 * e)}"
        out[key] = _interval(values[key], reps[key], level, len(y), "bootstrap")
    return out


def _collect(
    stats: Callable[[FloatArray], Mapping[str, FloatArray]],
    n: int,
    strata: npt.ArrayLike | None,
    n_boot: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Every statistic on every replica, concatenated over the blocks of :func:`resample_counts`."""
    parts: dict[str, list[FloatArray]] = {}
    for counts in resample_counts(n, strata=strata, n_boot=n_boot, seed=seed):
        for k, v in stats(counts).items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def bootstrap_aucs(
    labels: npt.ArrayLike,
    scores: Mapping[str, npt.ArrayLike],
    *,
    differences: Sequence[tuple[str, str]] = (),
    signal_label: int = LABEL_TOP,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Interval]:
    """AUC intervals of several score vectors on the same jets, and paired intervals of their differences.

    All AUCs are recomputed on the **same** resampled jets (stratified by label), so a
    difference ``AUC[a] − AUC[b]`` gets a paired interval: the row-by-row correlation of
    the two scores (a model before and after an attack, two models on one test file)
    cancels, and the interval is narrower than the one from separate bootstraps.

    Args:
        labels: Labels ``(N,)``.
        scores: Name → scores :math:`P(\\text{label}=1)` ``(N,)``.
        differences: ``(a, b)`` pairs; each adds the key ``"a-b"``.
        signal_label: Label of the signal (positive) class.
        n_boot: Replicas (≥ 10).
        level: Confidence level.
        seed: Seed.

    Returns:
        Name → :class:`Interval`, and ``"a-b"`` → the paired interval of each difference.

    Raises:
        ValueError: For mismatched shapes, unknown names, a single class, or bad ``n_boot``/``level``.

    Example:
        >>> y = [0, 0, 1, 1]
        >>> r = bootstrap_aucs(y, {"clean": [0.1, 0.2, 0.8, 0.9], "adv": [0.6, 0.2, 0.4, 0.9]},
        ...                    differences=[("clean", "adv")], n_boot=20)
        >>> r["clean"].value, r["adv"].value, r["clean-adv"].value
        (1.0, 0.75, 0.25)
    """
    n_boot, level = _check_n_boot(n_boot), _check_level(level)
    y = np.asarray(labels).astype(np.int64)
    positive = y == signal_label
    if positive.all() or not positive.any():
        raise ValueError("an AUC interval needs jets of both classes")
    ranked: dict[str, _Ranked] = {}
    for name, sc in scores.items():
        _, s, _ = _labels_scores(y, sc)
        ranked[name] = _Ranked(positive, s if signal_label == 1 else -s)
    for a, b in differences:
        if a not in ranked or b not in ranked:
            raise ValueError(f"difference ({a!r}, {b!r}) names scores not given; known: {', '.join(ranked)}")

    def stats(c: FloatArray) -> dict[str, FloatArray]:
        out = {k: _auc_from_groups(*r.groups(c)) for k, r in ranked.items()}
        for a, b in differences:
            out[f"{a}-{b}"] = out[a] - out[b]
        return out

    values = {k: float(v[0]) for k, v in stats(np.ones((1, len(y)))).items()}
    reps = _collect(stats, len(y), y, n_boot, seed)
    paired = {f"{a}-{b}" for a, b in differences}
    return {
        k: _interval(values[k], reps[k], level, len(y), "paired bootstrap" if k in paired else "bootstrap")
        for k in values
    }


def bootstrap_means(
    columns: Mapping[str, npt.ArrayLike],
    statistic: MeanStatistic,
    *,
    strata: npt.ArrayLike | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    method: str = "bootstrap",
) -> Interval:
    """Bootstrap interval of a function of column means (paired: all columns resample the same rows).

    ``statistic`` receives, per replica, the mean of every column over the resampled rows
    (a mapping of name → ``(B,)`` arrays) and returns the figure per replica. Composite
    scores are of this form: the challenge's Task-1 score ``FR · exp(−20 MAD)`` (means of
    "fooled" and of the per-jet deviation) and Task-2 mixed accuracy (means of the clean
    and adversarial hits).

    Args:
        columns: Name → per-row values ``(N,)`` (all the same length).
        statistic: Function of the column means, vectorised over replicas.
        strata: Optional stratum per row (labels): rows are resampled within strata.
        n_boot: Replicas (≥ 10).
        level: Confidence level.
        seed: Seed.
        method: Label stored in the :class:`Interval` (``"paired bootstrap"`` for a difference).

    Returns:
        The :class:`Interval` (``value`` = the statistic of the full-sample means).

    Raises:
        ValueError: For columns of different lengths, NaN/inf, or bad ``n_boot``/``level``.

    Example:
        >>> iv = bootstrap_means({"a": [1.0, 0.0, 1.0, 1.0]}, lambda m: m["a"], n_boot=20)
        >>> iv.value, iv.n
        (0.75, 4)
    """
    n_boot, level = _check_n_boot(n_boot), _check_level(level)
    cols = {k: check_array(v, name=k, ndim=1, dtype=np.float64) for k, v in columns.items()}
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise ValueError(f"the columns must all have the same length, got {sorted(lengths)}")
    n = lengths.pop()
    if n < 1:
        raise ValueError("the bootstrap needs at least 1 row")
    names = list(cols)
    mat = np.stack([cols[k] for k in names], axis=1)  # (N, K)

    def stats(c: FloatArray) -> dict[str, FloatArray]:
        means = (c @ mat) / n
        return {
            "stat": np.asarray(statistic({k: means[:, j] for j, k in enumerate(names)}), dtype=np.float64)
        }

    value = float(stats(np.ones((1, n)))["stat"][0])
    reps = _collect(stats, n, strata, n_boot, seed)["stat"]
    return _interval(value, reps, level, n, method)


def challenge_score_intervals(
    fooled: npt.ArrayLike,
    deviation: npt.ArrayLike,
    *,
    strata: npt.ArrayLike | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Interval]:
    r"""Intervals of the challenge's Task-1 score :math:`\mathrm{FR}\,e^{-20\,\mathrm{MAD}}` and its parts.

    ECML-PKDD 2025 "Colliding with Adversaries", Task 1: FR is the fraction of jets
    misclassified after the attack and MAD the mean over jets of the per-jet mean
    :math:`|x_{adv} - x|`.

    Args:
        fooled: Per jet, whether the adversarial jet is misclassified ``(N,)``.
        deviation: Per jet, the mean over features of :math:`|x_{adv} - x|` ``(N,)``.
        strata: Optional labels for a stratified bootstrap.
        n_boot: Replicas.
        level: Confidence level.
        seed: Seed.

    Returns:
        ``score`` (bootstrap of the composite, FR and MAD resampled together),
        ``fooling_ratio`` (Clopper–Pearson) and ``mad`` (bootstrap).

    Example:
        >>> r = challenge_score_intervals([1, 1, 0, 1], [0.01, 0.0, 0.02, 0.01], n_boot=20)
        >>> round(r["score"].value, 4)  # 0.75 * exp(-20 * 0.01)
        0.614
    """
    f = check_array(fooled, name="fooled", ndim=1, dtype=np.float64)
    d = check_array(deviation, name="deviation", ndim=1, dtype=np.float64)
    if f.shape != d.shape:
        raise ValueError(f"fooled {f.shape} and deviation {d.shape} must have the same shape")
    kw: dict[str, Any] = {"strata": strata, "n_boot": n_boot, "level": level, "seed": seed}
    return {
        "score": bootstrap_means(
            {"fr": f, "mad": d}, lambda m: m["fr"] * np.exp(-20.0 * m["mad"]), method="paired bootstrap", **kw
        ),
        "fooling_ratio": proportion_interval(int(f.sum()), len(f), level=level),
        "mad": bootstrap_means({"mad": d}, lambda m: m["mad"], **kw),
    }


def mixed_accuracy_intervals(
    hit_clean: npt.ArrayLike,
    hit_adversarial: npt.ArrayLike,
    *,
    strata: npt.ArrayLike | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Interval]:
    r"""Intervals of the challenge's Task-2 mixed accuracy :math:`(\mathrm{Acc}_c + \mathrm{Acc}_{adv})/2`.

    The adversarial file is row-paired with the clean one, so the mixed accuracy and the
    accuracy drop are bootstrapped over jets with both hits of a jet kept together.

    Args:
        hit_clean: Per jet, whether the clean jet is classified correctly ``(N,)``.
        hit_adversarial: Per jet, whether its adversarial twin is ``(N,)``.
        strata: Optional labels for a stratified bootstrap.
        n_boot: Replicas.
        level: Confidence level.
        seed: Seed.

    Returns:
        ``clean_accuracy`` and ``adversarial_accuracy`` (Clopper–Pearson),
        ``mixed_accuracy`` and ``accuracy_drop`` (clean − adversarial; paired bootstrap).

    Example:
        >>> r = mixed_accuracy_intervals([1, 1, 1, 1], [0, 0, 0, 0], n_boot=20)
        >>> r["mixed_accuracy"].low, r["mixed_accuracy"].high  # every jet contributes exactly 1/2
        (0.5, 0.5)
    """
    hc = check_array(hit_clean, name="hit_clean", ndim=1, dtype=np.float64)
    ha = check_array(hit_adversarial, name="hit_adversarial", ndim=1, dtype=np.float64)
    if hc.shape != ha.shape:
        raise ValueError(f"hit_clean {hc.shape} and hit_adversarial {ha.shape} must be row-paired")
    kw: dict[str, Any] = {"strata": strata, "n_boot": n_boot, "level": level, "seed": seed}
    cols = {"c": hc, "a": ha}
    return {
        "clean_accuracy": proportion_interval(int(hc.sum()), len(hc), level=level),
        "adversarial_accuracy": proportion_interval(int(ha.sum()), len(ha), level=level),
        "mixed_accuracy": bootstrap_means(
            cols, lambda m: 0.5 * (m["c"] + m["a"]), method="paired bootstrap", **kw
        ),
        "accuracy_drop": bootstrap_means(cols, lambda m: m["c"] - m["a"], method="paired bootstrap", **kw),
    }


def attack_intervals(
    result: Any,
    *,
    signal_label: int = LABEL_TOP,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals of the figures of an attack, from the per-jet arrays of its result.

    ``result`` is an :class:`aalearn.attacks.AttackResult` (read through its attributes
    ``x``, ``x_adv``, ``labels``, ``attacked``, ``success``, ``decision_clean``,
    ``decision_adv``, ``score_clean``, ``score_adv``, ``physical_violations``), with the
    definitions of that class:

    * ``fooling_ratio`` — fooled among attacked jets; ``unphysical_fraction``;
      ``accuracy_clean`` and ``accuracy`` (under attack): Clopper–Pearson;
    * ``accuracy_drop`` — clean − attacked accuracy, paired bootstrap;
    * ``mad``, ``challenge_score`` (:func:`challenge_score_intervals`; FR = 1 − accuracy
      under attack, or the flip fraction without labels): bootstrap;
    * ``auc_clean``, ``auc`` (under attack) and ``auc_drop`` (clean − attacked, paired):
      stratified bootstrap, when both classes and scores are present.

    Example:
        >>> attack_intervals  # doctest: +ELLIPSIS
        <function attack_intervals at ...>
    """
    x = np.asarray(result.x, dtype=np.float64)
    x_adv = np.asarray(result.x_adv, dtype=np.float64)
    n = int(x.shape[0])
    attacked = np.asarray(result.attacked, dtype=bool)
    success = np.asarray(result.success, dtype=bool)
    unphysical = np.zeros(n, dtype=bool)
    for v in result.physical_violations.values():
        unphysical |= np.asarray(v, dtype=bool)
    out: dict[str, Interval] = {
        "fooling_ratio": proportion_interval(
            int((success & attacked).sum()), int(attacked.sum()), level=level
        ),
        "unphysical_fraction": proportion_interval(int(unphysical.sum()), n, level=level),
    }
    if n == 0:
        return out
    labels = None if result.labels is None else np.asarray(result.labels, dtype=np.int64)
    kw: dict[str, Any] = {"strata": labels, "n_boot": n_boot, "level": level, "seed": seed}
    dec_adv = np.asarray(result.decision_adv, dtype=np.int64)
    dec_clean = np.asarray(result.decision_clean, dtype=np.int64)
    deviation = np.abs(x_adv - x).reshape(n, -1).mean(axis=1) if x.size else np.zeros(n)
    if labels is None:
        fooled = dec_adv != dec_clean
    else:
        hit_clean, hit_adv = dec_clean == labels, dec_adv == labels
        fooled = ~hit_adv
        out["accuracy_clean"] = proportion_interval(int(hit_clean.sum()), n, level=level)
        out["accuracy"] = proportion_interval(int(hit_adv.sum()), n, level=level)
        out["accuracy_drop"] = mixed_accuracy_intervals(hit_clean, hit_adv, **kw)["accuracy_drop"]
    score = challenge_score_intervals(fooled, deviation, **kw)
    out["mad"], out["challenge_score"] = score["mad"], score["score"]
    if (
        labels is not None
        and result.score_adv is not None
        and result.score_clean is not None
        and np.unique(labels).size == 2
    ):
        aucs = bootstrap_aucs(
            labels,
            {"auc_clean": result.score_clean, "auc": result.score_adv},
            differences=[("auc_clean", "auc")],
            signal_label=signal_label,
            n_boot=n_boot,
            level=level,
            seed=seed,
        )
        out["auc_clean"], out["auc"], out["auc_drop"] = aucs["auc_clean"], aucs["auc"], aucs["auc_clean-auc"]
    return out
