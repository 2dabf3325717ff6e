"""Figures of the physics inference: posterior of the observed set, held-out sets, observables.

Example:
    >>> from aalearn.inference.sbi.physics.plots import plot_posterior
    >>> fig = plot_posterior(result)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.inference.sbi.physics.grid import LEVEL_68, LEVEL_95
from aalearn.inference.sbi.physics.simulator import _N_OBS, PARAMETERS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from aalearn.inference.sbi.physics.result import PhysicsInferenceResult

__all__ = ["plot_coverage", "plot_observables", "plot_posterior"]

_POST = "#2a6fb0"
_TRUTH = "#222222"


def plot_posterior(result: PhysicsInferenceResult) -> Figure:
    """Posterior of the observed set: density with 68 %/95 % intervals (1-D) or contours (2-D).

    Example:
        >>> fig = plot_posterior(result)  # doctest: +SKIP
    """
    s = result.grid_summary
    names = result.parameters
    label = (
        f"Posterior of the {', '.join(names)} from {result.observed_jets} i.i.d. top jets "
        f"({result.method.upper()}, {result.simulations} training jets); black: true value"
    )
    with _style():
        if len(names) == 1:
            fig = _new_figure((6.0, 4.2), label)
            ax = fig.add_subplot()
            x = s.axes[0]
            h = x[1] - x[0] if len(x) > 1 else 1.0
            dens = s.density / h
            ax.plot(x, dens, color=_POST, label="posterior")
            for (lo, hi), alpha, lab in ((s.interval_95[0], 0.15, "95 %"), (s.interval_68[0], 0.3, "68 %")):
                band = (x >= lo) & (x <= hi)
                ax.fill_between(
                    x[band], 0, dens[band], color=_POST, alpha=alpha, lw=0, label=f"{lab} interval"
                )
            ax.axvline(result.true_value[0], color=_TRUTH, lw=1.2, label="true value")
            ax.set_xlabel(PARAMETERS[names[0]].label)
            ax.set_ylabel("posterior density")
            ax.set_ylim(bottom=0)
            ax.legend(frameon=False, fontsize=8)
        else:
            fig = _new_figure((7.6, 3.8), label)
            axes = fig.subplots(1, 3)
            for d in range(2):
                ax = axes[d]
                x = s.axes[d]
                h = x[1] - x[0] if len(x) > 1 else 1.0
                ax.plot(x, s.marginal(d) / h, color=_POST)
                ax.axvspan(*s.interval_68[d], color=_POST, alpha=0.2, lw=0)
                ax.axvline(result.true_value[d], color=_TRUTH, lw=1.2)
                ax.set_xlabel(PARAMETERS[names[d]].label)
                ax.set_yticks([])
            ax = axes[2]
            flat = np.sort(s.density.reshape(-1))[::-1]
            cum = np.cumsum(flat)
            levels = sorted(
                {float(flat[min(int(np.searchsorted(cum, q)), len(flat) - 1)]) for q in (LEVEL_95, LEVEL_68)}
            )
            ax.contour(
                s.axes[0], s.axes[1], s.density.T, levels=[*levels, float(flat[0]) * 1.001], colors=_POST
            )
            ax.plot(result.true_value[0], result.true_value[1], marker="*", color=_TRUTH, ms=9)
            ax.set_xlabel(PARAMETERS[names[0]].label)
            ax.set_ylabel(PARAMETERS[names[1]].label)
        return fig


def plot_coverage(result: PhysicsInferenceResult) -> Figure:
    """Held-out sets: posterior mean ± std against the true value, per parameter.

    Example:
        >>> fig = plot_coverage(result)  # doctest: +SKIP
    """
    if not result.held_out:
        raise ValueError("the result has no held-out sets (held_out_sets=0)")
    th, mean, std = result.held_out["theta"], result.held_out["mean"], result.held_out["std"]
    names = result.parameters
    with _style():
        fig = _new_figure(
            (4.2 * len(names), 4.0),
            f"Held-out sets of {result.observed_jets} jets at θ drawn from the prior: posterior mean ± std "
            "against the true value (diagonal: perfect)",
        )
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for d, name in enumerate(names):
            ax = axes[d]
            spec = PARAMETERS[name]
            ax.plot([spec.low, spec.high], [spec.low, spec.high], color="#999999", lw=1.0, ls="--")
            ax.errorbar(th[:, d], mean[:, d], yerr=std[:, d], fmt="o", ms=3, color=_POST, lw=1.0)
            ax.set_xlabel(f"true {spec.label}")
            ax.set_ylabel(f"posterior {spec.label}")
        return fig


def plot_observables(result: PhysicsInferenceResult) -> Figure:
    """Training jets' observables for the lowest and highest third of each parameter's prior.

    Example:
        >>> fig = plot_observables(result)  # doctest: +SKIP
    """
    th, x = result.training_sample["theta"], result.training_sample["x"]
    labels = ("jet $p_T$ [GeV]", "jet mass [GeV]", "constituents", r"$\tau_{21}$", r"$\tau_{32}$")
    ranges = ((400.0, 1000.0), (0.0, 300.0), (0.0, 160.0), (0.0, 1.0), (0.0, 1.0))
    with _style():
        fig = _new_figure(
            (11.0, 2.8 * len(result.parameters)),
            "Per-jet observables of the training jets, lowest versus highest third of the prior",
        )
        axes = fig.subplots(len(result.parameters), _N_OBS, squeeze=False)
        for d, name in enumerate(result.parameters):
            spec = PARAMETERS[name]
            cut_lo = spec.low + (spec.high - spec.low) / 3
            cut_hi = spec.high - (spec.high - spec.low) / 3
            groups = (
                (th[:, d] < cut_lo, f"{spec.name} < {cut_lo:.4g}", "#2a6fb0"),
                (th[:, d] > cut_hi, f"{spec.name} > {cut_hi:.4g}", "#c8433a"),
            )
            for k in range(_N_OBS):
                ax = axes[d, k]
                bins = np.linspace(*ranges[k], 41)
                for mask, lab, color in groups:
                    if not mask.any():
                        continue
                    ax.hist(x[mask, k], bins=bins, density=True, histtype="step", color=color, label=lab)
                ax.set_xlabel(labels[k])
                ax.set_yticks([])
            axes[d, 0].legend(frameon=False, fontsize=7)
        return fig
