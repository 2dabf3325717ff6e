r"""Figures of the surrogate validation (matplotlib, imported only when a figure is drawn).

* :func:`plot_null_distributions` -- the reference-versus-reference null of FPD, KPD and
  the correlation difference with the observed value (Kansal et al., arXiv:2211.10295,
  quote every metric against its truth-versus-truth value);
* :func:`plot_marginals` -- reference and candidate distributions of the features with
  ratio panels (reuses :func:`aalearn.validation.plot_overlays`);
* :func:`plot_weight_map` -- mean classifier weight :math:`w = D/(1-D)` per
  reference-quantile bin of each feature (Das et al., arXiv:2305.16774).

Every function returns a labelled :class:`matplotlib.figure.Figure` for
:meth:`aalearn.report.Report.add_section`.

Example:
    >>> import numpy as np
    >>> from aalearn.surrogates import validate_samples
    >>> rng = np.random.default_rng(0)
    >>> v = validate_samples(rng.normal(size=(400, 2)), rng.normal(size=(200, 2)), features="all", n_null=5)
    >>> len(plot_null_distributions(v).axes)
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.validation import plot_overlays

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from aalearn.surrogates.twosample import C2STResult
    from aalearn.surrogates.validate import SurrogateValidation

__all__ = ["plot_marginals", "plot_null_distributions", "plot_weight_map"]

_NULL_COLOR = "#1f3f77"
_OBS_COLOR = "#c0392b"


def plot_null_distributions(validation: SurrogateValidation) -> Figure:
    """Histograms of the FPD, KPD and correlation-difference nulls with the observed values.

    Args:
        validation: A result of :func:`aalearn.surrogates.validate_samples`.

    Returns:
        A figure with three panels.
    """
    tests = (validation.fpd, validation.kpd, validation.corr)
    with _style():
        fig = _new_figure(
            (11.0, 3.4), "Reference-versus-reference nulls (histogram) and the observed value (line)"
        )
        axes = fig.subplots(1, 3)
        for ax, t in zip(axes, tests, strict=True):
            values = t.null[np.isfinite(t.null)]
            lo = min(float(values.min()), t.observed)
            hi = max(float(values.max()), t.observed)
            pad = 0.05 * (hi - lo) if hi > lo else 1e-12
            ax.hist(values, bins=20, range=(lo - pad, hi + pad), color=_NULL_COLOR, alpha=0.6, label="null")
            ax.axvline(t.observed, color=_OBS_COLOR, lw=2, label="observed")
            ax.set_xlabel(t.name)
            ax.set_ylabel("resamples")
            ax.set_title(f"{t.significance:.1f}σ (p = {t.pvalue:.2g})", fontsize=10)
        axes[0].legend(frameon=False, fontsize=8)
    return fig


def plot_marginals(validation: SurrogateValidation, *, top: int = 6) -> Figure:
    """Reference versus candidate distributions of the ``top`` features with the largest KS statistic.

    Args:
        validation: A result of :func:`aalearn.surrogates.validate_samples`.
        top: Number of features drawn.

    Returns:
        The overlay figure of :func:`aalearn.validation.plot_overlays`.
    """
    order = np.argsort(-validation.marginals.ks_statistic, kind="stable")[: max(1, top)]
    chosen = [validation.feature_names[i] for i in order]
    fig = plot_overlays(
        validation.reference_features,
        validation.candidate_features,
        feature_names=list(validation.feature_names),
        features=chosen,
        bins=40,
        labels=("reference", "candidate"),
    )
    fig.set_label("Reference and candidate distributions (features with the largest KS statistic)")
    return fig


def plot_weight_map(result: C2STResult, feature_names: Sequence[str], *, max_features: int = 6) -> Figure:
    """Mean classifier weight per reference-quantile bin (1 = no difference), per feature.

    Args:
        result: A :class:`~aalearn.surrogates.twosample.C2STResult`.
        feature_names: The features, in order.
        max_features: Panels drawn (features with the largest :math:`|z|` first).

    Returns:
        The figure.
    """
    best: dict[str, float] = {}
    for r in result.regions:
        best[r.feature] = max(best.get(r.feature, 0.0), abs(r.z))
    chosen = sorted(feature_names, key=lambda n: -best.get(n, 0.0))[: max(1, max_features)]
    ncols = min(3, len(chosen))
    nrows = -(-len(chosen) // ncols)
    with _style():
        fig = _new_figure(
            (3.0 * ncols, 2.6 * nrows),
            f"Classifier weights w = D/(1-D) per reference-quantile bin (AUC = {result.auc:.3f})",
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        for ax, name in zip(axes, chosen, strict=False):
            regions = sorted((r for r in result.regions if r.feature == name), key=lambda r: r.lo)
            if not regions:
                ax.set_axis_off()
                continue
            idx = np.arange(len(regions))
            w = np.array([r.mean_weight for r in regions])
            err = np.array([abs(r.mean_weight - 1.0) / abs(r.z) if r.z else 0.0 for r in regions])
            colors = [_OBS_COLOR if abs(r.z) >= 3 else _NULL_COLOR for r in regions]
            ax.bar(idx, w - 1.0, bottom=1.0, color=colors, alpha=0.7)
            ax.errorbar(idx, w, yerr=err, fmt="none", ecolor="black", lw=0.8)
            ax.axhline(1.0, color="black", lw=0.8)
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("reference-quantile bin")
            ax.set_ylabel("mean w")
        for ax in axes[len(chosen) :]:
            ax.set_axis_off()
    return fig
