"""Re-smear generated jets with another detector resolution, without a new Pythia run.

``aalearn generate`` stores the detector-level objects before smearing
(``constituents_unsmeared``); :func:`resmear_file` applies another
:class:`~aalearn.physics.ResolutionModel` to them (for example the one fitted by
``aalearn calibrate``), which is equivalent to generating the same Pythia jets with that
resolution (only the smearing's random numbers differ).

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
        seed: Seed of the smearing.

    Returns:
        The path written.

    Raises:
        ValueError: For a file without unsmeared objects, or ``out`` equal to ``path``.

    Example:
        >>> resmear_file("top.h5", "top_cal.h5", ResolutionModel.cms_challenge())  # doctest: +SKIP
    """
    src, dst = Path(path), Path(out)
    if src.resolve() == dst.resolve():
        raise ValueError(f"resmear_file: the output {dst} must differ from the input")
    ds = read_jets_hdf5(src)
    if "constituents_unsmeared" not in ds.extras:
        raise ValueError(f"{src} has no 'constituents_unsmeared'; regenerate it with this aalearn")
    meta = ds.metadata
    config = dict(meta["config"])
    unsmeared = np.asarray(ds.extras["constituents_unsmeared"], dtype=np.float64)
    smeared = resolution.smear(unsmeared, np.random.default_rng(seed))
    if config.get("resort", False):
        smeared = sort_by_pt(smeared)
    k = unsmeared.shape[1]
    scale = float(meta["pt_scale_gev"])
    config["resolution"] = resolution.to_dict()
    config["resmeared_seed"] = int(seed)
    arrays: dict[str, npt.NDArray[Any]] = {
        **ds.extras,
        "features": topodnn_preprocess(smeared, pt_scale=scale, n_constituents=k).astype(np.float32),
        "labels": np.asarray(ds.labels),
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
