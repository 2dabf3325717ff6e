"""Plots of the measurement: score templates, nuisance impacts, shifts of μ̂.

Figures follow :mod:`aalearn.report.plots` (created without pyplot, labelled for captions).

Example:
    >>> fig = plot_shifts({"attack:pgd": {"delta_mu_over_sigma": 0.4}})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_impacts", "plot_shifts", "plot_templates"]


def plot_templates(templates: Any, data: np.ndarray | None = None) -> Figure:
    """Stacked expected yields (background, signal) versus classifier score, with variations.

    Args:
        templates: :class:`aalearn.inference.measurement.Templates`.
        data: Optional counts to overlay as points with √N errors.
    """
    edges = np.asarray(templates.edges, dtype=np.float64)
    centers = 0.5 * (edges[1:] + edges[:-1])
    with _style():
        fig = _new_figure(
            (6.4, 4.6), "Score templates: expected yields per bin (stacked) with shape variations"
        )
        ax = fig.add_subplot()
        bkg = np.asarray(templates.background, dtype=np.float64)
        sig = np.asarray(templates.signal, dtype=np.float64)
        ax.stairs(bkg, edges, fill=True, color="#1f3f77", alpha=0.5, label="background (W)")
        ax.stairs(bkg + sig, edges, baseline=bkg, fill=True, color="#c8433a", alpha=0.5, label="signal (top)")
        colors = ("#2e8b57", "#e07b1a", "#7b4fa0", "#17a2b8")
        for i, (name, samples) in enumerate(templates.histosys.items()):
            down_total = np.zeros_like(bkg)
            up_total = np.zeros_like(bkg)
            for sample, (down, up) in samples.items():
                nominal = sig if sample == "signal" else bkg
                down_total += np.asarray(down) - nominal
                up_total += np.asarray(up) - nominal
            c = colors[i % len(colors)]
            ax.stairs(bkg + sig + up_total, edges, color=c, ls="--", label=f"{name} up")
            ax.stairs(bkg + sig + down_total, edges, color=c, ls=":", label=f"{name} down")
        if data is not None:
            d = np.asarray(data, dtype=np.float64)
            ax.errorbar(centers, d, yerr=np.sqrt(np.maximum(d, 0)), fmt="ko", ms=3, label="pseudo-data")
        ax.set_xlabel("classifier score P(W)")
        ax.set_ylabel("expected events per bin")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    return fig


def plot_impacts(impacts: Mapping[str, Mapping[str, float]]) -> Figure:
    """Ranking of the nuisances by their post-fit impact on μ̂ (horizontal bars, ±1σ)."""
    if not impacts:
        raise ValueError("plot_impacts needs at least one nuisance")
    names = list(impacts)[::-1]
    up = np.array([impacts[n].get("postfit_up", 0.0) for n in names])
    down = np.array([impacts[n].get("postfit_down", 0.0) for n in names])
    with _style():
        fig = _new_figure((6.4, 0.5 * len(names) + 1.6), "Impact of each nuisance on μ̂ (post-fit ±1σ)")
        ax = fig.add_subplot()
        y = np.arange(len(names))
        ax.barh(y, up, color="#c8433a", alpha=0.7, label="θ̂ + σ")
        ax.barh(y, down, color="#1f3f77", alpha=0.7, label="θ̂ − σ")
        ax.set_yticks(y, names)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("Δμ̂")
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


def plot_shifts(shifts: Mapping[str, Mapping[str, float]]) -> Figure:
    """Δμ̂/σ_μ per alternative pseudo-data set, with the ±1 band."""
    if not shifts:
        raise ValueError("plot_shifts needs at least one shift")
    names = list(shifts)[::-1]
    vals = np.array([shifts[n]["delta_mu_over_sigma"] for n in names], dtype=np.float64)
    with _style():
        fig = _new_figure(
            (6.4, 0.45 * len(names) + 1.6), "Shift of the measured μ̂ in units of its uncertainty"
        )
        ax = fig.add_subplot()
        y = np.arange(len(names))
        ax.axvspan(-1, 1, color="#dddddd", alpha=0.6, label="|Δμ̂| < σ_μ")
        ax.barh(y, vals, color=np.where(np.abs(vals) > 1, "#c8433a", "#1f3f77"))
        ax.set_yticks(y, names)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("Δμ̂ / σ_μ")
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig
