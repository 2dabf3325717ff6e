r"""Per-class spectrum reweighting of training jets to a labelled reference sample.

A tagger trained on generated jets learns the generator's kinematic spectra. When the
jets it will meet (a detector sample, the challenge's CMS jets) have other spectra, the
training jets can be reweighted so that, **per class** :math:`c`, the distribution of one
kinematic variable :math:`v` (the jet's :math:`\Sigma p_T` over its constituents, or the
leading constituent's :math:`p_T`) matches the reference's:

.. math::

    w_i = \frac{N_c}{\sum_{j \in c} r_{b(j)}}\, r_{b(i)}, \qquad
    r_b = \min\!\Bigl(\frac{n^\mathrm{ref}_{c,b}/n^\mathrm{ref}_c}
                       {n^\mathrm{train}_{c,b}/n^\mathrm{train}_c},\; w_\mathrm{max}\Bigr),

a histogram ratio in the bins :math:`b` of :math:`v`. The bins are **quantile bins of
the reference** (each holds the same share of the reference class, so no reference bin
is empty and the ratio's statistical error is the same in each); a training jet outside
the reference's range gets weight 0 (the reference has no jets there). The ratios are
clipped at ``max_weight`` and the weights normalised so that each class keeps its count
(:math:`\sum_{i\in c} w_i = N_c`): the class balance of the training set is unchanged.
Kish's effective sample size :math:`(\sum w)^2/\sum w^2` says how many unweighted jets
the weighted class is worth.

**Held-out rule.** When the reference is the challenge's ``Clean_Test_Public.feather``,
only its even rows (0, 2, 4, ...) may inform a spectrum; the odd rows are the held-out
check. :func:`reference_rows` with ``"even"`` (the default everywhere) selects them;
``"all"`` uses every row (for a reference sample of your own).

This is the histogram form of the density-ratio reweighting used to correct simulation
to data in HEP (see for example Rogozhnikov, arXiv:1608.05806, for the binned baseline
and its multivariate generalisation).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v_train = rng.uniform(0, 1, 4000)
    >>> v_ref = rng.uniform(0, 1, 4000) ** 2  # the reference prefers small values
    >>> sw = spectrum_weights(v_train, np.zeros(4000, int), v_ref, np.zeros(4000, int), n_bins=10,
    ...                       require_both_classes=False)
    >>> bool(sw.weights[v_train < 0.1].mean() > 2 > sw.weights[v_train > 0.9].mean())
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, is_challenge_layout

__all__ = [
    "REFERENCE_ROWS",
    "REWEIGHT_VARIABLES",
    "SpectrumWeights",
    "reference_rows",
    "reweight_to_reference",
    "spectrum_variable",
    "spectrum_weights",
]

#: Variables a spectrum can be matched in: jet ΣpT of the constituents, leading-constituent pT (GeV).
REWEIGHT_VARIABLES: tuple[str, ...] = ("sum-pt", "lead-pt")
#: Which rows of the reference inform the spectrum: ``"even"`` (0, 2, 4, ...; the held-out rule) or ``"all"``.
REFERENCE_ROWS: tuple[str, ...] = ("even", "all")

FloatArray = npt.NDArray[np.float64]


def reference_rows(n: int, rows: str = "even") -> npt.NDArray[np.int64]:
    """Indices of the reference rows that may inform a spectrum.

    Args:
        n: Rows of the reference file.
        rows: ``"even"`` (0, 2, 4, ...: the calibration half of the challenge's clean
            file; the odd rows stay held out) or ``"all"``.

    Raises:
        ValueError: For another ``rows``.

    Example:
        >>> reference_rows(5).tolist(), reference_rows(3, "all").tolist()
        ([0, 2, 4], [0, 1, 2])
    """
    if rows not in REFERENCE_ROWS:
        raise ValueError(f"reference rows must be one of {', '.join(REFERENCE_ROWS)}, got {rows!r}")
    step = 2 if rows == "even" else 1
    return np.arange(0, int(n), step, dtype=np.int64)


def spectrum_variable(
    features: npt.ArrayLike,
    variable: str = "sum-pt",
    *,
    feature_names: tuple[str, ...] | None = None,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
) -> FloatArray:
    """The jet-level variable a spectrum is matched in, in GeV, from challenge-layout features.

    Args:
        features: ``(N, 87)`` features of the challenge layout (pT in units of ``pt_scale``).
        variable: ``"sum-pt"`` (Σ of the constituents' pT) or ``"lead-pt"`` (the largest
            constituent pT).
        feature_names: Column names (default: the challenge's names).
        pt_scale: GeV per pT unit of the features.

    Raises:
        ValueError: For an unknown variable or features not in the challenge layout.

    Example:
        >>> x = np.zeros((1, 87)); x[0, 0], x[0, 1] = 0.2, 0.1
        >>> round(float(spectrum_variable(x, "sum-pt", pt_scale=1000.0)[0]), 6)
        300.0
    """
    if variable not in REWEIGHT_VARIABLES:
        raise ValueError(
            f"unknown reweighting variable {variable!r}; choose one of {', '.join(REWEIGHT_VARIABLES)}"
        )
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or not is_challenge_layout(x.shape[1], feature_names):
        raise ValueError(
            f"spectrum reweighting needs jets in the 87-column challenge layout, got shape {x.shape}"
        )
    pt_cols = _challenge_pt_columns()
    pt = x[:, pt_cols] * float(pt_scale)
    out: FloatArray = pt.sum(axis=1) if variable == "sum-pt" else pt.max(axis=1)
    return out


def _challenge_pt_columns() -> list[int]:
    # layout: ConstPT_0, ConstPT_1, ConstPhi_1, then (PT, Eta, Phi) per constituent 2..29
    return [0, 1, *range(3, 87, 3)]


@dataclass
class SpectrumWeights:
    """Per-jet weights of :func:`spectrum_weights` with what they are made of.

    Attributes:
        weights: ``(N,)`` weight per training jet (class sums equal the class counts).
        variable: The matched variable's name.
        edges: Per class, the quantile bin edges of the reference (GeV).
        ratios: Per class, the clipped ratio reference share / training share per bin.
        n_train: Per class, training jets.
        n_reference: Per class, reference jets used.
        n_outside: Per class, training jets outside the reference's range (weight 0).
        n_clipped: Per class, training jets in bins whose ratio was clipped.
        effective_n: Per class, Kish's effective sample size of the weighted jets.
        max_weight: The clip on the ratio.
        reference_rows: ``"even"`` or ``"all"`` (documentation of what was used).
    """

    weights: FloatArray
    variable: str
    edges: dict[int, FloatArray]
    ratios: dict[int, FloatArray]
    n_train: dict[int, int]
    n_reference: dict[int, int]
    n_outside: dict[int, int]
    n_clipped: dict[int, int]
    effective_n: dict[int, float]
    max_weight: float
    reference_rows: str = "even"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-jet weights).

        Example:
            >>> sw = spectrum_weights([1.0, 2.0] * 20, [0, 1] * 20, [1.0, 2.0] * 20, [0, 1] * 20, n_bins=2)
            >>> sw.to_dict()["classes"]["top"]["effective_n"]
            20.0
        """
        classes = {}
        for c in sorted(self.n_train):
            classes[LABEL_NAMES[c]] = {
                "n_train": self.n_train[c],
                "n_reference": self.n_reference[c],
                "n_outside_reference_range": self.n_outside[c],
                "n_clipped": self.n_clipped[c],
                "effective_n": self.effective_n[c],
                "bin_edges_gev": [float(v) for v in self.edges[c]],
                "ratios": [float(v) for v in self.ratios[c]],
            }
        return {
            "variable": self.variable,
            "reference_rows": self.reference_rows,
            "max_weight": self.max_weight,
            "classes": classes,
            "notes": list(self.notes),
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per class: jets, effective size, jets outside the range, clipped jets."""
        return [
            {
                "class": LABEL_NAMES[c],
                "n_train": self.n_train[c],
                "n_reference": self.n_reference[c],
                "effective_n": round(self.effective_n[c], 1),
                "outside_range": self.n_outside[c],
                "clipped": self.n_clipped[c],
            }
            for c in sorted(self.n_train)
        ]


def _labels(
    values: npt.ArrayLike, labels: npt.ArrayLike, what: str
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels)
    if v.ndim != 1 or y.shape != v.shape:
        raise ValueError(
            f"{what}: values and labels must be 1-D of the same length, got {v.shape} and {y.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what}: the spectrum variable contains NaN/inf")
    if y.size and not np.all(np.isin(y, (0, 1))):
        raise ValueError(f"{what}: labels must be 0 or 1")
    return v, y.astype(np.int64)


def spectrum_weights(
    train_values: npt.ArrayLike,
    train_labels: npt.ArrayLike,
    reference_values: npt.ArrayLike,
    reference_labels: npt.ArrayLike,
    *,
    n_bins: int = 10,
    max_weight: float = 20.0,
    variable: str = "value",
    require_both_classes: bool = True,
) -> SpectrumWeights:
    """Per-class histogram-ratio weights that map the training spectrum onto the reference's.

    Args:
        train_values: ``(N,)`` the variable of the training jets.
        train_labels: ``(N,)`` their labels in {0, 1}.
        reference_values: ``(M,)`` the variable of the reference jets (already restricted
            to the rows that may be used, see :func:`reference_rows`).
        reference_labels: ``(M,)`` their labels.
        n_bins: Quantile bins of the reference per class (fewer when the reference has
            tied values); each bin holds at least 10 reference jets.
        max_weight: Clip of the per-bin ratio (before the per-class normalisation).
        variable: Name of the variable (for messages and the summary).
        require_both_classes: Refuse a reference or training sample with a single class.

    Returns:
        The :class:`SpectrumWeights`.

    Raises:
        ValueError: For a reference with one class (or a training class missing in it),
            a training class with no jets in a bin the reference populates (an empty bin:
            use fewer bins or widen the generated spectrum), too few reference jets for
            ``n_bins``, bad shapes or labels.
    """
    v_tr, y_tr = _labels(train_values, train_labels, "training jets")
    v_ref, y_ref = _labels(reference_values, reference_labels, "reference jets")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if not np.isfinite(max_weight) or max_weight <= 1:
        raise ValueError(f"max_weight must be a finite number > 1, got {max_weight!r}")
    ref_classes = set(np.unique(y_ref).tolist())
    tr_classes = sorted(set(np.unique(y_tr).tolist()))
    if require_both_classes and len(ref_classes) < 2:
        raise ValueError(
            f"the reference holds only class {sorted(ref_classes) or 'none'}: per-class reweighting needs "
            "both labels (0 = top, 1 = W) in the reference"
        )
    if require_both_classes and len(tr_classes) < 2:
        raise ValueError(f"the training jets hold only class {tr_classes}: reweighting needs both labels")
    weights = np.zeros(len(v_tr), dtype=np.float64)
    out = SpectrumWeights(
        weights=weights,
        variable=variable,
        edges={},
        ratios={},
        n_train={},
        n_reference={},
        n_outside={},
        n_clipped={},
        effective_n={},
        max_weight=float(max_weight),
    )
    for c in tr_classes:
        if c not in ref_classes:
            raise ValueError(f"the reference has no jets of class {LABEL_NAMES[c]} (label {c})")
        ref = np.sort(v_ref[y_ref == c])
        tr_idx = np.nonzero(y_tr == c)[0]
        tr = v_tr[tr_idx]
        bins = int(min(n_bins, len(ref) // 10))
        if bins < 1:
            raise ValueError(
                f"the reference has {len(ref)} {LABEL_NAMES[c]} jets: too few for a spectrum (at least 10)"
            )
        edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)))
        if len(edges) < 2:
            edges = np.array([ref[0], ref[0]])
        # bin b holds edges[b] <= v < edges[b+1]; the last bin also holds its upper edge
        inner = edges[1:-1]
        ref_bin = np.searchsorted(inner, ref, side="right")
        tr_bin = np.searchsorted(inner, tr, side="right")
        inside = (tr >= edges[0]) & (tr <= edges[-1])
        n_b = len(edges) - 1
        ref_share = np.bincount(ref_bin, minlength=n_b) / len(ref)
        tr_count = np.bincount(tr_bin[inside], minlength=n_b)
        empty = np.nonzero((tr_count == 0) & (ref_share > 0))[0]
        if empty.size:
            b = int(empty[0])
            raise ValueError(
                f"the {LABEL_NAMES[c]} training jets leave {empty.size} of {n_b} {variable} bins empty "
                f"(first: "
                f"[{edges[b]:.4g}, {edges[b + 1]:.4g}) GeV) that the reference populates; use fewer bins or "
                "generate a spectrum that covers the reference's"
            )
        tr_share = tr_count / max(len(tr), 1)
        raw = np.where(tr_count > 0, ref_share / np.where(tr_share > 0, tr_share, 1.0), 0.0)
        ratio = np.minimum(raw, float(max_weight))
        w = np.where(inside, ratio[tr_bin.clip(0, n_b - 1)], 0.0)
        total = w.sum()
        if total <= 0:
            raise ValueError(f"no {LABEL_NAMES[c]} training jet lies inside the reference's {variable} range")
        w *= len(tr) / total
        weights[tr_idx] = w
        out.edges[c], out.ratios[c] = edges, ratio
        out.n_train[c], out.n_reference[c] = len(tr), len(ref)
        out.n_outside[c] = int(np.sum(~inside))
        out.n_clipped[c] = int(np.sum(inside & (raw[tr_bin.clip(0, n_b - 1)] > max_weight)))
        out.effective_n[c] = float(w.sum() ** 2 / np.sum(w**2))
        if out.n_outside[c] > 0.2 * len(tr):
            out.notes.append(
                f"{out.n_outside[c]} of {len(tr)} {LABEL_NAMES[c]} training jets lie outside the reference's "
                f"{variable} range and get weight 0"
            )
    return out


def reweight_to_reference(
    train: JetDataset,
    reference: JetDataset,
    *,
    variable: str = "sum-pt",
    rows: str = "even",
    n_bins: int = 10,
    max_weight: float = 20.0,
) -> SpectrumWeights:
    """Weights that give each class of ``train`` the reference's spectrum of ``variable``.

    Args:
        train: Labelled training jets (challenge layout).
        reference: Labelled reference jets (challenge layout), for example the
            challenge's ``Clean_Test_Public.feather``.
        variable: ``"sum-pt"`` or ``"lead-pt"`` (:func:`spectrum_variable`).
        rows: Which reference rows inform the spectrum, ``"even"`` (default: the
            challenge's held-out rule) or ``"all"`` (:func:`reference_rows`).
        n_bins: Quantile bins per class.
        max_weight: Clip of the per-bin ratio.

    Returns:
        The :class:`SpectrumWeights` (``weights`` in the row order of ``train``).

    Raises:
        ValueError: For an unlabelled reference or training set, a single class, an
            unknown variable or rows option, empty bins, other layouts.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> x = np.abs(rng.normal(0.1, 0.02, (400, 87))).astype(np.float32)
        >>> from aalearn.physics.features import challenge_feature_names
        >>> ds = JetDataset(x, (np.arange(400) // 2) % 2, tuple(challenge_feature_names()))
        >>> reweight_to_reference(ds, ds, n_bins=4).weights.shape
        (400,)
    """
    if variable not in REWEIGHT_VARIABLES:
        raise ValueError(
            f"unknown reweighting variable {variable!r}; choose one of {', '.join(REWEIGHT_VARIABLES)}"
        )
    idx = reference_rows(len(reference), rows)
    if reference.labels is None:
        raise ValueError(
            f"the reference {reference.source or '(unnamed)'} has no labels; reweighting needs them"
        )
    if train.labels is None:
        raise ValueError(f"the training jets {train.source or '(unnamed)'} have no labels")
    v_tr = spectrum_variable(train.features, variable, feature_names=train.feature_names)
    v_ref = spectrum_variable(reference.features[idx], variable, feature_names=reference.feature_names)
    sw = spectrum_weights(
        v_tr,
        train.labels,
        v_ref,
        reference.labels[idx],
        n_bins=n_bins,
        max_weight=max_weight,
        variable=variable,
    )
    sw.reference_rows = rows
    return sw
