r"""The pyhf workspace of the measurement, and aalearn's scoped access to pyhf.

:func:`build_workspace` writes :class:`~aalearn.inference.templates.Templates` as a
pyhf workspace specification (schema 1.0.0, one channel); the context managers switch
pyhf's global backend only for the duration of a call (NumPy, 64 bit, Minuit or SciPy)
and quiet pyhf's validator and optimizer logs.

Example:
    >>> from aalearn.inference.templates import Templates
    >>> spec = build_workspace(Templates(edges=[0.0, 1.0], signal=[10.0], background=[100.0]))
    >>> spec["channels"][0]["name"]
    'score'
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.validation import check_array
from aalearn.inference.templates import (
    _RESERVED,
    CHANNEL,
    SAMPLES,
    SHAPESYS_NAME,
    STATERROR_NAME,
    Templates,
    _yields,
)

__all__ = ["build_workspace"]

FloatArray = npt.NDArray[np.float64]

_BACKEND_LOCK = threading.RLock()


# --------------------------------------------------------------------------------------
# pyhf access
# --------------------------------------------------------------------------------------
def _pyhf() -> ModuleType:
    return require("pyhf", purpose="the profile-likelihood measurement (aalearn.inference)")


@contextmanager
def _numpy_backend(optimizer: str = "minuit") -> Iterator[ModuleType]:
    """Use pyhf's NumPy backend (64-bit) with ``optimizer``; restore the previous backend."""
    pyhf = _pyhf()
    with _BACKEND_LOCK:
        previous = pyhf.get_backend()
        if optimizer == "minuit":
            opt: Any = pyhf.optimize.minuit_optimizer(tolerance=0.01)
        else:
            opt = pyhf.optimize.scipy_optimizer()
        pyhf.set_backend("numpy", opt, precision="64b")
        try:
            yield pyhf
        finally:
            pyhf.set_backend(*previous)


@contextmanager
def _quiet_schema_validation() -> Iterator[None]:
    """Hide the jsonschema ``RefResolver`` deprecation that pyhf 0.7's validator triggers."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"jsonschema\.RefResolver is deprecated", category=DeprecationWarning
        )
        yield


@contextmanager
def _quiet_pyhf_optimizer() -> Iterator[None]:
    """Silence pyhf's error log of a failed minimisation (aalearn retries or re-raises)."""
    logger = logging.getLogger("pyhf.optimize.mixins")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------------------
# workspace
# --------------------------------------------------------------------------------------
def _default_poi_bounds(templates: Templates) -> tuple[float, float]:
    """Allow negative μ down to where the nominal expectation of a bin would vanish (≥ −10)."""
    has_sig = templates.signal > 0
    lowest_ratio = float(np.min(templates.background[has_sig] / templates.signal[has_sig]))
    return (max(-10.0, -0.9 * lowest_ratio), 20.0)


def _main_data(data: Any, n_bins: int, *, name: str = "data") -> FloatArray:
    arr = check_array(data, name=name, ndim=1, dtype=np.float64)
    if arr.shape[0] != n_bins:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but the measurement has {n_bins} bins; "
            "histogram the data with the templates' edges (histogram_data)"
        )
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative counts in bins {np.flatnonzero(arr < 0)[:10].tolist()}")
    return arr


def build_workspace(
    templates: Templates,
    data: npt.ArrayLike | None = None,
    *,
    poi: str = "mu",
    name: str = "aalearn",
    background_shapesys: npt.ArrayLike | None = None,
    poi_bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    r"""The pyhf workspace specification (schema version 1.0.0) of the templates.

    One channel ``"score"`` with the samples ``"signal"`` (``normfactor`` ``poi`` and its
    systematics) and ``"background"``. Modifiers: ``staterror`` named
    ``"staterror_score"`` from the ``sumw2`` arrays (pyhf combines the samples per bin,
    :math:`\sigma^\text{rel}_i = \sqrt{\sum_s \sum w^2_{s,i}}/\sum_s \nu_{s,i}`),
    ``histosys``/``normsys`` by name, and ``shapesys`` ``"shapesys_score"`` on the
    background from the absolute per-bin uncertainty.

    Args:
        templates: The expected yields.
        data: Observed main-channel counts ``(B,)``; ``None`` for the Asimov data set at
            :math:`\mu = 1` (the sum of the nominal samples).
        poi: Name of the signal-strength parameter.
        name: Name of the measurement.
        background_shapesys: Absolute per-bin background uncertainty; overrides
            ``templates.background_abs_unc``. All-zero means no modifier.
        poi_bounds: Fit range of the POI; default from just above where a bin's nominal
            expectation :math:`\mu s_i + b_i` would turn negative (at least −10) to 20.

    Returns:
        The workspace dictionary, validated against pyhf's ``workspace.json`` schema.

    Raises:
        ValueError: For data of the wrong length or with negative counts, a POI name
            clashing with a nuisance, or invalid bounds.

    Example:
        >>> t = Templates(edges=[0.0, 1.0], signal=[10.0], background=[100.0])
        >>> spec = build_workspace(t)
        >>> spec["observations"][0]["data"]
        [110.0]
    """
    pyhf = _pyhf()
    n = templates.n_bins
    if not isinstance(poi, str) or not poi:
        raise ValueError(f"poi must be a non-empty string, got {poi!r}")
    nuisances = set(templates.histosys) | set(templates.normsys) | _RESERVED
    if poi in nuisances:
        raise ValueError(f"poi name {poi!r} clashes with a nuisance parameter; choose another name")
    lo, hi = _default_poi_bounds(templates) if poi_bounds is None else (float(v) for v in poi_bounds)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < 1.0 < hi):
        raise ValueError(f"poi_bounds must be finite with low < 1 < high, got ({lo}, {hi})")
    abs_unc = templates.background_abs_unc if background_shapesys is None else background_shapesys
    if abs_unc is not None:
        abs_unc = _yields(abs_unc, name="background_shapesys", n_bins=n)

    samples: list[dict[str, Any]] = []
    for sample in SAMPLES:
        nominal: FloatArray = getattr(templates, sample)
        modifiers: list[dict[str, Any]] = []
        if sample == "signal":
            modifiers.append({"name": poi, "type": "normfactor", "data": None})
        sumw2 = getattr(templates, f"{sample}_sumw2")
        if sumw2 is not None:
            modifiers.append({"name": STATERROR_NAME, "type": "staterror", "data": np.sqrt(sumw2).tolist()})
        for sys_name, per_sample in templates.histosys.items():
            if sample in per_sample:
                down, up = per_sample[sample]
                modifiers.append(
                    {
                        "name": sys_name,
                        "type": "histosys",
                        "data": {"hi_data": up.tolist(), "lo_data": down.tolist()},
                    }
                )
        for sys_name, per_sample_n in templates.normsys.items():
            if sample in per_sample_n:
                f_lo, f_hi = per_sample_n[sample]
                modifiers.append({"name": sys_name, "type": "normsys", "data": {"hi": f_hi, "lo": f_lo}})
        if sample == "background" and abs_unc is not None and np.any(abs_unc > 0):
            modifiers.append({"name": SHAPESYS_NAME, "type": "shapesys", "data": abs_unc.tolist()})
        samples.append({"name": sample, "data": nominal.tolist(), "modifiers": modifiers})

    observed = templates.total() if data is None else _main_data(data, n)
    spec: dict[str, Any] = {
        "channels": [{"name": CHANNEL, "samples": samples}],
        "observations": [{"name": CHANNEL, "data": observed.tolist()}],
        "measurements": [
            {
                "name": name,
                "config": {"poi": poi, "parameters": [{"name": poi, "bounds": [[lo, hi]], "inits": [1.0]}]},
            }
        ],
        "version": "1.0.0",
    }
    with _quiet_schema_validation():
        pyhf.schema.validate(spec, "workspace.json")
    return spec
