"""Re-smear generated jets with another detector resolution, without a new Pythia run.

``aalearn generate`` stores the detector-level objects before smearing
(``constituents_unsmeared``); :func:`resmear_file` applies another
:class:`~aalearn.physics.ResolutionModel` to them (for example the one fitted by
``aalearn calibrate``), which is equivalent to generating the same Pythia jets with that
resolution (only the smearing's random numbers differ). With ``pileup`` it also overlays
soft pile-up particles before the smearing (:mod:`aalearn.data.pileup`), which is exact for
the kept objects (see there).

Example:
    >>> from aalearn.physics.resolution import ResolutionModel
    >>> resmear_file("top.h5", "top_cal.h5", ResolutionModel.cms_challenge())  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.data.hdf5 import read_jets_hdf5, write_jets_hdf5
from aalearn.data.pileup import PileupModel, overlay_pileup
from aalearn.physics.detector import sort_by_pt
from aalearn.physics.preprocessing import topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel

__all__ = ["resmear_file"]


def resmear_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    resolution: ResolutionModel,
    *,
    seed: int = 0,
    pileup: PileupModel | None = None,
    min_objects: int = 0,
) -> Path:
    """Re-smear a generated file's unsmeared objects with another resolution (no new Pythia run).

    Applies a calibrated resolution (``aalearn calibrate``) to jets already generated:
    ``constituents`` and ``features`` are recomputed from ``constituents_unsmeared`` (re-sorted
    when the file's configuration has ``resort``), everything else is copied; the
    configuration records the new resolution and ``resmeared_seed``.

    Args:
        path: An aalearn jet file with ``constituents_unsmeared``.
        out: Output file (must differ from ``path``).
        resolution: The new resolution.
        seed: Seed of the smearing (and of the pile-up overlay).
        pileup: Overlay these pile-up particles on the unsmeared objects first (``None``: none).
        min_objects: Drop the jets with fewer objects than this after the overlay (0 keeps
            all): with a file generated with ``min_constituents=0`` this applies the
            30-object requirement after the overlay, as the ``cms-challenge`` preset needs.

    Returns:
        The path written.

    Raises:
        ValueError: For a file without unsmeared objects, ``out`` equal to ``path``, a negative
            ``min_objects`` or one that no jet reaches.

    Example:
        >>> resmear_file("top.h5", "top_cal.h5", ResolutionModel.cms_challenge())  # doctest: +SKIP
    """
    src, dst = Path(path), Path(out)
    if isinstance(min_objects, bool) or not isinstance(min_objects, int) or min_objects < 0:
        raise ValueError(f"resmear_file: min_objects must be a non-negative integer, got {min_objects!r}")
    if src.resolve() == dst.resolve():
        raise ValueError(f"resmear_file: the output {dst} must differ from the input")
    ds = read_jets_hdf5(src)
    if "constituents_unsmeared" not in ds.extras:
        raise ValueError(f"{src} has no 'constituents_unsmeared'; regenerate it with this aalearn")
    meta = ds.metadata
    config = dict(meta["config"])
    unsmeared = np.asarray(ds.extras["constituents_unsmeared"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    if pileup is not None:
        if "pileup" in config:
            raise ValueError(f"{src} already has a pile-up overlay; re-smear the file it was made from")
        unsmeared = overlay_pileup(unsmeared, pileup, rng)
        config["pileup"] = pileup.to_dict()
    keep = (unsmeared[..., 0] > 0).sum(axis=1) >= min_objects
    if not keep.any():
        raise ValueError(f"resmear_file: no jet of {src} has {min_objects} objects")
    if min_objects:
        config["min_objects_after_overlay"] = int(min_objects)
    unsmeared = unsmeared[keep]
    smeared = resolution.smear(unsmeared, rng)
    if config.get("resort", False):
        smeared = sort_by_pt(smeared)
    k = unsmeared.shape[1]
    scale = float(meta["pt_scale_gev"])
    config["resolution"] = resolution.to_dict()
    config["resmeared_seed"] = int(seed)
    arrays: dict[str, npt.NDArray[Any]] = {
        **{name: np.asarray(a)[keep] for name, a in ds.extras.items()},
        "constituents_unsmeared": unsmeared.astype(np.float32),
        "features": topodnn_preprocess(smeared, pt_scale=scale, n_constituents=k).astype(np.float32),
        "labels": np.asarray(ds.labels)[keep],
        "constituents": smeared.astype(np.float32),
        "chunk_seeds": np.asarray(meta["chunk_seeds"], dtype=np.int64),
    }
    attrs: dict[str, Any] = {
        key: meta[key]
        for key in ("feature_names", "pt_scale_gev", "pythia_settings", "n_events", "cpu_seconds")
        if key in meta
    }
    attrs["config"] = config
    return write_jets_hdf5(dst, arrays, attrs)
