r"""Physics-level explanation: how the tagger's output depends on jet observables.

Attributions say which *columns* matter; a physicist asks which *physics* the tagger
uses. For each jet observable written once in :mod:`aalearn.physics.jets`
(:data:`~aalearn.physics.jets.JET_FEATURES`: jet pT, mass, multiplicity, width, leading
and subleading pT fractions, :math:`\tau_{21}`, :math:`\tau_{32}`) and the scalar sum
:math:`\Sigma p_T` of the constituents, :func:`observable_correlations` measures the
Pearson and Spearman correlation and the mutual information (Kraskov-type k-nearest-
neighbour estimate, scikit-learn's ``mutual_info_regression``; Kraskov, Stögbauer,
Grassberger, Phys. Rev. E 69, 066138, arXiv:cond-mat/0305641) of the model output with
the observable,

* over all jets,
* per class, and
* **at fixed** :math:`\Sigma p_T`: within :math:`\Sigma p_T` quantile bins, averaged over
  the bins (weighted by their jets).

A tagger driven by the pT spectrum shows its largest correlation with
:math:`\Sigma p_T` and little left at fixed :math:`\Sigma p_T`; a substructure tagger
keeps its correlation with mass or :math:`\tau_{32}` inside the bins.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> obs = {"sum_pt": rng.uniform(1, 2, 500), "noise": rng.normal(size=500)}
    >>> out = observable_correlations(3 * obs["sum_pt"], obs)
    >>> round(out["sum_pt"]["spearman"], 3), out["noise"]["spearman"] < 0.2
    (1.0, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.explain.sanity import rank_correlation
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, is_challenge_layout
from aalearn.physics.jets import JET_FEATURES, constituent_jet_features
from aalearn.physics.preprocessing import features_to_constituents

__all__ = [
    "OBSERVABLES",
    "dominant_observable",
    "jet_observables",
    "observable_correlations",
]

FloatArray = npt.NDArray[np.float64]

#: Observables of :func:`jet_observables`, in order.
OBSERVABLES: tuple[str, ...] = (*JET_FEATURES, "sum_pt")
#: Jets per observable for the mutual-information estimate (k-NN cost grows as N log N).
_MI_MAX_JETS = 5000


def jet_observables(
    x: npt.ArrayLike,
    feature_names: Sequence[str] | None = None,
    *,
    pt_scale_gev: float = CHALLENGE_PT_SCALE_GEV,
) -> dict[str, FloatArray]:
    """Jet observables (GeV where dimensionful) of challenge-layout features.

    Args:
        x: Features ``(N, 87)`` in the challenge layout.
        feature_names: Column names (checked against the challenge layout when given).
        pt_scale_gev: GeV per pT unit.

    Returns:
        ``{name: (N,)}`` for :data:`OBSERVABLES`; empty for other layouts or when the
        features hold negative pT (no physical jet to compute observables of).

    Example:
        >>> jet_observables(np.zeros((2, 5)))
        {}
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or not is_challenge_layout(arr.shape[1], feature_names):
        return {}
    c = features_to_constituents(arr, pt_scale=pt_scale_gev)
    if np.any(c[..., 0] < 0) or not np.all(np.isfinite(c)):
        return {}
    jet = constituent_jet_features(c)
    out = {name: jet[:, i] for i, name in enumerate(JET_FEATURES)}
    out["sum_pt"] = c[..., 0].sum(axis=1)
    return out


def _pearson(a: FloatArray, b: FloatArray) -> float:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _mutual_information(obs: FloatArray, out: FloatArray, seed: int) -> float:
    if obs.size < 10 or np.ptp(obs) == 0 or np.ptp(out) == 0:
        return float("nan")
    fs = require("sklearn.feature_selection", purpose="mutual information of observables")
    if obs.size > _MI_MAX_JETS:
        keep = np.random.default_rng(seed).choice(obs.size, _MI_MAX_JETS, replace=False)
        obs, out = obs[keep], out[keep]
    # standardise: the k-NN estimate works in the observable's units
    z = (obs - obs.mean()) / obs.std()
    mi = fs.mutual_info_regression(z[:, None], out, random_state=seed)
    return float(mi[0])


def _stats(obs: FloatArray, out: FloatArray, seed: int) -> dict[str, float]:
    return {
        "pearson": _pearson(obs, out),
        "spearman": rank_correlation(obs, out),
        "mutual_information": _mutual_information(obs, out, seed),
    }


def _fixed(obs: FloatArray, out: FloatArray, bins: npt.NDArray[np.int64], seed: int) -> dict[str, float]:
    """Correlations and mutual information within each bin, averaged with the bins' jet counts as weights."""
    keys = ("pearson", "spearman", "mutual_information")
    sums = dict.fromkeys(keys, 0.0)
    weight = 0.0
    for b in np.unique(bins):
        sel = bins == b
        stats = _stats(obs[sel], out[sel], seed)
        if all(np.isfinite(stats[k]) for k in keys):
            n = float(sel.sum())
            for k in keys:
                sums[k] += n * stats[k]
            weight += n
    if weight == 0:
        return dict.fromkeys(keys, float("nan"))
    return {k: v / weight for k, v in sums.items()}


def observable_correlations(
    output: npt.ArrayLike,
    observables: Mapping[str, npt.ArrayLike],
    classes: npt.ArrayLike | None = None,
    *,
    fixed: str = "sum_pt",
    n_bins: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Correlation and mutual information of the model output with each observable.

    Args:
        output: Model output per jet (the logit), ``(N,)``.
        observables: ``{name: (N,)}``, for example from :func:`jet_observables`.
        classes: Class of every jet (labels, or predictions for unlabeled data), or ``None``.
        fixed: Observable held fixed for the ``at_fixed_<fixed>`` entries (skipped when absent).
        n_bins: Quantile bins of the fixed observable.
        seed: Seed of the mutual-information estimate.

    Returns:
        ``{name: {"pearson", "spearman", "mutual_information", "by_class": {class: {...}},
        "at_fixed_sum_pt": {"pearson", "spearman", "mutual_information"}}}``; mutual
        information in nats.

    Raises:
        ValueError: When an observable's length differs from the output's.
    """
    out = np.asarray(output, dtype=np.float64).ravel()
    cls = None if classes is None else np.asarray(classes).ravel()
    if n_bins < 1:
        raise ValueError(f"n_bins must be ≥ 1, got {n_bins}")
    bins: npt.NDArray[np.int64] | None = None
    if fixed in observables:
        f = np.asarray(observables[fixed], dtype=np.float64)
        edges = np.quantile(f, np.linspace(0, 1, n_bins + 1)[1:-1]) if f.size else np.zeros(0)
        bins = np.searchsorted(edges, f, side="right").astype(np.int64)
    result: dict[str, dict[str, Any]] = {}
    for name, values in observables.items():
        obs = np.asarray(values, dtype=np.float64).ravel()
        if obs.shape != out.shape:
            raise ValueError(f"observable {name!r} has {obs.size} values for {out.size} outputs")
        entry: dict[str, Any] = _stats(obs, out, seed)
        if cls is not None:
            entry["by_class"] = {
                str(int(k)): _stats(obs[cls == k], out[cls == k], seed) for k in np.unique(cls)
            }
        if bins is not None:
            entry[f"at_fixed_{fixed}"] = _fixed(obs, out, bins, seed)
        result[name] = entry
    return result


def dominant_observable(correlations: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The observable with the largest mutual information with the output (``None`` if none).

    Example:
        >>> dominant_observable({"a": {"mutual_information": 0.1}, "b": {"mutual_information": 0.5}})
        'b'
    """
    best, best_mi = None, -np.inf
    for name, entry in correlations.items():
        mi = entry.get("mutual_information")
        if mi is not None and np.isfinite(mi) and mi > best_mi:
            best, best_mi = name, float(mi)
    return best


def interpret_observables(correlations: Mapping[str, Mapping[str, Any]], fixed: str = "sum_pt") -> str:
    """One sentence on what drives the output (pT spectrum or substructure).

    Example:
        >>> fixed = {"spearman": 0.1}
        >>> c = {"sum_pt": {"mutual_information": 0.9, "spearman": 0.9, "at_fixed_sum_pt": fixed},
        ...      "jet_mass": {"mutual_information": 0.2, "spearman": 0.3, "at_fixed_sum_pt": fixed}}
        >>> interpret_observables(c).startswith("pT-driven")
        True
    """
    dom = dominant_observable(correlations)
    if dom is None:
        return "no jet observables available for this feature layout"
    key = f"at_fixed_{fixed}"
    residual = {
        n: abs(e[key]["spearman"])
        for n, e in correlations.items()
        if n != fixed and key in e and e[key]["spearman"] is not None and np.isfinite(e[key]["spearman"])
    }
    best_resid = max(residual, key=lambda n: residual[n]) if residual else None
    tail = (
        f"; at fixed {fixed} the strongest remaining dependence is on {best_resid} "
        f"(|ρ_s| = {residual[best_resid]:.2f})"
        if best_resid is not None
        else ""
    )
    pt_like = {"sum_pt", "jet_pt"}
    if dom in pt_like:
        return f"pT-driven: the output shares most information with {dom}{tail}"
    return f"substructure-driven: the output shares most information with {dom}{tail}"
