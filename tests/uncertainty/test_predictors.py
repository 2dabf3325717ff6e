"""Deep ensembles, MC dropout and the last-layer Laplace approximation on a small Gaussian toy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from aalearn.models import TopoDNN, predict_proba
from aalearn.training import train_topodnn_ensemble
from aalearn.uncertainty import (
    DeepEnsemble,
    LastLayerLaplace,
    MCDropout,
    UncertaintyDecomposition,
    UncertaintyPredictor,
    add_dropout_before_output,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

N_FEATURES = 10
N_DISCRIMINATING = 3
SHIFT = 5.0  # in units of the features' standard deviation


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two unit Gaussians whose means differ by 3σ in the first 3 features only."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, :N_DISCRIMINATING] += 3.0 * (y[:, None] - 0.5)
    return x.astype(np.float32), y


def _shifted(x: np.ndarray) -> np.ndarray:
    """Far from the data: the non-discriminating features moved by SHIFT σ."""
    out = x.copy()
    out[:, N_DISCRIMINATING:] += SHIFT
    return out


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": _toy(2000, 0), "val": _toy(500, 1), "test": _toy(1000, 2)}


@pytest.fixture(scope="module")
def ensemble(single_torch_thread: None, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> DeepEnsemble:
    (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
    return train_topodnn_ensemble(
        x_tr,
        y_tr,
        x_va,
        y_va,
        n_members=3,
        seed=10,
        model_kwargs={"hidden": (32, 16)},
        epochs=5,
        batch_size=64,
        lr=3e-3,
    )


@pytest.fixture(scope="module")
def laplace(ensemble: DeepEnsemble, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> LastLayerLaplace:
    x_tr, y_tr = data["train"]
    return LastLayerLaplace(ensemble.models[0]).fit(x_tr, y_tr)


# --------------------------------------------------------------------------- deep ensemble
def test_ensemble_trains_distinct_accurate_members(
    ensemble: DeepEnsemble, data: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    x_te, y_te = data["test"]
    assert ensemble.n_members == len(ensemble) == 3
    assert ensemble.seeds == [10, 11, 12]
    assert ensemble.histories is not None
    assert len(ensemble.histories) == 3
    assert all(isinstance(m, TopoDNN) and m.batchnorm_momentum == 0.1 for m in ensemble.models)
    w = [m.output.weight.detach() for m in ensemble.models if isinstance(m, TopoDNN)]
    assert not torch.equal(w[0], w[1])
    assert not torch.equal(w[1], w[2])
    probs = ensemble.member_probs(x_te)
    assert probs.shape == (3, 1000)
    assert probs.dtype == np.float64
    assert np.abs(probs[0] - probs[1]).max() > 1e-3
    d = ensemble.predict(x_te)
    assert isinstance(d, UncertaintyDecomposition)
    assert d.method == "ensemble"
    assert d.n_members == 3
    assert np.mean((d.mean >= 0.5) == y_te) > 0.9
    np.testing.assert_allclose(d.mean, probs.mean(axis=0))


def test_ensemble_epistemic_grows_far_from_the_data(
    ensemble: DeepEnsemble, data: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    x_te, _ = data["test"]
    near = ensemble.predict(x_te).epistemic.mean()
    far = ensemble.predict(_shifted(x_te)).epistemic.mean()
    assert far > 3 * near


def test_ensemble_member_matches_workflow_recipe(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Member m is the model train_topodnn would build with seed m (same init and input scaling)."""
    x_tr, _ = data["train"]
    before = torch.random.get_rng_state()
    torch.manual_seed(7)
    reference = TopoDNN(n_features=N_FEATURES, hidden=(4,), batchnorm_momentum=0.1)
    reference.fit_input_scaling(x_tr)
    torch.random.set_rng_state(before)
    ens = train_topodnn_ensemble(
        x_tr[:200], data["train"][1][:200], x_tr[200:300], data["train"][1][200:300],
        n_members=2, seed=7, model_kwargs={"hidden": (4,)}, epochs=1, lr=1e-12,
    )  # fmt: skip
    member = ens.models[0]
    assert isinstance(member, TopoDNN)
    key = "blocks.0.linear.weight"
    torch.testing.assert_close(member.state_dict()[key], reference.state_dict()[key])
    torch.testing.assert_close(member.output.weight, reference.output.weight)
    torch.testing.assert_close(member.input_mean, torch.as_tensor(x_tr[:200].mean(0)))
    assert torch.equal(torch.random.get_rng_state(), before)  # caller's RNG untouched


def test_ensemble_checkpoint_round_trip(ensemble: DeepEnsemble, tmp_path: Path) -> None:
    paths = ensemble.save(tmp_path / "ens")
    assert [p.name for p in paths] == ["member_0.safetensors", "member_1.safetensors", "member_2.safetensors"]
    loaded = DeepEnsemble.from_checkpoints(paths)
    x = np.random.default_rng(0).normal(size=(50, N_FEATURES))
    np.testing.assert_allclose(loaded.member_probs(x), ensemble.member_probs(x), rtol=1e-6)
    with pytest.raises(TypeError, match="sequence"):
        DeepEnsemble.from_checkpoints(str(paths[0]))


def test_ensemble_validation(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    a, b = TopoDNN(n_features=3, hidden=(4,)), TopoDNN(n_features=4, hidden=(4,))
    with pytest.raises(ValueError, match="at least 2"):
        DeepEnsemble([a])
    with pytest.raises(ValueError, match="more than once"):
        DeepEnsemble([a, a])
    with pytest.raises(ValueError, match="same number of input features"):
        DeepEnsemble([a, b])
    with pytest.raises(TypeError, match=r"nn\.Module"):
        DeepEnsemble([a, "model"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence"):
        DeepEnsemble(a)  # type: ignore[arg-type]
    ens = DeepEnsemble([a, TopoDNN(n_features=3, hidden=(4,))])
    with pytest.raises(ValueError, match="feature columns"):
        ens.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        ens.predict(np.array([[0.0, np.nan, 0.0]]))
    x, y = data["val"]
    with pytest.raises(ValueError, match="n_members"):
        train_topodnn_ensemble(x, y, x, y, n_members=1)
    with pytest.raises(TypeError, match="'model'"):
        train_topodnn_ensemble(x, y, x, y, n_members=2, model=None)
    with pytest.raises(ValueError, match="n_features"):
        train_topodnn_ensemble(x, y, x, y, n_members=2, model_kwargs={"n_features": 3})


# --------------------------------------------------------------------------- MC dropout
def _dropout_model() -> TopoDNN:
    torch.manual_seed(3)
    return TopoDNN(n_features=N_FEATURES, hidden=(16, 8), dropout=0.3)


def test_mc_dropout_is_seeded_and_stochastic(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    x = data["test"][0][:100]
    model = _dropout_model()
    rng_before = torch.random.get_rng_state()
    mc = MCDropout(model, n_samples=20, seed=5)
    first = mc.member_probs(x)
    assert first.shape == (20, 100)
    np.testing.assert_array_equal(mc.member_probs(x), first)
    np.testing.assert_array_equal(MCDropout(model, n_samples=20, seed=5).member_probs(x), first)
    assert not np.array_equal(MCDropout(model, n_samples=20, seed=6).member_probs(x), first)
    assert np.abs(first[0] - first[1]).max() > 1e-4  # masks differ between passes
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    d = mc.predict(x)
    assert d.method == "mc_dropout"
    assert d.n_members == 20
    assert (d.epistemic > 0).mean() > 0.9
    assert mc.dropout_rates == [0.3, 0.3]
    assert not mc.inserted
    assert mc.model is model


def test_mc_dropout_keeps_batchnorm_in_eval_and_restores_modes() -> None:
    model = _dropout_model()
    x = np.random.default_rng(0).normal(size=(64, N_FEATURES))
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    assert bn.running_mean is not None
    running_mean = bn.running_mean.clone()
    model.train()
    MCDropout(model, n_samples=4).member_probs(x)
    assert all(m.training for m in model.modules())
    torch.testing.assert_close(bn.running_mean, running_mean)
    model.eval()
    MCDropout(model, n_samples=4).member_probs(x)
    assert not any(m.training for m in model.modules())


def test_mc_dropout_requires_dropout_unless_p_given() -> None:
    torch.manual_seed(0)
    model = TopoDNN(n_features=N_FEATURES, hidden=(16, 8))
    with pytest.raises(ValueError, match="no dropout"):
        MCDropout(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = np.random.default_rng(1).normal(size=(30, N_FEATURES))
    p_before = predict_proba(model, x)
    mc = MCDropout(model, n_samples=10, p=0.2, seed=1)
    assert mc.inserted
    assert mc.model is not model
    assert mc.dropout_rates == [0.2]
    probs = mc.member_probs(x)
    assert probs.shape == (10, 30)
    assert np.abs(probs[0] - probs[1]).max() > 1e-4
    np.testing.assert_array_equal(MCDropout(model, n_samples=10, p=0.2, seed=1).member_probs(x), probs)
    # the original is untouched: no dropout, same weights, same predictions
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    np.testing.assert_array_equal(predict_proba(model, x), p_before)
    # the copy computes the same function with dropout off
    np.testing.assert_allclose(predict_proba(mc.model, x), p_before, rtol=1e-6)


def test_mc_dropout_validation() -> None:
    with pytest.raises(ValueError, match="already has dropout"):
        MCDropout(_dropout_model(), p=0.1)
    model = TopoDNN(n_features=3, hidden=(4,))
    for p in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"\(0, 1\)"):
            MCDropout(model, p=p)
    with pytest.raises(ValueError, match="n_samples"):
        MCDropout(_dropout_model(), n_samples=1)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        MCDropout("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        add_dropout_before_output(nn.Sequential(nn.ReLU()), 0.1)


def test_add_dropout_before_output_generic_sequential() -> None:
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    copy = add_dropout_before_output(net, 0.5)
    assert isinstance(copy, nn.Sequential)
    assert isinstance(copy[2], nn.Sequential)
    assert isinstance(copy[2].dropout, nn.Dropout)
    assert isinstance(net[2], nn.Linear)
    mc = MCDropout(net, n_samples=5, p=0.5)
    assert mc.member_probs(np.ones((4, 3))).shape == (5, 4)


# --------------------------------------------------------------------------- last-layer Laplace
def test_laplace_fit_selects_finite_prior_precision(laplace: LastLayerLaplace) -> None:
    assert laplace.is_fitted
    tau = laplace.prior_precision
    assert tau is not None
    assert np.isfinite(tau)
    assert tau > 0
    assert tau in laplace.prior_precision_grid
    grid = laplace.log_marginal_likelihood_grid
    assert grid is not None
    assert np.isfinite(grid).all()
    assert laplace.log_marginal_likelihood(tau) == pytest.approx(grid.max())
    cov = laplace.posterior_covariance
    assert cov is not None
    assert cov.shape == (17, 17)
    assert laplace.n_params == 17
    np.testing.assert_allclose(cov, cov.T, rtol=1e-10, atol=1e-14)
    assert np.linalg.eigvalsh(cov).min() > 0
    assert laplace.n_fit == 2000


def test_laplace_evidence_is_exact_for_bayesian_linear_regression() -> None:
    r"""The evidence formula against the closed form of Bayesian linear regression (MacKay 1992).

    For a Gaussian likelihood the log posterior is quadratic, so the Laplace evidence
    :math:`\ln p(y\mid\theta_*) - \frac{\tau}{2}\lVert\theta_*\rVert^2 + \frac{P}{2}\ln\tau
    - \frac12\ln\det(\Phi^\top\Phi/s^2 + \tau I)` at the posterior mean :math:`\theta_*` equals
    :math:`\ln\mathcal{N}(y; 0, s^2 I + \Phi\Phi^\top/\tau)` exactly (Bishop, PRML eq. 3.86).
    The class's formula is fed the regression's Hessian and log likelihood; tolerance 1e-9
    (round-off). τ ≠ 1 so that the :math:`\ln\tau` term counts.
    """
    from scipy.stats import multivariate_normal, norm

    rng = np.random.default_rng(7)
    n, p, s = 40, 3, 0.5
    phi = rng.normal(size=(n, p))
    y = phi @ np.array([0.8, -1.2, 0.3]) + s * rng.normal(size=n)
    la = LastLayerLaplace(nn.Sequential(nn.Linear(p - 1, 1)))  # P = 2 weights + 1 bias = 3
    la.ggn = phi.T @ phi / s**2
    for tau in (0.05, 0.7, 4.0, 60.0):
        theta = np.linalg.solve(la.ggn + tau * np.eye(p), phi.T @ y / s**2)
        la.theta_map = theta
        la._log_lik = float(norm.logpdf(y, loc=phi @ theta, scale=s).sum())  # the fit's log likelihood
        exact = multivariate_normal.logpdf(y, mean=np.zeros(n), cov=s**2 * np.eye(n) + phi @ phi.T / tau)
        assert la.log_marginal_likelihood(tau) == pytest.approx(exact, rel=0, abs=1e-9), tau


def _logistic_map(x: np.ndarray, y: np.ndarray, tau: float) -> tuple[nn.Module, np.ndarray]:
    """A one-feature logistic regression at its exact MAP under the prior N(0, I/τ) on [w, b]."""
    from scipy.optimize import minimize
    from scipy.special import log_expit

    f, s = np.c_[x, np.ones(len(x))], 2.0 * y - 1.0
    theta = minimize(
        lambda t: -log_expit(s * (f @ t)).sum() + 0.5 * tau * t @ t, np.zeros(2), method="BFGS",
        options={"gtol": 1e-10},
    ).x  # fmt: skip
    layer = nn.Linear(1, 1).double()
    with torch.no_grad():
        layer.weight.fill_(float(theta[0]))
        layer.bias.fill_(float(theta[1]))
    return nn.Sequential(layer), theta


def test_laplace_evidence_of_logistic_regression_matches_quadrature() -> None:
    r"""The whole fit (log likelihood, GGN, evidence) against the exact evidence by 2-D quadrature.

    Logistic regression with one feature and a bias, n = 300, placed at its exact MAP for
    τ = 3. The exact :math:`\ln\int p(y\mid\theta)\,\mathcal{N}(\theta; 0, I/τ)\,d\theta` is
    integrated with scipy's ``dblquad``; the Laplace approximation differs by O(1/n): measured
    0.0038 at this seed, tolerance 0.03 (a wrong term, e.g. P ln τ instead of
    P/2 ln τ, shifts it by 1.1).
    """
    from scipy.integrate import dblquad
    from scipy.special import expit, log_expit

    rng = np.random.default_rng(3)
    n, tau = 300, 3.0
    x = rng.normal(size=(n, 1))
    y = (rng.uniform(size=n) < expit(1.5 * x[:, 0] - 0.5)).astype(np.int64)
    model, theta = _logistic_map(x, y, tau)
    la = LastLayerLaplace(model, prior_precision_grid=[tau / 10, tau, tau * 10]).fit(x, y)
    assert la.prior_precision == tau

    f, s = np.c_[x, np.ones(n)], 2.0 * y - 1.0

    def neg_log_joint(a: float, b: float) -> float:
        return float(-log_expit(s * (f @ np.array([a, b]))).sum() + 0.5 * tau * (a * a + b * b))

    m0 = neg_log_joint(*theta)
    assert la.posterior_covariance is not None
    sd = np.sqrt(np.diag(la.posterior_covariance))
    val, _ = dblquad(
        lambda b, a: np.exp(m0 - neg_log_joint(a, b)),
        theta[0] - 10 * sd[0], theta[0] + 10 * sd[0], theta[1] - 10 * sd[1], theta[1] + 10 * sd[1],
        epsabs=1e-12, epsrel=1e-9,
    )  # fmt: skip
    exact = np.log(val) - m0 + np.log(tau / (2 * np.pi))
    assert la.log_marginal_likelihood(tau) == pytest.approx(exact, abs=0.03)
    # the posterior covariance is the inverse of the exact Hessian of the negative log joint
    p = expit(f @ theta)
    hessian = (f * (p * (1 - p))[:, None]).T @ f + tau * np.eye(2)
    np.testing.assert_allclose(la.posterior_covariance, np.linalg.inv(hessian), rtol=1e-8)


def test_laplace_warns_when_the_best_prior_precision_is_on_the_grid_edge() -> None:
    """The evidence of the logistic problem above peaks inside 10⁻¹ … 10²; grids that stop short warn.

    A grid entirely below (above) the peak selects its last (first) point and must warn
    that the maximum is on the edge; a grid around the peak selects an interior point
    without a warning.
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 1))
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5)))).astype(np.int64)
    model, _ = _logistic_map(x, y, 1.0)
    wide = LastLayerLaplace(model, prior_precision_grid=np.logspace(-4, 4, 81)).fit(x, y)
    best = wide.prior_precision
    assert best is not None
    assert 1e-2 < best < 1e2
    for grid, expected in ((np.logspace(-4, -3, 5), 1e-3), (np.logspace(3, 4, 5), 1e3)):
        with pytest.warns(RuntimeWarning, match="edge of the grid"):
            la = LastLayerLaplace(model, prior_precision_grid=grid).fit(x, y)
        assert la.prior_precision == pytest.approx(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inner = LastLayerLaplace(model, prior_precision_grid=[best / 2, best, best * 2]).fit(x, y)
    assert inner.prior_precision == pytest.approx(best)


def test_laplace_probit_mean_matches_monte_carlo(
    laplace: LastLayerLaplace, data: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    x = data["test"][0]
    for xs in (x, _shifted(x)):
        mc = laplace.predict(xs, n_samples=2000, seed=1)
        assert mc.method == "laplace"
        assert mc.n_members == 2000
        assert np.abs(laplace.probit_mean(xs) - mc.mean).mean() < 0.02


def test_laplace_epistemic_grows_out_of_distribution(
    laplace: LastLayerLaplace, data: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    x = data["test"][0]
    near = laplace.predict(x, n_samples=300).epistemic.mean()
    far = laplace.predict(_shifted(x), n_samples=300).epistemic.mean()
    assert far > 3 * near
    _, var_near = laplace.logit_mean_var(x)
    _, var_far = laplace.logit_mean_var(_shifted(x))
    assert var_far.mean() > 3 * var_near.mean()


def test_laplace_is_seeded(laplace: LastLayerLaplace, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    x = data["test"][0][:50]
    a = laplace.member_probs(x, n_samples=20, seed=3)
    np.testing.assert_array_equal(laplace.member_probs(x, n_samples=20, seed=3), a)
    # same parameter draws whatever the batching (features agree up to float32 round-off)
    np.testing.assert_allclose(laplace.member_probs(x, batch_size=7, n_samples=20, seed=3), a, rtol=1e-4)
    assert not np.array_equal(laplace.member_probs(x, n_samples=20, seed=4), a)


def test_predictors_satisfy_the_protocol(ensemble: DeepEnsemble, laplace: LastLayerLaplace) -> None:
    """A separate test: mutmut's trampolined classes fail runtime Protocol checks (tools/mutation.py)."""
    mc = MCDropout(_dropout_model(), n_samples=2)
    for predictor in (ensemble, mc, laplace):
        assert isinstance(predictor, UncertaintyPredictor)


def test_laplace_hessian_matches_explicit_formula() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    net = nn.Sequential(lin)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    la = LastLayerLaplace(net).fit(x, y, prior_precision=2.5)
    assert la.prior_precision == 2.5
    assert la.log_marginal_likelihood_grid is None
    phi = np.concatenate([x.astype(np.float64), np.ones((200, 1))], axis=1)
    theta = np.concatenate([lin.weight.detach().numpy().ravel(), lin.bias.detach().numpy()]).astype(float)
    p = 1 / (1 + np.exp(-phi @ theta))
    ggn = (phi * (p * (1 - p))[:, None]).T @ phi
    assert la.ggn is not None
    assert la.posterior_covariance is not None
    np.testing.assert_allclose(la.ggn, ggn, rtol=1e-6)
    np.testing.assert_allclose(la.posterior_covariance, np.linalg.inv(ggn + 2.5 * np.eye(4)), rtol=1e-6)
    mu, var = la.logit_mean_var(x)
    np.testing.assert_allclose(mu, phi @ theta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, np.einsum("nd,de,ne->n", phi, la.posterior_covariance, phi), rtol=1e-10)


class _ScaledOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return 2.0 * self.out(torch.relu(self.hidden(x))).squeeze(-1) + 1.0


def test_laplace_requires_last_linear_with_one_output() -> None:
    with pytest.raises(ValueError, match=r"nn.Linear\(D, 1\).*Sigmoid"):
        LastLayerLaplace(nn.Sequential(nn.Linear(3, 1), nn.Sigmoid()))
    with pytest.raises(ValueError, match="2 outputs"):
        LastLayerLaplace(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        LastLayerLaplace("model")  # type: ignore[arg-type]
    x = np.zeros((5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"not the output of its last nn\.Linear"):
        LastLayerLaplace(_ScaledOutput()).fit(x, np.array([0, 1, 0, 1, 0]))


def test_laplace_validation(laplace: LastLayerLaplace) -> None:
    model = TopoDNN(n_features=3, hidden=(4,))
    with pytest.raises(RuntimeError, match="not fitted"):
        LastLayerLaplace(model).predict(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="fit"):
        LastLayerLaplace(model).log_marginal_likelihood(1.0)
    for tau in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="prior_precision"):
            LastLayerLaplace(model).fit(np.zeros((4, 3)), [0, 1, 0, 1], prior_precision=tau)
    with pytest.raises(ValueError, match="0 or 1"):
        LastLayerLaplace(model).fit(np.zeros((4, 3)), [0, 1, 0, 2])
    with pytest.raises(ValueError, match="positive"):
        LastLayerLaplace(model, prior_precision_grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="n_samples"):
        laplace.predict(np.zeros((2, N_FEATURES)), n_samples=1)


def test_laplace_detects_changed_weights() -> None:
    torch.manual_seed(0)
    model = TopoDNN(n_features=3, hidden=(4,))
    la = LastLayerLaplace(model).fit(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2)
    with torch.no_grad():
        model.output.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="changed"):
        la.probit_mean(np.zeros((2, 3)))
