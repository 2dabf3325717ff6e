r"""What a jet surrogate learns: the ``"jet"`` and ``"features"`` representations.

A surrogate (:mod:`aalearn.surrogates.models`) learns rows of one of two representations:

* ``"jet"`` (default): five jet-level observables computed from the 87 challenge features
  (constituents in GeV after the TopoDNN preprocessing, so every observable is invariant
  under its translation and rotation):

  - ``jet_mass``, ``jet_pt`` [GeV] and ``width`` (girth) as defined in
    :mod:`aalearn.surrogates.features` (the validation suite's own jet features, so that
    candidate and reference columns match by name);
  - ``e2``: energy-correlation function :math:`e_2^{(1)} = \sum_{i<j} z_i z_j \Delta R_{ij}`
    with :math:`z_i = p_{T,i}/\sum p_T`;
  - ``d2``: :math:`D_2^{(1)} = e_3^{(1)}/(e_2^{(1)})^3` with
    :math:`e_3^{(1)} = \sum_{i<j<k} z_i z_j z_k \Delta R_{ij}\Delta R_{ik}\Delta R_{jk}`
    (Larkoski, Moult, Neill, arXiv:1409.6298), which separates three-prong top jets from
    two-prong W jets.

  All five are positive, unbounded above and smooth, and are modelled in log space, so
  generated values are positive. (The validation suite's other features are less suited
  to a flow: the multiplicity is discrete, the momentum fractions and N-subjettiness
  ratios are bounded with mass piled up at the bound.)
  A 5-D conditional flow trains on 10⁴ jets in well under a minute on 2 CPU cores; this
  is the documented default.
* ``"features"``: the 87 challenge features themselves (pT columns in log space with an
  offset of 10⁻⁵ in units of the 1679 GeV scale, so that zero-padded constituents are
  allowed; η and φ as they are). Slower and, with a few thousand training jets, much
  less accurate; its samples are in the reference's own format (TopoDNN can score them).

Example:
    >>> import numpy as np
    >>> x = np.abs(np.random.default_rng(0).normal(0.01, 0.005, size=(4, 87)))
    >>> jet_observables(x).shape
    (4, 5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.core.validation import check_array
from aalearn.data.dataset import JetDataset
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, challenge_feature_names, is_challenge_layout
from aalearn.physics.jets import energy_correlations
from aalearn.physics.preprocessing import features_to_constituents
from aalearn.surrogates.features import JET_FEATURES, jet_features

__all__ = [
    "FEATURES_LOG_OFFSET",
    "JET_LOG_OFFSET",
    "JET_OBSERVABLES",
    "REPRESENTATIONS",
    "jet_observables",
    "representation_rows",
    "surrogate_kwargs",
]

FloatArray = npt.NDArray[np.float64]

JET_OBSERVABLES: tuple[str, ...] = ("jet_mass", "jet_pt", "width", "e2", "d2")
"""Names of the jet-level observables of the ``"jet"`` representation."""
JET_LOG_OFFSET = 1e-6
"""Offset of the log map of the ``"jet"`` representation (every column in log space)."""
FEATURES_LOG_OFFSET = 1e-5
"""Offset of the log map of the pT columns of the ``"features"`` representation."""
REPRESENTATIONS: tuple[str, ...] = ("jet", "features")
_CHUNK = 4096


def jet_observables(features: npt.ArrayLike, *, pt_scale: float | None = None) -> FloatArray:
    r"""The five jet-level observables of the ``"jet"`` representation from the 87 challenge features.

    ``jet_mass``, ``jet_pt`` and ``width`` are those of
    :func:`aalearn.surrogates.features.jet_features`; ``e2`` and ``d2`` are the
    energy-correlation functions of the module doc.

    Args:
        features: ``(N, 87)`` features in the challenge layout.
        pt_scale: GeV per feature pT unit (default: the challenge's 1679.1593 GeV).

    Returns:
        ``(N, 5)`` float64 columns :data:`JET_OBSERVABLES`.

    Raises:
        ValueError: For another shape or non-finite values.

    Example:
        >>> import numpy as np
        >>> jet_observables(np.full((2, 87), 0.01)).shape
        (2, 5)
    """
    x = check_array(features, name="features", ndim=2, dtype=np.float64)
    if not is_challenge_layout(x.shape[1]):
        raise ValueError(
            f"jet observables need the 87 challenge features (30 constituents), got {x.shape[1]} columns"
        )
    scale = CHALLENGE_PT_SCALE_GEV if pt_scale is None else float(pt_scale)
    base = jet_features(x, pt_scale=scale)
    out = np.empty((x.shape[0], len(JET_OBSERVABLES)), dtype=np.float64)
    for k, name in enumerate(JET_OBSERVABLES[:3]):
        out[:, k] = base[:, JET_FEATURES.index(name)]
    for start in range(0, x.shape[0], _CHUNK):
        c = features_to_constituents(x[start : start + _CHUNK], pt_scale=scale)
        e2, d2 = energy_correlations(c)
        out[start : start + _CHUNK, 3] = e2
        out[start : start + _CHUNK, 4] = d2
    return out


def representation_rows(
    ds: JetDataset, representation: Literal["jet", "features"] = "jet"
) -> tuple[FloatArray, tuple[str, ...]]:
    """Rows of a representation from a dataset, and their column names.

    A dataset already in the ``"jet"`` representation (columns :data:`JET_OBSERVABLES`, for
    example a ``reference.feather`` written by ``aalearn surrogate train``) is used as it is.

    Args:
        ds: Jets in the challenge layout (or, for ``"jet"``, in the jet representation).
        representation: ``"jet"`` or ``"features"``.

    Returns:
        ``(rows, column names)``.

    Raises:
        ValueError: For an unknown representation or a dataset in another layout.

    Example:
        >>> import numpy as np
        >>> ds = JetDataset(np.ones((3, 5), dtype=np.float32), None, JET_OBSERVABLES)
        >>> representation_rows(ds, "jet")[1]
        ('jet_mass', 'jet_pt', 'width', 'e2', 'd2')
    """
    challenge = is_challenge_layout(ds.features.shape[1], ds.feature_names)
    if representation == "jet":
        if ds.feature_names == JET_OBSERVABLES:
            rows = ds.features.astype(np.float64)
        elif challenge:
            rows = jet_observables(ds.features)
        else:
            raise ValueError(
                f"{ds.source}: the 'jet' representation needs the 87 challenge features or the columns "
                f"{list(JET_OBSERVABLES)}; got {list(ds.feature_names)[:6]}..."
            )
        return rows, JET_OBSERVABLES
    if representation == "features":
        if not challenge:
            raise ValueError(f"{ds.source}: the 'features' representation needs the 87 challenge features")
        return ds.features.astype(np.float64), tuple(challenge_feature_names())
    raise ValueError(f"representation must be 'jet' or 'features', got {representation!r}")


def surrogate_kwargs(representation: str, names: Sequence[str], kind: str, flow: str) -> dict[str, Any]:
    """Constructor keywords of a surrogate for a representation (its log-space columns).

    Example:
        >>> surrogate_kwargs("jet", JET_OBSERVABLES, "flow", "nsf")["log_features"]
        [0, 1, 2, 3, 4]
    """
    if representation == "jet":
        kwargs: dict[str, Any] = {"log_features": list(range(len(names))), "log_offset": JET_LOG_OFFSET}
    else:
        kwargs = {
            "log_features": [i for i, n in enumerate(names) if n.startswith("ConstPT")],
            "log_offset": FEATURES_LOG_OFFSET,
        }
    if kind == "flow":
        kwargs["flow"] = flow
    return kwargs
