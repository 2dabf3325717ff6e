"""Plots of simulation-based inference results: posteriors, SBC ranks, coverage curves, C2ST.

Figures are made without pyplot through :func:`aalearn.report.plots._new_figure` and
styled with :func:`aalearn.report.plots._style`, ready for
:meth:`aalearn.report.Report.add_section`.

* :func:`plot_posterior` -- pairwise marginals of posterior samples (with reference
  samples and the true parameters);
* :func:`plot_sbc_ranks` -- SBC rank histograms with the 99 % band of a uniform
  histogram (Talts et al., arXiv:1804.06788);
* :func:`plot_expected_coverage` -- expected HPD coverage against the credibility level,
  with the Kolmogorov-Smirnov band (Hermans et al., arXiv:2110.06581);
* :func:`plot_tarp` -- TARP expected coverage (Lemos et al., arXiv:2302.03026);
* :func:`plot_c2st_per_observation` -- C2ST per sbibm observation with the published mean.

Example:
    >>> import numpy as np
    >>> fig = plot_posterior(np.random.default_rng(0).normal(size=(500, 2)), names=("a", "b"))
    >>> len(fig.axes)
    4
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from aalearn.inference.sbi.diagnostics import ExpectedCoverage, SBCResult, TarpResult

__all__ = [
    "plot_c2st_per_observation",
    "plot_expected_coverage",
    "plot_posterior",
    "plot_sbc_ranks",
    "plot_tarp",
]

FloatArray = npt.NDArray[np.float64]
_POST = "#2a6fb0"
_REF = "#c8433a"
_TRUTH = "#222222"


def plot_posterior(
    samples: npt.ArrayLike,
    *,
    reference: npt.ArrayLike | None = None,
    truth: npt.ArrayLike | None = None,
    names: Sequence[str] | None = None,
    title: str = "posterior",
    max_dims: int = 5,
    max_points: int = 2000,
) -> Figure:
    """Pairwise marginals of posterior samples (a corner plot), optionally with reference samples.

    Args:
        samples: ``(n, D)`` posterior samples (aalearn's).
        reference: ``(m, D)`` reference samples (e.g. sbibm's), drawn in red.
        truth: ``(D,)`` true parameters (black lines / star).
        names: Parameter names.
        title: Figure label (caption).
        max_dims: Show at most this many (leading) parameters.
        max_points: Points per scatter panel (subsampled).

    Returns:
        The figure.

    Example:
        >>> fig = plot_posterior(np.zeros((10, 1)) + np.arange(10)[:, None])
        >>> len(fig.axes)
        1
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"samples must have shape (n, D), got {s.shape}")
    d = min(s.shape[1], int(max_dims))
    ref = None if reference is None else np.asarray(reference, dtype=np.float64)[:, :d]
    tr = None if truth is None else np.asarray(truth, dtype=np.float64).reshape(-1)[:d]
    labels = list(names)[:d] if names is not None else [f"θ{i + 1}" for i in range(d)]
    rng = np.random.default_rng(0)

    def sub(a: FloatArray) -> FloatArray:
        return a if len(a) <= max_points else a[rng.choice(len(a), max_points, replace=False)]

    with _style():
        size = 1.9 * d + 0.6
        fig = _new_figure(
            (size, size),
            f"{title}: pairwise marginals" + (" (blue: aalearn, red: reference)" if ref is not None else ""),
        )
        axes = fig.subplots(d, d, squeeze=False)
        for i in range(d):
            for j in range(d):
                ax = axes[i, j]
                if j > i:
                    ax.set_visible(False)
                    continue
                both = s[:, [i, j]] if ref is None else np.concatenate([s[:, [i, j]], ref[:, [i, j]]])
                lo, hi = np.percentile(both, [0.5, 99.5], axis=0)
                if i == j:
                    bins = np.linspace(lo[0], hi[0], 40) if hi[0] > lo[0] else 20
                    ax.hist(s[:, i], bins=bins, density=True, histtype="step", color=_POST)
                    if ref is not None:
                        ax.hist(ref[:, i], bins=bins, density=True, histtype="step", color=_REF)
                    if tr is not None:
                        ax.axvline(tr[i], color=_TRUTH, lw=1.0)
                    ax.set_yticks([])
                else:
                    if ref is not None:
                        r = sub(ref)
                        ax.scatter(r[:, j], r[:, i], s=1, color=_REF, alpha=0.25, rasterized=True)
                    p = sub(s)
                    ax.scatter(p[:, j], p[:, i], s=1, color=_POST, alpha=0.25, rasterized=True)
                    if tr is not None:
                        ax.plot(tr[j], tr[i], marker="*", color=_TRUTH, ms=8)
                if i == d - 1:
                    ax.set_xlabel(labels[j])
                if j == 0 and i > 0:
                    ax.set_ylabel(labels[i])
        return fig


def plot_sbc_ranks(sbc: SBCResult, *, bins: int = 20, max_dims: int = 10) -> Figure:
    """SBC rank histograms per parameter with the central 99 % band of a uniform histogram.

    ∪-shaped histograms indicate overconfidence, ∩-shaped ones underconfidence, a slope a
    bias (Talts et al., arXiv:1804.06788).

    Example:
        >>> from aalearn.inference.sbi.diagnostics import SBCResult
        >>> r = SBCResult(np.arange(200).reshape(100, 2) % 101, 100, np.ones(2), ("a", "b"))
        >>> len(plot_sbc_ranks(r).axes)
        2
    """
    from scipy import stats

    ranks = np.asarray(sbc.ranks)
    d = min(ranks.shape[1], int(max_dims))
    n = ranks.shape[0]
    ncols = min(d, 5)
    nrows = math.ceil(d / ncols)
    edges = np.linspace(0, sbc.n_samples + 1, bins + 1)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1.0 / bins)
    with _style():
        fig = _new_figure(
            (2.6 * ncols + 0.4, 2.2 * nrows + 0.4), f"SBC rank histograms ({n} test pairs, grey: 99% band)"
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for k, ax in enumerate(axes):
            if k >= d:
                ax.set_visible(False)
                continue
            ax.axhspan(lo, hi, color="0.85", zorder=0)
            ax.axhline(n / bins, color="0.5", lw=0.8)
            ax.hist(ranks[:, k], bins=edges, histtype="stepfilled", color=_POST, alpha=0.7)
            ax.set_title(f"{sbc.parameter_names[k]} (KS p={float(sbc.ks_pvalues[k]):.2g})", fontsize=9)
            ax.set_xlabel("rank")
        return fig


def plot_expected_coverage(coverage: ExpectedCoverage, *, significance: float = 0.01) -> Figure:
    """Expected HPD coverage versus credibility level, with the KS band of a calibrated posterior.

    Below the diagonal: overconfident; above: conservative (Hermans et al., arXiv:2110.06581).

    Example:
        >>> from aalearn.inference.sbi.diagnostics import ExpectedCoverage
        >>> lv = np.linspace(0, 1, 11)
        >>> len(plot_expected_coverage(ExpectedCoverage(lv, lv, np.linspace(0, 1, 50), 100)).axes)
        1
    """
    u = np.sort(np.asarray(coverage.u))
    n = u.size
    eps = math.sqrt(-math.log(significance / 2) / (2 * n))
    grid = np.linspace(0, 1, 201)
    with _style():
        fig = _new_figure((4.2, 4.0), f"expected coverage of HPD regions ({n} test pairs)")
        ax = fig.subplots()
        ax.fill_between(
            grid,
            np.clip(grid - eps, 0, 1),
            np.clip(grid + eps, 0, 1),
            color="0.88",
            lw=0,
            label=f"{100 * (1 - significance):g}% band (calibrated)",
        )
        ax.plot([0, 1], [0, 1], color="0.4", lw=0.9, ls="--")
        ax.step(
            np.concatenate([[0.0], u, [1.0]]),
            np.concatenate([[0.0], np.arange(1, n + 1) / n, [1.0]]),
            where="post",
            color=_POST,
            label="aalearn posterior",
        )
        ax.plot(coverage.levels, coverage.coverage, "o", color=_POST, ms=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("credibility level")
        ax.set_ylabel("empirical coverage")
        ax.text(0.62, 0.08, "overconfident", fontsize=8.5, color="0.35")
        ax.text(0.05, 0.88, "conservative", fontsize=8.5, color="0.35")
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.84))
        return fig


def plot_tarp(result: TarpResult) -> Figure:
    """TARP expected coverage probability versus credibility level (Lemos et al., arXiv:2302.03026).

    Example:
        >>> from aalearn.inference.sbi.diagnostics import TarpResult
        >>> a = np.linspace(0, 1, 11)
        >>> len(plot_tarp(TarpResult(a, a, 0.0, 1.0)).axes)
        1
    """
    with _style():
        fig = _new_figure(
            (4.2, 4.0), f"TARP expected coverage (ATC {result.atc:+.3f}, KS p {result.ks_pvalue:.2g})"
        )
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="0.4", lw=0.9, ls="--")
        ax.plot(result.alpha, result.ecp, color=_POST)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("credibility level α")
        ax.set_ylabel("expected coverage probability")
        return fig


def plot_c2st_per_observation(
    values: Mapping[str, float] | Mapping[int, float], *, published: float | None = None
) -> Figure:
    """C2ST accuracy per sbibm observation, with the published mean as a line.

    Example:
        >>> len(plot_c2st_per_observation({"1": 0.55, "2": 0.6}, published=0.6).axes)
        1
    """
    keys = [str(k) for k in values]
    vals = [float(v) for v in values.values()]
    with _style():
        fig = _new_figure((5.0, 3.2), "C2ST per observation (0.5 is perfect)")
        ax = fig.subplots()
        ax.bar(keys, vals, color=_POST, alpha=0.8, label="aalearn")
        ax.axhline(0.5, color="0.4", lw=0.9, ls="--")
        if published is not None:
            ax.axhline(published, color=_REF, lw=1.2, label=f"sbibm published mean {published:.3f}")
            ax.legend(loc="upper right")
        ax.set_ylim(0.45, 1.0)
        ax.set_xlabel("observation")
        ax.set_ylabel("C2ST accuracy")
        return fig
