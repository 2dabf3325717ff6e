"""sbi-backed estimators on the conjugate-Gaussian problem: θ ~ N(0, 1), x | θ ~ N(θ, 0.5²).

Exact posterior given k i.i.d. observations: N(Σx / (k + 0.25), 0.25 / (k + 0.25)).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sbi")

from aalearn.inference.sbi import Posterior, Simulator, simulate, train_posterior

pytestmark = pytest.mark.usefixtures("single_torch_thread")

NOISE = 0.5


def _noisy(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return theta + NOISE * rng.normal(size=theta.shape)


def _prior() -> torch.distributions.Distribution:
    return torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    sim = Simulator("conj", _prior(), _noisy, ("mu",), ("x",), chunk_size=500)
    return simulate(sim, 1500, seed=0, progress=False)


def _exact(x_obs: np.ndarray) -> tuple[float, float]:
    k = len(x_obs)
    prec = 1.0 + k / NOISE**2
    return float(np.sum(x_obs) / NOISE**2 / prec), float(np.sqrt(1.0 / prec))


@pytest.fixture(scope="module")
def npe(data: tuple[np.ndarray, np.ndarray]) -> Posterior:
    theta, x = data
    return train_posterior(theta, x, prior=_prior(), seed=0, density_estimator="mdn", max_epochs=40)


def test_npe_recovers_conjugate_posterior(npe: Posterior) -> None:
    assert npe.method == "npe"
    assert npe.n_simulations == 1500
    assert npe.seconds_train > 0
    x_o = np.array([0.8])
    s = npe.sample(4000, x_o, seed=1)
    mean, sd = _exact(x_o)
    assert s.shape == (4000, 1)
    assert abs(s.mean() - mean) < 0.08
    assert abs(s.std() - sd) < 0.08
    # reproducible and independent of torch's global state
    np.testing.assert_array_equal(s, npe.sample(4000, x_o, seed=1))
    assert not np.array_equal(s, npe.sample(4000, x_o, seed=2))
    # log_prob ranks like the exact density: higher at the mean than 2 sd away
    lp = npe.log_prob(np.array([[mean], [mean + 2 * sd]]), x_o)
    assert lp.shape == (2,)
    assert lp[0] > lp[1] + 1.0


def test_npe_batched_sampling_and_iid_error(npe: Posterior) -> None:
    xs = np.array([[-1.0], [0.0], [1.0]])
    s = npe.sample_batched(500, xs, seed=0)
    assert s.shape == (500, 3, 1)
    assert s[:, 0].mean() < s[:, 1].mean() < s[:, 2].mean()
    with pytest.raises(ValueError, match=r"i\.i\.d\. observations"):
        npe.sample(10, np.array([[0.1], [0.2]]), seed=0)
    with pytest.raises(ValueError, match="shape"):
        npe.sample(10, np.array([0.1, 0.2]), seed=0)
    with pytest.raises(ValueError, match="NaN/inf"):
        npe.sample(10, np.array([np.nan]), seed=0)


def test_bad_training_input(data: tuple[np.ndarray, np.ndarray]) -> None:
    theta, x = data
    with pytest.raises(ValueError, match=r"event_shape \(1,\) but theta's 2 columns"):
        train_posterior(np.hstack([theta, theta]), x, prior=_prior())
    with pytest.raises(ValueError, match="rows"):
        train_posterior(theta[:-1], x, prior=_prior())
    bad = x.copy()
    bad[[4, 9]] = np.nan
    with pytest.raises(ValueError, match="rows 4, 9"):
        train_posterior(theta, bad, prior=_prior())
    with pytest.raises(ValueError, match="unknown method"):
        train_posterior(theta, x, prior=_prior(), method="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown sbi option 'learnin_rate'"):
        train_posterior(theta, x, prior=_prior(), learnin_rate=1e-3)
    box = torch.distributions.Independent(
        torch.distributions.Uniform(-torch.ones(1), torch.ones(1), validate_args=True), 1, validate_args=True
    )
    rows = np.flatnonzero(np.abs(theta[:, 0]) > 1)[:3].tolist()
    listed = ", ".join(map(str, rows))
    with pytest.raises(ValueError, match=rf"outside the prior's support \(rows \[{listed},"):
        train_posterior(theta, x, prior=box)


def _train_nle(data: tuple[np.ndarray, np.ndarray], *, ensemble: int = 1) -> Posterior:
    """NLE (MDN, 40 epochs) with a short MCMC, as the slow NLE tests use it."""
    from sbi.inference.posteriors.posterior_parameters import MCMCPosteriorParameters

    theta, x = data
    return train_posterior(
        theta,
        x,
        method="nle",
        prior=_prior(),
        seed=0,
        ensemble=ensemble,
        density_estimator="mdn",
        max_epochs=40,
        posterior_parameters=MCMCPosteriorParameters(num_chains=10, warmup_steps=50, thin=1),
    )


@pytest.mark.slow
def test_nle_combines_iid_observations(data: tuple[np.ndarray, np.ndarray]) -> None:
    post = _train_nle(data)
    rng = np.random.default_rng(3)
    x_obs = (0.4 + NOISE * rng.normal(size=20)).reshape(20, 1)
    s = post.sample(400, x_obs, seed=0)
    mean, sd = _exact(x_obs[:, 0])
    assert abs(s.mean() - mean) < 0.06
    assert 0.6 * sd < s.std() < 1.5 * sd  # ~0.11: far narrower than one observation's 0.45
    assert (
        post.log_prob(np.array([[mean], [mean + 4 * sd]]), x_obs)[0]
        > post.log_prob(np.array([[mean + 4 * sd]]), x_obs)[0]
    )


@pytest.mark.slow
def test_npe_ensemble(data: tuple[np.ndarray, np.ndarray]) -> None:
    theta, x = data
    post = train_posterior(
        theta, x, prior=_prior(), seed=0, ensemble=2, density_estimator="mdn", max_epochs=40
    )
    assert post.ensemble == 2
    assert len(post.epochs) == 2
    s = post.sample(2000, np.array([0.8]), seed=0)
    mean, sd = _exact(np.array([0.8]))
    assert abs(s.mean() - mean) < 0.1
    assert abs(s.std() - sd) < 0.1
    assert np.isfinite(post.log_prob(s[:5], np.array([0.8]))).all()
    # the members are trained with seeds 0 and 1: they differ, and the ensemble density is
    # their equal-weight mixture log((q_0 + q_1) / 2) (NPE members are normalised)
    grid = np.linspace(mean - 4 * sd, mean + 4 * sd, 101).reshape(-1, 1)
    members = post.member_log_probs(grid, np.array([0.8]))
    assert members.shape == (2, 101)
    assert np.abs(members[0] - members[1]).max() > 0.01, "the ensemble members are identical"
    mixture = np.logaddexp(members[0], members[1]) - np.log(2.0)
    np.testing.assert_allclose(post.log_prob(grid, np.array([0.8])), mixture, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_nle_ensemble_log_prob_is_the_normalised_mixture(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Members' potentials carry different constants; the ensemble density must not be
    dominated by one of them: it integrates to one and matches the exact posterior."""
    post = _train_nle(data, ensemble=2)
    rng = np.random.default_rng(5)
    x_obs = (0.4 + NOISE * rng.normal(size=10)).reshape(10, 1)
    mean, sd = _exact(x_obs[:, 0])
    grid = np.linspace(mean - 8 * sd, mean + 8 * sd, 2001).reshape(-1, 1)
    step = float(grid[1, 0] - grid[0, 0])
    log_z = post.log_normalizers(x_obs)
    members = post.member_log_probs(grid, x_obs)
    for i in range(2):  # each importance-sampling normaliser agrees with quadrature
        quad = float(np.log(np.exp(members[i]).sum() * step))
        assert log_z[i] == pytest.approx(quad, abs=0.05)
    density = np.exp(post.log_prob(grid, x_obs))
    assert density.sum() * step == pytest.approx(1.0, abs=0.05)
    exact = np.exp(-0.5 * ((grid[:, 0] - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    assert np.abs(density - exact).sum() * step < 0.3  # L1 distance of two densities (max 2)
    assert post.log_normalizers(x_obs) == pytest.approx(log_z)  # cached, identical
    with pytest.raises(ValueError, match="n_proposal"):
        post.log_normalizers(x_obs, n_proposal=1)
