"""Reading per-jet constituents (pT, η, φ arrays) into the challenge's feature layout.

:func:`load_constituents` reads jagged ROOT branches, Arrow list columns or one column per
constituent through the column sources of :mod:`aalearn.data.sources`, sorts and pads the
constituents and applies the TopoDNN preprocessing
(:func:`~aalearn.physics.preprocessing.topodnn_preprocess`). It is re-exported by
:mod:`aalearn.data.io`.

Example:
    >>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq
    >>> t = pa.table({"pt": [[300.0, 100.0]], "eta": [[0.1, 0.3]], "phi": [[1.0, 1.2]]})
    >>> p = os.path.join(tempfile.mkdtemp(), "c.parquet"); pq.write_table(t, p)
    >>> load_constituents(p, pt="pt", eta="eta", phi="phi").features.shape
    (1, 87)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.validation import check_labels
from aalearn.data.dataset import JetDataset
from aalearn.data.sources import (
    SUPPORTED_SUFFIXES,
    FloatArray,
    PathLike,
    Source,
    _check_path,
    _format_of,
    _missing_error,
    _rows_preview,
    open_source,
)
from aalearn.physics.features import N_CONSTITUENTS, challenge_feature_names
from aalearn.physics.preprocessing import topodnn_preprocess

__all__ = ["load_constituents"]


def _constituent_arrays(
    source: Source, spec: str | Sequence[str], what: str
) -> tuple[npt.NDArray[np.int64], FloatArray, str]:
    """Read one constituent quantity as (counts, flat values, description)."""
    kind = "branch" if source.fmt == "root" else "column"
    if isinstance(spec, str):
        if spec not in source.names:
            raise _missing_error(
                source.path, [spec], source.names, f"{what} {kind}", f"Pass {what}= naming the file's {kind}."
            )
        desc = f"{what} {kind} {spec!r} of {str(source.path)!r}"
        counts, flat = source.ragged(spec, desc)
        return counts, flat, desc
    if not isinstance(spec, Sequence) or not spec or not all(isinstance(s, str) for s in spec):
        raise TypeError(
            f"{what} must be a column name (an array per jet) or a non-empty list of per-constituent "
            f"column names, got {spec!r}"
        )
    cols = list(spec)
    missing = [c for c in cols if c not in source.names]
    if missing:
        raise _missing_error(
            source.path,
            missing,
            source.names,
            f"{what} {kind}(s)",
            f"Pass {what}= naming the file's {kind}s.",
        )
    source.prefetch(cols)
    stacked = np.stack(
        [source.scalar(c, f"{what} {kind} {c!r} of {str(source.path)!r}").astype(np.float64) for c in cols],
        axis=1,
    )
    desc = f"{what} {kind}s {cols[0]!r} ... {cols[-1]!r} of {str(source.path)!r}"
    return np.full(stacked.shape[0], stacked.shape[1], dtype=np.int64), stacked.ravel(), desc


def load_constituents(
    path: PathLike,
    *,
    pt: str | Sequence[str],
    eta: str | Sequence[str],
    phi: str | Sequence[str],
    label: str | None = None,
    tree: str | None = None,
    pt_unit_gev: float = 1.0,
    n_constituents: int = N_CONSTITUENTS,
) -> JetDataset:
    """Read per-jet constituents and preprocess them into the challenge's feature layout.

    Each of ``pt``, ``eta``, ``phi`` names either one column holding an array per jet (a
    jagged or fixed-size ROOT branch, an Arrow list column) or a list of per-constituent
    scalar columns. Per jet the constituents are sorted by descending pT, truncated or
    zero-padded to ``n_constituents`` and passed through
    :func:`~aalearn.physics.preprocessing.topodnn_preprocess` (pT in units of 1679.1593 GeV).

    Args:
        path: Feather, Parquet or ROOT file.
        pt: Constituent transverse momenta (any unit, see ``pt_unit_gev``).
        eta: Constituent pseudorapidities.
        phi: Constituent azimuths (rad).
        label: Column of 0/1 labels (``None``: unlabeled).
        tree: ROOT only: the TTree to read; default the file's only tree.
        pt_unit_gev: GeV per unit of ``pt`` (``1e-3`` for MeV).
        n_constituents: Constituents kept per jet.

    Returns:
        The dataset in the challenge layout, with ``extras["constituents"]`` the sorted and
        padded ``(N, n_constituents, 3)`` (pT [GeV], η, φ) before preprocessing.

    Raises:
        ValueError: Missing columns, mismatched constituent counts, NaN/inf, negative pT,
            corrupt files and the other problems listed for :func:`load_dataset`.
        TypeError: Non-numeric columns or badly typed arguments.

    Example:
        >>> import numpy as np, tempfile, os, pyarrow as pa, pyarrow.parquet as pq
        >>> t = pa.table({"pt": [[300.0, 100.0]], "eta": [[0.1, 0.3]], "phi": [[1.0, 1.2]]})
        >>> p = os.path.join(tempfile.mkdtemp(), "c.parquet"); pq.write_table(t, p)
        >>> load_constituents(p, pt="pt", eta="eta", phi="phi").features.shape
        (1, 87)
    """
    p = _check_path(path)
    fmt = _format_of(p, {k: v for k, v in SUPPORTED_SUFFIXES.items() if v != "hdf5"})
    if not isinstance(pt_unit_gev, int | float) or not np.isfinite(pt_unit_gev) or pt_unit_gev <= 0:
        raise ValueError(
            f"pt_unit_gev must be a finite positive number (GeV per pT unit), got {pt_unit_gev!r}"
        )
    if not isinstance(n_constituents, int) or n_constituents < 2:
        raise ValueError(f"n_constituents must be an integer ≥ 2, got {n_constituents!r}")
    if label is not None and (not isinstance(label, str) or not label):
        raise TypeError(f"label must be a non-empty str or None, got {label!r}")
    with open_source(p, fmt, tree) as source:
        single = [s for s in (pt, eta, phi) if isinstance(s, str)]
        source.prefetch([n for n in (*single, label) if n is not None and n in source.names])
        read = {
            what: _constituent_arrays(source, spec, what)
            for what, spec in (("pt", pt), ("eta", eta), ("phi", phi))
        }
        labels_raw = None
        if label is not None:
            if label not in source.names:
                raise _missing_error(p, [label], source.names, "label column", "Pass label= naming it.")
            labels_raw = source.scalar(label, f"label column {label!r} of {str(p)!r}")
        extra_info = dict(source.extra_info)
    counts = read["pt"][0]
    for what in ("eta", "phi"):
        c = read[what][0]
        if c.shape != counts.shape:
            raise ValueError(
                f"{read[what][2]} has {c.shape[0]} jets but {read['pt'][2]} has {counts.shape[0]}"
            )
        diff = np.flatnonzero(c != counts)
        if diff.size:
            raise ValueError(
                f"{read[what][2]} and {read['pt'][2]} have different constituent counts in "
                f"{diff.size} jet(s): rows {_rows_preview(diff)}; every constituent needs pT, η and φ"
            )
    n_jets = counts.shape[0]
    if n_jets == 0:
        raise ValueError(f"{str(p)!r} holds no jets (0 rows); check that the right file was given")
    jet = np.repeat(np.arange(n_jets), counts)
    for what in ("pt", "eta", "phi"):
        bad = ~np.isfinite(read[what][1])
        if bad.any():
            raise ValueError(
                f"{read[what][2]} has {int(bad.sum())} NaN/inf value(s) in jets {_rows_preview(jet[bad])}; "
                "remove or repair these jets (pad with pT = 0, not NaN)"
            )
    pt_gev = read["pt"][1] * float(pt_unit_gev)
    if np.any(pt_gev < 0):
        raise ValueError(
            f"{read['pt'][2]} has negative pT in jets {_rows_preview(jet[pt_gev < 0])}; "
            "pT must be ≥ 0 (0 marks padding)"
        )
    # sort by jet, then by descending pT (stable), and keep the leading n_constituents
    order = np.lexsort((-pt_gev, jet))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rank = np.arange(jet.size) - np.repeat(starts, counts)
    keep = rank < n_constituents
    stacked = np.stack([pt_gev, read["eta"][1], read["phi"][1]], axis=1)[order]
    constituents = np.zeros((n_jets, n_constituents, 3), dtype=np.float64)
    constituents[jet[keep], rank[keep]] = stacked[keep]
    features = topodnn_preprocess(constituents, n_constituents=n_constituents).astype(np.float32)
    labels = None
    if labels_raw is not None and label is not None:
        label_desc = f"label column {label!r} of {str(p)!r}"
        try:
            labels = check_labels(labels_raw, name=label_desc, n=n_jets)
        except ValueError as exc:
            raise ValueError(f"{exc}; labels must be 0 (top) or 1 (W)") from exc
    metadata: dict[str, Any] = {
        "loaded_from": {
            "path": str(p),
            "format": fmt,
            "pt": pt if isinstance(pt, str) else list(pt),
            "eta": eta if isinstance(eta, str) else list(eta),
            "phi": phi if isinstance(phi, str) else list(phi),
            "label_column": label,
            **extra_info,
        },
        "preprocessing": "topodnn",
        "pt_unit_gev": float(pt_unit_gev),
        "n_constituents": n_constituents,
        "n_truncated_jets": int(np.sum(counts > n_constituents)),
        "n_empty_jets": int(np.sum(counts == 0)),
    }
    return JetDataset(
        features,
        labels,
        tuple(challenge_feature_names(n_constituents)),
        str(p),
        metadata,
        {"constituents": constituents.astype(np.float32)},
    )
