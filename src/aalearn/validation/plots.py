r"""Figures for :func:`aalearn.validation.validate_samples`.

* :func:`plot_overlays` -- per-feature distributions of the nominal and the alternative
  sample, normalised to unit area with :math:`\sqrt{N}` error bars, each above a ratio
  panel (alternative / nominal);
* :func:`plot_correlation_change` -- the two Pearson correlation matrices and their
  difference.

Like :mod:`aalearn.report.plots` (whose style and figure helpers are reused), every
function returns a :class:`matplotlib.figure.Figure` created without pyplot, labelled
for use as a report caption (``fig.get_label()``), ready for
:meth:`aalearn.report.Report.add_section`.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    >>> len(plot_overlays(x, y, top=2).axes)  # a distribution and a ratio panel per feature
    4
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.validation.checks import (
    ValidationConfig,
    ValidationReport,
    _check_inputs,
    _correlation_check,
    _did_you_mean,
    correlation_matrix,
    validate_samples,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_correlation_change", "plot_overlays"]

FloatArray = npt.NDArray[np.float64]

_NOMINAL_COLOR = "#1f3f77"
_ALTERNATIVE_COLOR = "#c8433a"


def _edges(values: FloatArray, bins: int) -> FloatArray:
    """Equal-width edges over the reference's [min, max], as in the checks."""
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        half = 0.5 * max(1.0, abs(lo))
        lo, hi = lo - half, hi + half
    return np.linspace(lo, hi, bins + 1)


def _panel(
    ax: Axes,
    rax: Axes,
    ref: FloatArray,
    cand: FloatArray,
    edges: FloatArray,
    labels: tuple[str, str],
) -> None:
    """Normalised step histograms with √N errors on ``ax``, their ratio on ``rax``."""
    widths = np.diff(edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    counts = []
    for values, color, label in (
        (ref, _NOMINAL_COLOR, labels[0]),
        (cand, _ALTERNATIVE_COLOR, labels[1]),
    ):
        n, _ = np.histogram(values, bins=edges)
        # Normalised to the whole sample: entries outside the nominal range show up as missing area.
        density = n / (values.size * widths)
        err = np.sqrt(n) / (values.size * widths)
        ax.stairs(density, edges, color=color, linewidth=1.6, label=label)
        nz = n > 0
        ax.errorbar(centres[nz], density[nz], yerr=err[nz], fmt="none", ecolor=color, elinewidth=0.9)
        counts.append((n.astype(np.float64), float(values.size)))
    (n_ref, tot_ref), (n_cand, tot_cand) = counts
    outside = float(np.mean((cand < edges[0]) | (cand > edges[-1])))
    if outside > 0:
        ax.text(
            0.98,
            0.97,
            f"{100 * outside:.2g}% of {labels[1]}\noutside {labels[0]} range",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#666666",
        )
    ax.set_ylim(bottom=0)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("normalised")
    ax.tick_params(labelbottom=False)

    ok = (n_ref > 0) & (n_cand > 0)
    ratio = (n_cand[ok] / tot_cand) / (n_ref[ok] / tot_ref)
    ratio_err = ratio * np.sqrt(1.0 / n_cand[ok] + 1.0 / n_ref[ok])
    rax.axhline(1.0, color="#888888", linewidth=1.0, linestyle="--")
    rax.errorbar(centres[ok], ratio, yerr=ratio_err, fmt="o", markersize=2.5, color="#333333", elinewidth=0.8)
    spread = 0.25
    if ratio.size:
        spread = float(np.clip(np.percentile(np.abs(ratio - 1.0) + ratio_err, 90), 0.1, 1.0))
    rax.set_ylim(max(0.0, 1.0 - 1.15 * spread), 1.0 + 1.15 * spread)
    rax.set_xlim(edges[0], edges[-1])
    rax.set_ylabel("ratio", fontsize=9)


def plot_overlays(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    top: int = 6,
    bins: int = 50,
    labels: tuple[str, str] = ("nominal", "alternative"),
    report: ValidationReport | None = None,
) -> Figure:
    r"""Overlay the nominal and the alternative distribution of selected features.

    Each feature gets a panel with both samples as step histograms normalised to unit
    area (over the whole sample: entries outside the nominal range are missing area)
    with :math:`\sqrt{N}` error bars, and beneath it the ratio alternative / nominal
    with propagated :math:`\sqrt{N}` errors and a line at 1. The bins span the nominal
    sample's [min, max]. Panel titles give the feature's JSD and corrected KS p-value.

    Args:
        reference: ``(N, F)`` nominal sample.
        candidate: ``(M, F)`` alternative sample.
        feature_names: ``F`` names (default: the report's, else ``feature_0`` ...).
        features: Names of the features to draw; default the ``top`` features with the
            largest JSD.
        top: Number of features drawn when ``features`` is not given.
        bins: Bins per panel.
        labels: Legend names of the reference and the candidate.
        report: A report of the same samples, for the JSD and KS values and the default
            selection; computed with ``ValidationConfig(bins=bins)`` when not given.

    Returns:
        The figure: two axes (distribution, ratio) per feature drawn.

    Raises:
        ValueError: For invalid samples, an unknown feature name (with suggestions),
            an empty selection, ``top < 1``, ``bins < 2``, or a report of other features.

    Example:
        >>> fig = plot_overlays(clean, adversarial, feature_names=names, top=4)  # doctest: +SKIP
    """
    if report is not None and feature_names is None:
        feature_names = report.feature_names
    ref, cand, names = _check_inputs(reference, candidate, feature_names)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    if len(labels) != 2:
        raise ValueError(f"labels must be two names (reference, candidate), got {labels!r}")
    if report is None:
        report = validate_samples(ref, cand, feature_names=names, config=ValidationConfig(bins=int(bins)))
    elif report.feature_names != names:
        raise ValueError("report was computed for other features than the ones given; pass the same samples")
    if features is None:
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise ValueError(f"top must be a positive integer, got {top!r}")
        selected = [row["feature"] for row in report.table(top=int(top))]
    else:
        if isinstance(features, str):
            features = [features]
        selected = list(features)
        if not selected:
            raise ValueError("features must name at least one feature")
        for feat in selected:
            if feat not in names:
                raise ValueError(f"unknown feature {feat!r}{_did_you_mean(feat, names)}")
    index = {n: i for i, n in enumerate(names)}
    label = report.config.correction
    p_label = "KS p" if label == "none" else f"KS p ({label})"

    n = len(selected)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    with _style():
        fig = _new_figure(
            (4.0 * ncols, 3.9 * nrows + 0.4),
            f"{labels[1]} versus {labels[0]}: feature distributions (normalised) and ratio",
        )
        grid = fig.add_gridspec(2 * nrows, ncols, height_ratios=[3.0, 1.0] * nrows)
        for k, feat in enumerate(selected):
            row, col = divmod(k, ncols)
            ax = fig.add_subplot(grid[2 * row, col])
            rax = fig.add_subplot(grid[2 * row + 1, col], sharex=ax)
            i = index[feat]
            _panel(ax, rax, ref[:, i], cand[:, i], _edges(ref[:, i], int(bins)), labels)
            check = report.features[i]
            ax.set_title(f"{feat}\nJSD = {check.jsd:.3f}, {p_label} = {check.ks_pvalue_corrected:.2g}")
            rax.set_xlabel(feat)
        handles, legend_labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, legend_labels, loc="outside upper center", ncols=2, frameon=False)
    return fig


def plot_correlation_change(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
) -> Figure:
    """Heatmaps of the nominal and alternative correlation matrices and their difference.

    Features constant in either sample have undefined correlations and are drawn grey.
    The title gives the relative Frobenius change
    ``||C_cand - C_ref||_F / ||C_ref||_F`` over the other features, as in
    :func:`aalearn.validation.validate_samples`.

    Args:
        reference: ``(N, F)`` nominal sample.
        candidate: ``(M, F)`` alternative sample.
        feature_names: ``F`` names for the axis ticks (shown up to 30 features).

    Returns:
        The figure: three heatmaps and two colour bars (correlation, difference).

    Raises:
        ValueError: For invalid samples or feature names.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> fig = plot_correlation_change(rng.normal(size=(200, 3)), rng.normal(size=(200, 3)))
        >>> len(fig.axes)
        5
    """
    ref, cand, names = _check_inputs(reference, candidate, feature_names)
    c_ref = correlation_matrix(ref)
    c_cand = correlation_matrix(cand)
    diff = c_cand - c_ref
    check, _ = _correlation_check(ref, cand, names, ValidationConfig())
    finite = diff[np.isfinite(diff)]
    vmax = max(float(np.max(np.abs(finite))) if finite.size else 0.0, 1e-3)
    n_features = len(names)

    with _style():  # imports matplotlib or explains how to install it
        import matplotlib as mpl

        def cmap() -> Any:
            return mpl.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")

        fig = _new_figure((15.0, 4.9), "Pearson correlation matrices of the nominal and alternative samples")
        axes = fig.subplots(1, 3)
        panels = (
            (c_ref, "nominal $C_\\mathrm{ref}$", -1.0, 1.0),
            (c_cand, "alternative $C_\\mathrm{cand}$", -1.0, 1.0),
            (diff, "$C_\\mathrm{cand} - C_\\mathrm{ref}$", -vmax, vmax),
        )
        images = []
        for ax, (matrix, title, lo, hi) in zip(axes, panels, strict=True):
            images.append(
                ax.imshow(
                    np.ma.masked_invalid(matrix), cmap=cmap(), vmin=lo, vmax=hi, interpolation="nearest"
                )
            )
            ax.set_title(title)
            ax.minorticks_off()
            ax.tick_params(top=False, right=False)
            if n_features <= 30:
                ticks = np.arange(n_features)
                ax.set_xticks(ticks, names, rotation=90, fontsize=7)
                ax.set_yticks(ticks, names, fontsize=7)
            else:
                ax.set_xlabel("feature index")
                ax.set_ylabel("feature index")
        fig.colorbar(images[0], ax=list(axes[:2]), label="correlation coefficient", shrink=0.85)
        fig.colorbar(images[2], ax=axes[2], label="difference", shrink=0.85)
        excluded = f"; constant, excluded: {len(check.excluded)}" if check.excluded else ""
        fig.suptitle(
            "relative Frobenius change $\\|C_\\mathrm{cand} - C_\\mathrm{ref}\\|_F\\,/\\,"
            f"\\|C_\\mathrm{{ref}}\\|_F$ = {check.rel_frobenius:.3g} "
            f"(statistical noise ≈ {check.rel_frobenius_noise:.2g}){excluded}"
        )
    return fig
