r"""Feature specifications in physical units.

Every feature aalearn handles carries a name, a unit, physical bounds, its periodicity
and an experimental uncertainty :math:`\sigma` from the :class:`ResolutionModel`. Later
attacks express their budgets in units of these :math:`\sigma`, and constraints are
derived from the specification, never from the attack.

The challenge layout (ECML-PKDD 2025 "Colliding with Adversaries") has 87 columns:
``ConstPT_i, ConstEta_i, ConstPhi_i`` for the 30 leading constituents, without
``ConstEta_0``, ``ConstPhi_0`` and ``ConstEta_1``, which the TopoDNN preprocessing fixes at
zero (Pearkes et al., arXiv:1704.02124). pT is expressed in units of
:data:`CHALLENGE_PT_SCALE_GEV` = 1679.1593 GeV, the scale hard-coded in the TopoDNN
preprocessing; η and φ are relative to the leading constituent after the rotation.

Example:
    >>> fs = challenge_features()
    >>> len(fs), fs.names[:4]
    (87, ('ConstPT_0', 'ConstPT_1', 'ConstPhi_1', 'ConstPT_2'))
    >>> fs.index("ConstPhi_1")
    2
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.physics.resolution import ResolutionModel, default_resolution

__all__ = [
    "CHALLENGE_PT_SCALE_GEV",
    "DROPPED_FEATURES",
    "N_CHALLENGE_FEATURES",
    "N_CONSTITUENTS",
    "FeatureSet",
    "FeatureSpec",
    "challenge_feature_names",
    "challenge_features",
    "is_challenge_layout",
]

#: pT unit of the challenge files and of the TopoDNN preprocessing, in GeV.
CHALLENGE_PT_SCALE_GEV: float = 1679.1593
#: Number of constituents kept per jet.
N_CONSTITUENTS: int = 30
#: Columns that the preprocessing fixes at zero and the challenge layout omits.
DROPPED_FEATURES: tuple[str, ...] = ("ConstEta_0", "ConstPhi_0", "ConstEta_1")
#: Number of columns of the challenge layout (3 × 30 constituents less the 3 dropped angles).
N_CHALLENGE_FEATURES: int = 3 * N_CONSTITUENTS - len(DROPPED_FEATURES)
#: Largest physical pT of a constituent at the 13 TeV LHC (half the beam energy), GeV.
_MAX_PT_GEV = 6500.0

Kind = Literal["pt", "eta", "phi"]
FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature in physical units.

    Attributes:
        name: Column name, for example ``"ConstPT_3"``.
        kind: ``"pt"``, ``"eta"`` or ``"phi"``.
        constituent: Index of the constituent (0 = leading).
        unit: Human-readable unit, for example ``"1679.1593 GeV"`` or ``"rad"``.
        lower: Physical lower bound (inclusive).
        upper: Physical upper bound (inclusive; exclusive for periodic features).
        period: Period for periodic features (2π for φ), else ``None``.
        scale_gev: GeV per feature unit for pT features (1 for pT in GeV), else ``None``.
    """

    name: str
    kind: Kind
    constituent: int
    unit: str
    lower: float
    upper: float
    period: float | None = None
    scale_gev: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("pt", "eta", "phi"):
            raise ValueError(f"feature kind must be 'pt', 'eta' or 'phi', got {self.kind!r}")
        if not self.lower < self.upper:
            raise ValueError(f"feature {self.name}: lower bound {self.lower} must be below {self.upper}")
        if self.kind == "pt" and (self.scale_gev is None or self.scale_gev <= 0):
            raise ValueError(f"pT feature {self.name} needs a positive scale_gev")

    @property
    def periodic(self) -> bool:
        """Whether the feature is periodic (φ)."""
        return self.period is not None


@dataclass(frozen=True)
class FeatureSet(Sequence[FeatureSpec]):
    """An ordered collection of :class:`FeatureSpec` with vectorised helpers.

    Attributes:
        specs: The features, in column order.
        resolution: Resolution model that defines each feature's σ.
    """

    specs: tuple[FeatureSpec, ...]
    resolution: ResolutionModel = field(default_factory=ResolutionModel)

    def __post_init__(self) -> None:
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate feature names: {dup}")
        pt_cols = {s.constituent: i for i, s in enumerate(self.specs) if s.kind == "pt"}
        for s in self.specs:
            if s.kind != "pt" and s.constituent not in pt_cols:
                raise ValueError(
                    f"angular feature {s.name} has no pT feature for constituent {s.constituent}"
                )

    # Sequence protocol
    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i: int) -> FeatureSpec:  # type: ignore[override]
        return self.specs[i]

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(s.name for s in self.specs)

    def index(self, name: str, start: int = 0, stop: int | None = None) -> int:
        """Column index of ``name``; ``ValueError`` listing close names if unknown."""
        try:
            return self.names.index(name)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown feature name {name!r}{hint} (known: {self.names[0]} ... {self.names[-1]})"
            ) from None

    def indices(self, names: Sequence[str]) -> list[int]:
        """Column indices of several names."""
        return [self.index(n) for n in names]

    @property
    def lower(self) -> FloatArray:
        """Lower physical bounds, shape ``(F,)``."""
        return np.array([s.lower for s in self.specs], dtype=np.float64)

    @property
    def upper(self) -> FloatArray:
        """Upper physical bounds, shape ``(F,)``."""
        return np.array([s.upper for s in self.specs], dtype=np.float64)

    @property
    def periodic_mask(self) -> npt.NDArray[np.bool_]:
        """Which features are periodic, shape ``(F,)``."""
        return np.array([s.periodic for s in self.specs], dtype=bool)

    def kind_mask(self, kind: Kind) -> npt.NDArray[np.bool_]:
        """Which features are of ``kind`` (``"pt"``, ``"eta"``, ``"phi"``)."""
        return np.array([s.kind == kind for s in self.specs], dtype=bool)

    def pt_column_of(self) -> npt.NDArray[np.int64]:
        """For every feature, the column holding its constituent's pT."""
        pt_cols = {s.constituent: i for i, s in enumerate(self.specs) if s.kind == "pt"}
        return np.array([pt_cols[s.constituent] for s in self.specs], dtype=np.int64)

    def sigma(self, x: npt.ArrayLike) -> FloatArray:
        """Per-entry experimental uncertainty σ in feature units, shape like ``x``.

        pT features get the absolute pT resolution at the constituent's pT (converted to
        the feature's unit); η and φ features the angular resolution at the pT of the
        same constituent.

        Args:
            x: Features of shape ``(N, F)`` in this set's units.

        Returns:
            σ with shape ``(N, F)``; strictly positive.
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self):
            raise ValueError(f"features must have shape (N, {len(self)}), got {arr.shape}")
        scales = np.array([self._pt_scale_of(s) for s in self.specs])
        pt_gev = arr[:, self.pt_column_of()] * scales
        is_pt = self.kind_mask("pt")
        out: FloatArray = np.where(
            is_pt,
            self.resolution.sigma_pt(pt_gev) / scales,
            self.resolution.sigma_angle(pt_gev),
        )
        return out

    def _pt_scale_of(self, spec: FeatureSpec) -> float:
        pt_spec = self.specs[self.pt_column_of()[self.specs.index(spec)]]
        assert pt_spec.scale_gev is not None  # guaranteed by FeatureSpec.__post_init__
        return pt_spec.scale_gev

    def with_resolution(self, resolution: ResolutionModel) -> FeatureSet:
        """Copy of this set with another resolution model."""
        return FeatureSet(self.specs, resolution)

    def out_of_bounds(self, x: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Boolean mask ``(N, F)`` of entries outside the physical bounds."""
        arr = np.asarray(x, dtype=np.float64)
        upper_ok = np.where(self.periodic_mask, arr < self.upper, arr <= self.upper)
        out: npt.NDArray[np.bool_] = ~((arr >= self.lower) & upper_ok)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (names, units, bounds, resolution)."""
        return {
            "features": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "constituent": s.constituent,
                    "unit": s.unit,
                    "lower": s.lower,
                    "upper": s.upper,
                    "period": s.period,
                    "scale_gev": s.scale_gev,
                }
                for s in self.specs
            ],
            "resolution": self.resolution.to_dict(),
        }


def challenge_feature_names(n_constituents: int = N_CONSTITUENTS) -> list[str]:
    """Column names of the challenge layout, in the challenge's order.

    Example:
        >>> names = challenge_feature_names()
        >>> len(names), names[-1]
        (87, 'ConstPhi_29')
    """
    names: list[str] = []
    for i in range(n_constituents):
        for kind in ("PT", "Eta", "Phi"):
            name = f"Const{kind}_{i}"
            if name not in DROPPED_FEATURES:
                names.append(name)
    return names


def is_challenge_layout(n_features: int, feature_names: Sequence[str] | None = None) -> bool:
    """Whether data with ``n_features`` columns (and these names, when known) are in the challenge layout.

    The one place where "87 columns" is recognised: with names, they must equal
    :func:`challenge_feature_names`; without, the column count decides.

    Example:
        >>> is_challenge_layout(87), is_challenge_layout(5)
        (True, False)
    """
    if feature_names is not None:
        return list(feature_names) == challenge_feature_names()
    return int(n_features) == N_CHALLENGE_FEATURES


def challenge_features(
    resolution: ResolutionModel | None = None,
    *,
    pt_scale_gev: float = CHALLENGE_PT_SCALE_GEV,
    jet_radius: float = 0.8,
    n_constituents: int = N_CONSTITUENTS,
) -> FeatureSet:
    """The 87-feature challenge layout as a :class:`FeatureSet`.

    Bounds: pT in ``[0, 6500 GeV / pt_scale_gev]`` (a constituent cannot carry more than
    the beam energy); relative η in ``[-4R, 4R]`` (two constituents of an ideal cone of
    radius R are at most 2R apart, but anti-kt jets can hold soft constituents beyond R
    and the detector smears soft constituents further: 0.3 % of aalearn's jets have a
    relative η beyond 2R, none beyond 4R); relative φ in ``[-π, π)`` and periodic.

    Args:
        resolution: Resolution model defining σ (default:
            :func:`aalearn.physics.resolution.default_resolution`, i.e. :class:`ResolutionModel`
            unless the environment variable ``AALEARN_RESOLUTION`` names another one, for
            example ``cms-challenge`` or a file written by ``aalearn calibrate``).
        pt_scale_gev: GeV per pT unit (1679.1593 in the challenge files; 1 for GeV).
        jet_radius: Jet radius R used for the η bound.
        n_constituents: Number of constituents (30 in the challenge).

    Returns:
        The feature set.
    """
    if pt_scale_gev <= 0:
        raise ValueError(f"pt_scale_gev must be positive, got {pt_scale_gev}")
    if jet_radius <= 0:
        raise ValueError(f"jet_radius must be positive, got {jet_radius}")
    specs: list[FeatureSpec] = []
    pt_unit = "GeV" if pt_scale_gev == 1.0 else f"{pt_scale_gev:g} GeV"
    for name in challenge_feature_names(n_constituents):
        kind_str, idx_str = name[len("Const") :].split("_")
        idx = int(idx_str)
        if kind_str == "PT":
            specs.append(
                FeatureSpec(name, "pt", idx, pt_unit, 0.0, _MAX_PT_GEV / pt_scale_gev, None, pt_scale_gev)
            )
        elif kind_str == "Eta":
            specs.append(FeatureSpec(name, "eta", idx, "1", -4.0 * jet_radius, 4.0 * jet_radius))
        else:
            specs.append(FeatureSpec(name, "phi", idx, "rad", -np.pi, np.pi, 2.0 * np.pi))
    return FeatureSet(tuple(specs), resolution if resolution is not None else default_resolution())
