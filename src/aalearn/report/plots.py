r"""Standard plots for aalearn reports (matplotlib, HEP conventions).

Every function returns a :class:`matplotlib.figure.Figure` created without pyplot (no
GUI backend, nothing kept in a global figure manager), ready for
:meth:`aalearn.report.Report.add_section`. Each figure carries a label
(``fig.get_label()``) that the report uses as its caption.

Colours encode the class (top: red, W: blue, unlabeled: grey); line styles encode the
dataset when several are overlaid. Histograms are normalised to unit area and carry
:math:`\sqrt{N}` error bars. When `mplhep <https://github.com/scikit-hep/mplhep>`_ is
installed its CMS style is used as a base; it is not required.

Example:
    >>> import numpy as np
    >>> fig = plot_scores(np.array([0, 1, 0, 1]), np.array([0.9, 0.2, 0.7, 0.4]))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, N_CONSTITUENTS, challenge_feature_names
from aalearn.physics.preprocessing import features_mass

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_GRID_FEATURES",
    "dataset_summary_table",
    "plot_feature_grid",
    "plot_jet_mass",
    "plot_multiplicity",
    "plot_robustness_curves",
    "plot_roc",
    "plot_scores",
    "plot_training_curves",
]

FloatArray = npt.NDArray[np.float64]

#: Features shown by :func:`plot_feature_grid` by default: the leading constituents'
#: pT, the non-trivial angles of constituents 1 and 2, and a soft constituent (9).
DEFAULT_GRID_FEATURES: tuple[str, ...] = (
    "ConstPT_0",
    "ConstPT_1",
    "ConstPhi_1",
    "ConstPT_2",
    "ConstEta_2",
    "ConstPhi_2",
    "ConstPT_9",
    "ConstEta_9",
    "ConstPhi_9",
)

_CLASS_COLORS = ("#c8433a", "#2a6fb0")  # top, W
_UNLABELED_COLOR = "#555555"
_DISPLAY = {"top": "top", "w": "W"}
_LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
_W_MASS_GEV = 80.4
_TOP_MASS_GEV = 172.5


# --------------------------------------------------------------------------- helpers
def _display(name: str) -> str:
    return _DISPLAY.get(name, name)


def _check_datasets(datasets: Mapping[str, JetDataset], *, what: str) -> list[tuple[str, JetDataset, Any]]:
    """Validated ``(name, dataset, line style)`` triples."""
    if not isinstance(datasets, Mapping):
        raise TypeError(f"{what} needs a mapping name → JetDataset, got {type(datasets).__name__}")
    if not datasets:
        raise ValueError(f"{what} needs at least one dataset, got an empty mapping")
    items: list[tuple[str, JetDataset, Any]] = []
    if len(datasets) > len(_LINESTYLES):
        raise ValueError(f"{what} overlays at most {len(_LINESTYLES)} datasets, got {len(datasets)}")
    for (name, ds), linestyle in zip(datasets.items(), _LINESTYLES[: len(datasets)], strict=True):
        if not isinstance(ds, JetDataset):
            raise TypeError(f"dataset {name!r} must be a JetDataset, got {type(ds).__name__}")
        if len(ds) == 0:
            raise ValueError(f"dataset {name!r} has no jets; {what} needs at least one")
        items.append((str(name), ds, linestyle))
    return items


def _check_challenge_layout(name: str, ds: JetDataset, *, what: str) -> None:
    expected = tuple(challenge_feature_names())
    if ds.feature_names != expected:
        raise ValueError(
            f"{what} needs the {len(expected)} challenge features (ConstPT_0 ... ConstPhi_29) in the "
            f"challenge's order; dataset {name!r} has {len(ds.feature_names)} other columns"
        )


def _truth_jets(ds: JetDataset) -> FloatArray | None:
    """``extras["jets"]`` (pT, η, φ, mass, n_constituents) when present and well-formed."""
    jets = ds.extras.get("jets")
    if jets is None:
        return None
    arr = np.asarray(jets, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 5:
        raise ValueError(
            f"extras['jets'] of {ds.source or 'the dataset'} must have shape (N, 5) = "
            f"(pT, eta, phi, mass, n_constituents), got {arr.shape}"
        )
    return arr


def _pt_columns(ds: JetDataset) -> npt.NDArray[np.int64]:
    names = ds.feature_names
    return np.array([names.index(f"ConstPT_{i}") for i in range(N_CONSTITUENTS)], dtype=np.int64)


def _class_groups(ds: JetDataset) -> list[tuple[str, str, npt.NDArray[np.bool_]]]:
    """(display name, colour, row mask) for each class present; one grey group if unlabeled."""
    if ds.labels is None:
        return [("unlabeled", _UNLABELED_COLOR, np.ones(len(ds), dtype=bool))]
    groups = []
    for label, name in enumerate(LABEL_NAMES):
        mask = ds.labels == label
        if mask.any():
            groups.append((_display(name), _CLASS_COLORS[label % len(_CLASS_COLORS)], mask))
    return groups


def _hist(
    ax: Axes,
    values: npt.ArrayLike,
    edges: FloatArray,
    *,
    color: str,
    linestyle: Any = "-",
    fill: bool = False,
    errors: bool = True,
) -> None:
    """Unit-area step histogram with √N error bars (entries outside ``edges`` are ignored)."""
    v = np.asarray(values, dtype=np.float64)
    counts, _ = np.histogram(v, bins=edges)
    total = counts.sum()
    if total == 0:
        return
    widths = np.diff(edges)
    density = counts / (total * widths)
    if fill:
        ax.stairs(density, edges, color=color, alpha=0.18, fill=True, linewidth=0)
    ax.stairs(density, edges, color=color, linestyle=linestyle, linewidth=1.6)
    if errors:
        centres = 0.5 * (edges[:-1] + edges[1:])
        err = np.sqrt(counts) / (total * widths)
        nz = counts > 0
        ax.errorbar(
            centres[nz], density[nz], yerr=err[nz], fmt="none", ecolor=color, elinewidth=0.9, alpha=0.75
        )


def _legend(
    fig: Figure,
    classes: Sequence[tuple[str, str]],
    datasets: Sequence[tuple[str, Any]],
) -> None:
    """Figure legend above the panels: colours = classes, line styles = datasets."""
    from matplotlib.lines import Line2D

    handles: list[Any] = [Line2D([], [], color=c, linewidth=2.2, label=n) for n, c in classes]
    if len(datasets) > 1:
        handles += [
            Line2D([], [], color="#333333", linestyle=ls, linewidth=1.6, label=n) for n, ls in datasets
        ]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 6), frameon=False)


def _unique_classes(items: Sequence[tuple[str, JetDataset, Any]]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for _, ds, _ls in items:
        for name, color, _mask in _class_groups(ds):
            seen.setdefault(name, color)
    return list(seen.items())


def _title(ax: Axes, title: str, missing: Sequence[str] = ()) -> None:
    """Panel title; names the datasets that lack the quantity on a second, lighter line."""
    if not missing:
        ax.set_title(title)
        return
    ax.set_title(title, pad=17)
    ax.text(
        0.5,
        1.012,
        "not available for: " + ", ".join(missing),
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=8.5,
        color="#777777",
    )


def _parse_feature(name: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"Const(PT|Eta|Phi)_(\d+)", name)
    return (m.group(1).lower(), int(m.group(2))) if m else None


# --------------------------------------------------------------------------- datasets
def plot_jet_mass(
    datasets: Mapping[str, JetDataset],
    *,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
    mass_range: tuple[float, float] = (0.0, 300.0),
    bins: int = 60,
) -> Figure:
    """Normalised jet-mass distributions per class, several datasets overlaid.

    One panel shows the mass of the 30 kept constituents, recomputed from the 87
    features (:func:`aalearn.physics.features_mass`); when any dataset carries truth jets
    (``extras["jets"]``, column 3), a second panel shows the mass of all constituents.
    Dotted lines mark the W (80.4 GeV) and top (172.5 GeV) masses.

    Args:
        datasets: Name → dataset in the challenge layout, for example
            ``{"aalearn (Pythia)": generated, "challenge public": clean}``.
        pt_scale: GeV per pT unit of the features.
        mass_range: Histogram range in GeV; jets outside are not drawn.
        bins: Number of bins.

    Returns:
        The figure.

    Raises:
        ValueError: For no datasets, an empty dataset, features not in the challenge
            layout, malformed truth jets or a bad range.

    Example:
        >>> from aalearn.report.plots import plot_jet_mass
        >>> fig = plot_jet_mass({"generated": ds})  # doctest: +SKIP
    """
    items = _check_datasets(datasets, what="plot_jet_mass")
    lo, hi = float(mass_range[0]), float(mass_range[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"mass_range must be (low, high) with low < high, got {mass_range}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if not (math.isfinite(pt_scale) and pt_scale > 0):
        raise ValueError(f"pt_scale must be a positive number, got {pt_scale}")
    for name, ds, _ls in items:
        _check_challenge_layout(name, ds, what="plot_jet_mass")
    truths = {name: _truth_jets(ds) for name, ds, _ls in items}
    has_truth = any(t is not None for t in truths.values())
    edges = np.linspace(lo, hi, bins + 1)
    with _style():
        ncols = 2 if has_truth else 1
        fig = _new_figure((5.4 * ncols, 4.3), "Jet mass per class, normalised to unit area")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        panels: list[tuple[Axes, str]] = []
        if has_truth:
            panels.append((axes[0], "truth"))
        panels.append((axes[-1], "kept"))
        for ax, kind in panels:
            missing = []
            for name, ds, ls in items:
                if kind == "truth":
                    truth = truths[name]
                    if truth is None:
                        missing.append(name)
                        continue
                    mass: FloatArray = truth[:, 3]
                else:
                    mass = np.asarray(features_mass(ds.features, pt_scale=pt_scale), dtype=np.float64)
                for _cls, color, mask in _class_groups(ds):
                    _hist(ax, mass[mask], edges, color=color, linestyle=ls)
            for m_ref, text in ((_W_MASS_GEV, "$m_W$"), (_TOP_MASS_GEV, "$m_t$")):
                if lo < m_ref < hi:
                    ax.axvline(m_ref, color="#999999", linestyle=":", linewidth=1.0, zorder=0)
                    ax.text(
                        m_ref,
                        1.0,
                        f" {text}",
                        transform=ax.get_xaxis_transform(),
                        va="top",
                        fontsize=8.5,
                        color="#777777",
                    )
            ax.set_xlim(lo, hi)
            ax.set_ylim(bottom=0)
            ax.set_xlabel(r"jet mass $m_\mathrm{jet}$ [GeV]")
            ax.set_ylabel(r"$1/N\;\mathrm{d}N/\mathrm{d}m$ [GeV$^{-1}$]")
            _title(
                ax,
                "all constituents (truth jet)" if kind == "truth" else "30 kept constituents (features)",
                missing,
            )
        _legend(fig, _unique_classes(items), [(n, ls) for n, _ds, ls in items])
    return fig


def plot_multiplicity(datasets: Mapping[str, JetDataset]) -> Figure:
    """Constituent multiplicity per class, several datasets overlaid.

    One panel counts the constituents with non-zero pT among the 30 kept (always
    available); when any dataset carries truth jets, a second panel shows the number
    of all constituents (``extras["jets"][:, 4]``).

    Args:
        datasets: Name → dataset in the challenge layout.

    Returns:
        The figure.

    Raises:
        ValueError: For no datasets, an empty dataset or features without the 30
            ``ConstPT_i`` columns.

    Example:
        >>> fig = plot_multiplicity({"challenge public": clean})  # doctest: +SKIP
    """
    items = _check_datasets(datasets, what="plot_multiplicity")
    kept: dict[str, npt.NDArray[np.int64]] = {}
    for name, ds, _ls in items:
        try:
            cols = _pt_columns(ds)
        except ValueError:
            raise ValueError(
                f"plot_multiplicity needs the columns ConstPT_0 ... ConstPT_{N_CONSTITUENTS - 1}; "
                f"dataset {name!r} lacks some"
            ) from None
        kept[name] = (ds.features[:, cols] > 0).sum(axis=1).astype(np.int64)
    truths = {name: _truth_jets(ds) for name, ds, _ls in items}
    has_truth = any(t is not None for t in truths.values())
    with _style():
        ncols = 2 if has_truth else 1
        fig = _new_figure((5.4 * ncols, 4.3), "Constituent multiplicity per class, normalised to unit area")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        if has_truth:
            all_truth = np.concatenate([t[:, 4] for t in truths.values() if t is not None])
            top = max(float(np.percentile(all_truth, 99.5)), 1.0)
            width = max(1, math.ceil((top + 1) / 60))
            edges = np.arange(-0.5, top + width + 0.5, width, dtype=np.float64)
            ax = axes[0]
            missing = []
            for name, ds, ls in items:
                truth = truths[name]
                if truth is None:
                    missing.append(name)
                    continue
                for _cls, color, mask in _class_groups(ds):
                    _hist(ax, truth[mask, 4], edges, color=color, linestyle=ls)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(bottom=0)
            ax.set_xlabel("number of constituents (all)")
            ax.set_ylabel("fraction of jets per constituent")
            _title(ax, "all constituents (truth jet)", missing)
        ax = axes[-1]
        fewest = min(int(k.min()) for k in kept.values())
        edges = np.arange(max(fewest - 1, 0) - 0.5, N_CONSTITUENTS + 1.5, 1.0)
        for name, ds, ls in items:
            for _cls, color, mask in _class_groups(ds):
                _hist(ax, kept[name][mask], edges, color=color, linestyle=ls)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0)
        ax.set_xlabel(r"constituents with $p_\mathrm{T} > 0$ among the 30 kept")
        ax.set_ylabel("fraction of jets per constituent")
        ax.set_title("30 kept constituents (features)")
        _legend(fig, _unique_classes(items), [(n, ls) for n, _ds, ls in items])
    return fig


def plot_feature_grid(
    datasets: Mapping[str, JetDataset],
    features: Sequence[str] = DEFAULT_GRID_FEATURES,
    *,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
    bins: int = 40,
    ncols: int = 3,
) -> Figure:
    """A grid of per-feature distributions per class, several datasets overlaid.

    pT features are converted to GeV (``× pt_scale``) and drawn with a logarithmic
    y-axis. Zero-padded entries (constituent absent, pT = 0 and η = φ = 0) are left out
    so that the padding spike does not hide the shapes. The binning covers the central
    99 % of all datasets pooled.

    Args:
        datasets: Name → dataset.
        features: Feature names to show (default :data:`DEFAULT_GRID_FEATURES`).
        pt_scale: GeV per pT unit of the features.
        bins: Bins per panel.
        ncols: Panels per row.

    Returns:
        The figure.

    Raises:
        ValueError: For no datasets or features, an empty dataset, an unknown feature
            name (with suggestions) or bad ``bins``/``ncols``.

    Example:
        >>> fig = plot_feature_grid({"generated": ds}, ["ConstPT_0", "ConstEta_2"])  # doctest: +SKIP
    """
    items = _check_datasets(datasets, what="plot_feature_grid")
    if isinstance(features, str):
        features = [features]
    features = list(features)
    if not features:
        raise ValueError("plot_feature_grid needs at least one feature name")
    if bins < 1 or ncols < 1:
        raise ValueError(f"bins and ncols must be at least 1, got bins={bins}, ncols={ncols}")
    if not (math.isfinite(pt_scale) and pt_scale > 0):
        raise ValueError(f"pt_scale must be a positive number, got {pt_scale}")
    for name, ds, _ls in items:
        for feat in features:
            if feat not in ds.feature_names:
                close = difflib.get_close_matches(feat, ds.feature_names, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"dataset {name!r} has no feature {feat!r}{hint}")
    nrows = math.ceil(len(features) / ncols)
    ncols_used = min(ncols, len(features))
    with _style():
        fig = _new_figure(
            (3.7 * ncols_used, 2.9 * nrows + 0.5), "Feature distributions per class (padding excluded)"
        )
        axes = fig.subplots(nrows, ncols_used, squeeze=False).ravel()
        for ax, feat in zip(axes[: len(features)], features, strict=True):
            parsed = _parse_feature(feat)
            kind = parsed[0] if parsed else ""
            per_ds: list[tuple[FloatArray, npt.NDArray[np.bool_]]] = []
            for _name, ds, _ls in items:
                values = ds.features[:, ds.feature_names.index(feat)].astype(np.float64)
                real = np.ones(len(ds), dtype=bool)
                if parsed is not None and f"ConstPT_{parsed[1]}" in ds.feature_names:
                    real = ds.features[:, ds.feature_names.index(f"ConstPT_{parsed[1]}")] > 0
                if kind == "pt":
                    values = values * pt_scale
                per_ds.append((values, real))
            pooled = np.concatenate([v[r] for v, r in per_ds])
            if pooled.size == 0:
                ax.text(
                    0.5,
                    0.5,
                    "all entries are padding",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color="#666666",
                )
                lo, hi = 0.0, 1.0
            else:
                lo, hi = (float(q) for q in np.percentile(pooled, [0.5, 99.5]))
                if kind == "pt":
                    lo = max(0.0, float(pooled.min()))
                if not hi > lo:
                    lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, bins + 1)
            for (_name, ds, ls), (values, real) in zip(items, per_ds, strict=True):
                for _cls, color, mask in _class_groups(ds):
                    _hist(ax, values[mask & real], edges, color=color, linestyle=ls, errors=False)
            ax.set_xlim(lo, hi)
            if kind == "pt":
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.set_xlabel(_feature_label(feat))
            ax.set_ylabel("normalised")
        for ax in axes[len(features) :]:
            ax.set_visible(False)
        _legend(fig, _unique_classes(items), [(n, ls) for n, _ds, ls in items])
    return fig


def _feature_label(name: str) -> str:
    parsed = _parse_feature(name)
    if parsed is None:
        return name
    kind, idx = parsed
    if kind == "pt":
        return rf"$p_\mathrm{{T}}$ of constituent {idx} [GeV]"
    if kind == "eta":
        return rf"$\eta$ of constituent {idx} (rel.)"
    return rf"$\phi$ of constituent {idx} (rel.) [rad]"


# --------------------------------------------------------------------------- training
_TRAIN_KEYS = ("train_loss", "loss")
_VAL_KEYS = ("val_loss", "valid_loss", "validation_loss")
_ACC_KEYS = ("val_accuracy", "val_acc", "valid_accuracy", "validation_accuracy")


def _series(history: Mapping[str, Sequence[float]], keys: Sequence[str]) -> tuple[str, FloatArray] | None:
    for key in keys:
        if key in history and history[key] is not None:
            arr = np.asarray(history[key], dtype=np.float64)
            if arr.ndim != 1:
                raise ValueError(
                    f"history[{key!r}] must be a flat sequence of numbers, got shape {arr.shape}"
                )
            return key, arr
    return None


def plot_training_curves(history: Mapping[str, Sequence[float]]) -> Figure:
    """Training and validation loss per epoch, validation accuracy on a twin axis.

    Recognised keys: ``train_loss`` (or ``loss``), ``val_loss``, ``val_accuracy`` (or
    ``val_acc``). The best epoch (lowest validation loss, else highest validation
    accuracy, else lowest training loss) is marked. Epochs are numbered from 1.

    Args:
        history: Key → one value per epoch.

    Returns:
        The figure.

    Raises:
        ValueError: If no loss is given, a series is empty or the series differ in length.

    Example:
        >>> fig = plot_training_curves({"train_loss": [0.7, 0.5, 0.4], "val_loss": [0.68, 0.52, 0.55],
        ...                             "val_accuracy": [0.6, 0.8, 0.79]})
        >>> fig.get_label()
        'Training history (best epoch 2)'
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a mapping of name → per-epoch values, got {type(history).__name__}")
    train = _series(history, _TRAIN_KEYS)
    val = _series(history, _VAL_KEYS)
    acc = _series(history, _ACC_KEYS)
    if train is None and val is None:
        raise ValueError(
            f"history needs a loss: one of {_TRAIN_KEYS + _VAL_KEYS}; got keys {sorted(map(str, history))}"
        )
    present = [s for s in (train, val, acc) if s is not None]
    lengths = {key: len(arr) for key, arr in present}
    if any(n == 0 for n in lengths.values()):
        raise ValueError(f"history series must not be empty, got lengths {lengths}")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"history series must have one value per epoch each, got lengths {lengths}")
    n_epochs = next(iter(lengths.values()))
    epochs = np.arange(1, n_epochs + 1)
    if val is not None and np.isfinite(val[1]).any():
        best = int(np.nanargmin(np.where(np.isfinite(val[1]), val[1], np.nan))) + 1
    elif acc is not None and np.isfinite(acc[1]).any():
        best = int(np.nanargmax(np.where(np.isfinite(acc[1]), acc[1], np.nan))) + 1
    elif train is not None and np.isfinite(train[1]).any():
        best = int(np.nanargmin(np.where(np.isfinite(train[1]), train[1], np.nan))) + 1
    else:
        raise ValueError("history contains no finite loss or accuracy values")
    with _style():
        fig = _new_figure((7.6, 4.3), f"Training history (best epoch {best})")
        ax = fig.add_subplot()
        handles: list[Any] = []
        marker = "o" if n_epochs <= 40 else None
        if train is not None:
            handles += ax.plot(
                epochs, train[1], color="#1f3f77", marker=marker, markersize=3.5, label="train loss"
            )
        if val is not None:
            handles += ax.plot(
                epochs, val[1], color="#e07b1a", marker=marker, markersize=3.5, label="validation loss"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_xlim(0.5, n_epochs + 0.5)
        if n_epochs <= 20:
            ax.set_xticks(epochs)
            ax.minorticks_off()
        if acc is not None:
            ax2 = ax.twinx()
            handles += ax2.plot(
                epochs,
                acc[1],
                color="#2e8b57",
                linestyle="--",
                marker=marker,
                markersize=3.5,
                label="validation accuracy",
            )
            ax2.set_ylabel("validation accuracy", color="#2e8b57")
            ax2.tick_params(axis="y", colors="#2e8b57")
            ax.tick_params(axis="y", right=False, which="both")
        handles.append(
            ax.axvline(best, color="#888888", linestyle=":", linewidth=1.3, label=f"best epoch ({best})")
        )
        ax.legend(handles=handles, loc="upper right" if acc is None else "center right")
        ax.set_title("Training history")
    return fig


# --------------------------------------------------------------------------- classifier
def _check_roc(name: str, curve: Any) -> tuple[FloatArray, FloatArray, float | None]:
    if not isinstance(curve, (tuple, list)) or len(curve) != 3:
        raise ValueError(f"ROC curve {name!r} must be a tuple (fpr, tpr, auc)")
    fpr = np.asarray(curve[0], dtype=np.float64)
    tpr = np.asarray(curve[1], dtype=np.float64)
    if fpr.ndim != 1 or tpr.ndim != 1 or fpr.shape != tpr.shape:
        raise ValueError(
            f"ROC curve {name!r}: fpr and tpr must be 1-D of equal length, got {fpr.shape}, {tpr.shape}"
        )
    if fpr.size < 2:
        raise ValueError(f"ROC curve {name!r} needs at least two points")
    if not (np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr))):
        raise ValueError(f"ROC curve {name!r} contains NaN/inf")
    if fpr.min() < 0 or fpr.max() > 1 or tpr.min() < 0 or tpr.max() > 1:
        raise ValueError(f"ROC curve {name!r}: fpr and tpr must lie in [0, 1]")
    auc = curve[2]
    if auc is not None:
        auc = float(auc)
        if not (math.isfinite(auc) and 0.0 <= auc <= 1.0):
            raise ValueError(f"ROC curve {name!r}: auc must lie in [0, 1] or be None, got {curve[2]}")
    return fpr, tpr, auc


def plot_roc(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike, float | None]],
    *,
    signal_name: str = "top",
) -> Figure:
    r"""ROC curves in the HEP convention: rejection :math:`1/\varepsilon_B` versus signal efficiency.

    The rejection is drawn on a logarithmic axis; points with :math:`\varepsilon_B = 0`
    (infinite rejection) are left out. The grey line is a random classifier
    (:math:`1/\varepsilon_B = 1/\varepsilon_S`).

    Args:
        curves: Name → ``(fpr, tpr, auc)`` as returned by ``sklearn.metrics.roc_curve``
            plus the AUC (or ``None``); ``tpr`` is the signal efficiency
            :math:`\varepsilon_S`, ``fpr`` the background efficiency :math:`\varepsilon_B`.
        signal_name: Name of the signal class, for the axis label.

    Returns:
        The figure.

    Raises:
        ValueError: For no curves, mismatched lengths, values outside [0, 1] or a bad AUC.

    Example:
        >>> fig = plot_roc({"model": ([0.0, 0.1, 1.0], [0.0, 0.8, 1.0], 0.9)})
        >>> fig.axes[0].get_yscale()
        'log'
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("plot_roc needs a non-empty mapping name → (fpr, tpr, auc)")
    checked = [(str(name), *_check_roc(str(name), c)) for name, c in curves.items()]
    with _style():
        fig = _new_figure(
            (6.4, 4.8), f"ROC curves: background rejection versus {_display(signal_name)} efficiency"
        )
        ax = fig.add_subplot()
        colors = ("#1f3f77", "#c8433a", "#2e8b57", "#e07b1a", "#7b4fa0", "#17a2b8", "#8c564b", "#e377c2")
        y_max = 10.0
        for i, (name, fpr, tpr, auc) in enumerate(checked):
            ok = (fpr > 0) & (tpr > 0)
            label = name if auc is None else f"{name} (AUC = {auc:.4f})"
            if ok.any():
                rej = 1.0 / fpr[ok]
                y_max = max(y_max, float(rej.max()))
                ax.plot(
                    tpr[ok],
                    rej,
                    color=colors[i % len(colors)],
                    label=label,
                    linestyle=_LINESTYLES[(i // len(colors)) % len(_LINESTYLES)],
                )
            else:
                ax.plot([], [], color=colors[i % len(colors)], label=f"{label} – no finite rejection")
        x = np.linspace(0.005, 1.0, 400)
        ax.plot(x, 1.0 / x, color="#999999", linestyle="--", linewidth=1.2, label="random classifier")
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(1.0, y_max * 1.5)
        ax.set_xlabel(rf"signal efficiency $\varepsilon_S$ ({_display(signal_name)})")
        ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
        ax.grid(True, which="major", color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="upper right")
    return fig


def plot_scores(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    label_names: Sequence[str] = LABEL_NAMES,
    bins: int = 50,
    log: bool = False,
    score_label: str = "classifier output",
) -> Figure:
    """Classifier-output distributions per true class, normalised to unit area.

    Args:
        labels: ``(N,)`` integer class labels in ``range(len(label_names))``.
        scores: ``(N,)`` classifier outputs (probabilities or logits).
        label_names: Class names, indexed by label.
        bins: Number of bins; the range is [0, 1] for probabilities, else the data range.
        log: Logarithmic y-axis.
        score_label: x-axis label.

    Returns:
        The figure.

    Raises:
        ValueError: For empty input, mismatched lengths, non-integer or out-of-range
            labels, or non-finite scores.

    Example:
        >>> import numpy as np
        >>> fig = plot_scores(np.array([0, 0, 1]), np.array([0.9, 0.8, 0.1]))
        >>> fig.get_label()
        'Classifier output per true class'
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) must have the same length")
    if y.size == 0:
        raise ValueError("plot_scores needs at least one jet")
    integral = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
    whole_floats = np.issubdtype(y.dtype, np.floating) and bool(
        np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )
    if not (integral or whole_floats):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    names = list(label_names)
    if not names:
        raise ValueError("label_names must not be empty")
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(
            f"labels must lie in 0 ... {len(names) - 1} (label_names {names}), found {np.unique(y)[:10]}"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN/inf")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    lo, hi = (0.0, 1.0) if s.min() >= 0 and s.max() <= 1 else (float(s.min()), float(s.max()))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    palette = (*_CLASS_COLORS, "#2e8b57", "#e07b1a", "#7b4fa0")
    with _style():
        fig = _new_figure((6.4, 4.3), "Classifier output per true class")
        ax = fig.add_subplot()
        from matplotlib.lines import Line2D

        handles: list[Any] = []
        for label, name in enumerate(names):
            mask = y == label
            if not mask.any():
                continue
            color = palette[label % len(palette)]
            _hist(ax, s[mask], edges, color=color, fill=True)
            handles.append(
                Line2D([], [], color=color, linewidth=2.2, label=f"true {_display(name)} (N = {mask.sum()})")
            )
        ax.set_xlim(lo, hi)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel(score_label)
        ax.set_ylabel("normalised")
        ax.legend(handles=handles, loc="upper center")
    return fig


# --------------------------------------------------------------------------- table
def _median(values: npt.ArrayLike) -> float | None:
    v = np.asarray(values, dtype=np.float64)
    return float(np.median(v)) if v.size else None


def dataset_summary_table(
    datasets: Mapping[str, JetDataset],
    *,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
) -> list[dict[str, Any]]:
    """One summary row per dataset, ready for ``Report.add_section(table=...)``.

    Columns: dataset name, number of jets, jets per class, median jet mass per class
    from the 30 kept constituents and (when truth jets are present) from all
    constituents, median multiplicity (of all constituents when truth jets are present,
    and of the constituents with non-zero pT among the 30 kept) and median
    leading-constituent pT. Masses and momenta are in GeV; unavailable entries (truth
    quantities without ``extras["jets"]``, per-class values of unlabeled data) are ``None``.

    Args:
        datasets: Name → dataset in the challenge layout.
        pt_scale: GeV per pT unit of the features.

    Returns:
        A list of dicts with the same keys.

    Raises:
        ValueError: For no datasets, an empty dataset or features not in the challenge layout.

    Example:
        >>> rows = dataset_summary_table({"generated": ds})  # doctest: +SKIP
        >>> rows[0]["jets"]  # doctest: +SKIP
        1000
    """
    items = _check_datasets(datasets, what="dataset_summary_table")
    rows: list[dict[str, Any]] = []
    for name, ds, _ls in items:
        _check_challenge_layout(name, ds, what="dataset_summary_table")
        mass = features_mass(ds.features, pt_scale=pt_scale)
        truth = _truth_jets(ds)
        pt_cols = _pt_columns(ds)
        kept = (ds.features[:, pt_cols] > 0).sum(axis=1)
        row: dict[str, Any] = {"dataset": name, "jets": len(ds)}
        for label, cls in enumerate(LABEL_NAMES):
            mask = None if ds.labels is None else ds.labels == label
            row[f"{_display(cls)} jets"] = None if mask is None else int(mask.sum())
        for label, cls in enumerate(LABEL_NAMES):
            mask = None if ds.labels is None else ds.labels == label
            row[f"median m({_display(cls)}), 30 kept [GeV]"] = None if mask is None else _median(mass[mask])
        for label, cls in enumerate(LABEL_NAMES):
            mask = None if ds.labels is None else ds.labels == label
            row[f"median m({_display(cls)}), all [GeV]"] = (
                None if mask is None or truth is None else _median(truth[mask, 3])
            )
        row["median multiplicity (all)"] = None if truth is None else _median(truth[:, 4])
        row["median multiplicity (30 kept)"] = _median(kept)
        row["median leading pT [GeV]"] = _median(ds.features[:, pt_cols[0]].astype(np.float64) * pt_scale)
        rows.append(row)
    return rows


def plot_robustness_curves(
    curves: Mapping[str, Sequence[tuple[float, float, float | None]]],
    strengths: Mapping[str, str] | None = None,
) -> Figure:
    """Robustness curves: fooling ratio (and accuracy under attack) versus attack strength.

    Args:
        curves: Attack name → points ``(strength, fooling_ratio, accuracy or None)``.
        strengths: Attack name → name of its strength parameter (``"eps"``, ``"scale"``),
            used to group attacks on one panel per parameter.

    Returns:
        The figure (one panel per strength parameter; logarithmic strength axis).

    Example:
        >>> fig = plot_robustness_curves({"pgd": [(0.5, 0.2, 0.8), (1.0, 0.4, 0.6)]})
        >>> len(fig.axes)
        1
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("plot_robustness_curves needs a non-empty mapping attack -> points")
    kinds = strengths or {}
    groups: dict[str, list[str]] = {}
    for name in curves:
        groups.setdefault(kinds.get(name, "eps") or "strength", []).append(name)
    with _style():
        fig = _new_figure((5.2 * len(groups), 4.2), "Robustness curves: fooling ratio versus attack strength")
        colors = ("#1f3f77", "#c8433a", "#2e8b57", "#e07b1a", "#7b4fa0", "#17a2b8", "#8c564b", "#e377c2")
        for k, (kind, names) in enumerate(groups.items()):
            ax = fig.add_subplot(1, len(groups), k + 1)
            for i, name in enumerate(names):
                pts = sorted(curves[name])
                s = np.array([p[0] for p in pts], dtype=np.float64)
                fr = np.array([p[1] for p in pts], dtype=np.float64)
                c = colors[i % len(colors)]
                ax.plot(s, fr, "o-", color=c, label=f"{name}: fooling ratio")
                acc = [p[2] for p in pts]
                if all(a is not None for a in acc):
                    ax.plot(
                        s,
                        np.array(acc, dtype=np.float64),
                        "s--",
                        color=c,
                        alpha=0.6,
                        label=f"{name}: accuracy",
                    )
            ax.set_xscale("log")
            unit = "σ units" if kind == "eps" else "× σ"
            ax.set_xlabel(f"{kind} ({unit})")
            ax.set_ylabel("fraction")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
    return fig
