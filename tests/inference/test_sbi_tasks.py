"""sbibm tasks read from sbibm's shipped files, C2ST, and validation against reference posteriors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aalearn.inference.sbi import PUBLISHED_C2ST, SBIBM_TASKS, c2st, sbibm_task, simulate
from aalearn.inference.sbi.tasks import slcp_simulate, two_moons_simulate

pytest.importorskip("sbi")
try:
    sbibm_task("two_moons").observation(1)
except (ImportError, FileNotFoundError):  # pragma: no cover - depends on the environment
    pytest.skip("sbibm's task files are not installed (pip install --no-deps sbibm)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

SHAPES = {"two_moons": (2, 2), "slcp": (5, 8), "gaussian_linear": (10, 10)}


@pytest.mark.parametrize("name", SBIBM_TASKS)
def test_task_files_and_shapes(name: str) -> None:
    task = sbibm_task(name)
    d, x_dim = SHAPES[name]
    assert task.simulator.dim_parameters == d
    assert task.simulator.dim_observables == x_dim
    for k in (1, 10):
        assert task.observation(k).shape == (x_dim,)
        assert task.true_parameters(k).shape == (d,)
    ref = task.reference_samples(1)
    assert ref.shape == (10_000, d)
    assert np.isfinite(ref).all()
    # reference samples lie in the prior's support
    assert torch.isfinite(
        task.simulator.prior.log_prob(torch.as_tensor(ref[:500], dtype=torch.float32))
    ).all()
    theta, x = simulate(task.simulator, 50, seed=0, progress=False)
    assert theta.shape == (50, d)
    assert x.shape == (50, x_dim)
    assert task.published_c2st("npe", 10_000) == PUBLISHED_C2ST[name]["npe"][10_000]


def test_bad_task_and_observation() -> None:
    with pytest.raises(ValueError, match="unknown sbibm task 'moons'"):
        sbibm_task("moons")
    with pytest.raises(ValueError, match=r"1\.\.10"):
        sbibm_task("slcp").observation(11)


def test_gaussian_linear_reference_is_the_analytic_posterior() -> None:
    """Prior N(0, 0.1 I) and noise N(0, 0.1 I) give the posterior N(x/2, 0.05 I)."""
    task = sbibm_task("gaussian_linear")
    ref, x_o = task.reference_samples(3), task.observation(3)
    np.testing.assert_allclose(ref.mean(axis=0), x_o / 2, atol=0.01)
    np.testing.assert_allclose(ref.var(axis=0), 0.05, rtol=0.06)
    theta, x = simulate(task.simulator, 4000, seed=1, progress=False)
    np.testing.assert_allclose(theta.var(axis=0), 0.1, rtol=0.1)
    np.testing.assert_allclose((x - theta).var(axis=0), 0.1, rtol=0.1)


def test_two_moons_reference_samples_explain_the_observation() -> None:
    """Inverting sbibm's map at the reference samples gives the moon radius r ~ N(0.1, 0.01)."""
    task = sbibm_task("two_moons")
    ref, x_o = task.reference_samples(1)[:2000], task.observation(1)
    c = s = math.sqrt(0.5)
    z0 = c * ref[:, 0] + s * ref[:, 1]
    z1 = -s * ref[:, 0] + c * ref[:, 1]
    u = x_o[0] + np.abs(z0) - 0.25
    v = x_o[1] - z1
    r = np.hypot(u, v)
    assert abs(r.mean() - 0.1) < 0.005
    assert r.std() < 0.015
    assert (u > 0).mean() > 0.99
    x = two_moons_simulate(np.repeat(task.true_parameters(1)[None], 500, axis=0), np.random.default_rng(0))
    assert np.linalg.norm(x.mean(axis=0) - x_o) < 0.2


def test_slcp_reference_samples_have_high_likelihood() -> None:
    """The shipped observation is far more likely under reference samples than under prior draws."""
    task = sbibm_task("slcp")
    x_o = task.observation(1).reshape(4, 2)

    def loglik(theta: np.ndarray) -> np.ndarray:
        s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
        cov = np.empty((len(theta), 2, 2))
        cov[:, 0, 0], cov[:, 1, 1] = s1**2 + 1e-6, s2**2 + 1e-6
        cov[:, 0, 1] = cov[:, 1, 0] = rho * s1 * s2
        d = x_o[None] - theta[:, None, :2]
        sol = np.linalg.solve(cov[:, None], d[..., None])[..., 0]
        return -0.5 * (d * sol).sum(axis=(1, 2)) - 2 * np.log(np.linalg.det(cov))

    ref = task.reference_samples(1)[:1000]
    prior = np.random.default_rng(0).uniform(-3, 3, size=(1000, 5))
    assert np.median(loglik(ref)) > np.median(loglik(prior)) + 20
    x = slcp_simulate(np.repeat(task.true_parameters(1)[None], 4000, axis=0), np.random.default_rng(1))
    sd = task.true_parameters(1)[2:4] ** 2
    np.testing.assert_allclose(x.reshape(-1, 2).std(axis=0), sd, rtol=0.05)


def test_c2st_same_distribution_about_half() -> None:
    rng = np.random.default_rng(0)
    value = c2st(rng.normal(size=(600, 2)), rng.normal(size=(600, 2)))
    assert 0.44 < value < 0.56


def test_c2st_separated_near_one() -> None:
    rng = np.random.default_rng(1)
    value = c2st(rng.normal(size=(500, 2)), rng.normal(loc=(6.0, 0.0), size=(500, 2)))
    assert value > 0.98


def test_c2st_detects_a_shift_and_checks_input() -> None:
    rng = np.random.default_rng(2)
    shifted = c2st(rng.normal(size=(600, 1)), rng.normal(loc=1.0, size=(600, 1)))
    assert 0.62 < shifted < 0.76  # Bayes accuracy Φ(0.5) = 0.69
    with pytest.raises(ValueError, match="columns"):
        c2st(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        c2st(np.full((10, 1), np.nan), np.zeros((10, 1)))
