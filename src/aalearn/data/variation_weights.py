r"""Modelling variations as per-jet weights of the nominal jets: a classifier's density ratio.

A generator variation (``aalearn generate --variation fsr-up``) is a *separate* sample of
jets. Its histogram, set against the nominal one, carries the statistical noise of both
samples, and with a few thousand jets per class that noise can be as large as the
variation itself (``aalearn measure`` warns when a variation is compatible with noise). A
classifier trained to tell the nominal jets :math:`x \sim p_0` from the varied ones
:math:`x \sim p_1` estimates the density ratio

.. math::

    r(x) = \frac{p_1(x)}{p_0(x)} = \frac{s(x)}{1 - s(x)}\,\frac{\pi_0}{\pi_1},

with :math:`s(x)` the classifier's probability of "varied" and :math:`\pi_k` the class
priors of its training set (equal here: the two samples are weighted to the same total).
Weighting each nominal jet by :math:`r(x)` turns it into the varied sample, so the varied
template shares the nominal template's jets: the difference between them is a smooth
function of the jet, fitted once, with no statistical noise of a separate sample. This is
CARL (Cranmer, Pavez & Louppe, arXiv:1506.02169) and DCTR (Andreassen & Nachman,
arXiv:1907.08209); ATLAS uses the same construction for its parton-shower and generator
uncertainties. Pythia's own shower-variation weights would be the other route: they
reproduce only part of a dedicated sample's multiplicity shift (measured for issue 20,
``benchmarks/bench_inferno_jets.py``).

Here the classifier is scikit-learn's histogram gradient boosting
(:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, early stopping on a held-out
quarter) on eight jet observables computed from the jet's constituents
(:data:`aalearn.physics.jets.JET_FEATURES`: pT, mass, multiplicity, width, the two leading
constituents' pT fractions, :math:`\tau_{21}`, :math:`\tau_{32}`), which carry the shower's
effect on a jet in a few dimensions the fit can resolve with thousands of jets; the ratio is
clipped to ``clip`` (the classifier's tails are its least certain part). Fit it per class
(top and W separately): the variation moves the two differently.

**Check the closure.** On jets the fit has not seen, the nominal jets weighted by
:math:`r` must reproduce the varied sample's distributions (:meth:`DensityRatio.closure`:
χ² of the weighted nominal against the varied histogram of any score, e.g. the tagger's).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.normal(0.0, 1.0, (4000, 2))
    >>> x1 = rng.normal(0.3, 1.0, (4000, 2))  # the "varied" sample, shifted by 0.3
    >>> ratio = fit_density_ratio(x0, x1, observables=None, seed=0)
    >>> w = ratio.weights(x0)
    >>> bool(abs(np.average(x0[:, 0], weights=w) - 0.3) < 0.1)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier

from aalearn.core.validation import check_array
from aalearn.physics.jets import JET_FEATURES, constituent_jet_features
from aalearn.physics.preprocessing import features_to_constituents

__all__ = ["DensityRatio", "closure_chi2", "fit_density_ratio", "jet_observables"]

FloatArray = npt.NDArray[np.float64]
#: Observables of the density-ratio fit (names of :func:`jet_observables`' columns).
OBSERVABLES: tuple[str, ...] = JET_FEATURES


def jet_observables(x: npt.ArrayLike) -> FloatArray:
    """The :data:`OBSERVABLES` of jets in the challenge's 87-feature layout.

    The pT columns stay in the file's units (the ratio fit does not care about the scale).

    Example:
        >>> jet_observables(np.zeros((2, 87))).shape
        (2, 8)
    """
    arr = check_array(x, name="jets", ndim=2, dtype=np.float64)
    out: FloatArray = constituent_jet_features(features_to_constituents(arr))
    return out


@dataclass
class DensityRatio:
    """A fitted density ratio :math:`p_1(x)/p_0(x)` (:func:`fit_density_ratio`).

    Attributes:
        model: The fitted classifier (probability of the varied sample).
        observables: Map from the jets' features to the classifier's inputs (``None``:
            the features themselves).
        clip: ``(low, high)`` bounds of the ratio.
        n_nominal: Jets of the nominal sample in the fit.
        n_varied: Jets of the varied sample in the fit.
    """

    model: Any
    observables: Callable[[npt.ArrayLike], FloatArray] | None
    clip: tuple[float, float]
    n_nominal: int
    n_varied: int

    def _inputs(self, x: npt.ArrayLike) -> FloatArray:
        arr = check_array(x, name="jets", ndim=2, dtype=np.float64)
        return arr if self.observables is None else self.observables(arr)

    def weights(self, x: npt.ArrayLike) -> FloatArray:
        r"""Per-jet weights :math:`r(x)` that turn nominal jets ``x`` into the varied sample."""
        s = np.clip(self.model.predict_proba(self._inputs(x))[:, 1], 1e-12, 1 - 1e-12)
        return np.clip(s / (1.0 - s), *self.clip)

    def closure(
        self,
        score_nominal: npt.ArrayLike,
        x_nominal: npt.ArrayLike,
        score_varied: npt.ArrayLike,
        bins: int = 10,
    ) -> dict[str, float]:
        r"""χ² of the weighted nominal against the varied histogram of a score, before and after.

        ``score_nominal``/``x_nominal``: a score (any function of the jet, e.g. a tagger's
        output) and the features of nominal jets *not used in the fit*; ``score_varied``:
        the score of varied jets not used in the fit. Bins: quantiles of the nominal score.
        The variance per bin is that of the two normalised histograms (weighted:
        :math:`\sum w^2/(\sum w)^2`), so :math:`\chi^2/\text{ndf} \approx 1` after
        reweighting means the weights reproduce the varied sample within its statistics.

        Returns:
            ``chi2_raw``, ``chi2_weighted`` and ``ndf`` (= ``bins`` − 1).
        """
        return closure_chi2(score_nominal, self.weights(x_nominal), score_varied, bins)


def closure_chi2(
    score_nominal: npt.ArrayLike,
    weights: npt.ArrayLike,
    score_varied: npt.ArrayLike,
    bins: int = 10,
) -> dict[str, float]:
    r"""χ² of the weighted nominal against the varied histogram of a score, before and after weighting.

    Bins: quantiles of the nominal score (the outer edges widened to the varied scores). The
    variance per bin is that of the two normalised histograms (weighted:
    :math:`\sum w^2/(\sum w)^2`); bins of zero variance are left out.

    Args:
        score_nominal: A score of nominal jets not used in the ratio's fit.
        weights: Their weights (the ratio, or a mean of cross-fitted ratios).
        score_varied: The score of varied jets not used in the fit.
        bins: Number of quantile bins.

    Returns:
        ``chi2_raw`` (unit weights), ``chi2_weighted`` and ``ndf`` (bins − 1).

    Example:
        >>> s = np.linspace(0.0, 1.0, 1001)
        >>> closure_chi2(s, np.ones_like(s), s)["chi2_weighted"]
        0.0
    """
    s0 = check_array(score_nominal, name="score_nominal", ndim=1, dtype=np.float64)
    w0 = check_array(weights, name="weights", ndim=1, dtype=np.float64)
    s1 = check_array(score_varied, name="score_varied", ndim=1, dtype=np.float64)
    if w0.shape != s0.shape:
        raise ValueError(f"weights must have one entry per nominal score ({s0.shape[0]}), got {w0.shape[0]}")
    edges = np.unique(np.quantile(s0, np.linspace(0.0, 1.0, bins + 1)))
    edges[0], edges[-1] = min(edges[0], s1.min()), max(edges[-1], s1.max())
    h1, _ = np.histogram(s1, edges)
    p1, v1 = h1 / h1.sum(), h1 / h1.sum() ** 2
    out = {"ndf": float(len(edges) - 2)}
    for key, w in (("chi2_raw", np.ones_like(s0)), ("chi2_weighted", w0)):
        h0, _ = np.histogram(s0, edges, weights=w)
        w2, _ = np.histogram(s0, edges, weights=w * w)
        var = w2 / w.sum() ** 2 + v1
        ok = var > 0
        out[key] = float(np.sum((h0[ok] / w.sum() - p1[ok]) ** 2 / var[ok]))
    return out


def fit_density_ratio(
    x_nominal: npt.ArrayLike,
    x_varied: npt.ArrayLike,
    *,
    observables: Callable[[npt.ArrayLike], FloatArray] | None = jet_observables,
    clip: tuple[float, float] = (0.1, 10.0),
    seed: int = 0,
    max_iter: int = 300,
    learning_rate: float = 0.05,
    max_leaf_nodes: int = 8,
    min_samples_leaf: int = 200,
) -> DensityRatio:
    """Fit :math:`p_\\text{varied}(x)/p_\\text{nominal}(x)` with a classifier (CARL, arXiv:1506.02169).

    Args:
        x_nominal: Nominal jets ``(N0, F)`` (one class).
        x_varied: Varied jets ``(N1, F)`` of the same class.
        observables: Map from features to the classifier's inputs (default
            :func:`jet_observables`, for the 87-feature layout); ``None``: the features.
        clip: Bounds of the ratio.
        seed: Seed of the early-stopping split.
        max_iter: Boosting iterations at most (early stopping on a held-out quarter).
        learning_rate: Boosting learning rate.
        max_leaf_nodes: Leaves per tree (small: a smooth ratio).
        min_samples_leaf: Jets per leaf at least (large: a ratio that does not follow noise).

    Returns:
        The :class:`DensityRatio`.

    Raises:
        ValueError: For fewer than 50 jets in either sample, feature arrays of different
            widths or bad ``clip`` bounds.
    """
    x0 = check_array(x_nominal, name="x_nominal", ndim=2, dtype=np.float64)
    x1 = check_array(x_varied, name="x_varied", ndim=2, dtype=np.float64)
    if x0.shape[1] != x1.shape[1]:
        raise ValueError(
            f"x_nominal and x_varied need the same features, got {x0.shape[1]} and {x1.shape[1]}"
        )
    if min(len(x0), len(x1)) < 50:
        raise ValueError(
            f"a density-ratio fit needs at least 50 jets per sample, got {len(x0)} and {len(x1)}"
        )
    lo, hi = (float(v) for v in clip)
    if not 0 < lo < 1 < hi:
        raise ValueError(f"clip must be (low, high) with 0 < low < 1 < high, got {clip}")
    f0 = x0 if observables is None else observables(x0)
    f1 = x1 if observables is None else observables(x1)
    inputs = np.concatenate([f0, f1])
    target = np.r_[np.zeros(len(f0)), np.ones(len(f1))]
    # equal total weight per sample: the prior factor π0/π1 of the ratio is 1
    balance = np.r_[np.full(len(f0), 0.5 / len(f0)), np.full(len(f1), 0.5 / len(f1))] * len(inputs)
    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=20,
        random_state=seed,
    )
    model.fit(inputs, target, sample_weight=balance)
    return DensityRatio(model, observables, (lo, hi), len(x0), len(x1))
