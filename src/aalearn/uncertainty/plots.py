r"""Reliability diagrams and uncertainty histograms (matplotlib, aalearn's report style).

Like :mod:`aalearn.report.plots`, every function returns a
:class:`matplotlib.figure.Figure` created without pyplot, with a caption in
``fig.get_label()``, ready for :meth:`aalearn.report.Report.add_section`.

Example:
    >>> import numpy as np
    >>> from aalearn.uncertainty import reliability_curve
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p).astype(int)
    >>> fig = plot_reliability({"model": reliability_curve(y, p, n_bins=10)})
    >>> len(fig.axes)
    2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.uncertainty.calibration import ReliabilityCurve
from aalearn.uncertainty.decomposition import UncertaintyDecomposition

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_reliability", "plot_uncertainty_histograms"]

_COLORS = ("#1f3f77", "#c8433a", "#2e8b57", "#e07b1a", "#7b4fa0", "#17a2b8", "#8c564b", "#e377c2")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_VIEWS = ("auto", "probability", "confidence")


def plot_reliability(curves: Mapping[str, ReliabilityCurve], *, view: str = "auto") -> Figure:
    r"""Reliability diagram: observed frequency versus predicted probability, with the bin populations below.

    Upper panel: the diagonal (perfect calibration) and, per curve, one point per
    non-empty bin at the bin's mean prediction, with binomial errors
    :math:`\sqrt{f(1-f)/n}`. Lower panel: the number of jets per bin (log scale).

    Args:
        curves: Name → :class:`~aalearn.uncertainty.ReliabilityCurve`.
        view: ``"probability"``: mean score :math:`P(\text{label}=1)` versus the
            fraction of label 1 (binary curves only — the physicist's view: calibrate
            the score itself); ``"confidence"``: top-label confidence versus accuracy;
            ``"auto"`` (default): ``"probability"`` when all curves are binary.

    Returns:
        The figure (two axes).

    Raises:
        ValueError: For no curves, an unknown view or ``"probability"`` with a
            multi-class curve.
        TypeError: For values that are not :class:`ReliabilityCurve`.

    Example:
        >>> from aalearn.uncertainty import reliability_curve
        >>> fig = plot_reliability({"a": reliability_curve([0, 1, 1], [0.2, 0.6, 0.9], n_bins=5)})
        >>> fig.axes[1].get_yscale()
        'log'
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("plot_reliability needs a non-empty mapping name → ReliabilityCurve")
    for name, curve in curves.items():
        if not isinstance(curve, ReliabilityCurve):
            raise TypeError(f"curves[{name!r}] must be a ReliabilityCurve, got {type(curve).__name__}")
    if view not in _VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(map(repr, _VIEWS))}")
    all_binary = all(c.binary for c in curves.values())
    if view == "auto":
        view = "probability" if all_binary else "confidence"
    if view == "probability" and not all_binary:
        raise ValueError("the probability view needs binary reliability curves; use view='confidence'")
    prob = view == "probability"

    with _style():
        caption = (
            "Reliability diagram: observed fraction of label 1 versus mean predicted P(label = 1)"
            if prob
            else "Reliability diagram: accuracy versus top-label confidence"
        )
        fig = _new_figure((6.4, 6.0), caption)
        ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1.2, label="perfect calibration")
        for i, (name, c) in enumerate(curves.items()):
            color = _COLORS[i % len(_COLORS)]
            if prob:
                if (
                    c.prob_edges is None
                    or c.prob_mean is None
                    or c.prob_counts is None
                    or c.frac_positive is None
                ):
                    raise ValueError(f"curves[{name!r}] lacks the probability view (prob_* fields)")
                edges, x, f, n = c.prob_edges, c.prob_mean, c.frac_positive, c.prob_counts
                err = c.frac_positive_errors()
            else:
                edges, x, f, n, err = c.edges, c.confidence, c.accuracy, c.counts, c.accuracy_errors()
            ok = n > 0
            ax.errorbar(
                x[ok],
                f[ok],
                yerr=err[ok],
                color=color,
                marker=_MARKERS[i % len(_MARKERS)],
                markersize=4,
                linewidth=1.0,
                capsize=2,
                label=str(name),
            )
            ax_n.stairs(np.where(n > 0, n, np.nan), edges, color=color, linewidth=1.2)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("observed fraction of label 1" if prob else "accuracy")
        ax.grid(True, which="major", color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left")
        ax_n.set_yscale("log")
        ax_n.set_ylabel("jets / bin")
        ax_n.set_xlabel(r"mean predicted $P(\mathrm{label}=1)$" if prob else "top-label confidence")
    return fig


def plot_uncertainty_histograms(decomps: Mapping[str, UncertaintyDecomposition], *, bins: int = 50) -> Figure:
    r"""Distributions of the total, aleatoric and epistemic uncertainty (three panels, log y).

    Each panel shares its binning between the decompositions (from 0 to the largest
    value); histograms are normalised to the fraction of jets per bin so that samples of
    different size (for example in-distribution and shifted jets) can be compared.

    Args:
        decomps: Name → :class:`~aalearn.uncertainty.UncertaintyDecomposition`.
        bins: Number of bins per panel (≥ 1).

    Returns:
        The figure (three axes).

    Raises:
        ValueError: For no decompositions or ``bins < 1``.
        TypeError: For values that are not :class:`UncertaintyDecomposition`.

    Example:
        >>> from aalearn.uncertainty import decompose
        >>> d = decompose(np.array([[0.1, 0.6, 0.9], [0.3, 0.5, 0.8]]))
        >>> [ax.get_yscale() for ax in plot_uncertainty_histograms({"ens": d}).axes]
        ['log', 'log', 'log']
    """
    if not isinstance(decomps, Mapping) or not decomps:
        raise ValueError(
            "plot_uncertainty_histograms needs a non-empty mapping name → UncertaintyDecomposition"
        )
    for name, d in decomps.items():
        if not isinstance(d, UncertaintyDecomposition):
            raise TypeError(f"decomps[{name!r}] must be an UncertaintyDecomposition, got {type(d).__name__}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer ≥ 1, got {bins!r}")
    panels = (
        ("total", r"total $H[\bar p]$ [nats]"),
        ("aleatoric", r"aleatoric $\mathbb{E}_m H[p_m]$ [nats]"),
        ("epistemic", r"epistemic (mutual information) [nats]"),
    )
    with _style():
        fig = _new_figure((12.0, 3.9), "Distributions of total, aleatoric and epistemic uncertainty")
        axes = fig.subplots(1, 3)
        for ax, (attr, xlabel) in zip(axes, panels, strict=True):
            values = [np.asarray(getattr(d, attr), dtype=np.float64) for d in decomps.values()]
            hi = max(float(v.max()) for v in values)
            edges = np.linspace(0.0, hi * 1.001 if hi > 0 else 1.0, int(bins) + 1)
            for i, (name, v) in enumerate(zip(decomps, values, strict=True)):
                counts, _ = np.histogram(v, bins=edges)
                frac = counts / max(v.size, 1)
                ax.stairs(
                    np.where(frac > 0, frac, np.nan),
                    edges,
                    color=_COLORS[i % len(_COLORS)],
                    linewidth=1.4,
                    label=f"{name} (mean {v.mean():.3g})",
                )
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("fraction of jets / bin")
            ax.set_title(attr)
        axes[0].legend(loc="best")
    return fig
