r"""Jet-level features on which a surrogate is validated.

Kansal et al. (arXiv:2211.10295) compute FPD and KPD on hand-engineered physics
features rather than on a network's activations: 36 energy-flow polynomials (EFPs,
Komiske, Metodiev, Thaler, arXiv:1712.07124) in jetnet. aalearn offers three sets
(:func:`feature_matrix`):

* ``"jet"`` (default) -- documented physics observables, computed from the 87-column
  challenge layout; named columns that are not constituent columns (``Const...``) are
  taken as jet-level observables already and passed through (for example a surrogate
  trained on jet observables such as ``mass``, ``sum_pt``),
  each interpretable, so that a failing check names a region of phase space:

  ==================  =====  ================================================================
  name                unit   definition (constituents :math:`i` with :math:`p_{T,i} > 0`)
  ==================  =====  ================================================================
  ``jet_pt``          GeV    :math:`|\sum_i \vec p_{T,i}|` of the massless constituents
  ``jet_mass``        GeV    invariant mass of the constituent sum
                             (:func:`aalearn.physics.kinematics.constituent_mass`)
  ``multiplicity``    1      number of constituents
  ``width``           1      :math:`\sum_i p_{T,i}\Delta R_{i,J} / \sum_i p_{T,i}` (girth) about
                             the :math:`p_T`-weighted centroid :math:`J` in :math:`(\eta, \phi)`
  ``lead_pt_frac``    1      :math:`p_{T,1}/\sum_i p_{T,i}` (hardest constituent)
  ``sublead_pt_frac`` 1      :math:`p_{T,2}/\sum_i p_{T,i}`
  ``tau21``           1      :math:`\tau_2/\tau_1` (0 when :math:`\tau_1 = 0`)
  ``tau32``           1      :math:`\tau_3/\tau_2` (0 when :math:`\tau_2 = 0`)
  ==================  =====  ================================================================

  N-subjettiness (Thaler & Van Tilburg, arXiv:1011.2268) with :math:`\beta = 1`,
  :math:`\tau_N = \sum_i p_{T,i}\min_{a\le N}\Delta R_{i,a} / (R_0\sum_i p_{T,i})`,
  :math:`R_0 = 0.8`, uses the :math:`N` hardest constituents as axes -- a cheap,
  vectorised approximation of the exclusive-:math:`k_T` axes (the ratios keep their
  two-/three-prong discrimination, the absolute values differ). Angles are the
  challenge's relative coordinates (translated and rotated by the TopoDNN
  preprocessing), so ``jet_pt`` and ``jet_mass`` are close to, not equal to, the
  original jet's (see :func:`aalearn.physics.preprocessing.features_mass`).
* ``"efp"`` -- the 36 EFPs with degree :math:`d \le 4` as in jetnet
  (``energyflow.EFPSet(("d<=", 4), measure="hadr", beta=1, normed=None, coords="ptyphim")``),
  constituent :math:`p_T` relative to the jet's :math:`\sum p_T` (JetNet's :math:`p_T^\mathrm{rel}`);
  needs the optional ``energyflow`` package.
* ``"all"`` -- the columns as given (for example a user's own jet observables).

Example:
    >>> import numpy as np
    >>> c = np.zeros((1, 30, 3)); c[0, :3] = [[300.0, 0.0, 0.0], [100.0, 0.0, -0.2], [50.0, 0.1, 0.1]]
    >>> f = constituent_jet_features(c)
    >>> dict(zip(JET_FEATURES, f[0].round(3)))["multiplicity"], round(float(f[0, 4]), 3)
    (np.float64(3.0), 0.667)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.validation import check_array
from aalearn.data.dataset import JetDataset
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, is_challenge_layout
from aalearn.physics.jets import JET_FEATURES, constituent_jet_features
from aalearn.physics.jets import ratio as _ratio
from aalearn.physics.preprocessing import features_to_constituents

__all__ = [
    "FEATURE_KINDS",
    "JET_FEATURES",
    "JET_FEATURE_UNITS",
    "constituent_jet_features",
    "efp_features",
    "feature_matrix",
    "jet_features",
]

FloatArray = npt.NDArray[np.float64]

#: Units of :data:`JET_FEATURES`.
JET_FEATURE_UNITS: dict[str, str] = {
    "jet_pt": "GeV",
    "jet_mass": "GeV",
    "multiplicity": "1",
    "width": "1",
    "lead_pt_frac": "1",
    "sublead_pt_frac": "1",
    "tau21": "1",
    "tau32": "1",
}
#: Accepted values of ``kind`` in :func:`feature_matrix`.
FEATURE_KINDS: tuple[str, ...] = ("jet", "efp", "all")


def jet_features(features: npt.ArrayLike, *, pt_scale: float | None = None) -> FloatArray:
    """The ``"jet"`` features from the 87-column challenge layout.

    Args:
        features: ``(N, 87)`` challenge features (pT in units of ``pt_scale`` GeV).
        pt_scale: GeV per pT unit (default the challenge's 1679.1593 GeV).

    Returns:
        ``(N, 8)`` features (:data:`JET_FEATURES`), pT and mass in GeV.

    Example:
        >>> from aalearn.physics import challenge_feature_names
        >>> x = np.zeros((2, len(challenge_feature_names()))); x[:, 0] = 0.1; x[:, 1] = 0.05; x[:, 2] = -0.1
        >>> jet_features(x)[:, 2].tolist()  # two constituents each
        [2.0, 2.0]
    """
    x = check_array(features, name="features", ndim=2, dtype=np.float64)
    scale = CHALLENGE_PT_SCALE_GEV if pt_scale is None else float(pt_scale)
    return constituent_jet_features(features_to_constituents(x, pt_scale=scale))


def efp_features(features: npt.ArrayLike, *, n_jobs: int = 1) -> FloatArray:
    """The 36 energy-flow polynomials with degree <= 4 (jetnet's FPD/KPD features) from the challenge layout.

    Args:
        features: ``(N, 87)`` challenge features.
        n_jobs: Processes used by energyflow.

    Returns:
        ``(N, 36)`` EFPs.

    Raises:
        ImportError: When energyflow is not installed.
    """
    ef = require("energyflow", purpose="energy-flow polynomial features (features='efp')")
    x = check_array(features, name="features", ndim=2, dtype=np.float64)
    c = np.asarray(features_to_constituents(x, pt_scale=1.0), dtype=np.float64)
    sum_pt = c[..., 0].sum(axis=1, keepdims=True)
    c[..., 0] = _ratio(c[..., 0], np.broadcast_to(sum_pt, c[..., 0].shape))
    efpset = ef.EFPSet(("d<=", 4), measure="hadr", beta=1, normed=None, coords="ptyphim")
    out: FloatArray = np.asarray(efpset.batch_compute(c, n_jobs), dtype=np.float64)
    return out


def feature_matrix(
    data: Any, *, kind: str = "jet", feature_names: Sequence[str] | None = None
) -> tuple[FloatArray, tuple[str, ...]]:
    """The features a surrogate is validated on, from a :class:`~aalearn.data.JetDataset` or an array.

    Args:
        data: A :class:`~aalearn.data.JetDataset` or an ``(N, F)`` array.
        kind: ``"jet"``, ``"efp"`` or ``"all"`` (module docstring).
        feature_names: Column names of an array (a dataset carries its own).

    Returns:
        ``(features, names)``.

    Raises:
        ValueError: For an unknown kind, NaN/inf, or ``"jet"``/``"efp"`` on columns that are
            neither the challenge layout nor (for ``"jet"``) named jet-level columns.

    Example:
        >>> x, names = feature_matrix(np.ones((3, 2)), kind="all", feature_names=["a", "b"])
        >>> names
        ('a', 'b')
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"features must be one of {', '.join(map(repr, FEATURE_KINDS))}, got {kind!r}")
    if isinstance(data, JetDataset):
        arr = check_array(
            data.features, name=f"features of {data.source or 'dataset'}", ndim=2, dtype=np.float64
        )
        names: tuple[str, ...] | None = tuple(data.feature_names)
    else:
        arr = check_array(data, name="features", ndim=2, dtype=np.float64)
        names = None if feature_names is None else tuple(str(n) for n in feature_names)
    if names is not None and len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} feature names for {arr.shape[1]} feature columns")
    if kind == "all":
        return arr, names or tuple(f"feature_{j}" for j in range(arr.shape[1]))
    if kind == "jet" and names is not None and not any(n.startswith("Const") for n in names):
        return arr, names  # already jet-level observables (these, or a surrogate's own, e.g. mass, sum_pt)
    if not is_challenge_layout(arr.shape[1], names):
        shown = (
            ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") if names else f"{arr.shape[1]} unnamed"
        )
        raise ValueError(
            f"features={kind!r} needs the 87-column challenge layout (ConstPT_0, ConstPT_1, ConstPhi_1, ...)"
            + (" or named jet-level columns (no 'Const...' constituent columns)" if kind == "jet" else "")
            + f"; got {arr.shape[1]} columns ({shown}): use features='all' to compare the columns as they are"
        )
    if kind == "jet":
        return jet_features(arr), JET_FEATURES
    efps = efp_features(arr)
    return efps, tuple(f"efp_{j}" for j in range(efps.shape[1]))
