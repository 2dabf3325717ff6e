r"""The sbibm tasks ``two_moons``, ``slcp`` and ``gaussian_linear`` as aalearn simulators.

Priors and simulators are re-implemented with NumPy/torch from sbibm's task definitions
(``sbibm/tasks/<task>/task.py``, sbibm 1.1.0; Lueckmann, Boelts, Greenberg, Goncalves,
Macke, "Benchmarking Simulation-Based Inference", AISTATS 2021, PMLR 130:343,
arXiv:2101.04653), because sbibm's task classes import pyro, whose pins conflict with
aalearn's stack. The ten observations, true parameters and reference posterior samples
(10,000 per observation) are read directly from the files sbibm ships
(``files/num_observation_k/{observation.csv, true_parameters.csv,
reference_posterior_samples.csv.bz2}``); the sbibm package is located but never
imported.

* **two_moons** (Greenberg et al., arXiv:1905.07488): θ ∈ [−1, 1]², uniform prior;
  a ~ U(−π/2, π/2), r ~ N(0.1, 0.01²), p = (r cos a + 0.25, r sin a),
  x = p + (−|θ₁ + θ₂|/√2, (−θ₁ + θ₂)/√2).
* **slcp** (Papamakarios, Sterratt, Macke, arXiv:1805.07226): θ ∈ [−3, 3]⁵, uniform prior;
  four i.i.d. 2-D Gaussian points with mean (θ₁, θ₂), standard deviations θ₃², θ₄²,
  correlation tanh θ₅ (plus 10⁻⁶ on the variances), flattened to x ∈ R⁸.
* **gaussian_linear**: θ ∈ R¹⁰, prior N(0, 0.1 I), x | θ ~ N(θ, 0.1 I).

:data:`PUBLISHED_C2ST` holds sbibm's published C2ST accuracies (mean and standard
deviation over the ten observations) for NPE, NLE and NRE at 10³, 10⁴ and 10⁵
simulations, from ``main_paper.csv`` of github.com/sbi-benchmark/results
(``benchmarking_sbi/results``), as transcribed in the project notes (uncertainty §1.4).

Example:
    >>> task = sbibm_task("two_moons")
    >>> task.simulator.dim_parameters, task.observation(1).shape
    (2, (2,))
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aalearn.inference.sbi.simulator import Simulator

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "PUBLISHED_C2ST",
    "PUBLISHED_SOURCE",
    "SBIBM_NPE_SETTINGS",
    "SBIBM_SETTINGS",
    "SBIBM_TASKS",
    "SbibmTask",
    "gaussian_linear_simulate",
    "sbibm_files_dir",
    "sbibm_task",
    "slcp_simulate",
    "two_moons_simulate",
]

FloatArray = npt.NDArray[np.float64]

#: The sbibm tasks aalearn supports.
SBIBM_TASKS: tuple[str, ...] = ("two_moons", "slcp", "gaussian_linear")

#: Where the published numbers come from.
PUBLISHED_SOURCE = (
    "Lueckmann et al., 'Benchmarking Simulation-Based Inference', AISTATS 2021 (PMLR 130:343), "
    "arXiv:2101.04653; main_paper.csv of github.com/sbi-benchmark/results (benchmarking_sbi/results)"
)

#: sbibm's NPE configuration behind the published numbers (``config/algorithm/npe.yaml`` of
#: github.com/sbi-benchmark/results, ``benchmarking_sbi``): a neural spline flow with sbi's
#: default size (50 hidden features, 5 transforms, z-scored θ and x) and a training batch
#: of 10,000 (capped by sbi at the training-set size, i.e. full-batch training), one round.
SBIBM_NPE_SETTINGS: dict[str, Any] = {"density_estimator": "nsf", "training_batch_size": 10_000}

#: sbibm's configuration per single-round method (``sbibm/algorithms/sbi/snpe.py``,
#: ``snle.py``, ``snre.py`` with ``num_rounds=1``): NPE a neural spline flow, NLE a masked
#: autoregressive flow, NRE (and here BNRE) a residual classifier; 50 hidden features and
#: a training batch of 10,000 for all. The defaults of ``aalearn sbi validate`` and
#: ``aalearn sbi coverage``. (sbibm's NLE/NRE MCMC settings -- 100 chains, thinning 10 --
#: are not copied: sbi's defaults are used.)
SBIBM_SETTINGS: dict[str, dict[str, Any]] = {
    "npe": SBIBM_NPE_SETTINGS,
    "nle": {"density_estimator": "maf", "training_batch_size": 10_000},
    "nre": {"density_estimator": "resnet", "training_batch_size": 10_000},
    "bnre": {"density_estimator": "resnet", "training_batch_size": 10_000},
}

#: sbibm's published C2ST (mean, standard deviation over the 10 observations or None):
#: ``PUBLISHED_C2ST[task][method][simulations]``. Single-round methods only.
PUBLISHED_C2ST: dict[str, dict[str, dict[int, tuple[float, float | None]]]] = {
    "two_moons": {
        "npe": {1_000: (0.725, None), 10_000: (0.606, 0.039), 100_000: (0.542, None)},
        "nle": {1_000: (0.773, None), 10_000: (0.713, 0.088), 100_000: (0.668, None)},
        "nre": {1_000: (0.822, None), 10_000: (0.761, 0.029), 100_000: (0.629, None)},
    },
    "slcp": {
        "npe": {1_000: (0.975, None), 10_000: (0.901, 0.047), 100_000: (0.831, None)},
        "nle": {1_000: (0.946, None), 10_000: (0.771, 0.070), 100_000: (0.699, None)},
        "nre": {1_000: (0.972, None), 10_000: (0.947, 0.022), 100_000: (0.919, None)},
    },
    "gaussian_linear": {
        "npe": {1_000: (0.694, None), 10_000: (0.552, 0.032), 100_000: (0.506, None)},
        "nle": {1_000: (0.650, None), 10_000: (0.555, 0.034), 100_000: (0.515, None)},
        "nre": {1_000: (0.672, None), 10_000: (0.560, 0.020), 100_000: (0.536, None)},
    },
}


# --------------------------------------------------------------------------- simulators
def two_moons_simulate(theta: FloatArray, rng: np.random.Generator) -> FloatArray:
    """sbibm's two-moons simulator (``tasks/two_moons/task.py``), vectorised in NumPy.

    Example:
        >>> two_moons_simulate(np.zeros((3, 2)), np.random.default_rng(0)).shape
        (3, 2)
    """
    n = theta.shape[0]
    a = rng.uniform(-math.pi / 2.0, math.pi / 2.0, n)
    r = rng.normal(0.1, 0.01, n)
    p = np.stack([np.cos(a) * r + 0.25, np.sin(a) * r], axis=1)
    ang = -math.pi / 4.0
    c, s = math.cos(ang), math.sin(ang)
    z0 = c * theta[:, 0] - s * theta[:, 1]
    z1 = s * theta[:, 0] + c * theta[:, 1]
    return p + np.stack([-np.abs(z0), z1], axis=1)


def slcp_simulate(theta: FloatArray, rng: np.random.Generator) -> FloatArray:
    """sbibm's SLCP simulator (``tasks/slcp/task.py``, without distractors), vectorised in NumPy.

    Example:
        >>> slcp_simulate(np.ones((3, 5)), np.random.default_rng(0)).shape
        (3, 8)
    """
    n = theta.shape[0]
    s1 = theta[:, 2] ** 2
    s2 = theta[:, 3] ** 2
    rho = np.tanh(theta[:, 4])
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0] = s1**2 + 1e-6
    cov[:, 0, 1] = cov[:, 1, 0] = rho * s1 * s2
    cov[:, 1, 1] = s2**2 + 1e-6
    chol = np.linalg.cholesky(cov)  # batched, (n, 2, 2)
    z = rng.standard_normal((n, 4, 2))
    points = theta[:, None, :2] + np.einsum("nij,nkj->nki", chol, z)
    return points.reshape(n, 8)


def gaussian_linear_simulate(theta: FloatArray, rng: np.random.Generator) -> FloatArray:
    """sbibm's gaussian_linear simulator: x ~ N(θ, 0.1 I).

    Example:
        >>> gaussian_linear_simulate(np.zeros((2, 10)), np.random.default_rng(0)).shape
        (2, 10)
    """
    return theta + math.sqrt(0.1) * rng.standard_normal(theta.shape)


def _box(low: float, high: float, dim: int) -> torch.distributions.Distribution:
    import torch

    return torch.distributions.Independent(
        torch.distributions.Uniform(torch.full((dim,), float(low)), torch.full((dim,), float(high))), 1
    )


def _make_simulator(name: str) -> Simulator:
    import torch

    if name == "two_moons":
        return Simulator(
            "two_moons",
            _box(-1.0, 1.0, 2),
            two_moons_simulate,
            ("theta_1", "theta_2"),
            ("x_1", "x_2"),
        )
    if name == "slcp":
        return Simulator(
            "slcp",
            _box(-3.0, 3.0, 5),
            slcp_simulate,
            tuple(f"theta_{i}" for i in range(1, 6)),
            tuple(f"x_{i}" for i in range(1, 9)),
        )
    if name == "gaussian_linear":
        prior = torch.distributions.MultivariateNormal(torch.zeros(10), covariance_matrix=0.1 * torch.eye(10))
        return Simulator(
            "gaussian_linear",
            prior,
            gaussian_linear_simulate,
            tuple(f"theta_{i}" for i in range(1, 11)),
            tuple(f"x_{i}" for i in range(1, 11)),
        )
    raise ValueError(f"unknown sbibm task {name!r}; choose one of {', '.join(SBIBM_TASKS)}")


# --------------------------------------------------------------------------- files
def sbibm_files_dir(task: str) -> Path:
    """Directory with sbibm's shipped files for ``task`` (found without importing sbibm).

    The environment variable ``AALEARN_SBIBM_TASKS`` may point to a copy of sbibm's
    ``tasks`` directory instead.

    Raises:
        ImportError: If sbibm is not installed (``pip install --no-deps sbibm``).

    Example:
        >>> sbibm_files_dir("slcp").name
        'files'
    """
    env = os.environ.get("AALEARN_SBIBM_TASKS")
    if env:
        root = Path(env)
    else:
        spec = importlib.util.find_spec("sbibm")  # locates the package without executing it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "the sbibm reference posteriors need the sbibm package's data files: "
                'pip install --no-deps "sbibm==1.1.0" (aalearn reads its files and never imports it), '
                "or set AALEARN_SBIBM_TASKS to a copy of its tasks/ directory"
            )
        root = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    path = root / task / "files"
    if not path.is_dir():
        raise FileNotFoundError(f"sbibm's files for task {task!r} were not found at {path}")
    return path


def _read_csv(path: Path) -> FloatArray:
    if not path.is_file():
        raise FileNotFoundError(f"sbibm file {path} is missing")
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)


@dataclass(frozen=True)
class SbibmTask:
    """An sbibm task: the simulator plus its ten observations and reference posteriors.

    Attributes:
        name: Task name (``"two_moons"``, ``"slcp"``, ``"gaussian_linear"``).
        simulator: The task's prior and simulator as a :class:`Simulator`.
        num_observations: Number of shipped observations (10).

    Example:
        >>> t = sbibm_task("gaussian_linear")
        >>> t.reference_samples(1).shape
        (10000, 10)
    """

    name: str
    simulator: Simulator
    num_observations: int = 10

    def _file(self, k: int, filename: str) -> Path:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= self.num_observations:
            raise ValueError(
                f"observation number must be an integer in 1..{self.num_observations}, got {k!r}"
            )
        return sbibm_files_dir(self.name) / f"num_observation_{int(k)}" / filename

    def observation(self, k: int) -> FloatArray:
        """Observation ``k`` (1..10), shape ``(X,)``."""
        return _cached_csv(str(self._file(k, "observation.csv")))[0].copy()

    def true_parameters(self, k: int) -> FloatArray:
        """The parameters that generated observation ``k``, shape ``(D,)``."""
        return _cached_csv(str(self._file(k, "true_parameters.csv")))[0].copy()

    def reference_samples(self, k: int) -> FloatArray:
        """sbibm's 10,000 reference posterior samples for observation ``k``, shape ``(10000, D)``."""
        return _cached_csv(str(self._file(k, "reference_posterior_samples.csv.bz2"))).copy()

    def published_c2st(
        self, method: str = "npe", simulations: int = 10_000
    ) -> tuple[float, float | None] | None:
        """sbibm's published C2ST (mean, sd) of ``method`` at ``simulations`` (``None``: not published)."""
        return PUBLISHED_C2ST.get(self.name, {}).get(method, {}).get(int(simulations))


@functools.lru_cache(maxsize=64)
def _cached_csv(path: str) -> FloatArray:
    return _read_csv(Path(path))


def sbibm_task(name: str) -> SbibmTask:
    """The sbibm task ``name`` (one of :data:`SBIBM_TASKS`).

    Raises:
        ValueError: For an unknown task.

    Example:
        >>> sbibm_task("slcp").simulator.observable_names[:2]
        ('x_1', 'x_2')
    """
    if name not in SBIBM_TASKS:
        raise ValueError(f"unknown sbibm task {name!r}; choose one of {', '.join(SBIBM_TASKS)}")
    return SbibmTask(name=name, simulator=_make_simulator(name))
