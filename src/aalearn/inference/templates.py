r"""Measurement templates: binned expected yields with their systematics, from classifier scores.

:class:`Templates` holds the signal and background yields of the one channel of the
measurement with their Monte-Carlo statistical variances (``staterror``), shape
(``histosys``) and rate (``normsys``) variations and an optional absolute background
uncertainty (``shapesys``); :func:`templates_from_scores` histograms simulated scores into
templates, :func:`histogram_data` histograms pseudo-data with the templates' edges.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> t = templates_from_scores(rng.uniform(size=500), rng.uniform(size=500), bins=5)
    >>> t.n_bins
    5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.validation import check_array

__all__ = [
    "CHANNEL",
    "SAMPLES",
    "SHAPESYS_NAME",
    "STATERROR_NAME",
    "Templates",
    "Variation",
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
        histosys_sumw2: Monte-Carlo variance of the histosys templates, ``name -> sample
            -> (down, up)``; used only by the significance test of the variations
            (:func:`aalearn.inference.systematics.variation_significance`).

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
    histosys_sumw2: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = field(default_factory=dict)

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
        histosys_sumw2: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
        for name, per_sample in dict(self.histosys_sumw2).items():
            if name not in histosys:
                raise ValueError(f"histosys_sumw2 {name!r} has no matching histosys")
            histosys_sumw2[name] = {}
            for sample, pair in dict(per_sample).items():
                if sample not in histosys[name] or len(pair) != 2:
                    raise ValueError(
                        f"histosys_sumw2 {name!r}/{sample}: give a (down, up) pair of a histosys sample"
                    )
                histosys_sumw2[name][sample] = (
                    _yields(pair[0], name=f"histosys_sumw2 {name!r}/{sample} down", n_bins=n),
                    _yields(pair[1], name=f"histosys_sumw2 {name!r}/{sample} up", n_bins=n),
                )
        self.histosys_sumw2 = histosys_sumw2
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


def _histogram(
    scores: FloatArray, edges: FloatArray, total: float, weights: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    r"""Yields scaled to ``total`` and their variance (each event weighs total/N, or total·wᵢ/Σw).

    With ``weights`` (a variation given as weights of the nominal events) the variance is that
    of the template's *difference from the nominal one*, :math:`\sum_i (E w_i/\sum w - E/N)^2`:
    the two share their events, so only the weights' departure from the nominal fluctuates.
    """
    if weights is None:
        counts, _ = np.histogram(scores, bins=edges)
        w = total / scores.shape[0]
        return counts * w, counts * w * w
    scaled = weights * (total / weights.sum())
    h, _ = np.histogram(scores, bins=edges, weights=scaled)
    departure = scaled - total / scores.shape[0]
    v, _ = np.histogram(scores, bins=edges, weights=departure * departure)
    return h, v


def _event_weights(w: Any, *, name: str, n: int) -> FloatArray:
    """Per-event weights of a variation: ``(n,)``, finite, non-negative, with a positive sum."""
    arr = check_array(w, name=name, ndim=1, dtype=np.float64)
    if arr.shape[0] != n:
        raise ValueError(f"{name} must hold one weight per simulated event ({n}), got {arr.shape[0]}")
    if np.any(arr < 0) or not arr.sum() > 0:
        raise ValueError(f"{name} must be non-negative weights with a positive sum")
    return arr


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
    variation_weights: Mapping[str, Variation] | None = None,
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
        variation_weights: Shape systematics given as per-event weights of the *nominal*
            events, ``name -> ((signal_down, background_down), (signal_up, background_up))``
            weight arrays aligned with ``scores_signal`` / ``scores_background`` (parton-shower
            weights, or a classifier's density ratio between the nominal and a varied sample:
            CARL, arXiv:1506.02169). Each template is the weighted histogram of the nominal
            scores, normalised to the expected total (shape only). The varied and the nominal
            templates share their events, so their difference carries no statistical noise
            of a separate sample; its ``histosys_sumw2`` is therefore the variance of that
            difference, :math:`\sum_i (E w_i/\sum w - E/N)^2` per bin, which the
            significance test of :func:`~aalearn.inference.systematics.variation_significance`
            compares the shift with (it adds the nominal ``sumw2`` when the templates carry
            one, which for shared events overstates the noise).

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
    nominal = {
        "signal": _scores(scores_signal, name="scores_signal", lo=lo, hi=hi),
        "background": _scores(scores_background, name="scores_background", lo=lo, hi=hi),
    }
    sig, sig_w2 = _histogram(nominal["signal"], edges, expected_signal)
    bkg, bkg_w2 = _histogram(nominal["background"], edges, expected_background)
    histosys: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
    histosys_w2: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
    given = [(name, v, False) for name, v in (variations or {}).items()]
    given += [(name, v, True) for name, v in (variation_weights or {}).items()]
    for name, variation, by_weights in given:
        _check_name(name, what="variation")
        if name in histosys:
            raise ValueError(f"variation {name!r} is given both as scores and as weights; give it once")
        try:
            (sig_down, bkg_down), (sig_up, bkg_up) = variation
        except (TypeError, ValueError):
            raise ValueError(
                f"variation {name!r} must be ((signal_down, background_down), (signal_up, background_up)) "
                + ("weight arrays" if by_weights else "score arrays")
            ) from None
        histosys[name], histosys_w2[name] = {}, {}
        for sample, sides, total in (
            ("signal", (sig_down, sig_up), expected_signal),
            ("background", (bkg_down, bkg_up), expected_background),
        ):
            pair = []
            for side, arr in zip(("down", "up"), sides, strict=True):
                label = f"{name} {sample} {side}"
                if by_weights:  # the nominal events, weighted
                    n = nominal[sample].shape[0]
                    weights = _event_weights(arr, name=f"{label} weights", n=n)
                    pair.append(_histogram(nominal[sample], edges, total, weights))
                else:
                    pair.append(_histogram(_scores(arr, name=label, lo=lo, hi=hi), edges, total))
            histosys[name][sample] = (pair[0][0], pair[1][0])
            histosys_w2[name][sample] = (pair[0][1], pair[1][1])
    return Templates(
        edges=edges,
        signal=sig,
        background=bkg,
        signal_sumw2=sig_w2 if staterror else None,
        background_sumw2=bkg_w2 if staterror else None,
        histosys=histosys,
        normsys={k: dict(v) for k, v in (normsys or {}).items()},
        histosys_sumw2=histosys_w2,
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
