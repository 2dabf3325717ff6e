r"""Detector-resolution model for jet constituents.

aalearn has no full detector simulation. Instead every constituent is smeared with an
effective particle-flow resolution that is documented here and can be overridden. The
same model gives the experimental uncertainty :math:`\sigma` of every feature, the unit
in which later attacks measure perturbations.

Relative transverse-momentum resolution (calorimeter-like form, rising at low pT):

.. math::

    \frac{\sigma_{p_T}}{p_T} = \sqrt{\left(\frac{a}{\sqrt{p_T}}\right)^2
        + \left(\frac{b}{p_T}\right)^2 + c^2}

with the stochastic term :math:`a` (GeV^1/2), the noise term :math:`b` (GeV) and the
constant term :math:`c`. Defaults :math:`a = 0.5\,\sqrt{\mathrm{GeV}}`,
:math:`b = 0.2` GeV, :math:`c = 0.03` give about 56 % at 1 GeV, 16 % at 10 GeV and 6 %
at 100 GeV: a mixture of track-like charged and calorimeter-like neutral hadrons in
the spirit of CMS particle flow (CMS Collaboration, JINST 12 (2017) P10003,
arXiv:1706.04965), deliberately simple.

Angular resolution, the same in :math:`\eta` and :math:`\phi` (radians):

.. math::

    \sigma_\eta = \sigma_\phi = \sqrt{\left(\frac{d}{\sqrt{p_T}}\right)^2 + e^2}

with :math:`d = 0.02\,\sqrt{\mathrm{GeV}}` and :math:`e = 0.002`: about 0.02 at 1 GeV and
0.003 at 100 GeV. Below ``pt_floor`` (0.1 GeV, also used for zero-padded constituents)
the resolutions are evaluated at ``pt_floor`` so that :math:`\sigma` stays finite and
positive.

Smearing: :math:`p_T` is multiplied by a log-normal factor with unit mean and width
:math:`\sigma_{p_T}/p_T` (positive by construction; Gaussian for small widths), and
:math:`\eta`, :math:`\phi` receive Gaussian shifts, :math:`\phi` wrapped into
:math:`[-\pi, \pi)`. Zero-padded constituents stay zero.

**Named resolutions and resolution files.** :data:`RESOLUTIONS` holds the named models:
``"default"`` (the parameters above, the default of every σ in aalearn) and
``"cms-challenge"`` (:meth:`ResolutionModel.cms_challenge`, fitted by ``aalearn calibrate``
to the even rows of the challenge's clean file). :func:`load_resolution` accepts a name, a
JSON file written by ``aalearn calibrate`` (or any JSON object of the parameters) or a
model. Setting the environment variable ``AALEARN_RESOLUTION`` to a name or file makes
that model the default of :func:`default_resolution`, and with it the σ of
:func:`aalearn.physics.challenge_features` and of every attack budget that does not pass
its own feature specification; unset, nothing changes.

Example:
    >>> from aalearn.physics import ResolutionModel
    >>> res = ResolutionModel()
    >>> round(float(res.relative_pt([100.0])[0]), 4)
    0.0583
    >>> load_resolution("cms-challenge") == ResolutionModel.cms_challenge()
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import read_json_file
from aalearn.physics.kinematics import wrap_phi

__all__ = [
    "RESOLUTIONS",
    "RESOLUTION_ENV",
    "ResolutionModel",
    "default_resolution",
    "load_resolution",
]

#: Environment variable naming the default resolution (a name of :data:`RESOLUTIONS` or a JSON file).
RESOLUTION_ENV: str = "AALEARN_RESOLUTION"

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class ResolutionModel:
    """Effective constituent resolution (see the module docstring for the formulas).

    Attributes:
        pt_stochastic: Stochastic term ``a`` of the relative pT resolution, in GeV^1/2.
        pt_noise: Noise term ``b`` of the relative pT resolution, in GeV.
        pt_constant: Constant term ``c`` of the relative pT resolution.
        angle_stochastic: Stochastic term ``d`` of the angular resolution, rad·GeV^1/2.
        angle_constant: Constant term ``e`` of the angular resolution, in rad.
        pt_floor: pT (GeV) below which the resolutions are evaluated at ``pt_floor``.
    """

    pt_stochastic: float = 0.5
    pt_noise: float = 0.2
    pt_constant: float = 0.03
    angle_stochastic: float = 0.02
    angle_constant: float = 0.002
    pt_floor: float = 0.1

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"ResolutionModel.{key} must be a finite non-negative number, got {value}")
        if self.pt_floor <= 0:
            raise ValueError(f"ResolutionModel.pt_floor must be positive, got {self.pt_floor}")

    def relative_pt(self, pt_gev: npt.ArrayLike) -> FloatArray:
        """Relative pT resolution σ(pT)/pT for constituent pT in GeV."""
        pt = np.maximum(np.asarray(pt_gev, dtype=np.float64), self.pt_floor)
        out: FloatArray = np.sqrt(
            (self.pt_stochastic**2) / pt + (self.pt_noise / pt) ** 2 + self.pt_constant**2
        )
        return out

    def sigma_pt(self, pt_gev: npt.ArrayLike) -> FloatArray:
        """Absolute pT resolution in GeV (evaluated at ``pt_floor`` for softer constituents)."""
        pt = np.maximum(np.asarray(pt_gev, dtype=np.float64), self.pt_floor)
        out: FloatArray = pt * self.relative_pt(pt)
        return out

    def sigma_angle(self, pt_gev: npt.ArrayLike) -> FloatArray:
        """Angular resolution (η and φ, in rad) for constituent pT in GeV."""
        pt = np.maximum(np.asarray(pt_gev, dtype=np.float64), self.pt_floor)
        out: FloatArray = np.sqrt(self.angle_stochastic**2 / pt + self.angle_constant**2)
        return out

    def smear(self, constituents: npt.ArrayLike, rng: np.random.Generator) -> FloatArray:
        """Smear constituents ``(..., 3)`` = (pT [GeV], η, φ) with this resolution.

        Zero-padded constituents (pT = 0) are left untouched.

        Args:
            constituents: Array of shape ``(..., 3)``.
            rng: NumPy random generator (seed it for reproducibility).

        Returns:
            Smeared copy with the same shape, float64.
        """
        c = np.array(constituents, dtype=np.float64, copy=True)
        if c.shape[-1] != 3:
            raise ValueError(f"constituents must have a last axis of size 3 (pT, eta, phi), got {c.shape}")
        pt = c[..., 0]
        real = pt > 0
        z = rng.standard_normal(c.shape)
        rel = self.relative_pt(pt)
        # log-normal with unit mean: exp(s z - s^2/2) keeps pT > 0
        s = np.sqrt(np.log1p(rel**2))
        factor = np.exp(s * z[..., 0] - 0.5 * s**2)
        sig_a = self.sigma_angle(pt)
        c[..., 0] = np.where(real, pt * factor, 0.0)
        c[..., 1] = np.where(real, c[..., 1] + sig_a * z[..., 1], 0.0)
        c[..., 2] = np.where(real, wrap_phi(c[..., 2] + sig_a * z[..., 2]), 0.0)
        return c

    def to_dict(self) -> dict[str, float]:
        """Parameters as a plain dictionary (for metadata)."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolutionModel:
        """Model from a parameter mapping, or from an ``aalearn calibrate`` result (key ``resolution``).

        Missing parameters keep their defaults; unknown keys are an error.

        Raises:
            ValueError: For unknown keys or invalid values.

        Example:
            >>> ResolutionModel.from_dict({"resolution": {"angle_constant": 0.01}}).angle_constant
            0.01
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a resolution must be a JSON object of parameters, got {type(data).__name__}")
        params = data.get("resolution", data)
        if not isinstance(params, Mapping):
            raise ValueError("the 'resolution' entry of a resolution file must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(
                f"unknown resolution parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        kwargs: dict[str, float] = {}
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"resolution parameter {key} must be a number, got {value!r}")
            kwargs[key] = float(value)
        return cls(**kwargs)

    @classmethod
    def cms_challenge(cls) -> ResolutionModel:
        """The resolution fitted to the CMS jets of the ECML-PKDD 2025 challenge (even rows).

        Fitted by :func:`aalearn.apps.calibrate.calibrate` (``aalearn calibrate``, the
        procedure is documented there) to the 2500 even rows of ``Clean_Test_Public.feather``
        with 1250 top and 1250 W jets of the ``cms-challenge`` preset (seed 101), by
        ``benchmarks/bench_calibration.py --n-max 1250 --bootstrap 4 --max-evaluations 150``.
        Fit ± bootstrap standard deviation (statistical only): ``angle_stochastic`` =
        0.243 ± 0.006 rad·GeV^1/2, ``angle_constant`` = 0.0000 ± 0.0003 rad,
        ``pt_stochastic`` = 0.012 ± 0.003 GeV^1/2, ``pt_constant`` = 0.0002 ± 0.0006
        (``pt_noise`` = 0.2 GeV and ``pt_floor`` fixed); the objective fell from 4.79 to
        2.14. The angular resolution is large for soft constituents (0.38 rad at 0.4 GeV,
        0.077 at 10 GeV, 0.024 at 100 GeV) and the pT resolution small (the challenge's
        constituents are far more often in pT order: 10-15 % of adjacent pairs out of order,
        against 34 % with the default model). These are *effective* parameters: they also
        absorb what the generator does not model (particle-flow merging of nearby neutral
        hadrons, pile-up, the CMS tune), so they are not CMS's measured resolutions.
        """
        return cls(**_CMS_CHALLENGE)


#: Fitted parameters of :meth:`ResolutionModel.cms_challenge` (see its docstring).
_CMS_CHALLENGE: dict[str, float] = {
    "pt_stochastic": 0.012,
    "pt_noise": 0.2,
    "pt_constant": 0.0002,
    "angle_stochastic": 0.243,
    "angle_constant": 0.0,
    "pt_floor": 0.1,
}

#: Named resolution models (``--resolution NAME``).
RESOLUTIONS: dict[str, ResolutionModel] = {
    "default": ResolutionModel(),
    "cms-challenge": ResolutionModel.cms_challenge(),
}


def load_resolution(
    spec: ResolutionModel | str | os.PathLike[str] | Mapping[str, Any] | None,
) -> ResolutionModel:
    """A resolution model from a model, a name in :data:`RESOLUTIONS`, a JSON file or a mapping.

    ``None`` gives :func:`default_resolution`.

    Raises:
        ValueError: For an unknown name, a file that is not a resolution JSON, or bad values.
        FileNotFoundError: For a path that does not exist.

    Example:
        >>> load_resolution("default") == ResolutionModel()
        True
    """
    if spec is None:
        return default_resolution()
    if isinstance(spec, ResolutionModel):
        return spec
    if isinstance(spec, Mapping):
        return ResolutionModel.from_dict(spec)
    text = os.fspath(spec)
    if text in RESOLUTIONS:
        return RESOLUTIONS[text]
    path = Path(text)
    if not path.suffix and not path.exists():
        raise ValueError(
            f"unknown resolution {text!r}; known resolutions: {', '.join(RESOLUTIONS)} (or a JSON file)"
        )
    data = read_json_file(path, what="resolution")
    try:
        return ResolutionModel.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def default_resolution() -> ResolutionModel:
    """The default resolution: :data:`RESOLUTION_ENV` when set, else :class:`ResolutionModel` ().

    Example:
        >>> import os
        >>> (default_resolution() == ResolutionModel()) == (not os.environ.get("AALEARN_RESOLUTION"))
        True
    """
    spec = os.environ.get(RESOLUTION_ENV, "").strip()
    if not spec:
        return ResolutionModel()
    return load_resolution(spec)
