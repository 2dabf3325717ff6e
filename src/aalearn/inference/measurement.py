r"""From classifier scores to a profile-likelihood measurement of a signal strength, with pyhf.

A binned classifier-score distribution becomes a one-channel HistFactory model
(Cranmer, Lewis, Moneta, Shibata, Verkerke, CERN-OPEN-2012-016) written as a pyhf
workspace (Heinrich, Feickert, Stark, Cranmer, "pyhf: pure-Python implementation of
HistFactory statistical models", JOSS 6 (2021) 2823). The likelihood is pyhf's, never a
hand-written one:

.. math::

    L(\mu, \boldsymbol\theta) = \prod_{i=1}^{B} \mathrm{Pois}\big(n_i \mid
    \mu\, s_i(\boldsymbol\theta) + b_i(\boldsymbol\theta)\big)
    \prod_j c_j(a_j \mid \theta_j),

with the signal strength :math:`\mu` (a ``normfactor``) as parameter of interest and
the nuisances :math:`\boldsymbol\theta`: ``histosys`` shape variations and ``normsys``
rate factors (Gaussian constraints on :math:`\alpha`), the Barlow–Beeston-lite
``staterror`` for the finite simulation (Gaussian, per bin) and an optional absolute
per-bin background uncertainty as ``shapesys`` (Poisson constraint with
:math:`\tau_i = (b_i/\sigma_i)^2`).

:class:`Measurement` fits :math:`\hat\mu` with its total, statistical and systematic
uncertainty (:math:`\sigma_\text{syst} = \sqrt{\sigma_\text{tot}^2-\sigma_\text{stat}^2}`,
the statistical part from a refit with the nuisances fixed at their best-fit values),
the nuisance pulls and impacts, the Asimov discovery significance
:math:`Z_A = \Phi^{-1}(1-p_0)` from the asymptotic :math:`q_0` test (Cowan, Cranmer,
Gross, Vitells, EPJC 71 (2011) 1554, arXiv:1007.1727), the shift of :math:`\hat\mu`
between a reference and a perturbed (for example adversarially attacked) data set, and
the frequentist coverage of the :math:`\pm1\sigma` interval from pseudo-experiments.

Fits use pyhf's NumPy backend with the Minuit optimizer (HESSE uncertainties); the
asymptotic hypothesis test falls back to the SciPy optimizer when the fixed-POI fit has
no free parameter left (pyhf's Minuit shim fails on an all-fixed fit). The global pyhf
backend is switched only for the duration of each call and restored afterwards.

Example:
    >>> import numpy as np
    >>> from aalearn.inference import Measurement, templates_from_scores
    >>> rng = np.random.default_rng(0)
    >>> t = templates_from_scores(rng.beta(5, 2, 20_000), rng.beta(2, 5, 20_000))
    >>> m = Measurement(t)
    >>> res = m.fit()  # Asimov data, mu = 1
    >>> round(res.mu_hat, 3)
    1.0
    >>> z = m.asimov_significance()
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.optional import require
from aalearn.core.validation import check_array

__all__ = [
    "CHANNEL",
    "SAMPLES",
    "FitResult",
    "Measurement",
    "Templates",
    "build_workspace",
    "histogram_data",
    "templates_from_scores",
]

CHANNEL = "score"
"""Name of the single channel of the workspace."""
SAMPLES = ("signal", "background")
"""Sample names of the workspace."""
STATERROR_NAME = f"staterror_{CHANNEL}"
SHAPESYS_NAME = f"shapesys_{CHANNEL}"
_RESERVED = frozenset({STATERROR_NAME, SHAPESYS_NAME})

FloatArray = npt.NDArray[np.float64]
Variation = tuple[tuple[npt.ArrayLike, npt.ArrayLike], tuple[npt.ArrayLike, npt.ArrayLike]]

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
# templates
# --------------------------------------------------------------------------------------
def _yields(x: Any, *, name: str, n_bins: int | None = None) -> FloatArray:
    """A finite, non-negative 1-D yield array (of ``n_bins`` entries when given)."""
    arr = check_array(x, name=name, ndim=1, dtype=np.float64)
    if n_bins is not None and arr.shape[0] != n_bins:
        raise ValueError(
            f"{name} has {arr.shape[0]} bins but the templates have {n_bins}; "
            "build every array with the same bin edges"
        )
    if np.any(arr < 0):
        bad = np.flatnonzero(arr < 0)
        raise ValueError(
            f"{name} has negative entries in bins {bad[:10].tolist()}; yields and variances must be >= 0"
        )
    return arr


def _check_name(name: Any, *, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} names must be non-empty strings, got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"{what} name {name!r} is reserved for aalearn's own modifiers; choose another name")
    return name


def _check_sample(sample: Any, *, what: str) -> str:
    if sample not in SAMPLES:
        raise ValueError(f"{what}: unknown sample {sample!r}; use 'signal' or 'background'")
    return str(sample)


@dataclass
class Templates:
    r"""Binned expected yields of the measurement (one channel).

    Attributes:
        edges: ``(B+1,)`` increasing score bin edges.
        signal: ``(B,)`` expected signal yields :math:`s_i` (for :math:`\mu = 1`).
        background: ``(B,)`` expected background yields :math:`b_i`.
        signal_sumw2: ``(B,)`` Monte-Carlo statistical variance of the signal yields
            (:math:`\sum w^2`), turned into pyhf's ``staterror``; ``None`` for none.
        background_sumw2: Same for the background.
        histosys: Shape variations, ``name -> sample -> (down, up)`` yields, each ``(B,)``;
            one Gaussian-constrained nuisance :math:`\alpha` per name, shared by the samples.
        normsys: Rate variations, ``name -> sample -> (lo, hi)`` factors such as
            ``(0.9, 1.1)``; may share a name with a histosys (same nuisance).
        background_abs_unc: ``(B,)`` absolute background uncertainty :math:`\sigma_i` per
            bin, a pyhf ``shapesys`` (Poisson constraint, :math:`\tau_i = (b_i/\sigma_i)^2`,
            the auxiliary-measurement model of Cowan's counting-experiment formulas);
            pyhf fixes the factor :math:`\gamma_i` of bins with zero uncertainty.

    Raises:
        ValueError: For negative or non-finite yields, arrays whose length differs from
            the number of bins, non-increasing edges, bins with neither signal nor
            background, no signal at all, or invalid normsys factors.

    Example:
        >>> t = Templates(edges=[0.0, 1.0], signal=[10.0], background=[100.0], background_abs_unc=[5.0])
        >>> t.n_bins
        1
    """

    edges: FloatArray
    signal: FloatArray
    background: FloatArray
    signal_sumw2: FloatArray | None = None
    background_sumw2: FloatArray | None = None
    histosys: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = field(default_factory=dict)
    normsys: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    background_abs_unc: FloatArray | None = None

    def __post_init__(self) -> None:
        edges = check_array(self.edges, name="edges", ndim=1, dtype=np.float64)
        if edges.shape[0] < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(
                f"edges must be at least two strictly increasing values, got {edges.tolist()[:12]}"
            )
        self.edges = edges
        n = edges.shape[0] - 1
        self.signal = _yields(self.signal, name="signal", n_bins=n)
        self.background = _yields(self.background, name="background", n_bins=n)
        if self.signal.sum() <= 0:
            raise ValueError("the signal template is empty (all zero); the signal strength is undefined")
        empty = np.flatnonzero(self.signal + self.background <= 0)
        if empty.size:
            raise ValueError(
                f"bins {empty[:10].tolist()} have neither signal nor background; "
                "merge them (use fewer or explicit bins) or narrow the score range"
            )
        for attr in ("signal_sumw2", "background_sumw2", "background_abs_unc"):
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, _yields(value, name=attr, n_bins=n))
        histosys: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
        for name, per_sample in dict(self.histosys).items():
            _check_name(name, what="histosys")
            histosys[name] = {}
            for sample, pair in dict(per_sample).items():
                _check_sample(sample, what=f"histosys {name!r}")
                if len(pair) != 2:
                    raise ValueError(f"histosys {name!r}/{sample}: give a (down, up) pair of yield arrays")
                down = _yields(pair[0], name=f"histosys {name!r}/{sample} down", n_bins=n)
                up = _yields(pair[1], name=f"histosys {name!r}/{sample} up", n_bins=n)
                histosys[name][sample] = (down, up)
        self.histosys = histosys
        normsys: dict[str, dict[str, tuple[float, float]]] = {}
        for name, factors in dict(self.normsys).items():
            _check_name(name, what="normsys")
            normsys[name] = {}
            for sample, lo_hi in dict(factors).items():
                _check_sample(sample, what=f"normsys {name!r}")
                try:
                    lo, hi = (float(v) for v in lo_hi)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"normsys {name!r}/{sample}: give a (lo, hi) pair of factors, got {lo_hi!r}"
                    ) from None
                if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0 and hi > 0):
                    raise ValueError(
                        f"normsys {name!r}/{sample}: factors must be finite and > 0, got ({lo}, {hi}); "
                        "use e.g. (0.9, 1.1) for a ±10% rate uncertainty"
                    )
                normsys[name][sample] = (lo, hi)
        self.normsys = normsys

    @property
    def n_bins(self) -> int:
        """Number of bins ``B``."""
        return int(self.signal.shape[0])

    def total(self, mu: float = 1.0) -> FloatArray:
        r"""Nominal expectation :math:`\mu s_i + b_i`."""
        return np.asarray(mu * self.signal + self.background, dtype=np.float64)


def _scores(x: Any, *, name: str, lo: float, hi: float) -> FloatArray:
    arr = check_array(x, name=name, ndim=1, dtype=np.float64)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; pass at least one score")
    outside = (arr < lo) | (arr > hi)
    if outside.any():
        raise ValueError(
            f"{name} has {int(outside.sum())} score(s) outside the binning range [{lo}, {hi}] "
            f"(min {arr.min():.6g}, max {arr.max():.6g}); pass range=/bins= covering them or clip the scores"
        )
    return arr


def _histogram(scores: FloatArray, edges: FloatArray, total: float) -> tuple[FloatArray, FloatArray]:
    """Yields scaled to ``total`` and their ``sumw2`` (each event weighs ``total / N``)."""
    counts, _ = np.histogram(scores, bins=edges)
    w = total / scores.shape[0]
    return counts * w, counts * w * w


def _edges(bins: int | npt.ArrayLike, range_: tuple[float, float]) -> FloatArray:
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins, got {bins}")
        lo, hi = (float(v) for v in range_)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"range must be a finite (low, high) pair with low < high, got {range_}")
        return np.linspace(lo, hi, int(bins) + 1)
    edges = check_array(bins, name="bins (edges)", ndim=1, dtype=np.float64)
    if edges.shape[0] < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(
            f"bin edges must be at least two strictly increasing values, got {edges.tolist()[:12]}"
        )
    return edges


def templates_from_scores(
    scores_signal: npt.ArrayLike,
    scores_background: npt.ArrayLike,
    *,
    bins: int | npt.ArrayLike = 10,
    range: tuple[float, float] = (0.0, 1.0),
    expected_signal: float = 100.0,
    expected_background: float = 1000.0,
    variations: Mapping[str, Variation] | None = None,
    normsys: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    staterror: bool = True,
) -> Templates:
    r"""Histogram simulated classifier scores into measurement templates.

    Each simulated event of a sample of :math:`N` events carries the weight
    :math:`w = E/N` (:math:`E` = ``expected_signal`` or ``expected_background``), so that
    the template sums to :math:`E`, and the Monte-Carlo variance per bin is
    :math:`\sum w^2 = n_i w^2` (used by the ``staterror`` modifier).

    Args:
        scores_signal: Classifier scores of simulated signal events.
        scores_background: Classifier scores of simulated background events.
        bins: Number of equal-width bins on ``range`` or explicit increasing edges.
        range: Score range of equal-width bins (ignored for explicit edges). Every score
            must lie inside the binning.
        expected_signal: Expected number of signal events (:math:`\mu = 1`).
        expected_background: Expected number of background events.
        variations: Shape systematics, ``name -> ((signal_down, background_down),
            (signal_up, background_up))`` score arrays (for example the same events
            scored after a ±1σ detector shift). Each is normalised to the same expected
            totals (a shape-only effect) and becomes a ``histosys`` on both samples.
        normsys: Rate systematics, ``name -> sample -> (lo, hi)`` factors.
        staterror: Attach the Monte-Carlo statistical uncertainty (``sumw2``).

    Returns:
        The :class:`Templates`.

    Raises:
        ValueError: For empty or non-finite score arrays, scores outside the binning,
            non-positive expected yields or invalid systematics.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> t = templates_from_scores(rng.uniform(size=500), rng.uniform(size=500), bins=5)
        >>> round(float(t.signal.sum()), 6), round(float(t.background.sum()), 6)
        (100.0, 1000.0)
    """
    edges = _edges(bins, range)
    lo, hi = float(edges[0]), float(edges[-1])
    for label, value in (("expected_signal", expected_signal), ("expected_background", expected_background)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label} must be a finite positive number of events, got {value}")
    sig, sig_w2 = _histogram(
        _scores(scores_signal, name="scores_signal", lo=lo, hi=hi), edges, expected_signal
    )
    bkg, bkg_w2 = _histogram(
        _scores(scores_background, name="scores_background", lo=lo, hi=hi), edges, expected_background
    )
    histosys: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
    for name, variation in (variations or {}).items():
        _check_name(name, what="variation")
        try:
            (sig_down, bkg_down), (sig_up, bkg_up) = variation
        except (TypeError, ValueError):
            raise ValueError(
                f"variation {name!r} must be ((signal_down, background_down), (signal_up, background_up)) "
                "score arrays"
            ) from None
        histosys[name] = {
            "signal": (
                _histogram(
                    _scores(sig_down, name=f"{name} signal down", lo=lo, hi=hi), edges, expected_signal
                )[0],
                _histogram(_scores(sig_up, name=f"{name} signal up", lo=lo, hi=hi), edges, expected_signal)[
                    0
                ],
            ),
            "background": (
                _histogram(
                    _scores(bkg_down, name=f"{name} background down", lo=lo, hi=hi),
                    edges,
                    expected_background,
                )[0],
                _histogram(
                    _scores(bkg_up, name=f"{name} background up", lo=lo, hi=hi), edges, expected_background
                )[0],
            ),
        }
    return Templates(
        edges=edges,
        signal=sig,
        background=bkg,
        signal_sumw2=sig_w2 if staterror else None,
        background_sumw2=bkg_w2 if staterror else None,
        histosys=histosys,
        normsys={k: dict(v) for k, v in (normsys or {}).items()},
    )


def histogram_data(
    scores: npt.ArrayLike, templates: Templates, *, expected_total: float | None = None
) -> FloatArray:
    r"""Pseudo-data from a sample of scores (for example attacked jets).

    The scores are histogrammed with the templates' edges and scaled to
    ``expected_total`` events (default: the templates' :math:`\sum_i (s_i + b_i)`), so
    that a sample drawn like the simulation reproduces the Asimov expectation.

    Args:
        scores: Classifier scores of the pseudo-data events.
        templates: Templates whose edges define the binning.
        expected_total: Total number of events the histogram is scaled to.

    Returns:
        ``(B,)`` main-channel counts (not rounded).

    Raises:
        ValueError: For empty or non-finite scores, scores outside the edges or a
            non-positive ``expected_total``.

    Example:
        >>> t = Templates(edges=[0.0, 0.5, 1.0], signal=[1.0, 9.0], background=[60.0, 30.0])
        >>> histogram_data([0.1, 0.7, 0.8, 0.9], t).tolist()
        [25.0, 75.0]
    """
    total = float(templates.total().sum()) if expected_total is None else float(expected_total)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"expected_total must be a finite positive number of events, got {expected_total}")
    arr = _scores(scores, name="scores", lo=float(templates.edges[0]), hi=float(templates.edges[-1]))
    return _histogram(arr, templates.edges, total)[0]


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


# --------------------------------------------------------------------------------------
# fit results
# --------------------------------------------------------------------------------------
@dataclass
class FitResult:
    r"""Result of a maximum-likelihood fit.

    Attributes:
        mu_hat: Best-fit signal strength :math:`\hat\mu`.
        mu_err: Total (HESSE) uncertainty :math:`\sigma_\text{tot}` of :math:`\hat\mu`.
        mu_err_stat: Statistical part: HESSE error of a refit with every nuisance fixed
            at its best-fit value.
        mu_err_syst: :math:`\sqrt{\max(\sigma_\text{tot}^2 - \sigma_\text{stat}^2, 0)}`.
        parameters: Best-fit values by parameter label (vector parameters such as the
            staterror expand to ``name[i]``).
        uncertainties: HESSE uncertainties by label (0 for fixed parameters).
        pulls: :math:`(\hat\theta - \theta_0)/\sigma_\text{prior}` of the free constrained
            nuisances.
        correlation: Correlation matrix in the order of ``labels``.
        labels: Parameter labels in pyhf's order.
        twice_nll: :math:`-2\ln L` at the best fit.
    """

    mu_hat: float
    mu_err: float
    mu_err_stat: float
    mu_err_syst: float
    parameters: dict[str, float]
    uncertainties: dict[str, float]
    pulls: dict[str, float]
    correlation: FloatArray
    labels: list[str]
    twice_nll: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the correlation matrix as nested lists)."""
        out: dict[str, Any] = to_jsonable(
            {
                "mu_hat": self.mu_hat,
                "mu_err": self.mu_err,
                "mu_err_stat": self.mu_err_stat,
                "mu_err_syst": self.mu_err_syst,
                "parameters": self.parameters,
                "uncertainties": self.uncertainties,
                "pulls": self.pulls,
                "correlation": self.correlation,
                "labels": self.labels,
                "twice_nll": self.twice_nll,
            }
        )
        return out


@dataclass(frozen=True)
class _Nuisance:
    """One scalar component of a constrained nuisance parameter."""

    label: str
    index: int
    center: float
    width: float


class Measurement:
    r"""Profile-likelihood measurement of the signal strength from binned templates.

    Args:
        templates: Expected signal and background yields with their systematics.
        poi: Name of the signal-strength parameter.
        poi_bounds: Fit range of the POI (see :func:`build_workspace`).

    Example:
        >>> t = Templates(edges=[0.0, 0.5, 1.0], signal=[2.0, 8.0], background=[80.0, 20.0])
        >>> m = Measurement(t)
        >>> r = m.fit([82.0, 36.0])
        >>> r.mu_hat > 1.0
        True
    """

    def __init__(
        self, templates: Templates, *, poi: str = "mu", poi_bounds: tuple[float, float] | None = None
    ) -> None:
        self.templates = templates
        self.poi = poi
        self._workspace = build_workspace(templates, poi=poi, poi_bounds=poi_bounds)
        with _numpy_backend() as pyhf, _quiet_schema_validation():
            self._model: Any = pyhf.Workspace(self._workspace).model()
        config = self._model.config
        self._poi_index = int(config.poi_index)
        self._labels: list[str] = list(config.par_names)
        self._init: list[float] = [float(v) for v in config.suggested_init()]
        self._bounds: list[tuple[float, float]] = [(float(a), float(b)) for a, b in config.suggested_bounds()]
        self._fixed: list[bool] = [bool(v) for v in config.suggested_fixed()]
        self._nuisances = self._constrained_nuisances()

    # ----------------------------------------------------------------------------- basics
    @property
    def workspace(self) -> dict[str, Any]:
        """A copy of the pyhf workspace specification (Asimov observations)."""
        return copy.deepcopy(self._workspace)

    @property
    def model(self) -> Any:
        """The pyhf model (``pyhf.pdf.Model``)."""
        return self._model

    @property
    def labels(self) -> list[str]:
        """Parameter labels in pyhf's order (vector parameters as ``name[i]``)."""
        return list(self._labels)

    @property
    def n_bins(self) -> int:
        """Number of main-channel bins."""
        return self.templates.n_bins

    def expected_data(self, mu: float = 1.0) -> FloatArray:
        """Expected main-channel counts followed by the nominal auxiliary data, as pyhf wants.

        Args:
            mu: Signal strength; the nuisances stay at their nominal values.

        Returns:
            ``(B + n_aux,)`` array.
        """
        pars = list(self._init)
        pars[self._poi_index] = float(mu)
        with _numpy_backend():
            return np.asarray(self._model.expected_data(pars), dtype=np.float64)

    def workspace_json(self, path: str | Path | None = None) -> str:
        """The workspace as JSON text; written atomically to ``path`` when given.

        Args:
            path: Output file (parent directories are created).

        Returns:
            The JSON text.
        """
        text = json.dumps(self._workspace, indent=2) + "\n"
        if path is not None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, target)
        return text

    def _constrained_nuisances(self) -> list[_Nuisance]:
        config = self._model.config
        out: list[_Nuisance] = []
        for name in config.par_order:
            pset = config.param_set(name)
            if not getattr(pset, "constrained", False):
                continue
            widths = np.atleast_1d(np.asarray(pset.width(), dtype=np.float64))
            sl = config.par_slice(name)
            for k, index in enumerate(range(sl.start, sl.stop)):
                if self._fixed[index]:
                    continue
                label = name if pset.is_scalar else f"{name}[{k}]"
                out.append(_Nuisance(label, index, self._init[index], float(widths[k])))
        return out

    def _full_data(self, data: npt.ArrayLike | None) -> FloatArray:
        """Main counts (``(B,)``) plus nominal aux data, or a full ``(B + n_aux,)`` vector."""
        if data is None:
            return self.expected_data(1.0)
        n_aux = int(self._model.config.nauxdata)
        arr = check_array(data, name="data", ndim=1, dtype=np.float64)
        if arr.shape[0] == self.n_bins + n_aux and n_aux > 0:
            _main_data(arr[: self.n_bins], self.n_bins)
            return arr
        main = _main_data(arr, self.n_bins)
        return np.concatenate([main, np.asarray(self._model.config.auxdata, dtype=np.float64)])

    # ------------------------------------------------------------------------------ fits
    def _minimize(
        self, data: FloatArray, *, init: list[float] | None = None, fixed: list[bool] | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """One Minuit fit; returns (values, errors, correlation, twice_nll)."""
        fix = list(self._fixed if fixed is None else fixed)
        # pyhf leaves Minuit's initial step sizes to iminuit, which takes 1 % of |start|
        # (0.1 at exactly 0): a warm start at a tiny best-fit value such as α̂ = 1e-8 gives
        # a 1e-10 step and Migrad stalls above its EDM goal. Free starts within 0.1 of zero
        # are therefore snapped to zero.
        start = [
            0.0 if (not f and abs(v) < 0.1) else float(v)
            for v, f in zip(self._init if init is None else init, fix, strict=True)
        ]
        nominal = [v if f else n for v, n, f in zip(start, self._init, fix, strict=True)]
        # Retry ladder for the rare remaining failures: nominal start, then strategy 2.
        attempts: list[tuple[list[float], int | None]] = [(start, None), (nominal, None), (nominal, 2)]
        with _numpy_backend("minuit") as pyhf, _quiet_pyhf_optimizer():
            for k, (init_pars, strategy) in enumerate(attempts):
                try:
                    pars, corr, fval = pyhf.infer.mle.fit(
                        data,
                        self._model,
                        init_pars=init_pars,
                        par_bounds=list(self._bounds),
                        fixed_params=fix,
                        strategy=strategy,
                        return_uncertainties=True,
                        return_correlations=True,
                        return_fitted_val=True,
                    )
                    break
                except pyhf.exceptions.FailedMinimization:
                    if k == len(attempts) - 1:
                        raise
        pars = np.asarray(pars, dtype=np.float64)
        return pars[:, 0], pars[:, 1], np.asarray(corr, dtype=np.float64), float(fval)

    def _fit_with_fixed(self, data: FloatArray, best: FloatArray, values: Mapping[int, float]) -> float:
        """μ̂ of a refit with the parameters ``values`` (index -> value) fixed."""
        init = [float(v) for v in best]
        fixed = list(self._fixed)
        for index, value in values.items():
            lo, hi = self._bounds[index]
            init[index] = float(np.clip(value, lo, hi))
            fixed[index] = True
        pyhf = _pyhf()
        try:
            return float(self._minimize(data, init=init, fixed=fixed)[0][self._poi_index])
        except pyhf.exceptions.FailedMinimization:
            # only the best-fit μ is needed here, no Hesse matrix: scipy's SLSQP is a
            # robust fallback when Migrad does not converge for a fixed-nuisance refit
            with _numpy_backend("scipy") as ph, _quiet_pyhf_optimizer():
                pars = ph.infer.mle.fit(
                    data, self._model, init_pars=init, par_bounds=list(self._bounds), fixed_params=fixed
                )
            return float(np.asarray(pars, dtype=np.float64)[self._poi_index])

    def fit(self, data: npt.ArrayLike | None = None) -> FitResult:
        r"""Maximum-likelihood fit of :math:`\mu` and the nuisances.

        Args:
            data: Main-channel counts ``(B,)`` (the nominal auxiliary data are appended)
                or a full ``(B + n_aux,)`` vector; ``None`` for the Asimov data at
                :math:`\mu = 1`.

        Returns:
            The :class:`FitResult`.

        Raises:
            ValueError: For data of the wrong length or negative counts.
            pyhf.exceptions.FailedMinimization: When Minuit does not converge.
        """
        full = self._full_data(data)
        values, errors, corr, twice_nll = self._minimize(full)
        p = self._poi_index
        mu_err = float(errors[p])
        free_nuisance = [i for i in range(len(values)) if i != p and not self._fixed[i]]
        if free_nuisance:
            fixed = [True] * len(values)
            fixed[p] = False
            stat = float(self._minimize(full, init=[float(v) for v in values], fixed=fixed)[1][p])
        else:
            stat = mu_err
        syst = math.sqrt(max(mu_err**2 - stat**2, 0.0))
        pulls = {n.label: float((values[n.index] - n.center) / n.width) for n in self._nuisances}
        return FitResult(
            mu_hat=float(values[p]),
            mu_err=mu_err,
            mu_err_stat=stat,
            mu_err_syst=syst,
            parameters={lab: float(v) for lab, v in zip(self._labels, values, strict=True)},
            uncertainties={lab: float(e) for lab, e in zip(self._labels, errors, strict=True)},
            pulls=pulls,
            correlation=corr,
            labels=list(self._labels),
            twice_nll=twice_nll,
        )

    def asimov_significance(self) -> float:
        r"""Median expected discovery significance :math:`Z_A` on the Asimov data set.

        The Asimov data set is generated at :math:`\mu = 1` with nominal nuisances
        (auxiliary data included); pyhf's asymptotic test of :math:`\mu = 0` with the
        discovery statistic :math:`q_0` returns :math:`p_0`, and
        :math:`Z_A = \Phi^{-1}(1 - p_0)` (``scipy.stats.norm.isf``), which equals
        :math:`\sqrt{q_{0,A}}` (Cowan et al. 2011, eq. 97 with the Asimov data). For one
        bin without uncertainty this is :math:`\sqrt{2[(s+b)\ln(1+s/b) - s]}`; with a
        ``shapesys`` background uncertainty it is Cowan's 2012 formula with
        :math:`\sigma_b`.

        Returns:
            :math:`Z_A` (0 when :math:`\hat\mu \le 0`).
        """
        from scipy.stats import norm

        asimov = self.expected_data(1.0)
        free_nuisance = any(not f for i, f in enumerate(self._fixed) if i != self._poi_index)
        with _numpy_backend("minuit" if free_nuisance else "scipy") as pyhf:
            p0 = pyhf.infer.hypotest(
                0.0,
                asimov,
                self._model,
                init_pars=list(self._init),
                par_bounds=list(self._bounds),
                fixed_params=list(self._fixed),
                test_stat="q0",
                calctype="asymptotics",
            )
        return float(norm.isf(float(np.asarray(p0))))

    def impacts(self, data: npt.ArrayLike | None = None) -> dict[str, dict[str, float]]:
        r"""Impact of each constrained nuisance on :math:`\hat\mu`.

        Post-fit: refit with the nuisance fixed at :math:`\hat\theta \pm \sigma_{\hat\theta}`;
        pre-fit: fixed at :math:`\theta_0 \pm \sigma_\text{prior}` (clipped to the
        parameter bounds). The impact is :math:`\hat\mu_\text{fixed} - \hat\mu`.

        Args:
            data: As for :meth:`fit`.

        Returns:
            ``label -> {"postfit_up", "postfit_down", "prefit_up", "prefit_down"}``,
            sorted by the largest absolute post-fit impact first.
        """
        full = self._full_data(data)
        best, errors, _, _ = self._minimize(full)
        mu_hat = float(best[self._poi_index])
        out: dict[str, dict[str, float]] = {}
        for n in self._nuisances:
            sig = float(errors[n.index])
            post = {
                k: self._fit_with_fixed(full, best, {n.index: best[n.index] + s * sig}) - mu_hat
                for k, s in (("postfit_up", 1.0), ("postfit_down", -1.0))
            }
            pre = {
                k: self._fit_with_fixed(full, best, {n.index: n.center + s * n.width}) - mu_hat
                for k, s in (("prefit_up", 1.0), ("prefit_down", -1.0))
            }
            out[n.label] = {**post, **pre}
        order = sorted(out, key=lambda k: -max(abs(out[k]["postfit_up"]), abs(out[k]["postfit_down"])))
        return {k: out[k] for k in order}

    def shift(self, data: npt.ArrayLike, reference: npt.ArrayLike | None = None) -> dict[str, float]:
        r"""Shift of :math:`\hat\mu` between a reference and a perturbed data set.

        Args:
            data: Perturbed main-channel counts (for example attacked jets through
                :func:`histogram_data`).
            reference: Reference counts; ``None`` for the Asimov data at :math:`\mu = 1`.

        Returns:
            ``mu_hat``, ``mu_hat_reference``, ``delta_mu`` (perturbed − reference),
            ``sigma_mu`` (total uncertainty of the reference fit) and
            ``delta_mu_over_sigma``.
        """
        ref = self.fit(reference)
        new = self.fit(data)
        delta = new.mu_hat - ref.mu_hat
        return {
            "mu_hat": new.mu_hat,
            "mu_hat_reference": ref.mu_hat,
            "delta_mu": delta,
            "sigma_mu": ref.mu_err,
            "delta_mu_over_sigma": delta / ref.mu_err if ref.mu_err > 0 else math.nan,
        }

    # ----------------------------------------------------------------------------- toys
    def _sample_toys(self, rng: np.random.Generator, mu: float, n_toys: int) -> FloatArray:
        """Poisson main counts and auxiliary data fluctuated per pyhf's constraint terms."""
        config = self._model.config
        pars = list(self._init)
        pars[self._poi_index] = float(mu)
        with _numpy_backend():
            main = np.asarray(self._model.expected_actualdata(pars), dtype=np.float64)
        toys_main = rng.poisson(main, size=(n_toys, main.shape[0])).astype(np.float64)
        aux_parts: list[FloatArray] = []
        for name in config.auxdata_order:
            pset = config.param_set(name)
            sl = config.par_slice(name)
            theta = np.asarray(pars[sl], dtype=np.float64)
            fixed = np.asarray(self._fixed[sl], dtype=bool)
            if pset.pdf_type == "normal":
                width = np.atleast_1d(np.asarray(pset.width(), dtype=np.float64))
                part = rng.normal(theta, width, size=(n_toys, theta.shape[0]))
                part[:, fixed] = theta[fixed]
            elif pset.pdf_type == "poisson":
                factors = np.asarray(pset.factors, dtype=np.float64)
                part = rng.poisson(factors * theta, size=(n_toys, theta.shape[0])).astype(np.float64)
                part[:, fixed] = (factors * theta)[fixed]
            else:  # pragma: no cover - pyhf has only these two constraint types
                raise NotImplementedError(f"unknown pyhf constraint type {pset.pdf_type!r}")
            aux_parts.append(part)
        aux = np.concatenate(aux_parts, axis=1) if aux_parts else np.zeros((n_toys, 0))
        if aux.shape[1] != config.nauxdata:  # pragma: no cover - guards pyhf layout changes
            raise RuntimeError("auxiliary-data layout differs from pyhf's; cannot generate toys")
        return np.concatenate([toys_main, aux], axis=1)

    def coverage(self, n_toys: int = 200, mu_true: float = 1.0, seed: int = 0) -> dict[str, float]:
        r"""Frequentist coverage of :math:`\hat\mu \pm \sigma_{\hat\mu}` from pseudo-experiments.

        Each toy draws Poisson main counts around the expectation at ``mu_true`` (nominal
        nuisances) and auxiliary data from the constraint terms (Gaussian for
        normsys/histosys/staterror, Poisson :math:`\mathrm{Pois}(\tau_i\gamma_i)` for
        shapesys), then fits all parameters. For a well-behaved likelihood the coverage is
        close to 68.3 % and the pulls :math:`(\hat\mu - \mu)/\sigma_{\hat\mu}` are
        standard normal.

        Args:
            n_toys: Number of pseudo-experiments.
            mu_true: Injected signal strength.
            seed: Seed of the NumPy generator.

        Returns:
            ``coverage`` (fraction of converged toys with
            :math:`|\hat\mu - \mu| \le \sigma_{\hat\mu}`), ``mean_pull``, ``pull_std``,
            ``n_toys`` and ``n_failed`` (fits that raised or gave a non-positive error).

        Raises:
            ValueError: For ``n_toys < 1`` or ``mu_true`` outside the POI bounds.
        """
        if int(n_toys) < 1:
            raise ValueError(f"n_toys must be at least 1, got {n_toys}")
        lo, hi = self._bounds[self._poi_index]
        if not (math.isfinite(mu_true) and lo <= mu_true <= hi):
            raise ValueError(f"mu_true must lie within the POI bounds [{lo}, {hi}], got {mu_true}")
        pyhf = _pyhf()
        toys = self._sample_toys(np.random.default_rng(seed), mu_true, int(n_toys))
        init = list(self._init)
        init[self._poi_index] = float(mu_true)
        pulls: list[float] = []
        n_failed = 0
        for toy in toys:
            try:
                values, errors, _, _ = self._minimize(toy, init=init)
            except (pyhf.exceptions.FailedMinimization, ValueError, FloatingPointError):
                n_failed += 1
                continue
            err = float(errors[self._poi_index])
            if not (math.isfinite(err) and err > 0):
                n_failed += 1
                continue
            pulls.append((float(values[self._poi_index]) - mu_true) / err)
        arr = np.asarray(pulls, dtype=np.float64)
        ok = arr.shape[0] > 0
        return {
            "coverage": float(np.mean(np.abs(arr) <= 1.0)) if ok else math.nan,
            "mean_pull": float(arr.mean()) if ok else math.nan,
            "pull_std": float(arr.std(ddof=1)) if arr.shape[0] > 1 else math.nan,
            "n_toys": float(n_toys),
            "n_failed": float(n_failed),
        }
