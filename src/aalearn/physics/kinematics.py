r"""Kinematics of massless jet constituents given as (pT, η, φ).

Written once for NumPy arrays; the functions broadcast over leading axes. The jet mass of
the challenge's preprocessed features is :func:`aalearn.physics.preprocessing.features_mass`
(it needs the feature layout, which lives above this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["constituent_mass", "four_momenta", "wrap_phi"]

FloatArray = npt.NDArray[np.floating[Any]]


def wrap_phi(phi: npt.ArrayLike) -> FloatArray:
    r"""Wrap azimuthal angles into :math:`[-\pi, \pi)`.

    Example:
        >>> float(wrap_phi(np.pi))
        -3.141592653589793
    """
    p = np.asarray(phi, dtype=np.float64)
    out: FloatArray = np.mod(p + np.pi, 2.0 * np.pi) - np.pi
    return out


def four_momenta(constituents: npt.ArrayLike) -> FloatArray:
    r"""Massless four-momenta (E, px, py, pz) from ``(..., 3)`` = (pT, η, φ).

    :math:`p_x = p_T\cos\phi`, :math:`p_y = p_T\sin\phi`, :math:`p_z = p_T\sinh\eta`,
    :math:`E = p_T\cosh\eta`.
    """
    c = np.asarray(constituents, dtype=np.float64)
    pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
    return np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def constituent_mass(constituents: npt.ArrayLike) -> FloatArray:
    r"""Invariant mass of the sum of massless constituents ``(N, K, 3)`` → ``(N,)``.

    :math:`m^2 = (\sum E)^2 - |\sum \vec p|^2`, clipped at zero against rounding.
    Zero-padded constituents contribute nothing.

    Example:
        >>> c = np.array([[[100.0, 0.0, 0.0], [100.0, 0.0, 0.1]]])
        >>> round(float(constituent_mass(c)[0]), 3)
        9.996
    """
    p = four_momenta(constituents).sum(axis=-2)
    m2 = p[..., 0] ** 2 - p[..., 1] ** 2 - p[..., 2] ** 2 - p[..., 3] ** 2
    out: FloatArray = np.sqrt(np.clip(m2, 0.0, None))
    return out
