r"""Shape-systematic (``histosys``) hygiene: one-sided and asymmetric variations, template statistics.

A ``histosys`` nuisance :math:`\alpha` interpolates each bin between the down (:math:`\alpha=-1`),
nominal (0) and up (+1) templates. pyhf 0.7's default for histosys is ``code4p``
(polynomial for :math:`|\alpha|<1`, linear outside; Heinrich et al., JOSS 6 (2021) 2823):
with :math:`\delta^\pm` the up/down shifts it is
:math:`\Delta(\alpha) = \alpha\,(\delta^+ - \delta^-)/2 + \alpha^2 P(\alpha)\,(\delta^+ + \delta^-)/16`.
When up and down move the yields to the *same side* of nominal (a "one-sided" variation,
for example an energy-scale shift that only exists in one direction, given as both up
and down) the linear term vanishes: the expectation is even in :math:`\alpha` with zero
slope at 0. The nuisance then adds nothing to the HESSE uncertainty of :math:`\mu`
(its first-order effect is zero) and the fit can move the yields only one way, which
biases :math:`\hat\mu` in toys (measured: mean pull −0.41 on the challenge set-up, see
``benchmarks/bench_measurement.py``). Piecewise-linear interpolation (``code0``) has the
same V shape with a kink, so smooth interpolation alone is no remedy.

The usual remedy of LHC analyses (for example the ``ONESIDED``/``TWOSIDED``
symmetrisation options of ATLAS's TRExFitter) is applied here per variation by
:func:`treat_histosys`:

* ``one-sided`` (the σ-weighted up and down shifts point the same way, cosine > 0, or
  one side is below 10 % of the other): **mirror** the larger shift
  :math:`\delta`: up = nominal + δ, down = nominal − δ (= 2·nominal − up when δ is the
  up shift), yields clipped at 0;
* ``asymmetric`` (a large even part: :math:`|\delta^+ + \delta^-| > 0.5\,|\delta^+ - \delta^-|`
  with :math:`\delta^-` = down − nominal; for example opposite shifts whose sizes differ
  by more than a factor 3, or shifts of equal size that are far from mirror images):
  **symmetrise**: :math:`\delta = (\delta^+ - \delta^-)/2`, up/down = nominal ± δ. The
  even part becomes ``code4p``'s quadratic term, which biases μ̂ in the same way
  (measured on the challenge set-up with pT × 0.97/× 1.03, cosine −0.14: mean pull
  −0.22 ± 0.03 as given, −0.07 ± 0.06 symmetrised);
* ``two-sided``: left unchanged.

A warning naming the variation is emitted for every one-sided or asymmetric variation.
For variation templates from finite samples, :func:`variation_significance` tests each
side against the statistical noise: :math:`\chi^2 = \sum_{s,i} (v_{s,i} - n_{s,i})^2 /
(\sigma^2_{v,s,i} + \sigma^2_{n,s,i})` with :math:`\sum_s (B-1)` degrees of freedom
(shape-only variations are normalised to the nominal total; samples a side leaves
unchanged are left out). The variance sum assumes
independent samples; for a variation made by re-processing the *same* events (as a pT
scale shift) the difference is far less noisy, so the test is conservative there.
A variation compatible with noise (p > 0.05 on both sides) gets a warning: its
"shape" is mostly statistical fluctuation, which the staterror of the nominal
templates does not cover.

Example:
    >>> import numpy as np
    >>> from aalearn.inference.templates import Templates
    >>> nom = np.array([50.0, 50.0])
    >>> t = Templates(edges=[0.0, 0.5, 1.0], signal=[5.0, 5.0], background=nom,
    ...               histosys={"jes": {"background": (nom + [5, -5], nom + [5, -5])}})
    >>> fixed, info = treat_histosys(t, warn=False)
    >>> info["jes"]["kind"], info["jes"]["method"]
    ('one-sided', 'mirror')
    >>> fixed.histosys["jes"]["background"][0].tolist()
    [45.0, 55.0]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.inference.templates import SAMPLES, Templates

__all__ = [
    "HISTOSYS_METHODS",
    "applied_method",
    "check_histosys_method",
    "classify_histosys",
    "classify_shifts",
    "treat_histosys",
    "variation_significance",
]

FloatArray = npt.NDArray[np.float64]

HISTOSYS_METHODS = ("auto", "mirror", "symmetrize", "none")
"""``auto``: mirror one-sided, symmetrise strongly asymmetric, keep two-sided; ``mirror``:
mirror the larger shift of every variation; ``symmetrize``: (up − down)/2 for every
variation; ``none``: use the templates as given (pyhf ``code4p``)."""

ONE_SIDED_RATIO = 0.1
"""A side smaller than this fraction of the other counts as absent (one-sided)."""
EVEN_ODD_LIMIT = 0.5
r"""Variations whose even part :math:`|\delta^+ + \delta^-|` exceeds this fraction of the odd
part :math:`|\delta^+ - \delta^-|` (shifts with signs, :math:`\delta^- = ` down − nominal) are
"asymmetric": e.g. opposite shifts with a size ratio below 1/3, or equal sizes with a
cosine above −0.6."""


def _shifts(templates: Templates, name: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Up and down shifts of ``name`` over both samples (concatenated) and the Poisson σ per entry."""
    up: list[FloatArray] = []
    down: list[FloatArray] = []
    sigma: list[FloatArray] = []
    total = np.maximum(templates.total(), 1e-12)
    for sample in SAMPLES:
        pair = templates.histosys[name].get(sample)
        if pair is None:
            continue
        nominal: FloatArray = getattr(templates, sample)
        down.append(pair[0] - nominal)
        up.append(pair[1] - nominal)
        sigma.append(np.sqrt(total))
    return np.concatenate(up), np.concatenate(down), np.concatenate(sigma)


def classify_histosys(templates: Templates) -> dict[str, dict[str, Any]]:
    r"""Classify each histosys as ``two-sided``, ``one-sided``, ``asymmetric`` or ``null``.

    The up and down shifts of both samples are weighted by the Poisson σ of the bin's
    total expectation (:math:`\sqrt{s_i+b_i}`) — the metric in which they move the fit.

    Args:
        templates: Templates with ``histosys``.

    Returns:
        ``name -> {"kind", "cosine", "size_up", "size_down", "even_odd_ratio"}``: the
        cosine of the angle between the weighted up and down shifts (−1 for a
        mirror-symmetric variation, +1 for up = down), their norms in σ units and
        :math:`|\delta^+ + \delta^-| / |\delta^+ - \delta^-|` (0 for mirror images).

    Example:
        >>> t = Templates(edges=[0.0, 1.0, 2.0], signal=[1.0, 1.0], background=[9.0, 9.0],
        ...               histosys={"a": {"background": ([8.0, 10.0], [10.0, 8.0])}})
        >>> classify_histosys(t)["a"]["kind"]
        'two-sided'
    """
    out: dict[str, dict[str, Any]] = {}
    for name in templates.histosys:
        u, d, sig = _shifts(templates, name)
        out[name] = classify_shifts(u / sig, d / sig)
    return out


def classify_shifts(up: npt.ArrayLike, down: npt.ArrayLike) -> dict[str, Any]:
    r"""Classify one variation from its σ-weighted shifts (the rule of :func:`classify_histosys`).

    Args:
        up: :math:`(u - n)/\sigma` per bin (all samples the variation moves, concatenated).
        down: :math:`(d - n)/\sigma`, the same bins.

    Returns:
        ``{"kind", "cosine", "size_up", "size_down", "even_odd_ratio"}`` (see
        :func:`classify_histosys`); ``kind`` is ``null``, ``one-sided``, ``asymmetric`` or
        ``two-sided``.

    Example:
        >>> classify_shifts([1.0, 0.5], [0.9, 0.4])["kind"]  # both sides move the same way
        'one-sided'
        >>> classify_shifts([1.0, -0.5], [-1.0, 0.5])["kind"]
        'two-sided'
    """
    uw, dw = np.asarray(up, dtype=np.float64), np.asarray(down, dtype=np.float64)
    nu, nd = float(np.linalg.norm(uw)), float(np.linalg.norm(dw))
    big, small = max(nu, nd), min(nu, nd)
    cos = float(uw @ dw / (nu * nd)) if nu > 0 and nd > 0 else math.nan
    if big == 0:
        kind = "null"
    elif small < ONE_SIDED_RATIO * big or cos > 0:
        kind = "one-sided"
    elif np.linalg.norm(uw + dw) > EVEN_ODD_LIMIT * np.linalg.norm(uw - dw):
        kind = "asymmetric"
    else:
        kind = "two-sided"
    odd = float(np.linalg.norm(uw - dw))
    even_odd = float(np.linalg.norm(uw + dw)) / odd if odd > 0 else math.inf
    return {"kind": kind, "cosine": cos, "size_up": nu, "size_down": nd, "even_odd_ratio": even_odd}


def check_histosys_method(method: str) -> str:
    """``method`` if it is one of :data:`HISTOSYS_METHODS`, else a one-line ``ValueError``.

    Example:
        >>> check_histosys_method("auto")
        'auto'
    """
    if method not in HISTOSYS_METHODS:
        raise ValueError(f"histosys method must be one of {', '.join(HISTOSYS_METHODS)}, got {method!r}")
    return method


def applied_method(kind: str, method: str) -> str:
    """The treatment :func:`treat_histosys` applies to a variation of ``kind`` under ``method``.

    Example:
        >>> applied_method("one-sided", "auto"), applied_method("two-sided", "auto")
        ('mirror', 'none')
    """
    if check_histosys_method(method) == "auto":
        return {"one-sided": "mirror", "asymmetric": "symmetrize"}.get(kind, "none")
    return method


def variation_significance(templates: Templates) -> dict[str, dict[str, float]]:
    r"""χ² test of each variation side against the statistical noise of the templates.

    Needs ``templates.histosys_sumw2`` (filled by
    :func:`~aalearn.inference.templates.templates_from_scores`); variations without it
    are skipped. The nominal variance is ``signal_sumw2``/``background_sumw2`` (zero
    when absent).

    Returns:
        ``name -> {"chi2_up", "ndf_up", "p_up", "chi2_down", "ndf_down", "p_down"}``;
        samples whose variation equals the nominal on a side add nothing to that side
        (an unvaried side has p = 1).

    Example:
        >>> import numpy as np
        >>> t = Templates(edges=[0.0, 1.0, 2.0], signal=[5.0, 5.0], background=[50.0, 50.0],
        ...               background_sumw2=[1.0, 1.0],
        ...               histosys={"a": {"background": ([40.0, 60.0], [60.0, 40.0])}},
        ...               histosys_sumw2={"a": {"background": ([1.0, 1.0], [1.0, 1.0])}})
        >>> variation_significance(t)["a"]["p_up"] < 1e-6
        True
    """
    from scipy.stats import chi2 as chi2_dist

    out: dict[str, dict[str, float]] = {}
    for name, per_sample in templates.histosys.items():
        var_w2 = templates.histosys_sumw2.get(name)
        if not var_w2:
            continue
        chi2 = {"up": 0.0, "down": 0.0}
        ndf = {"up": 0, "down": 0}
        for sample, (down, up) in per_sample.items():
            if sample not in var_w2:
                continue
            nominal: FloatArray = getattr(templates, sample)
            nom_w2 = getattr(templates, f"{sample}_sumw2")
            nom_w2 = np.zeros_like(nominal) if nom_w2 is None else nom_w2
            w2_down, w2_up = var_w2[sample]
            for side, arr, w2 in (("up", up, w2_up), ("down", down, w2_down)):
                if np.array_equal(arr, nominal):  # this sample is not varied on this side
                    continue
                var = w2 + nom_w2
                ok = var > 0
                chi2[side] += float(np.sum((arr[ok] - nominal[ok]) ** 2 / var[ok]))
                ndf[side] += max(int(np.count_nonzero(ok)) - 1, 1)
        out[name] = {}
        for side in ("up", "down"):
            out[name][f"chi2_{side}"] = chi2[side]
            out[name][f"ndf_{side}"] = float(ndf[side])
            out[name][f"p_{side}"] = float(chi2_dist.sf(chi2[side], ndf[side])) if ndf[side] else 1.0
    return out


def _mirror(nominal: FloatArray, delta: FloatArray) -> tuple[FloatArray, FloatArray]:
    return np.maximum(nominal - delta, 0.0), np.maximum(nominal + delta, 0.0)


def treat_histosys(
    templates: Templates, method: str = "auto", *, alpha: float = 0.05, warn: bool = True
) -> tuple[Templates, dict[str, dict[str, Any]]]:
    """Detect one-sided/asymmetric variations and symmetrise them; test their significance.

    Args:
        templates: Templates whose ``histosys`` are checked.
        method: One of :data:`HISTOSYS_METHODS`.
        alpha: Significance level of the noise test (:func:`variation_significance`).
        warn: Emit a :class:`UserWarning` naming each one-sided, asymmetric or
            insignificant variation.

    Returns:
        The (possibly) modified templates and ``name -> {"kind", "method", "cosine",
        "size_up", "size_down", "warnings", ...significance...}``; ``method`` is what
        was applied: ``mirror``, ``symmetrize`` or ``none``.

    Raises:
        ValueError: For an unknown ``method``.

    Example:
        >>> t = Templates(edges=[0.0, 1.0], signal=[1.0], background=[9.0],
        ...               histosys={"a": {"background": ([9.0], [12.0])}})
        >>> treat_histosys(t, warn=False)[1]["a"]["method"]
        'mirror'
    """
    check_histosys_method(method)
    if not templates.histosys:
        return templates, {}
    kinds = classify_histosys(templates)
    sig = variation_significance(templates)
    new: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for name, per_sample in templates.histosys.items():
        kind = kinds[name]["kind"]
        applied = applied_method(kind, method)
        up_larger = kinds[name]["size_up"] >= kinds[name]["size_down"]
        new[name] = {}
        for sample, (down, up) in per_sample.items():
            nominal: FloatArray = getattr(templates, sample)
            if applied == "mirror":
                new[name][sample] = _mirror(nominal, (up if up_larger else down) - nominal)
            elif applied == "symmetrize":
                new[name][sample] = _mirror(nominal, 0.5 * (up - down))
            else:
                new[name][sample] = (down, up)
        notes: list[str] = []
        if kind in ("one-sided", "asymmetric"):
            notes.append(
                f"histosys {name!r} is {kind} (cosine of up/down shifts {kinds[name]['cosine']:.2f}, "
                f"sizes up {kinds[name]['size_up']:.3g}σ, down {kinds[name]['size_down']:.3g}σ); "
                + (
                    f"applied '{applied}' so that the fit sees its first-order effect"
                    if applied != "none"
                    else "left as given: with same-side shifts the expectation is even in α, the nuisance "
                    "drops out of σ_μ and biases μ̂"
                )
            )
        s = sig.get(name)
        if s is not None and s["p_up"] > alpha and s["p_down"] > alpha:
            notes.append(
                f"histosys {name!r} is compatible with statistical noise of its templates "
                f"(χ²/ndf up {s['chi2_up']:.1f}/{s['ndf_up']:.0f}, "
                f"down {s['chi2_down']:.1f}/{s['ndf_down']:.0f}); "
                "its shape is mostly fluctuation: use a larger variation sample, fewer bins, or drop it"
            )
        if warn:
            for note in notes:
                warnings.warn(note, UserWarning, stacklevel=2)
        info[name] = {**kinds[name], "method": applied, **(s or {}), "warnings": notes}
    return replace(templates, histosys=new), info
