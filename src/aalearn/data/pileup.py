r"""A parametrised pile-up / underlying-event overlay for generated jets.

The CMS simulated samples of the ECML-PKDD 2025 challenge (2012 conditions) carry pile-up:
on average :math:`\mu \approx 21` extra proton-proton interactions per bunch crossing
(CMS, JINST 12 (2017) P10003, arXiv:1706.04965, for the particle-flow reconstruction of
that period), whose soft particles fall into every anti-:math:`k_t` jet
(Cacciari, Salam, Soyez, "Pileup subtraction using jet areas", arXiv:0707.1378). Pythia's
hard process carries none. :func:`overlay_pileup` adds them after the generation, without
running Pythia again: a Poisson number of soft particles, uniform in the disc of radius
:attr:`PileupModel.radius` about the jet axis (the :math:`p_T`-weighted centroid of the
objects), with an exponential :math:`p_T` spectrum above the object threshold, are added to
the jet's objects, which are then re-sorted by :math:`p_T` and truncated again.

**Exactness of the truncation:** a generated file keeps the :math:`K` hardest detector-level
objects of each jet (``constituents_unsmeared``, before smearing). Any object the generator
dropped was softer than all :math:`K` kept ones, so the :math:`K` hardest of
(kept objects ∪ pile-up) equal the :math:`K` hardest of (all objects ∪ pile-up): the overlay
on the truncated jet is exact. Neglected: the pile-up's effect on which particles the
clustering assigns to the jet and on the jet axis.

**Default parameters** (order-of-magnitude, not a fit): per interaction about 9 visible
particles per unit of pseudorapidity (charged :math:`dN_{ch}/d\eta \approx 5.5` at 8 TeV,
plus neutrals), of which about 45 % lie above 0.4 GeV: 0.65 particles per unit
:math:`\eta\times\phi` area above 0.4 GeV, with a mean excess of 0.45 GeV. With
:math:`\mu = 21` an R = 0.5 jet (area 0.785) receives about 11 particles, 10 GeV of
:math:`p_T` in all, about one of them above 1.5 GeV.

Example:
    >>> import numpy as np
    >>> jets = np.zeros((1, 30, 3)); jets[0, :, 0] = np.linspace(50.0, 0.5, 30)
    >>> out = overlay_pileup(jets, PileupModel(mu=21.0), np.random.default_rng(0))
    >>> out.shape, bool(np.all(np.diff(out[0, :, 0]) <= 0))
    ((1, 30, 3), True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from aalearn.physics.kinematics import wrap_phi

__all__ = ["PileupModel", "overlay_pileup", "overlay_pileup_jet"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PileupModel:
    """Soft particles overlaid on each jet (see the module docstring).

    Attributes:
        mu: Mean number of pile-up interactions per bunch crossing (2012: about 21).
        density: Particles per unit η×φ area per interaction with pT above ``pt_min``.
        pt_min: Lowest pT of an overlaid particle, GeV (the object threshold of the sample).
        mean_excess: Mean of pT − ``pt_min`` (exponential spectrum), GeV.
        radius: Radius of the disc about the jet axis that receives the particles.

    Raises:
        ValueError: For a negative or non-finite parameter, or a zero radius or mean excess.

    Example:
        >>> round(PileupModel().expected_particles(), 2)
        10.72
    """

    mu: float = 21.0
    density: float = 0.65
    pt_min: float = 0.4
    mean_excess: float = 0.45
    radius: float = 0.5

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"PileupModel.{key} must be a finite non-negative number, got {value!r}")
        for key in ("radius", "mean_excess"):
            if getattr(self, key) == 0:
                raise ValueError(f"PileupModel.{key} must be positive")

    def expected_particles(self) -> float:
        """Mean number of overlaid particles per jet: μ × density × πR²."""
        return self.mu * self.density * math.pi * self.radius**2

    def to_dict(self) -> dict[str, float]:
        """Parameters as a plain dictionary (for a file's configuration)."""
        return {k: float(v) for k, v in asdict(self).items()}


def overlay_pileup(constituents: npt.ArrayLike, model: PileupModel, rng: np.random.Generator) -> FloatArray:
    """Add pile-up particles to each jet's objects, re-sort by pT and keep as many as before.

    Args:
        constituents: ``(N, K, 3)`` objects (pT [GeV], η, φ) of each jet, zero-padded, the
            ``K`` hardest of the jet (for example a file's ``constituents_unsmeared``).
        model: The pile-up parameters.
        rng: NumPy random generator (seed it for reproducibility).

    Returns:
        ``(N, K, 3)`` float64: the ``K`` hardest of the jet's objects and the overlaid
        particles, in descending pT (padding last).

    Raises:
        ValueError: For a wrong shape, NaN/inf or a jet without any object.

    Example:
        >>> c = np.zeros((2, 3, 3)); c[:, 0] = (100.0, 0.3, 1.0)
        >>> out = overlay_pileup(c, PileupModel(mu=50.0), np.random.default_rng(1))
        >>> bool(np.all(out[:, 0] == c[:, 0])), bool(np.all(out[:, 1:, 0] >= 0.4))
        (True, True)
    """
    c = np.asarray(constituents, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 3:
        raise ValueError(f"constituents must have shape (N, K, 3) = (pT, eta, phi), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("constituents contain NaN/inf")
    pt = np.where(c[..., 0] > 0, c[..., 0], 0.0)
    total = pt.sum(axis=1)
    if np.any(total <= 0):
        raise ValueError(f"{int(np.sum(total <= 0))} jet(s) have no object with pT > 0")
    n_jets, k = c.shape[:2]
    # the jet axis: pT-weighted centroid, φ measured from the hardest object (no wrap-around)
    eta0 = (pt * c[..., 1]).sum(axis=1) / total
    phi_ref = c[np.arange(n_jets), np.argmax(pt, axis=1), 2]
    phi0 = phi_ref + (pt * wrap_phi(c[..., 2] - phi_ref[:, None])).sum(axis=1) / total
    counts: npt.NDArray[np.int64] = np.asarray(rng.poisson(model.expected_particles(), size=n_jets))
    m = int(counts.max(initial=0))
    out = np.zeros((n_jets, k + m, 3))
    out[:, :k] = c
    if m:
        real = np.arange(m)[None, :] < counts[:, None]
        r = model.radius * np.sqrt(rng.random((n_jets, m)))  # uniform in the disc
        angle = rng.uniform(-math.pi, math.pi, (n_jets, m))
        pu_pt = model.pt_min + rng.exponential(model.mean_excess, (n_jets, m))
        out[:, k:, 0] = np.where(real, pu_pt, 0.0)
        out[:, k:, 1] = np.where(real, eta0[:, None] + r * np.cos(angle), 0.0)
        out[:, k:, 2] = np.where(real, wrap_phi(phi0[:, None] + r * np.sin(angle)), 0.0)
    order = np.argsort(-out[..., 0], axis=1, kind="stable")[:, :k]
    result: FloatArray = np.take_along_axis(out, order[..., None], axis=1)
    return result


def overlay_pileup_jet(objects: npt.ArrayLike, model: PileupModel, rng: np.random.Generator) -> FloatArray:
    """One jet's objects ``(M, 3)`` with pile-up particles added, in descending pT, not truncated.

    For use inside the generator, before the ``min_constituents`` requirement (so that a jet
    with few objects, an isolated lepton for example, can reach it with the overlay, as in a
    detector).

    Example:
        >>> lepton = np.array([[100.0, 0.0, 0.0]])
        >>> out = overlay_pileup_jet(lepton, PileupModel(mu=30.0), np.random.default_rng(0))
        >>> out.shape[1], float(out[0, 0]), len(out) > 1
        (3, 100.0, True)
    """
    p = np.asarray(objects, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"objects must have shape (M, 3) = (pT, eta, phi), got {p.shape}")
    lam = model.expected_particles()
    # room for every overlaid particle: P(Poisson(λ) > λ + 10√λ + 20) is below 1e-20
    n_room = p.shape[0] + int(lam + 10.0 * math.sqrt(lam)) + 20
    padded = np.zeros((1, n_room, 3))
    padded[0, : len(p)] = p
    out = overlay_pileup(padded, model, rng)[0]
    return out[out[:, 0] > 0]
