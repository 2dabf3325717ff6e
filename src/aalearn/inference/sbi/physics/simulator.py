"""The Pythia top-jet simulator: parameters and priors, per-jet observables, blocks of jets.

:data:`PARAMETERS` are the inferable Pythia parameters with their uniform priors;
:func:`simulate_jets` runs Pythia once at one parameter point and returns the per-jet
observables (:data:`OBSERVABLES`, computed by :func:`aalearn.physics.jets.substructure_observables`);
:func:`pythia_top_simulator` wraps it as an :class:`aalearn.inference.sbi.Simulator` whose
rows are blocks of ``jets_per_simulation`` jets, and :func:`split_jets` turns blocks into
per-jet training pairs.

Example:
    >>> from aalearn.inference.sbi.physics.simulator import PARAMETERS, OBSERVABLES
    >>> PARAMETERS["top_mass"].setting_string(172.5)
    '6:m0 = 172.5'
    >>> len(OBSERVABLES)
    5
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.paths import cache_dir
from aalearn.data.generate import MAX_PYTHIA_SEED, GeneratorConfig, generate_chunk
from aalearn.inference.sbi.simulator import Simulator
from aalearn.physics.jets import SUBSTRUCTURE_OBSERVABLES as OBSERVABLES
from aalearn.physics.jets import substructure_observables

__all__ = [
    "OBSERVABLES",
    "PARAMETERS",
    "ParameterSpec",
    "default_cache_dir",
    "pythia_top_simulator",
    "simulate_jets",
    "split_jets",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ParameterSpec:
    """A Pythia parameter that can be inferred, with its uniform prior.

    Attributes:
        name: aalearn's name (``"top_mass"``).
        setting: Pythia setting key (``"6:m0"``).
        low: Lower edge of the uniform prior.
        high: Upper edge of the uniform prior.
        default: Value used when the parameter is not inferred (Pythia's Monash default).
        unit: Unit for labels (``"GeV"`` or ``""``).
        label: Axis label.
    """

    name: str
    setting: str
    low: float
    high: float
    default: float
    unit: str
    label: str

    def setting_string(self, value: float) -> str:
        """``"Key = value"`` for Pythia's ``readString``.

        Example:
            >>> PARAMETERS["top_mass"].setting_string(172.5)
            '6:m0 = 172.5'
        """
        return f"{self.setting} = {float(value)!r}"


#: Parameters that can be inferred and their priors (uniform on [low, high]).
PARAMETERS: dict[str, ParameterSpec] = {
    "top_mass": ParameterSpec("top_mass", "6:m0", 165.0, 180.0, 173.0, "GeV", r"$m_t$ [GeV]"),
    "alpha_s_fsr": ParameterSpec(
        "alpha_s_fsr", "TimeShower:alphaSvalue", 0.10, 0.14, 0.1365, "", r"$\alpha_s^{\rm FSR}$"
    ),
}

_N_OBS = len(OBSERVABLES)


# --------------------------------------------------------------------------- simulator


def _check_parameters(parameters: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(parameters, str):
        parameters = tuple(p.strip() for p in parameters.split(",") if p.strip())
    names = tuple(parameters)
    if not names or len(set(names)) != len(names) or any(p not in PARAMETERS for p in names):
        raise ValueError(
            f"parameters must be distinct names among {', '.join(PARAMETERS)} (e.g. 'top_mass' or "
            f"'top_mass,alpha_s_fsr'), got {list(names)}"
        )
    return names


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_theta(theta: npt.ArrayLike, parameters: tuple[str, ...]) -> FloatArray:
    t = np.asarray(theta, dtype=np.float64)
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2 or t.shape[1] != len(parameters):
        raise ValueError(
            f"theta must have shape (n, {len(parameters)}) for the parameters {list(parameters)}, "
            f"got {np.asarray(theta).shape}"
        )
    for d, name in enumerate(parameters):
        spec = PARAMETERS[name]
        bad = np.flatnonzero(~np.isfinite(t[:, d]) | (t[:, d] < spec.low) | (t[:, d] > spec.high))
        if bad.size:
            raise ValueError(
                f"{name} must lie in the prior range [{spec.low}, {spec.high}]; rows {bad[:10].tolist()} "
                f"do not (e.g. {t[bad[0], d]!r})"
            )
    return t


def simulate_jets(
    theta: npt.ArrayLike,
    n_jets: int,
    seed: int,
    *,
    parameters: Sequence[str] = ("top_mass",),
    generator: GeneratorConfig | None = None,
    dequantize: np.random.Generator | None = None,
) -> FloatArray:
    """Generate ``n_jets`` top jets with one Pythia initialisation at parameter value ``theta``.

    Args:
        theta: ``(D,)`` values of ``parameters`` (inside their priors).
        n_jets: Accepted jets to produce.
        seed: Seed of the Pythia run (non-negative integer; the chunk seed is
            :func:`aalearn.data.generate.chunk_seed(seed, 0) <aalearn.data.generate.chunk_seed>`).
        parameters: Names in :data:`PARAMETERS`; the others keep their defaults.
        generator: Base generator configuration (default: top jets, MPI on); its
            ``extra_settings`` are kept and the parameter settings appended.
        dequantize: Generator of the uniform [0, 1) noise added to the multiplicity
            (``None``: no noise, integer multiplicities).

    Returns:
        ``(n_jets, 5)`` observables (:data:`OBSERVABLES`).

    Raises:
        ValueError: For out-of-prior parameters or invalid arguments.

    Example:
        >>> x = simulate_jets([172.5], 5, seed=1)  # doctest: +SKIP
        >>> x.shape  # doctest: +SKIP
        (5, 5)
    """
    names = _check_parameters(parameters)
    t = _check_theta(theta, names)
    if len(t) != 1:
        raise ValueError(f"simulate_jets takes one parameter point, got {len(t)} rows")
    n_jets = _positive_int("n_jets", n_jets)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    base = generator if generator is not None else GeneratorConfig(process="top")
    if not isinstance(base, GeneratorConfig):
        raise TypeError(f"generator must be a GeneratorConfig, got {type(base).__name__}")
    settings = tuple(PARAMETERS[name].setting_string(v) for name, v in zip(names, t[0], strict=True))
    config = GeneratorConfig.from_dict(
        {**base.to_dict(), "extra_settings": (*base.extra_settings, *settings)}
    )
    out = generate_chunk(config, int(seed), 0, n_jets, all_constituents=True)
    x = substructure_observables(
        out["jets"], out["all_constituents"], out["all_constituents_offsets"], r0=config.jet_radius
    )
    if dequantize is not None:
        x[:, 2] += dequantize.random(n_jets)
    return x


def _simulate_blocks(
    theta: npt.NDArray[Any],
    rng: np.random.Generator,
    *,
    parameters: tuple[str, ...],
    jets_per_simulation: int,
    generator_dict: Mapping[str, Any],
) -> FloatArray:
    """The ``Simulator.simulate`` function: one Pythia run of ``jets_per_simulation`` jets per row."""
    generator = GeneratorConfig.from_dict(generator_dict)
    t = np.asarray(theta, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != len(parameters):
        raise ValueError(f"theta must have shape (n, {len(parameters)}), got {t.shape}")
    out = np.empty((len(t), jets_per_simulation * _N_OBS), dtype=np.float64)
    for i, row in enumerate(t):
        seed = int(rng.integers(0, MAX_PYTHIA_SEED))
        x = simulate_jets(
            row, jets_per_simulation, seed, parameters=parameters, generator=generator, dequantize=rng
        )
        out[i] = x.reshape(-1)
    return out


def _settings_hash(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def pythia_top_simulator(
    parameters: Sequence[str] | str = ("top_mass",),
    *,
    jets_per_simulation: int = 50,
    generator: GeneratorConfig | None = None,
    chunk_size: int = 4,
) -> Simulator:
    r"""The Pythia top-jet simulator for :mod:`aalearn.inference.sbi`.

    One simulation (row) draws nothing itself: it runs Pythia once at the row's
    :math:`\theta` (one initialisation, about 0.8 CPU-s) and returns the observables of
    ``jets_per_simulation`` accepted leading jets, flattened to
    ``(jets_per_simulation * 5,)`` (jet-major: ``x.reshape(-1, 5)`` gives the jets). The
    prior is the product of the uniform priors of :data:`PARAMETERS`.

    Args:
        parameters: Inferred parameters (names in :data:`PARAMETERS`, or a comma-separated string).
        jets_per_simulation: Jets per Pythia run (per :math:`\theta`).
        generator: Base generator configuration (default ``GeneratorConfig(process="top")``).
        chunk_size: Simulations per cached chunk (the unit of parallel work and of resume).

    Returns:
        An :class:`aalearn.inference.sbi.Simulator`; its ``name`` encodes all settings, so
        caches of different settings never mix.

    Raises:
        ValueError: For unknown parameters or invalid sizes.

    Example:
        >>> sim = pythia_top_simulator("top_mass", jets_per_simulation=10)  # doctest: +SKIP
        >>> sim.parameter_names, len(sim.observable_names)  # doctest: +SKIP
        (('top_mass',), 50)
    """
    torch = require("torch", purpose="the prior of the Pythia simulator")
    names = _check_parameters(parameters)
    jets_per_simulation = _positive_int("jets_per_simulation", jets_per_simulation)
    chunk_size = _positive_int("chunk_size", chunk_size)
    base = generator if generator is not None else GeneratorConfig(process="top")
    if not isinstance(base, GeneratorConfig):
        raise TypeError(f"generator must be a GeneratorConfig, got {type(base).__name__}")
    if base.process != "top":
        raise ValueError(f"the physics simulator needs top jets (process='top'), got {base.process!r}")
    low = torch.tensor([PARAMETERS[n].low for n in names], dtype=torch.float32)
    high = torch.tensor([PARAMETERS[n].high for n in names], dtype=torch.float32)
    prior = torch.distributions.Independent(torch.distributions.Uniform(low, high), 1)
    generator_dict = base.to_dict()
    key = _settings_hash(
        {"parameters": names, "priors": [asdict(PARAMETERS[n]) for n in names], "generator": generator_dict}
    )
    observable_names = tuple(f"jet{j}_{o}" for j in range(jets_per_simulation) for o in OBSERVABLES)
    return Simulator(
        name=f"pythia-top-{'-'.join(names)}-{jets_per_simulation}jets-{key}",
        prior=prior,
        simulate=functools.partial(
            _simulate_blocks,
            parameters=names,
            jets_per_simulation=jets_per_simulation,
            generator_dict=generator_dict,
        ),
        parameter_names=names,
        observable_names=observable_names,
        chunk_size=chunk_size,
    )


def split_jets(theta: npt.ArrayLike, x: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    r"""Per-jet training pairs from blocks: ``(n, D), (n, B*5)`` → ``(n*B, D), (n*B, 5)``.

    Every jet of a block is paired with the block's :math:`\theta`, so the pairs are draws
    from :math:`p(\theta) p(x_j|\theta)`.

    Example:
        >>> t, xj = split_jets(np.array([[170.0], [175.0]]), np.arange(20.0).reshape(2, 10))
        >>> t[:, 0].tolist(), xj.shape
        ([170.0, 170.0, 175.0, 175.0], (4, 5))
    """
    t = np.asarray(theta, dtype=np.float64)
    xb = np.asarray(x, dtype=np.float64)
    if t.ndim != 2 or xb.ndim != 2 or len(t) != len(xb) or xb.shape[1] % _N_OBS:
        raise ValueError(
            f"theta (n, D) and x (n, B*{_N_OBS}) must have the same number of rows, "
            f"got {t.shape} and {xb.shape}"
        )
    b = xb.shape[1] // _N_OBS
    return np.repeat(t, b, axis=0), xb.reshape(len(xb) * b, _N_OBS)


def default_cache_dir() -> Path:
    """Where the physics simulations are cached: ``<aalearn cache>/sbi-physics`` (``~/.cache/aalearn/...``).

    Example:
        >>> default_cache_dir().name
        'sbi-physics'
    """
    return cache_dir() / "sbi-physics"
