r"""Classifier two-sample test (C2ST) and the classifier-weight map of where a surrogate fails.

C2ST (Lopez-Paz & Oquab, ICLR 2017, arXiv:1610.06545): a classifier learns to tell the
candidate (label 1) from the reference (label 0) on a training split; on the held-out
split its ROC AUC is 0.5 when the two samples come from one distribution.

* **Null.** For a classifier fixed before the test split is seen, the held-out AUC is
  the Mann-Whitney statistic :math:`U/(n_0 n_1)` of the scores; under the null its
  label-permutation distribution is known, :math:`\mathcal N(\tfrac12, \frac{n_0+n_1+1}{12 n_0 n_1})`
  with a tie correction (:func:`scipy.stats.mannwhitneyu`, one-sided: AUC > 0.5). No
  classifier has to be retrained for the null.
* **Where it fails.** With :math:`D(x) = P(\text{reference}\mid x)` the weight
  :math:`w = D/(1-D)` (times the training-class ratio) estimates the density ratio
  :math:`p_\mathrm{ref}(x)/p_\mathrm{cand}(x)` (Das et al., arXiv:2305.16774). Averaged over
  the held-out candidate events in a bin of one feature it estimates
  :math:`P_\mathrm{ref}(\text{bin})/P_\mathrm{cand}(\text{bin})`, including differences
  that only show in correlations: :math:`w > 1` means the surrogate under-populates
  the region, :math:`w < 1` that it over-populates it. Bins hold equal shares of the
  reference; :class:`WeightRegion` lists them with :math:`z = (\bar w - 1)/(s_w/\sqrt n)`.
  Where the candidate leaves a bin (nearly) empty, the held-out reference events give the
  inverse estimate (mean :math:`1/w`). Both sets of weights are self-normalised
  (:math:`\langle w\rangle_\mathrm{cand} = \langle 1/w\rangle_\mathrm{ref} = 1`, as exact density
  ratios would be), removing a global calibration bias of the classifier.

**Weighted candidate.** With ``candidate_weights`` :math:`s_i` (for example spectrum
weights, :mod:`aalearn.data.reweight`) the test compares the reference with the
*reweighted* candidate: the classifier is fitted with sample weights (candidate weights
normalised to the candidate count, reference weight 1), the held-out AUC is
:func:`sklearn.metrics.roc_auc_score` with ``sample_weight``, and the null is the
normal approximation of the Mann-Whitney statistic with the candidate's Kish effective
size :math:`n_1^\mathrm{eff} = (\sum s)^2/\sum s^2` in place of :math:`n_1`. The weight
map then averages :math:`w` over the held-out candidate events resampled in proportion
to :math:`s` (it estimates :math:`P_\mathrm{ref}/P_\mathrm{cand,s}` per bin). Only the
``"hgb"`` classifier takes weights.

Classifiers: scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
(default; strong on tabular features, Kansal et al. found classifier AUCs blind to some
mass distortions, so C2ST complements FPD/KPD rather than replacing them) or an
:class:`~sklearn.neural_network.MLPClassifier` on standardised features.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(2000, 2))
    >>> cand = rng.normal(size=(2000, 2)) * [1.0, 1.5]  # too wide in feature "b"
    >>> result = c2st(ref, cand, feature_names=["a", "b"], seed=0)
    >>> result.auc > 0.55, result.pvalue < 1e-6
    (True, True)
    >>> result.top_regions(1)[0].feature
    'b'
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from aalearn.core.jsonutil import to_jsonable
from aalearn.surrogates.metrics import check_feature_pair
from aalearn.surrogates.null import pvalue_to_sigma

__all__ = ["CLASSIFIERS", "C2STResult", "WeightRegion", "c2st", "classifier_weights", "weight_regions"]

FloatArray = npt.NDArray[np.float64]

#: Classifier names accepted by :func:`c2st`.
CLASSIFIERS: tuple[str, ...] = ("hgb", "mlp")
_CLIP = 1e-6


@dataclass(frozen=True)
class WeightRegion:
    """Mean classifier weight of the candidate events in one bin of one feature.

    Attributes:
        feature: Feature name.
        lo: Lower bin edge (``-inf`` for the first bin).
        hi: Upper bin edge (``inf`` for the last bin).
        n: Held-out events behind the estimate (candidate events, or reference events
            where the candidate has too few).
        mean_weight: Estimate of :math:`P_\\mathrm{ref}/P_\\mathrm{cand}` in the bin (mean
            :math:`w` over candidate events, or the inverse of the mean :math:`1/w` over reference events).
        z: Significance of the deviation from 1, positive when the surrogate under-populates the bin.
    """

    feature: str
    lo: float
    hi: float
    n: int
    mean_weight: float
    z: float

    def describe(self) -> str:
        """One line such as ``"b in [1.2, inf): w = 0.41 (surrogate over-populates, z = -9.3)"``.

        Example:
            >>> WeightRegion("m", 1.0, 2.0, 50, 2.0, 4.0).describe()
            'm in [1, 2): w = 2 (surrogate under-populates, z = 4.0)'
        """
        kind = "under-populates" if self.mean_weight > 1 else "over-populates"
        return (
            f"{self.feature} in [{self.lo:.4g}, {self.hi:.4g}): w = {self.mean_weight:.3g} "
            f"(surrogate {kind}, z = {self.z:.1f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (infinite edges become ``None``)."""
        out: dict[str, Any] = to_jsonable(
            {
                "feature": self.feature,
                "lo": self.lo,
                "hi": self.hi,
                "n": self.n,
                "mean_weight": self.mean_weight,
                "z": self.z,
                "description": self.describe(),
            }
        )
        return out


@dataclass(frozen=True)
class C2STResult:
    """Outcome of :func:`c2st`.

    Attributes:
        auc: Held-out ROC AUC (candidate = positive class).
        pvalue: One-sided Mann-Whitney p-value of AUC > 0.5.
        significance: :math:`\\Phi^{-1}(1-p)` in σ.
        auc_null_std: Standard deviation of the AUC under the null, :math:`\\sqrt{(n_0+n_1+1)/(12 n_0 n_1)}`.
        n_train: Training events (both samples).
        n_test: Held-out events (both samples).
        classifier: ``"hgb"`` or ``"mlp"``.
        regions: Every (feature, bin) of the weight map, largest :math:`|z|` first.
        weights: Held-out candidate events' weights :math:`w`.
        weighted: Whether the candidate carried sample weights (``candidate_weights``).
    """

    auc: float
    pvalue: float
    significance: float
    auc_null_std: float
    n_train: int
    n_test: int
    classifier: str
    regions: tuple[WeightRegion, ...] = ()
    weights: FloatArray = field(default_factory=lambda: np.zeros(0))
    weighted: bool = False

    def top_regions(self, k: int = 3, *, min_abs_z: float = 3.0) -> list[WeightRegion]:
        """The ``k`` regions with the largest :math:`|z|` that reach ``min_abs_z``.

        Example:
            >>> r = C2STResult(0.5, 0.5, 0.0, 0.01, 10, 10, "hgb", (WeightRegion("a", 0, 1, 9, 1.0, 0.1),))
            >>> r.top_regions()
            []
        """
        return [r for r in self.regions if abs(r.z) >= min_abs_z][: max(0, int(k))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with the top regions (not the per-event weights)."""
        out: dict[str, Any] = to_jsonable(
            {
                "auc": self.auc,
                "pvalue": self.pvalue,
                "significance": self.significance,
                "auc_null_std": self.auc_null_std,
                "n_train": self.n_train,
                "n_test": self.n_test,
                "classifier": self.classifier,
                "top_regions": [r.to_dict() for r in self.top_regions(5)],
                **({"weighted": True} if self.weighted else {}),
            }
        )
        return out


def classifier_weights(p_candidate: npt.ArrayLike, *, class_ratio: float = 1.0) -> FloatArray:
    r"""Weights :math:`w = D/(1-D)` times ``class_ratio``, :math:`D = 1 - p_\mathrm{cand}` = P(reference | x).

    ``class_ratio`` = (candidate training events) / (reference training events) corrects
    for unequal class sizes, so that :math:`w` estimates :math:`p_\mathrm{ref}/p_\mathrm{cand}`.
    Probabilities are clipped to :math:`[10^{-6}, 1-10^{-6}]`.

    Example:
        >>> classifier_weights([0.5, 0.2]).round(6).tolist()
        [1.0, 4.0]
    """
    p = np.clip(np.asarray(p_candidate, dtype=np.float64), _CLIP, 1.0 - _CLIP)
    d = 1.0 - p
    out: FloatArray = d / (1.0 - d) * float(class_ratio)
    return out


def _ratio_estimate(w: FloatArray, inverse: bool) -> tuple[float, float]:
    """``(P_ref/P_cand estimate, z)`` from the weights of the events in one bin."""
    values = 1.0 / w if inverse else w
    mean = float(values.mean())
    se = float(values.std(ddof=1)) / math.sqrt(values.size)
    z = (mean - 1.0) / se if se > 0 else (0.0 if mean == 1.0 else math.copysign(math.inf, mean - 1.0))
    if inverse:  # mean of 1/w over reference events estimates P_cand/P_ref
        return (1.0 / mean if mean > 0 else math.inf), -z
    return mean, z


def weight_regions(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    weights: npt.ArrayLike,
    *,
    reference_events: npt.ArrayLike | None = None,
    reference_weights: npt.ArrayLike | None = None,
    feature_names: Sequence[str] | None = None,
    bins: int = 10,
    min_count: int = 10,
) -> list[WeightRegion]:
    r"""Classifier-weight estimates of :math:`P_\mathrm{ref}/P_\mathrm{cand}` per reference-quantile bin.

    Largest :math:`|z|` first.

    In each bin the ratio is estimated from the candidate events (mean :math:`w`, as the
    reweighting of Das et al.); where the candidate has fewer than ``min_count`` events,
    from the held-out reference events when given (the inverse of the mean :math:`1/w`,
    which estimates :math:`P_\mathrm{cand}/P_\mathrm{ref}`), so that a region the
    candidate leaves empty is still found.

    Args:
        reference: ``(N, F)`` reference events (define the bin edges).
        candidate: ``(M, F)`` candidate events carrying ``weights``.
        weights: ``(M,)`` classifier weights of the candidate events.
        reference_events: ``(K, F)`` held-out reference events carrying ``reference_weights``.
        reference_weights: ``(K,)`` their classifier weights.
        feature_names: ``F`` names (default ``feature_0`` ...).
        bins: Quantile bins per feature.
        min_count: Estimates from fewer events in a bin are skipped.

    Returns:
        The regions (``z > 0``: the surrogate under-populates the bin).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref, cand = rng.normal(size=(1000, 1)), rng.normal(size=(1000, 1))
        >>> w = np.where(cand[:, 0] > 1.0, 3.0, 1.0)
        >>> weight_regions(ref, cand, w, feature_names=["x"])[0].mean_weight
        3.0
    """
    x, y = check_feature_pair(reference, candidate)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(y),):
        raise ValueError(f"weights must have shape ({len(y)},), got {w.shape}")
    sides: list[tuple[FloatArray, FloatArray, bool]] = [(y, w, False)]
    if reference_events is not None:
        r_x, _ = check_feature_pair(reference_events, x, names=("reference_events", "reference"))
        r_w = np.asarray(reference_weights, dtype=np.float64)
        if r_w.shape != (len(r_x),):
            raise ValueError(f"reference_weights must have shape ({len(r_x)},), got {r_w.shape}")
        sides.append((r_x, r_w, True))
    names = _names(feature_names, x.shape[1])
    out: list[WeightRegion] = []
    for j, name in enumerate(names):
        inner = np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
        for b in range(len(edges) - 1):
            for events, ev_w, inverse in sides:  # the candidate side first, the reference side if it is empty
                which = np.searchsorted(edges, events[:, j], side="right") - 1
                wb = ev_w[which == b]
                if wb.size >= min_count:
                    ratio, z = _ratio_estimate(wb, inverse)
                    out.append(
                        WeightRegion(name, float(edges[b]), float(edges[b + 1]), int(wb.size), ratio, z)
                    )
                    break
    out.sort(key=lambda r: -abs(r.z))
    return out


def _names(feature_names: Sequence[str] | None, n: int) -> list[str]:
    if feature_names is None:
        return [f"feature_{j}" for j in range(n)]
    names = [str(v) for v in feature_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} feature names for {n} feature columns")
    return names


def _thread_limit(n_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Limit OpenMP/BLAS threads through threadpoolctl (a scikit-learn dependency)."""
    if n_threads is None:
        return contextlib.nullcontext()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

    return threadpool_limits(limits=n_threads)


def _classifier(name: str, seed: int, max_iter: int) -> Any:
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=max_iter,
            early_stopping=True,
            validation_fraction=0.2,
            n_iter_no_change=10,
            random_state=seed,
        )
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64, 64), early_stopping=True, max_iter=max_iter, random_state=seed),
    )


def c2st(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
    classifier: str = "hgb",
    test_fraction: float = 0.5,
    bins: int = 10,
    max_iter: int = 200,
    seed: int = 0,
    n_threads: int | None = None,
    candidate_weights: npt.ArrayLike | None = None,
) -> C2STResult:
    """Classifier two-sample test with its Mann-Whitney null and the weight map (module docstring).

    Args:
        reference: ``(N, F)`` reference sample.
        candidate: ``(M, F)`` candidate sample.
        feature_names: ``F`` names for the weight map.
        classifier: ``"hgb"`` (histogram gradient boosting) or ``"mlp"``.
        test_fraction: Held-out share of each sample (stratified split).
        bins: Quantile bins per feature in the weight map.
        max_iter: Boosting iterations / MLP epochs (early stopping on 20 % of the training split).
        seed: Seed of the split and the classifier.
        n_threads: Limit the classifier's OpenMP/BLAS threads (``None``: the libraries' default).
            On a machine shared with other jobs one thread can be far faster than
            oversubscribed OpenMP threads.
        candidate_weights: Optional non-negative ``(M,)`` sample weights of the candidate:
            test the reweighted candidate (module docstring; ``"hgb"`` only).

    Returns:
        The :class:`C2STResult`.

    Raises:
        ValueError: For an unknown classifier, a ``test_fraction`` outside (0, 1), NaN/inf
            or samples too small to hold out 10 events of each class.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(map(repr, CLASSIFIERS))}, got {classifier!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    x, y = check_feature_pair(reference, candidate, min_rows=20)
    names = _names(feature_names, x.shape[1])
    s_cand = _candidate_weights(candidate_weights, len(y), classifier)
    data = np.concatenate([x, y])
    labels = np.concatenate([np.zeros(len(x), dtype=np.int64), np.ones(len(y), dtype=np.int64)])
    if s_cand is not None:
        return _weighted_c2st(
            x,
            data,
            labels,
            np.concatenate([np.ones(len(x)), s_cand]),
            names,
            test_fraction=float(test_fraction),
            bins=bins,
            max_iter=int(max_iter),
            seed=seed,
            n_threads=n_threads,
        )
    x_tr, x_te, l_tr, l_te = train_test_split(
        data, labels, test_size=float(test_fraction), stratify=labels, random_state=seed
    )
    n0, n1 = int(np.sum(l_te == 0)), int(np.sum(l_te == 1))
    if min(n0, n1) < 10 or min(np.sum(l_tr == 0), np.sum(l_tr == 1)) < 10:
        raise ValueError(
            "C2ST needs at least 10 events of each sample in both the training and the test split"
        )
    model = _classifier(classifier, seed, int(max_iter))
    with _thread_limit(n_threads):
        model.fit(x_tr, l_tr)
        score = model.predict_proba(x_te)[:, 1]
    auc = float(roc_auc_score(l_te, score))
    mw = stats.mannwhitneyu(score[l_te == 1], score[l_te == 0], alternative="greater", method="asymptotic")
    p = float(mw.pvalue)
    ratio = float(np.sum(l_tr == 1)) / float(np.sum(l_tr == 0))
    w = classifier_weights(score[l_te == 1], class_ratio=ratio)
    w_ref = classifier_weights(score[l_te == 0], class_ratio=ratio)
    # self-normalise: E_cand[w] = E_ref[1/w] = 1 for exact density ratios; dividing by the
    # sample means removes a global calibration bias of the classifier from the bin estimates
    w = w / w.mean()
    w_ref = 1.0 / ((1.0 / w_ref) / np.mean(1.0 / w_ref))
    regions = weight_regions(
        x,
        x_te[l_te == 1],
        w,
        reference_events=x_te[l_te == 0],
        reference_weights=w_ref,
        feature_names=names,
        bins=bins,
    )
    return C2STResult(
        auc=auc,
        pvalue=p,
        significance=pvalue_to_sigma(p),
        auc_null_std=math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)),
        n_train=len(l_tr),
        n_test=len(l_te),
        classifier=classifier,
        regions=tuple(regions),
        weights=w,
    )


def _candidate_weights(weights: npt.ArrayLike | None, n: int, classifier: str) -> FloatArray | None:
    if weights is None:
        return None
    if classifier != "hgb":
        raise ValueError(f"candidate_weights need the 'hgb' classifier, got {classifier!r}")
    s = np.asarray(weights, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"candidate_weights must have shape ({n},), got {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or not np.any(s > 0):
        raise ValueError("candidate_weights must be finite, non-negative, with at least one positive weight")
    return s


def _weighted_c2st(
    x_ref: FloatArray,
    data: FloatArray,
    labels: npt.NDArray[np.int64],
    sample_weight: FloatArray,
    names: list[str],
    *,
    test_fraction: float,
    bins: int,
    max_iter: int,
    seed: int,
    n_threads: int | None,
) -> C2STResult:
    """C2ST of the reference against the reweighted candidate (module docstring)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x_tr, x_te, l_tr, l_te, s_tr, s_te = train_test_split(
        data, labels, sample_weight, test_size=test_fraction, stratify=labels, random_state=seed
    )
    if min(np.sum(l_te == 0), np.sum(l_te == 1), np.sum(l_tr == 0), np.sum(l_tr == 1)) < 10:
        raise ValueError(
            "C2ST needs at least 10 events of each sample in both the training and the test split"
        )
    # candidate weights normalised to the candidate count in each split: the class balance is unchanged
    for s_part, l_part in ((s_tr, l_tr), (s_te, l_te)):
        cand = l_part == 1
        total = s_part[cand].sum()
        if total <= 0:
            raise ValueError("the candidate's weights are all zero in one split of the C2ST")
        s_part[cand] *= cand.sum() / total
    model = _classifier("hgb", seed, max_iter)
    with _thread_limit(n_threads):
        model.fit(x_tr, l_tr, sample_weight=s_tr)
        score = model.predict_proba(x_te)[:, 1]
    auc = float(roc_auc_score(l_te, score, sample_weight=s_te))
    n0 = float(np.sum(l_te == 0))
    s1 = s_te[l_te == 1]
    n1_eff = float(s1.sum() ** 2 / np.sum(s1**2))
    null_std = math.sqrt((n0 + n1_eff + 1) / (12.0 * n0 * n1_eff))
    p = float(stats.norm.sf((auc - 0.5) / null_std))
    ratio = float(np.sum(s_tr[l_tr == 1])) / float(np.sum(l_tr == 0))
    w = classifier_weights(score[l_te == 1], class_ratio=ratio)
    w_ref = classifier_weights(score[l_te == 0], class_ratio=ratio)
    # self-normalise as in the unweighted test, with the candidate's sample weights
    w = w / (np.sum(s1 * w) / np.sum(s1))
    w_ref = 1.0 / ((1.0 / w_ref) / np.mean(1.0 / w_ref))
    # the map's bins average w over the weighted candidate: resample the held-out candidate ∝ s
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(s1), size=len(s1), replace=True, p=s1 / s1.sum())
    regions = weight_regions(
        x_ref,
        x_te[l_te == 1][pick],
        w[pick],
        reference_events=x_te[l_te == 0],
        reference_weights=w_ref,
        feature_names=names,
        bins=bins,
    )
    return C2STResult(
        auc=auc,
        pvalue=p,
        significance=pvalue_to_sigma(p),
        auc_null_std=null_std,
        n_train=len(l_tr),
        n_test=len(l_te),
        classifier="hgb",
        regions=tuple(regions),
        weights=w,
        weighted=True,
    )
