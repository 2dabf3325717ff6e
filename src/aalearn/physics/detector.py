r"""Detector granularity: merging of collinear photons.

At LHC jet energies the two photons of a :math:`\pi^0 \to \gamma\gamma` decay are
separated by roughly :math:`\Delta R \approx 2 m_{\pi^0} / E`, about 0.005 at 50 GeV,
far below the size of an electromagnetic-calorimeter cell (0.0174 in η and φ for the
CMS barrel crystals), so particle-flow reconstruction sees one photon where the
generator has two. Without this step a Pythia jet's leading constituents often come in
nearly collinear photon pairs, which a detector never shows.

:func:`merge_photons` clusters photons greedily, hardest first: a photon joins the
nearest cluster whose seed (a harder photon) lies within ``radius`` in
:math:`(\eta, \phi)`, or seeds a new cluster; a cluster's momentum is the sum of its photons' massless
four-momenta. Other particles are untouched. Charged hadrons are tracked individually
and neutral hadrons are left unmerged (a simplification: the hadron calorimeter's cells
are coarser, 0.087).

Example:
    >>> import numpy as np
    >>> p = np.array([[40.0, 0.0, 0.0], [10.0, 0.005, 0.0], [30.0, 0.3, 0.1]])
    >>> merge_photons(p, np.array([True, True, False]), radius=0.02).round(3).tolist()
    [[50.0, 0.001, 0.0], [30.0, 0.3, 0.1]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.physics.kinematics import four_momenta, wrap_phi

__all__ = ["ECAL_CELL_SIZE", "merge_photons", "sort_by_pt"]

#: Size of a CMS barrel ECAL crystal in η and φ (default photon-merging radius ≈ this).
ECAL_CELL_SIZE: float = 0.0174

FloatArray = npt.NDArray[np.floating[Any]]


def merge_photons(particles: npt.ArrayLike, is_photon: npt.ArrayLike, *, radius: float = 0.02) -> FloatArray:
    """Merge photons closer than ``radius`` in (η, φ); return objects sorted by pT.

    Args:
        particles: ``(K, 3)`` array of (pT [GeV], η, φ) of one jet's constituents.
        is_photon: ``(K,)`` boolean mask of photons.
        radius: Merging distance in (η, φ); 0 disables merging.

    Returns:
        ``(K', 3)`` array of reconstructed objects, ``K' <= K``, in descending pT.

    Raises:
        ValueError: For mismatched shapes, non-finite input or a negative radius.
    """
    p = np.asarray(particles, dtype=np.float64)
    photon = np.asarray(is_photon, dtype=bool)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"particles must have shape (K, 3) = (pT, eta, phi), got {p.shape}")
    if photon.shape != (p.shape[0],):
        raise ValueError(f"is_photon must have shape ({p.shape[0]},), got {photon.shape}")
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be a finite non-negative number, got {radius}")
    if not np.all(np.isfinite(p)):
        raise ValueError("particles contain NaN/inf")
    if radius == 0 or photon.sum() < 2:
        return p[np.argsort(-p[:, 0], kind="stable")]
    gammas = p[photon]
    gammas = gammas[np.argsort(-gammas[:, 0], kind="stable")]
    n = len(gammas)
    # all pairwise distances at once; the greedy loop only runs when some pair is close
    d2 = (gammas[:, None, 1] - gammas[None, :, 1]) ** 2 + wrap_phi(
        gammas[:, None, 2] - gammas[None, :, 2]
    ) ** 2
    close = d2 < radius**2
    cluster = np.arange(n)
    if close.sum() > n:  # an off-diagonal pair is close
        is_seed = np.zeros(n, dtype=bool)
        for i in range(n):  # hardest first: join the nearest harder seed within the radius
            cand = np.flatnonzero(is_seed[:i] & close[i, :i])
            if len(cand):
                cluster[i] = cand[np.argmin(d2[i, cand])]
            else:
                is_seed[i] = True
    four = four_momenta(gammas)
    keep = np.bincount(cluster, minlength=n) > 0
    px, py, pz = (np.bincount(cluster, weights=four[:, k], minlength=n)[keep] for k in (1, 2, 3))
    pt = np.hypot(px, py)  # the merged object is massless: its energy follows from its momentum
    clusters = np.column_stack([pt, np.arcsinh(pz / pt), np.arctan2(py, px)])
    out = np.concatenate([p[~photon], clusters])
    return out[np.argsort(-out[:, 0], kind="stable")]


def sort_by_pt(constituents: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Constituents ``(N, K, 3)`` re-sorted by descending pT within each jet (padding last).

    Example:
        >>> sort_by_pt(np.array([[[1.0, 0.1, 0.2], [3.0, 0.3, 0.4], [0.0, 0.0, 0.0]]]))[0, :, 0].tolist()
        [3.0, 1.0, 0.0]
    """
    c = np.asarray(constituents, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 3:
        raise ValueError(f"constituents must have shape (N, K, 3), got {c.shape}")
    order = np.argsort(-c[..., 0], axis=1, kind="stable")
    out: npt.NDArray[np.float64] = np.take_along_axis(c, order[..., None], axis=1)
    return out
