r"""Simulators for simulation-based inference: a prior plus a vectorised ``simulate`` function.

A :class:`Simulator` bundles what simulation-based inference needs from a model: the
prior :math:`p(\theta)` (a :mod:`torch.distributions` distribution, as sbi expects) and
a function drawing :math:`x \sim p(x \mid \theta)` for a batch of parameter rows with an
explicit NumPy random-number generator, so that every simulation is reproducible from a
seed (Cranmer, Brehmer, Louppe, "The frontier of simulation-based inference",
PNAS 117 (2020) 30055, arXiv:1911.01429).

:func:`run_simulator` calls the function and checks its output (shape, finite values)
with error messages that name the offending rows; :func:`aalearn.inference.sbi.simulate`
runs it in reproducible, cached, parallel chunks.

Example:
    >>> import numpy as np, torch
    >>> prior = torch.distributions.Independent(torch.distributions.Uniform(-torch.ones(1), torch.ones(1)), 1)
    >>> sim = Simulator("shift", prior, lambda th, rng: th + rng.normal(size=th.shape), ("mu",), ("x",))
    >>> run_simulator(sim, np.zeros((3, 1)), np.random.default_rng(0)).shape
    (3, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Simulator", "check_prior_dimension", "run_simulator", "sample_prior"]

FloatArray = npt.NDArray[np.float64]


def _names(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"Simulator.{field} must be a sequence of strings, got {value!r}")
    names = tuple(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"Simulator.{field} must be a non-empty sequence of non-empty strings, got {names!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"Simulator.{field} contains duplicates: {names!r}")
    return names


def check_prior_dimension(prior: Any, dim: int, *, what: str = "the parameters") -> None:
    """Check that ``prior`` is a torch distribution over vectors of length ``dim``.

    Args:
        prior: A :class:`torch.distributions.Distribution` (for example sbi's ``BoxUniform``).
        dim: Required event dimension.
        what: What ``dim`` counts, for the error message.

    Raises:
        TypeError: If ``prior`` is not a torch distribution.
        ValueError: If its batch shape is not ``()`` or its event shape is not ``(dim,)``.

    Example:
        >>> import torch
        >>> check_prior_dimension(torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2)), 2)
    """
    import torch

    if not isinstance(prior, torch.distributions.Distribution):
        raise TypeError(
            f"the prior must be a torch.distributions.Distribution (e.g. sbi.utils.BoxUniform), "
            f"got {type(prior).__name__}"
        )
    if tuple(prior.batch_shape) != ():
        raise ValueError(
            f"the prior must have batch_shape () and event_shape ({dim},), got batch_shape "
            f"{tuple(prior.batch_shape)}; wrap it as torch.distributions.Independent(prior, 1)"
        )
    if tuple(prior.event_shape) != (dim,):
        raise ValueError(
            f"the prior has event_shape {tuple(prior.event_shape)} but {what} have dimension {dim}; "
            f"give a prior over vectors of length {dim} (event_shape ({dim},))"
        )


@dataclass(frozen=True)
class Simulator:
    """A stochastic simulator with its prior, as needed for simulation-based inference.

    Attributes:
        name: Short identifier (used in cache keys and reports).
        prior: Prior over the parameters: a torch distribution with batch shape ``()``
            and event shape ``(D,)`` (sbi's ``BoxUniform`` and
            ``MultivariateNormal`` are fine).
        simulate: ``simulate(theta, rng) -> x``: maps parameter rows ``theta`` (n, D)
            to observations ``x`` (n, X), drawing all randomness from the NumPy
            generator ``rng``. It must be vectorised over rows and, for parallel runs,
            serialisable (a module-level function or a closure cloudpickle can ship).
        parameter_names: Names of the D parameters.
        observable_names: Names of the X observables.
        chunk_size: Simulations per chunk (unit of caching, seeding and parallel work).
        version: Bump it when ``simulate`` changes: it is part of the cache key.

    Raises:
        TypeError: For a prior that is not a torch distribution or a non-callable
            ``simulate``.
        ValueError: For a prior whose dimension differs from ``len(parameter_names)``,
            empty or duplicated names, or a non-positive ``chunk_size``.

    Example:
        >>> import torch
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> noisy = lambda th, rng: th + rng.normal(size=th.shape)
        >>> sim = Simulator("gauss", prior, noisy, ("a", "b"), ("xa", "xb"))
        >>> sim.dim_parameters, sim.dim_observables
        (2, 2)
    """

    name: str
    prior: torch.distributions.Distribution
    simulate: Callable[[FloatArray, np.random.Generator], FloatArray]
    parameter_names: tuple[str, ...]
    observable_names: tuple[str, ...]
    chunk_size: int = 1000
    version: str = "1"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Simulator.name must be a non-empty string, got {self.name!r}")
        if not callable(self.simulate):
            raise TypeError(f"Simulator.simulate must be callable (theta, rng) -> x, got {self.simulate!r}")
        object.__setattr__(self, "parameter_names", _names(self.parameter_names, "parameter_names"))
        object.__setattr__(self, "observable_names", _names(self.observable_names, "observable_names"))
        check_prior_dimension(
            self.prior, len(self.parameter_names), what=f"the {len(self.parameter_names)} parameter names"
        )
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int | np.integer):
            raise ValueError(f"Simulator.chunk_size must be a positive integer, got {self.chunk_size!r}")
        if self.chunk_size < 1:
            raise ValueError(f"Simulator.chunk_size must be a positive integer, got {self.chunk_size}")
        object.__setattr__(self, "chunk_size", int(self.chunk_size))
        if not isinstance(self.version, str):
            raise TypeError(f"Simulator.version must be a string, got {self.version!r}")

    @property
    def dim_parameters(self) -> int:
        """Number of parameters D."""
        return len(self.parameter_names)

    @property
    def dim_observables(self) -> int:
        """Number of observables X."""
        return len(self.observable_names)


def sample_prior(prior: Any, n: int, seed: int) -> FloatArray:
    """Draw ``n`` parameter rows from a torch prior, reproducibly and without touching torch's global RNG.

    Args:
        prior: A torch distribution with event shape ``(D,)``.
        n: Number of draws.
        seed: Seed (a fresh torch generator state is forked for the draw).

    Returns:
        ``(n, D)`` float64 array.

    Example:
        >>> import torch
        >>> p = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> bool((sample_prior(p, 4, 1) == sample_prior(p, 4, 1)).all())
        True
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        theta = prior.sample((int(n),))
    return np.asarray(theta.detach().cpu().numpy(), dtype=np.float64).reshape(int(n), -1)


def _rows(mask: npt.NDArray[np.bool_], offset: int) -> str:
    rows = np.flatnonzero(mask) + offset
    preview = ", ".join(str(int(r)) for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return f"{len(rows)} row(s): {preview}{more}"


def run_simulator(
    sim: Simulator, theta: FloatArray, rng: np.random.Generator, *, offset: int = 0
) -> FloatArray:
    """Call ``sim.simulate`` on ``theta`` and validate its output.

    Args:
        sim: The simulator.
        theta: ``(n, D)`` parameter rows.
        rng: Generator handed to ``sim.simulate``.
        offset: Index of ``theta[0]`` in the whole run (error messages give run-wide
            row indices).

    Returns:
        ``(n, X)`` float64 observations.

    Raises:
        ValueError: If the output does not have shape ``(n, X)`` or contains NaN or
            infinite values (naming the offending rows and their parameters).
        TypeError: If the output is not numeric.

    Example:
        >>> import torch
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
        >>> bad = Simulator("bad", prior, lambda th, rng: np.log(th), ("a",), ("x",))
        >>> run_simulator(bad, np.array([[1.0], [-1.0]]), np.random.default_rng(0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: simulator 'bad' returned NaN/inf in 1 row(s): 1 (first offending parameters: [-1.0]); ...
    """
    n = theta.shape[0]
    out = sim.simulate(theta, rng)
    try:
        import torch

        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a core dependency of the sbi extra
        pass
    x = np.asarray(out)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)):
        raise TypeError(f"simulator {sim.name!r} returned non-numeric output of dtype {x.dtype}")
    want = (n, sim.dim_observables)
    if x.ndim == 1 and sim.dim_observables == 1 and x.shape[0] == n:
        x = x.reshape(n, 1)
    if x.shape != want:
        rows = f"rows {offset}..{offset + n - 1}" if n else "no rows"
        raise ValueError(
            f"simulator {sim.name!r} returned shape {x.shape} for {n} parameter rows ({rows}); expected "
            f"{want}: one row of {sim.dim_observables} observables {sim.observable_names} per parameter row"
        )
    x = x.astype(np.float64, copy=False)
    bad: npt.NDArray[np.bool_] = np.asarray(~np.isfinite(x).all(axis=1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"simulator {sim.name!r} returned NaN/inf in {_rows(bad, offset)} (first offending parameters: "
            f"{theta[first].tolist()}); fix the simulator or restrict the prior to where it is defined"
        )
    return x
