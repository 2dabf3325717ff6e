r"""Reproduction: aalearn's FPD and KPD equal jetnet's ``fpd``/``kpd`` on the same inputs and seeds.

Kansal et al. (arXiv:2211.10295) define the Fréchet and kernel physics distances and
publish their estimators as ``jetnet.evaluation.fpd`` and ``jetnet.evaluation.kpd``
(jetnet 0.2.5). :func:`aalearn.surrogates.metrics.fpd` and
:func:`~aalearn.surrogates.metrics.kpd` re-implement them (batched, faster); this
reproduction runs both on the same inputs with jetnet's defaults (FPD: batch sizes
20,000-50,000, 20 batches at 10 points, seed 42; KPD: 10 batches of 5,000, seed 42) and
requires agreement to 1e-6 relative.

Inputs: 50,000 "real" and 50,000 "generated" rows of 8 correlated, skewed features
(log-normal, like jet mass, :math:`p_T` or EFPs) from a fixed seed, in two cases: a
generated sample from the same distribution ("truth", the metrics' null regime) and
one whose features are stretched by 2 % ("distorted").

The relative difference is :math:`|a - b| / \max(|b|, \sigma_b)` with :math:`b` and
:math:`\sigma_b` jetnet's value and error: near zero (the "truth" case, where KPD is of
order :math:`10^{-7}`) jetnet's own rounding (it sums :math:`5000^2` kernel values
sequentially in numba) is of order :math:`10^{-13}` absolute, so the comparison is
relative to the metric's scale, its value or its statistical error, whichever is larger.

jetnet is needed (``pip install --no-deps jetnet==0.2.5`` plus its import-time
dependencies, see the Makefile's ``bench-deps``); without it the reproduction fails with
an ``ImportError`` that says so, it never passes.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.reproduce.registry import Reproduction, register
from aalearn.surrogates.metrics import fpd, kpd

__all__ = ["jetnet_inputs", "jetnet_metrics_match", "load_jetnet_metrics"]

FloatArray = npt.NDArray[np.float64]

_INSTALL_HINT = (
    "pip install --no-deps jetnet==0.2.5 energyflow==1.4.0 wasserstein==1.1.0 coffea==2026.9.0 "
    "cachetools hist boost-histogram histoprint uhi "
    "(jetnet's evaluation module imports energyflow and coffea)"
)


def load_jetnet_metrics() -> tuple[Any, Any]:
    """``(jetnet.evaluation.fpd, jetnet.evaluation.kpd)``.

    Raises:
        ImportError: When jetnet (or a package its evaluation module imports) is missing,
            naming the packages to install.
    """
    try:
        from jetnet.evaluation import fpd, kpd  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            "the jetnet-metrics reproduction compares with jetnet.evaluation.fpd/kpd, which cannot be "
            f"imported ({exc}); install it with: {_INSTALL_HINT}"
        ) from exc
    return fpd, kpd


def jetnet_inputs(
    n: int = 50_000, d: int = 8, *, seed: int = 2211
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """The two input cases ``{"truth": (real, gen), "distorted": (real, gen)}``.

    Example:
        >>> cases = jetnet_inputs(100, 3)
        >>> sorted(cases), cases["truth"][0].shape
        (['distorted', 'truth'], (100, 3))
    """
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)

    def draw() -> FloatArray:
        out: FloatArray = np.exp(0.5 * rng.normal(size=(n, d)) @ mix)
        return out

    real, same, other = draw(), draw(), draw()
    return {"truth": (real, same), "distorted": (real, other * 1.02)}


def _rel(a: float, b: float, scale: float) -> float:
    return abs(a - b) / max(abs(b), abs(scale), 1e-300)


def jetnet_metrics_match(
    n: int = 50_000,
    d: int = 8,
    *,
    fpd_options: dict[str, Any] | None = None,
    kpd_options: dict[str, Any] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Largest relative differences of FPD/KPD values and errors between aalearn and jetnet.

    Args:
        n: Rows per sample.
        d: Features.
        fpd_options: Keyword arguments for both FPD implementations (default: jetnet's defaults).
        kpd_options: Keyword arguments for both KPD implementations.

    Returns:
        ``fpd_rel_diff``, ``fpd_error_rel_diff``, ``kpd_rel_diff``, ``kpd_error_rel_diff`` (largest
        over the cases) and the details: both libraries' values and timings per case.

    Raises:
        ImportError: When jetnet cannot be imported.
    """

    jet_fpd, jet_kpd = load_jetnet_metrics()
    f_kw = dict(fpd_options or {})
    k_kw = dict(kpd_options or {})
    values = {"fpd_rel_diff": 0.0, "fpd_error_rel_diff": 0.0, "kpd_rel_diff": 0.0, "kpd_error_rel_diff": 0.0}
    details: dict[str, Any] = {"n": n, "d": d, "fpd_options": f_kw, "kpd_options": k_kw, "cases": {}}
    for case, (real, gen) in jetnet_inputs(n, d).items():
        row: dict[str, Any] = {}
        for metric, ours, theirs, kw in (("fpd", fpd, jet_fpd, f_kw), ("kpd", kpd, jet_kpd, k_kw)):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # jetnet's "recommended 50,000" notice
                ref_value, ref_error = theirs(real, gen, **kw)
            t_jetnet = time.perf_counter() - start
            start = time.perf_counter()
            value, error = ours(real, gen, **kw)
            t_ours = time.perf_counter() - start
            scale = max(abs(float(ref_value)), abs(float(ref_error)))
            values[f"{metric}_rel_diff"] = max(
                values[f"{metric}_rel_diff"], _rel(value, float(ref_value), scale)
            )
            values[f"{metric}_error_rel_diff"] = max(
                values[f"{metric}_error_rel_diff"], _rel(error, float(ref_error), float(ref_error))
            )
            row[metric] = {
                "aalearn": [value, error],
                "jetnet": [float(ref_value), float(ref_error)],
                "seconds_aalearn": round(t_ours, 3),
                "seconds_jetnet": round(t_jetnet, 3),
            }
        details["cases"][case] = row
    return values, details


_expected = {"fpd_rel_diff": 0.0, "fpd_error_rel_diff": 0.0, "kpd_rel_diff": 0.0, "kpd_error_rel_diff": 0.0}

register(
    Reproduction(
        name="jetnet-metrics",
        description="aalearn's FPD and KPD equal jetnet 0.2.5's on the same inputs and seeds (1e-6 relative)",
        source=(
            "R. Kansal et al., 'Evaluating generative models in high energy physics', PRD 107 (2023) 076017, "
            "arXiv:2211.10295; jetnet 0.2.5 jetnet.evaluation.fpd/kpd"
        ),
        expected=_expected,
        tolerance=dict.fromkeys(_expected, 1e-6),
        runner=jetnet_metrics_match,
    )
)
