"""Simulation-based inference with calibrated uncertainties, on top of sbi.

* :class:`Simulator` -- a prior plus a vectorised, seeded ``simulate(theta, rng)``;
* :func:`simulate` -- reproducible, cached (atomic, resumable), parallel simulation runs
  through :mod:`aalearn.core.parallel`;
* :func:`train_posterior` -- NPE, NLE, NRE and BNRE through sbi, optionally as
  ensembles, returning a :class:`Posterior` with NumPy ``sample``/``log_prob``;
* coverage diagnostics in :mod:`aalearn.inference.sbi.diagnostics` (SBC, expected HPD
  coverage, TARP, a verdict), and the conformal recalibration of HPD levels
  (:func:`calibrate_levels`) in :mod:`aalearn.inference.sbi.calibration`;
* :func:`c2st` and the sbibm tasks ``two_moons``, ``slcp``, ``gaussian_linear``
  (:func:`sbibm_task`) with :func:`validate_task` and :func:`coverage_task`.

sbi and its dependencies are imported only when a function needs them.

Example:
    >>> import numpy as np, torch
    >>> from aalearn.inference.sbi import Simulator, simulate
    >>> prior = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
    >>> sim = Simulator("gauss", prior, lambda th, rng: th + rng.normal(size=th.shape), ("mu",), ("x",))
    >>> theta, x = simulate(sim, 100, seed=0, progress=False)
    >>> theta.shape
    (100, 1)
"""

from __future__ import annotations

from aalearn.inference.sbi.c2st import c2st
from aalearn.inference.sbi.cache import SimulationStats, chunk_seeds, last_run_stats, simulate
from aalearn.inference.sbi.calibration import LevelCalibration, calibrate_levels, calibrated_verdict
from aalearn.inference.sbi.estimators import METHODS, Posterior, train_posterior
from aalearn.inference.sbi.simulator import Simulator, run_simulator, sample_prior
from aalearn.inference.sbi.tasks import (
    PUBLISHED_C2ST,
    SBIBM_NPE_SETTINGS,
    SBIBM_SETTINGS,
    SBIBM_TASKS,
    SbibmTask,
    sbibm_task,
)

__all__ = [
    "METHODS",
    "PUBLISHED_C2ST",
    "SBIBM_NPE_SETTINGS",
    "SBIBM_SETTINGS",
    "SBIBM_TASKS",
    "LevelCalibration",
    "Posterior",
    "SbibmTask",
    "SimulationStats",
    "Simulator",
    "c2st",
    "calibrate_levels",
    "calibrated_verdict",
    "chunk_seeds",
    "last_run_stats",
    "run_simulator",
    "sample_prior",
    "sbibm_task",
    "simulate",
    "train_posterior",
]
