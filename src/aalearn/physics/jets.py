r"""Jet physics written once: ΔR, N-subjettiness, jet observables and energy correlations.

Every pillar computes jet observables through this module, so a definition cannot drift
between the simulation-based inference, the surrogate validation and the nuisance
studies. Two N-subjettiness axis choices exist, each under its own name and for a
stated reason:

* :func:`nsubjettiness` -- the standard definition (Thaler, Van Tilburg,
  arXiv:1011.2268): FastJet's Nsubjettiness contrib with one-pass exclusive-:math:`k_t`
  axes (arXiv:1108.2701); used where physics accuracy matters (the Pythia-parameter
  inference, the data-versus-simulation tables);
* :func:`constituent_jet_features` -- a vectorised NumPy approximation whose axes are the
  :math:`N` hardest constituents; used on large arrays in the surrogate validation
  (ratios keep their two-/three-prong discrimination, absolute values differ). Its
  ratios are 0 where the denominator vanishes, those of :func:`substructure_observables`
  are 1 (a one-constituent jet is maximally "one-prong").

Angles: :func:`delta_r` always wraps :math:`\Delta\phi` into :math:`[-\pi, \pi)`.

Example:
    >>> import numpy as np
    >>> float(delta_r(0.0, 3.1, 0.0, -3.1).round(4))
    0.0832
    >>> c = np.zeros((1, 3, 3)); c[0] = [[300.0, 0.0, 0.0], [100.0, 0.0, -0.2], [50.0, 0.1, 0.1]]
    >>> e2, d2 = energy_correlations(c)
    >>> round(float(e2[0]), 4)
    0.0479
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.stdio import redirect_fd1
from aalearn.core.validation import check_array
from aalearn.physics.kinematics import constituent_mass, four_momenta, wrap_phi

__all__ = [
    "HARDEST_AXES_R0",
    "JET_FEATURES",
    "SUBSTRUCTURE_OBSERVABLES",
    "check_flat_constituents",
    "constituent_jet_features",
    "delta_r",
    "energy_correlations",
    "nsubjettiness",
    "ratio",
    "substructure_observables",
]

FloatArray = npt.NDArray[np.float64]

#: Per-jet observables, in the order of the columns of :func:`substructure_observables`.
SUBSTRUCTURE_OBSERVABLES: tuple[str, ...] = ("jet_pt", "jet_mass", "n_constituents", "tau21", "tau32")
#: N-subjettiness settings: normalised measure, beta = 1, R0 = the jet radius.
_TAU_BETA = 1.0
_FASTJET_BANNER_SILENCED = False
#: :math:`R_0` of the hardest-constituent-axes N-subjettiness of :func:`constituent_jet_features`.
HARDEST_AXES_R0 = 0.8

#: Names of the ``"jet"`` feature set, in column order.
JET_FEATURES: tuple[str, ...] = (
    "jet_pt",
    "jet_mass",
    "multiplicity",
    "width",
    "lead_pt_frac",
    "sublead_pt_frac",
    "tau21",
    "tau32",
)


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> FloatArray:
    r"""Angular distance :math:`\sqrt{\Delta\eta^2 + \Delta\phi^2}` with :math:`\Delta\phi` wrapped.

    Broadcasts over its arguments.

    Example:
        >>> round(float(delta_r(0.0, 0.0, 0.3, 0.4)), 12)
        0.5
    """
    e1, p1 = np.asarray(eta1, dtype=np.float64), np.asarray(phi1, dtype=np.float64)
    e2, p2 = np.asarray(eta2, dtype=np.float64), np.asarray(phi2, dtype=np.float64)
    out: FloatArray = np.hypot(e1 - e2, wrap_phi(p1 - p2))
    return out


def check_flat_constituents(
    constituents: npt.ArrayLike, offsets: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Validate concatenated constituents ``(M, 3)`` and their jet boundaries ``offsets``.

    Returns:
        ``(constituents as float64, offsets as int64)``.

    Raises:
        ValueError: For a wrong shape, offsets that do not partition the constituents into
            non-empty jets, NaN/inf values or a pT that is not positive.

    Example:
        >>> c, o = check_flat_constituents([[10.0, 0.0, 0.0], [5.0, 0.1, 0.2]], [0, 2])
        >>> c.shape, o.tolist()
        ((2, 3), [0, 2])
    """
    c = np.asarray(constituents, dtype=np.float64)
    o = np.asarray(offsets)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"constituents must have shape (M, 3) = (pT, eta, phi), got {c.shape}")
    if o.ndim != 1 or o.size < 2 or not np.issubdtype(o.dtype, np.integer):
        raise ValueError(f"offsets must be a 1-D integer array of length n_jets + 1 >= 2, got {o.shape}")
    if o[0] != 0 or o[-1] != len(c) or np.any(np.diff(o) < 1):
        raise ValueError(
            "offsets must start at 0, end at len(constituents) and increase (every jet needs at least "
            f"one constituent); got offsets[0] = {o[0]}, offsets[-1] = {o[-1]}, len = {len(c)}"
        )
    if not np.all(np.isfinite(c)):
        bad = np.unique(np.searchsorted(o, np.flatnonzero(~np.isfinite(c).all(axis=1)), side="right") - 1)
        raise ValueError(f"constituents of jets {bad[:10].tolist()} are not finite")
    if np.any(c[:, 0] <= 0):
        raise ValueError("constituent pT must be positive (GeV)")
    return c, o.astype(np.int64)


def nsubjettiness(
    constituents: npt.ArrayLike,
    offsets: npt.ArrayLike,
    *,
    n: Sequence[int] = (1, 2, 3),
    r0: float = 0.8,
) -> FloatArray:
    r"""N-subjettiness :math:`\tau_N` of jets given as concatenated massless constituents.

    :math:`\tau_N = \sum_k p_{T,k} \min_a \Delta R_{a,k} / (\sum_k p_{T,k} R_0)` with
    :math:`\beta = 1` (Thaler, Van Tilburg, arXiv:1011.2268), computed by FastJet's
    N-subjettiness contrib (``fastjet`` wheel, ``ClusterSequence.njettiness``,
    ``NormalizedMeasure``) with one-pass-minimised exclusive-:math:`k_t` axes
    (``OnePass_KT_Axes``, arXiv:1108.2701), one "event" per jet.

    Args:
        constituents: ``(M, 3)`` = (pT in GeV, η, φ) of all jets, concatenated.
        offsets: ``(n_jets + 1,)``; jet ``i`` is ``constituents[offsets[i]:offsets[i + 1]]``.
        n: The N of :math:`\tau_N`.
        r0: Characteristic radius :math:`R_0` (the jet radius).

    Returns:
        ``(n_jets, len(n))`` array of :math:`\tau_N` (0 where a jet has at most N constituents).

    Raises:
        ValueError: For malformed constituents or offsets.

    Example:
        >>> c = np.array([[100.0, 0.0, 0.0], [100.0, 0.4, 0.0], [50.0, 0.0, 0.3]])
        >>> t = nsubjettiness(c, [0, 3], n=(1, 2, 3))
        >>> bool(t[0, 0] > t[0, 1] > t[0, 2] - 1e-12), float(t[0, 2])
        (True, 0.0)
    """
    c, o = check_flat_constituents(constituents, offsets)
    ns = [int(k) for k in n]
    if not ns or any(k < 1 for k in ns):
        raise ValueError(f"n must be positive integers, got {list(n)}")
    if not (isinstance(r0, int | float) and math.isfinite(r0) and r0 > 0):
        raise ValueError(f"r0 must be a positive number, got {r0!r}")
    ak = require("awkward", purpose="N-subjettiness through FastJet")
    fastjet = require("fastjet", purpose="N-subjettiness (FastJet's Nsubjettiness contrib)")
    pt, eta, phi = c[:, 0], c[:, 1], c[:, 2]
    counts = np.diff(o)
    flat = ak.zip(
        {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": pt * np.cosh(eta)}
    )
    events = ak.with_name(ak.unflatten(flat, counts), "Momentum4D")
    global _FASTJET_BANNER_SILENCED
    # FastJet's C++ prints its banner on fd 1 once per process: keep stdout clean (JSON output).
    quiet = contextlib.nullcontext() if _FASTJET_BANNER_SILENCED else redirect_fd1("devnull")
    with quiet:
        # The clustering definition does not matter: njettiness uses all particles of the "event".
        seq = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.antikt_algorithm, 10.0))
        raw = seq.njettiness(
            njets=ns,
            measure_definition="NormalizedMeasure",
            axes_definition="OnePass_KT_Axes",
            beta=_TAU_BETA,
            R0=float(r0),
        )
    _FASTJET_BANNER_SILENCED = True
    tau = np.asarray(ak.to_numpy(raw), dtype=np.float64).reshape(len(counts), len(ns))
    tau[counts[:, None] <= np.asarray(ns)[None, :]] = 0.0
    return tau


def substructure_observables(
    jets: npt.ArrayLike,
    constituents: npt.ArrayLike,
    offsets: npt.ArrayLike,
    *,
    r0: float = 0.8,
) -> FloatArray:
    r"""Per-jet observables (:data:`SUBSTRUCTURE_OBSERVABLES`) without the dequantisation of the multiplicity.

    Args:
        jets: ``(N, 5)`` = (pT, η, φ, m, n_constituents) as returned by
            :func:`aalearn.data.generate.generate_chunk`.
        constituents: ``(M, 3)`` all constituents (pT, η, φ), concatenated
            (``generate_chunk(..., all_constituents=True)``).
        offsets: ``(N + 1,)`` jet boundaries in ``constituents``.
        r0: :math:`R_0` of the N-subjettiness (the jet radius).

    Returns:
        ``(N, 5)``: pT [GeV], mass [GeV], multiplicity, :math:`\tau_{21}`, :math:`\tau_{32}`
        (ratios set to 1 where the denominator vanishes).

    Raises:
        ValueError: For inconsistent shapes.

    Example:
        >>> c = np.array([[100.0, 0.0, 0.0], [100.0, 0.4, 0.0], [50.0, 0.0, 0.3]])
        >>> jets = np.array([[250.0, 0.1, 0.0, 40.0, 3.0]])
        >>> substructure_observables(jets, c, [0, 3]).shape
        (1, 5)
    """
    j = np.asarray(jets, dtype=np.float64)
    if j.ndim != 2 or j.shape[1] != 5:
        raise ValueError(f"jets must have shape (N, 5) = (pT, eta, phi, m, n_constituents), got {j.shape}")
    o = np.asarray(offsets)
    if o.ndim != 1 or len(o) != len(j) + 1:
        raise ValueError(f"offsets must have length len(jets) + 1 = {len(j) + 1}, got shape {o.shape}")
    tau = nsubjettiness(constituents, offsets, n=(1, 2, 3), r0=r0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau21 = np.where(tau[:, 0] > 0, tau[:, 1] / tau[:, 0], 1.0)
        tau32 = np.where(tau[:, 1] > 0, tau[:, 2] / tau[:, 1], 1.0)
    return np.stack([j[:, 0], j[:, 3], j[:, 4], tau21, tau32], axis=1)


def ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` where ``den > 0``, else 0 (no warnings)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


def constituent_jet_features(constituents: npt.ArrayLike) -> FloatArray:
    """The ``"jet"`` features (:data:`JET_FEATURES`) from ``(N, K, 3)`` constituents (pT in GeV, η, φ).

    Zero-pT constituents are padding. The hardest constituents are found by sorting in pT.

    Args:
        constituents: ``(N, K, 3)`` constituents, ``K >= 1``.

    Returns:
        ``(N, 8)`` features.

    Raises:
        ValueError: For a wrong shape, NaN/inf or negative pT.
    """
    c = check_array(constituents, name="constituents", ndim=3, dtype=np.float64)
    if c.shape[2] != 3 or c.shape[1] < 1:
        raise ValueError(f"constituents must have shape (N, K, 3) = (pT, eta, phi), got {c.shape}")
    if np.any(c[..., 0] < 0):
        raise ValueError("constituents have negative pT; pT must be >= 0 (0 marks padding)")
    order = np.argsort(-c[..., 0], axis=1, kind="stable")
    c = np.take_along_axis(c, order[..., None], axis=1)
    pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
    sum_pt = pt.sum(axis=1)
    p = four_momenta(c).sum(axis=1)
    jet_pt = np.hypot(p[:, 1], p[:, 2])
    mass = constituent_mass(c)
    mult = np.count_nonzero(pt > 0, axis=1).astype(np.float64)
    eta_j = ratio((pt * eta).sum(axis=1), sum_pt)
    phi_j = ratio((pt * phi).sum(axis=1), sum_pt)
    width = ratio((pt * delta_r(eta, phi, eta_j[:, None], phi_j[:, None])).sum(axis=1), sum_pt)
    lead = ratio(pt[:, 0], sum_pt)
    sublead = ratio(pt[:, 1], sum_pt) if c.shape[1] > 1 else np.zeros(len(c))
    taus = []
    for n_axes in (1, 2, 3):
        k = min(n_axes, c.shape[1])
        dr = delta_r(eta[:, :, None], phi[:, :, None], eta[:, None, :k], phi[:, None, :k]).min(axis=2)
        taus.append(ratio((pt * dr).sum(axis=1), HARDEST_AXES_R0 * sum_pt))
    tau21 = ratio(taus[1], taus[0])
    tau32 = ratio(taus[2], taus[1])
    return np.stack([jet_pt, mass, mult, width, lead, sublead, tau21, tau32], axis=1)


def energy_correlations(constituents: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    r"""Energy-correlation functions :math:`e_2^{(1)}` and :math:`D_2^{(1)}` of ``(N, K, 3)`` constituents.

    :math:`e_2 = \sum_{i<j} z_i z_j \Delta R_{ij}`, :math:`z_i = p_{T,i}/\sum p_T`;
    :math:`D_2 = e_3/e_2^3` with
    :math:`e_3 = \sum_{i<j<k} z_i z_j z_k \Delta R_{ij}\Delta R_{ik}\Delta R_{jk}`
    (Larkoski, Moult, Neill, arXiv:1409.6298). Zero-pT constituents are padding.

    Returns:
        ``(e2, d2)``, each ``(N,)`` (``d2`` uses 1 in place of a vanishing :math:`e_2`).
    """
    c = np.asarray(constituents, dtype=np.float64)
    pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
    sum_pt = pt.sum(axis=1)
    z = pt / np.where(sum_pt > 0, sum_pt, 1.0)[:, None]
    r = delta_r(eta[:, :, None], phi[:, :, None], eta[:, None, :], phi[:, None, :])
    e2 = 0.5 * np.einsum("ni,nj,nij->n", z, z, r)
    # Σ_{i<j<k} = Σ_{ijk}/6: the diagonal of ΔR vanishes, so repeated indices add nothing
    e3 = np.einsum("ni,nj,nk,nij,nik,njk->n", z, z, z, r, r, r, optimize="greedy") / 6.0
    d2: FloatArray = e3 / np.where(e2 > 0, e2, 1.0) ** 3
    return e2, d2
