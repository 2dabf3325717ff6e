r"""Feature specifications from a TOML file: bring your own columns to the physics-aware tools.

A feature-specification file tells aalearn, for every column of a data set, its name,
unit, experimental uncertainty :math:`\sigma` (the unit of every attack budget), physical
bounds and periodicity. Two kinds of column exist:

* **tabular** columns give ``sigma`` (absolute, in the column's unit) or
  ``relative_sigma`` (:math:`\sigma = r\,|x|`, floored at ``sigma_floor``), and
  optional ``lower``/``upper`` bounds and ``period``;
* **jet** columns give ``kind = "pt" | "eta" | "phi"`` and ``constituent`` (and
  ``scale_gev`` for pT): their σ comes from the detector resolution model
  (:class:`~aalearn.physics.resolution.ResolutionModel`, parameters in an optional
  ``[resolution]`` table), as in the challenge layout.

A file whose columns are all jet columns becomes a :class:`~aalearn.physics.features.FeatureSet`
(:meth:`FeatureSpecification.feature_set`), so every physics constraint applies; a file
with tabular columns keeps σ and bounds, which the attacks use through an explicit σ and
a box constraint. Mixing both kinds in one file is refused.

Example file::

    [[column]]
    name = "mass"
    unit = "GeV"
    sigma = 2.0
    lower = 0.0

    [[column]]
    name = "angle"
    unit = "rad"
    sigma = 0.01
    lower = -3.141592653589793
    period = 6.283185307179586

Example:
    >>> spec = parse_feature_spec({"column": [
    ...     {"name": "mass", "unit": "GeV", "sigma": 2.0, "lower": 0.0},
    ...     {"name": "angle", "unit": "rad", "sigma": 0.01, "lower": -3.14159, "period": 6.28318}]})
    >>> spec.names, spec.periodic_mask.tolist()
    (('mass', 'angle'), [False, True])
    >>> spec.sigma([[10.0, 0.5]]).tolist()
    [[2.0, 0.01]]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.physics.features import FeatureSet, FeatureSpec
from aalearn.physics.resolution import ResolutionModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ColumnSpec",
    "FeatureSpecification",
    "generic_specification",
    "load_feature_spec",
    "parse_feature_spec",
]

FloatArray = npt.NDArray[np.float64]
_JET_KINDS = ("pt", "eta", "phi")
_KEYS = {
    "name",
    "unit",
    "sigma",
    "relative_sigma",
    "sigma_floor",
    "lower",
    "upper",
    "period",
    "kind",
    "constituent",
    "scale_gev",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a feature specification.

    Attributes:
        name: Column name in the data file.
        unit: Unit, for headers (``"GeV"``, ``"rad"``, ``"1"``).
        sigma: Absolute σ in the column's unit (tabular columns).
        relative_sigma: σ = ``relative_sigma`` · \\|x\\| (tabular columns), floored at ``sigma_floor``.
        sigma_floor: Smallest σ for ``relative_sigma``.
        lower: Lower bound (``-inf``: none).
        upper: Upper bound (``inf``: none; for periodic columns ``lower + period``).
        period: Period of a periodic column, else ``None``.
        kind: ``"pt"``, ``"eta"`` or ``"phi"`` for jet columns, else ``None``.
        constituent: Constituent index of a jet column.
        scale_gev: GeV per unit of a pT column.
    """

    name: str
    unit: str = "1"
    sigma: float | None = None
    relative_sigma: float | None = None
    sigma_floor: float = 0.0
    lower: float = -math.inf
    upper: float = math.inf
    period: float | None = None
    kind: str | None = None
    constituent: int = 0
    scale_gev: float | None = None

    def __post_init__(self) -> None:
        where = f"feature specification, column {self.name!r}"
        for key in ("sigma", "relative_sigma"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {key} must be a finite number > 0, got {value}")
        if self.kind is None:
            if (self.sigma is None) == (self.relative_sigma is None):
                raise ValueError(f"{where}: give exactly one of sigma or relative_sigma (or a jet kind)")
            if self.relative_sigma is not None and not self.sigma_floor > 0:
                raise ValueError(f"{where}: relative_sigma needs sigma_floor > 0, got {self.sigma_floor}")
        elif self.kind not in _JET_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(_JET_KINDS)}, got {self.kind!r}")
        elif self.sigma is not None or self.relative_sigma is not None:
            raise ValueError(
                f"{where}: a jet column ({self.kind}) takes σ from the resolution model; drop sigma"
            )
        if self.period is not None:
            if not (math.isfinite(self.period) and self.period > 0):
                raise ValueError(f"{where}: period must be a finite number > 0, got {self.period}")
            if not math.isfinite(self.lower):
                raise ValueError(f"{where}: a periodic column needs a finite lower bound")
        if not self.lower < self.upper:
            raise ValueError(f"{where}: lower bound {self.lower} must be below upper bound {self.upper}")

    @property
    def upper_bound(self) -> float:
        """The upper bound, ``lower + period`` for periodic columns."""
        if self.period is not None:
            return min(self.upper, self.lower + self.period)
        return self.upper

    @property
    def header(self) -> str:
        """``"name [unit]"`` for tables."""
        return self.name if self.unit in ("", "1") else f"{self.name} [{self.unit}]"


@dataclass(frozen=True)
class FeatureSpecification:
    """The columns of a data set with units, σ, bounds and periodicity.

    Attributes:
        columns: The columns in data order.
        resolution: Resolution model of jet columns.
        source: Where the specification came from (file name or ``"generic"``).
        note: A remark for reports (for example how a generic specification was built).
    """

    columns: tuple[ColumnSpec, ...]
    resolution: ResolutionModel = field(default_factory=ResolutionModel)
    source: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("the feature specification has no columns; add [[column]] tables")
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"the feature specification names columns twice: {dup}")
        kinds = {c.kind is None for c in self.columns}
        if len(kinds) > 1:
            raise ValueError(
                "the feature specification mixes jet columns (kind = pt/eta/phi) and tabular columns "
                "(sigma = ...); use one kind per file"
            )

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names."""
        return tuple(c.name for c in self.columns)

    @property
    def units(self) -> tuple[str, ...]:
        """Column units."""
        return tuple(c.unit for c in self.columns)

    @property
    def is_jet(self) -> bool:
        """Whether all columns are jet columns (the specification is a :class:`FeatureSet`)."""
        return all(c.kind is not None for c in self.columns)

    @property
    def lower(self) -> FloatArray:
        """Lower bounds ``(F,)``."""
        return np.array([c.lower for c in self.columns], dtype=np.float64)

    @property
    def upper(self) -> FloatArray:
        """Upper bounds ``(F,)`` (``lower + period`` for periodic columns)."""
        return np.array([c.upper_bound for c in self.columns], dtype=np.float64)

    @property
    def period(self) -> FloatArray:
        """Periods ``(F,)`` (NaN for non-periodic columns)."""
        return np.array([math.nan if c.period is None else c.period for c in self.columns], dtype=np.float64)

    @property
    def periodic_mask(self) -> npt.NDArray[np.bool_]:
        """Which columns are periodic ``(F,)``."""
        return np.array([c.period is not None for c in self.columns], dtype=bool)

    def feature_set(self) -> FeatureSet | None:
        """The :class:`FeatureSet` of a specification of jet columns, else ``None``."""
        if not self.is_jet:
            return None
        specs = []
        period: float | None
        for c in self.columns:
            lower, upper = c.lower, c.upper_bound
            if c.kind == "phi" and c.period is None:
                lower, upper, period = -math.pi, math.pi, 2 * math.pi
            else:
                period = c.period
            if c.kind == "pt" and not math.isfinite(lower):
                lower = 0.0
            scale = (c.scale_gev or 1.0) if c.kind == "pt" else None
            specs.append(FeatureSpec(c.name, c.kind, c.constituent, c.unit, lower, upper, period, scale))  # type: ignore[arg-type]
        return FeatureSet(tuple(specs), self.resolution)

    def sigma(self, x: npt.ArrayLike) -> FloatArray:
        """Per-entry σ ``(N, F)`` in the columns' units.

        Raises:
            ValueError: If ``x`` does not have one column per specified column.
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self):
            raise ValueError(f"features must have shape (N, {len(self)}), got {arr.shape}")
        fs = self.feature_set()
        if fs is not None:
            return np.asarray(fs.sigma(arr), dtype=np.float64)
        out = np.empty_like(arr)
        for j, c in enumerate(self.columns):
            if c.sigma is not None:
                out[:, j] = c.sigma
            else:
                assert c.relative_sigma is not None  # __post_init__
                out[:, j] = np.maximum(c.relative_sigma * np.abs(arr[:, j]), c.sigma_floor)
        return out

    def check_columns(self, names: Sequence[str], *, data: str = "the data") -> None:
        """Refuse a specification whose columns are not exactly ``names`` (in order).

        Raises:
            ValueError: One line naming the unknown or missing columns.

        Example:
            >>> spec = parse_feature_spec({"column": [{"name": "a", "sigma": 1.0}]})
            >>> spec.check_columns(["b"])  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: the feature specification names columns that are not in the data: ['a'] (...
        """
        names = list(names)
        unknown = [n for n in self.names if n not in names]
        if unknown:
            shown = names if len(names) <= 12 else [*names[:12], "..."]
            raise ValueError(
                f"the feature specification names columns that are not in {data}: {unknown} "
                f"(the data have: {shown})"
            )
        missing = [n for n in names if n not in self.names]
        if missing:
            raise ValueError(
                f"the feature specification does not describe these columns of {data}: {missing}"
            )
        if list(self.names) != names:
            raise ValueError(f"the feature specification lists the columns of {data} in another order")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "source": self.source,
            "note": self.note,
            "columns": [
                {
                    k: v
                    for k, v in vars(c).items()
                    if v is not None and not (isinstance(v, float) and math.isinf(v))
                }
                for c in self.columns
            ],
        }


def parse_feature_spec(document: Mapping[str, Any], *, source: str = "") -> FeatureSpecification:
    """Build a :class:`FeatureSpecification` from a parsed TOML document (``column`` array).

    Raises:
        ValueError: For a missing ``column`` array, unknown keys, σ ≤ 0 or bad bounds.
    """
    where = f"feature specification {source}".strip()
    cols = document.get("column")
    if not isinstance(cols, list) or not cols:
        raise ValueError(f"{where}: no [[column]] tables (each with name, unit, sigma, lower, upper, period)")
    columns = []
    for i, item in enumerate(cols):
        if not isinstance(item, Mapping) or "name" not in item:
            raise ValueError(f"{where}: column {i} needs a name")
        bad = sorted(set(item) - _KEYS)
        if bad:
            raise ValueError(
                f"{where}: column {item['name']!r} has unknown keys {bad} (known: {sorted(_KEYS)})"
            )
        kw: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("name", "unit", "kind"):
                kw[key] = str(value)
            elif key == "constituent":
                kw[key] = int(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(
                        f"{where}: column {item['name']!r}: {key} must be a number, got {value!r}"
                    )
                kw[key] = float(value)
        columns.append(ColumnSpec(**kw))
    res = document.get("resolution", {})
    if not isinstance(res, Mapping):
        raise ValueError(f"{where}: [resolution] must be a table of ResolutionModel parameters")
    try:
        resolution = ResolutionModel(**{str(k): float(v) for k, v in res.items()})
    except TypeError as exc:
        raise ValueError(f"{where}: unknown [resolution] parameter ({exc})") from None
    return FeatureSpecification(tuple(columns), resolution, source=source)


def load_feature_spec(path: str | Path) -> FeatureSpecification:
    """Read a feature-specification TOML file (see the module docstring for the format).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For malformed TOML or an invalid specification (one line).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"feature specification {p} not found")
    try:
        document = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"feature specification {p} is not valid TOML: {exc}") from None
    return parse_feature_spec(document, source=p.name)


def generic_specification(x: npt.ArrayLike, names: Sequence[str]) -> FeatureSpecification:
    """A specification for data without one: σ = each column's standard deviation, bounds = its range.

    Used for non-challenge data audited without ``--features``; the note says so. Constant
    columns get σ = 1 (so that no σ is zero).

    Example:
        >>> spec = generic_specification([[0.0, 1.0], [2.0, 1.0]], ["a", "b"])
        >>> spec.sigma([[0.0, 1.0]]).tolist(), spec.lower.tolist()
        ([[1.0, 1.0]], [0.0, 1.0])
    """
    arr = np.asarray(x, dtype=np.float64)
    std = arr.std(axis=0)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    cols = tuple(
        ColumnSpec(
            str(n),
            sigma=float(s) if s > 0 else 1.0,
            lower=float(a),
            upper=float(b) if b > a else float(a) + 1.0,
        )
        for n, s, a, b in zip(names, std, lo, hi, strict=True)
    )
    note = (
        "no feature specification was given: σ of each column is its standard deviation in the data and "
        "the bounds are its observed range (generic box constraints); give --features SPEC.toml for "
        "physical units, resolutions and bounds"
    )
    return FeatureSpecification(cols, source="generic", note=note)
