"""Figures of the "Explanations" report section: read at a glance by a physicist.

* :func:`plot_top_features` -- horizontal bars of the most important features, mean
  :math:`|A|` (logit units) next to the importance in σ units;
* :func:`plot_jet_images` -- attributions drawn in the (η, φ) plane of the constituents,
  averaged per class (a jet image of where the tagger looks);
* :func:`plot_rank_profile` -- importance per constituent rank, split into pT, η and φ;
* :func:`plot_attack_profile` -- mean :math:`|\\delta|/\\sigma` per constituent rank for
  each attack.

matplotlib is imported through :mod:`aalearn.core.plotting` only when a figure is made.

Example:
    >>> import numpy as np
    >>> fig = plot_top_features(["a", "b"], np.array([2.0, 1.0]), np.array([0.5, 0.1]))
    >>> fig.get_label()
    'Most important features'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aalearn.core.plotting import new_figure, style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_attack_profile", "plot_jet_images", "plot_rank_profile", "plot_top_features"]

FloatArray = npt.NDArray[np.float64]
_KIND_LABEL = {"pt": "$p_T$", "eta": "$\\eta$", "phi": "$\\phi$", "other": "other"}


def plot_top_features(
    names: Sequence[str],
    importance: npt.ArrayLike,
    importance_sigma: npt.ArrayLike | None = None,
    *,
    top: int = 15,
) -> Figure:
    """Bars of the ``top`` features by mean :math:`|A|` (and, when given, in σ units)."""
    imp = np.asarray(importance, dtype=np.float64)
    order = np.argsort(-imp, kind="stable")[: min(top, imp.size)][::-1]
    labels = [names[i] for i in order]
    panels = 2 if importance_sigma is not None else 1
    with style():
        fig = new_figure((4.2 * panels, 0.28 * len(order) + 1.4), "Most important features")
        axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
        axes[0].barh(range(len(order)), imp[order], color="#3465a4")
        axes[0].set_yticks(range(len(order)), labels)
        axes[0].set_xlabel("mean |attribution| (logit)")
        if importance_sigma is not None:
            sig = np.asarray(importance_sigma, dtype=np.float64)
            axes[1].barh(range(len(order)), np.nan_to_num(sig[order]), color="#cc0000")
            axes[1].set_xlabel("mean |∂z/∂x|·σ (logit per 1σ)")
    return fig


def plot_jet_images(
    eta: npt.ArrayLike,
    phi: npt.ArrayLike,
    weight: npt.ArrayLike,
    classes: npt.ArrayLike,
    *,
    class_names: Mapping[str, str] | None = None,
    extent: float = 0.8,
    bins: int = 32,
) -> Figure:
    """Attribution-weighted (η, φ) histograms of the constituents, averaged per class.

    Args:
        eta: Constituent η, ``(N, K)``.
        phi: Constituent φ, ``(N, K)``.
        weight: Per-constituent attribution (sum of :math:`|A|` of its features), ``(N, K)``.
        classes: Class per jet, ``(N,)``.
        class_names: Display names of the classes.
        extent: Half-width of the drawn (η, φ) window.
        bins: Bins per axis.
    """
    e = np.asarray(eta, dtype=np.float64)
    p = np.asarray(phi, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    cls = np.asarray(classes)
    keys = [int(k) for k in np.unique(cls)]
    names = dict(class_names or {})
    edges = np.linspace(-extent, extent, bins + 1)
    with style():
        fig = new_figure(
            (3.6 * max(len(keys), 1) + 0.8, 3.4), "Attributions in the (η, φ) plane, averaged per class"
        )
        axes = fig.subplots(1, max(len(keys), 1), squeeze=False)[0]
        images = []
        for k in keys:
            sel = cls == k
            h, _, _ = np.histogram2d(
                e[sel].ravel(), p[sel].ravel(), bins=(edges, edges), weights=w[sel].ravel()
            )
            images.append(h / max(int(sel.sum()), 1))
        vmax = max((float(im.max()) for im in images), default=1.0) or 1.0
        # square-root colour scale: the leading constituent at the origin would hide the rest
        from matplotlib.colors import PowerNorm

        norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax)
        mesh = None
        for ax, k, im in zip(axes, keys, images, strict=False):
            mesh = ax.pcolormesh(edges, edges, im.T, cmap="viridis", norm=norm)
            ax.set_title(f"class {names.get(str(k), str(k))}")
            ax.set_xlabel("η (relative)")
            ax.set_ylabel("φ (relative)")
        if mesh is not None:
            fig.colorbar(mesh, ax=list(axes), label="mean |attribution| per jet")
    return fig


def plot_rank_profile(by_rank: Mapping[str, Sequence[float]], ranks: Sequence[int]) -> Figure:
    """Importance per constituent rank, one line per feature kind.

    Args:
        by_rank: ``{kind: importance per rank}`` (``nan`` where the kind has no column).
        ranks: The constituent ranks (x axis).
    """
    with style():
        fig = new_figure((5.6, 3.4), "Importance per constituent rank (0 = leading)")
        ax = fig.add_subplot()
        for kind, values in by_rank.items():
            ax.plot(list(ranks), list(values), marker="o", ms=3, label=_KIND_LABEL.get(kind, kind))
        ax.set_xlabel("constituent rank")
        ax.set_ylabel("mean |attribution| (logit)")
        ax.legend()
    return fig


def plot_attack_profile(profiles: Mapping[str, Mapping[int, float]]) -> Figure:
    """Mean :math:`|\\delta|/\\sigma` per constituent rank, one line per attack."""
    with style():
        fig = new_figure((5.6, 3.4), "What the attacks move: mean |δ|/σ per constituent rank")
        ax = fig.add_subplot()
        for name, prof in profiles.items():
            ranks = sorted(prof)
            ax.plot(ranks, [prof[r] for r in ranks], marker="o", ms=3, label=name)
        ax.set_xlabel("constituent rank")
        ax.set_ylabel("mean |δ|/σ (successful jets)")
        ax.legend()
    return fig
