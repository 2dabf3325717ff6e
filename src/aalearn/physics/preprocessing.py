r"""TopoDNN-style jet preprocessing into the challenge's 87-column layout.

Steps (Pearkes, Fedorko, Lister, Gay, arXiv:1704.02124; as used by the ECML-PKDD 2025
challenge "Colliding with Adversaries"):

1. **Translate** so that the leading constituent sits at the origin:
   :math:`\eta' = \eta - \eta_0`, :math:`\phi' = \mathrm{wrap}(\phi - \phi_0)`.
2. **Rotate** in the :math:`(\eta', \phi')` plane about the origin so that the second
   constituent lands on :math:`\eta'' = 0` with :math:`\phi'' \le 0`.
3. Optionally **flip** :math:`\eta'' \to -\eta''` when :math:`\sum_i p_{T,i}\,\eta''_i < 0`.
   The public challenge files do not appear to apply this flip (only 49.6 % of the jets
   have a positive sum), so it is off by default.
4. **Scale** pT by ``1 / pt_scale`` (1679.1593 GeV in TopoDNN and the challenge).
5. **Drop** :math:`\eta_0, \phi_0, \eta_1`, which are zero by construction, leaving
   87 columns ``ConstPT_0, ConstPT_1, ConstPhi_1, ConstPT_2, ConstEta_2, ...``.

Zero-padded constituents (pT = 0) keep η = φ = 0. The constituents are expected in
descending pT order; the order is kept as given (the challenge files are ordered before
detector effects and are therefore only approximately ordered).

Example:
    >>> import numpy as np
    >>> c = np.array([[[300.0, 0.5, 1.0], [100.0, 0.6, 1.1], [50.0, 0.4, 0.9]]])
    >>> x = topodnn_preprocess(c, n_constituents=3)
    >>> x.shape
    (1, 6)
    >>> bool(x[0, 2] <= 0)   # phi of the second constituent
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, N_CONSTITUENTS, challenge_feature_names
from aalearn.physics.kinematics import constituent_mass, wrap_phi

__all__ = ["features_mass", "features_to_constituents", "pad_constituents", "topodnn_preprocess"]

FloatArray = npt.NDArray[np.floating[Any]]


def pad_constituents(constituents: npt.ArrayLike, n_constituents: int = N_CONSTITUENTS) -> FloatArray:
    """Truncate or zero-pad ``(N, K, 3)`` constituents to ``(N, n_constituents, 3)``."""
    c = np.asarray(constituents, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 3:
        raise ValueError(f"constituents must have shape (N, K, 3) = (pT, eta, phi), got {c.shape}")
    out = np.zeros((c.shape[0], n_constituents, 3), dtype=np.float64)
    k = min(n_constituents, c.shape[1])
    out[:, :k] = c[:, :k]
    return out


def _keep_columns(n_constituents: int) -> npt.NDArray[np.int64]:
    """Flat indices (into the (K*3) layout) of the columns kept by the challenge layout."""
    full = [f"Const{k}_{i}" for i in range(n_constituents) for k in ("PT", "Eta", "Phi")]
    keep = set(challenge_feature_names(n_constituents))
    return np.array([j for j, name in enumerate(full) if name in keep], dtype=np.int64)


def topodnn_preprocess(
    constituents: npt.ArrayLike,
    *,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
    flip_eta: bool = False,
    n_constituents: int = N_CONSTITUENTS,
) -> FloatArray:
    """Apply the TopoDNN preprocessing and return the challenge's feature layout.

    Args:
        constituents: ``(N, K, 3)`` array of (pT [GeV], η, φ), leading first; padded
            constituents have pT = 0. ``K`` is truncated or padded to ``n_constituents``.
        pt_scale: GeV per output pT unit.
        flip_eta: Flip η so that the pT-weighted η sum is non-negative.
        n_constituents: Number of constituents to keep.

    Returns:
        ``(N, 3 * n_constituents - 3)`` float64 features (87 for 30 constituents).

    Raises:
        ValueError: For a wrong shape, non-finite values, negative pT or a
            non-positive ``pt_scale``.
    """
    if pt_scale <= 0 or not np.isfinite(pt_scale):
        raise ValueError(f"pt_scale must be positive, got {pt_scale}")
    if n_constituents < 2:
        raise ValueError(f"n_constituents must be at least 2, got {n_constituents}")
    c = pad_constituents(constituents, n_constituents)
    if not np.all(np.isfinite(c)):
        raise ValueError("constituents contain NaN/inf")
    if np.any(c[..., 0] < 0):
        raise ValueError("constituents contain negative pT")
    pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
    real = pt > 0
    # 1. translate
    eta_t = np.where(real, eta - eta[:, :1], 0.0)
    phi_t = np.where(real, wrap_phi(phi - phi[:, :1]), 0.0)
    # 2. rotate: angle psi of constituent 1 in the (eta, phi) plane, target -pi/2
    psi = np.arctan2(phi_t[:, 1], eta_t[:, 1])
    has_second = (eta_t[:, 1] != 0) | (phi_t[:, 1] != 0)
    theta = np.where(has_second, -0.5 * np.pi - psi, 0.0)[:, None]
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    eta_r = eta_t * cos_t - phi_t * sin_t
    phi_r = eta_t * sin_t + phi_t * cos_t
    eta_r[:, :2] = 0.0
    eta_r[:, 0] = 0.0
    phi_r[:, 0] = 0.0
    phi_r[:, 1] = np.minimum(phi_r[:, 1], 0.0)  # exact zero-crossing rounding
    # 3. optional flip
    if flip_eta:
        sign = np.where((pt * eta_r).sum(axis=1) < 0, -1.0, 1.0)[:, None]
        eta_r = eta_r * sign
    eta_r = np.where(real, eta_r, 0.0)
    phi_r = np.where(real, phi_r, 0.0)
    # 4. scale and 5. drop fixed columns
    full = np.stack([pt / pt_scale, eta_r, phi_r], axis=-1).reshape(c.shape[0], -1)
    out: FloatArray = full[:, _keep_columns(n_constituents)]
    return out


def features_to_constituents(
    features: npt.ArrayLike,
    *,
    pt_scale: float = 1.0,
    n_constituents: int = N_CONSTITUENTS,
) -> FloatArray:
    """Inverse of the column dropping: ``(N, 87)`` features → ``(N, 30, 3)`` constituents.

    The three fixed columns are re-inserted as zeros and pT is multiplied by
    ``pt_scale`` (pass :data:`CHALLENGE_PT_SCALE_GEV` to get GeV). The coordinates stay
    relative (translated and rotated).
    """
    x = np.asarray(features, dtype=np.float64)
    n_feat = 3 * n_constituents - 3
    if x.ndim != 2 or x.shape[1] != n_feat:
        raise ValueError(f"features must have shape (N, {n_feat}), got {x.shape}")
    full = np.zeros((x.shape[0], 3 * n_constituents), dtype=np.float64)
    full[:, _keep_columns(n_constituents)] = x
    c = full.reshape(x.shape[0], n_constituents, 3)
    c[..., 0] *= pt_scale
    return c


def features_mass(features: npt.ArrayLike, *, pt_scale: float = 1.0) -> FloatArray:
    """Jet mass from the 87 challenge features (multiply by ``pt_scale`` for GeV).

    The TopoDNN preprocessing translates and rotates the constituents in the (η, φ)
    plane; the mass computed from the preprocessed features is therefore close to,
    but not exactly, the mass of the original constituents.

    Example:
        >>> c = np.array([[[100.0, 0.0, 0.0], [100.0, 0.0, 0.1]] + [[0.0, 0.0, 0.0]] * 28])
        >>> x = topodnn_preprocess(c, pt_scale=1.0)
        >>> round(float(features_mass(x)[0]), 3)
        9.996
    """
    out: FloatArray = constituent_mass(features_to_constituents(features, pt_scale=pt_scale))
    return out
