"""INFERNO with templates from separate varied samples: row-paired base loss, closed form, training."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from torch import nn

from aalearn.training import inferno_templates, train_classifier
from aalearn.training.inferno import InfernoStrategy, SoftBinClassifier, asimov_fisher, soft_histogram
from aalearn.training.inferno_templates import InfernoTemplateStrategy
from aalearn.training.strategy import get_strategy

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _toy(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """2-D Gaussians: signal (label 0) at (1, 1), background (label 1) at (0, 0) moved by ``shift``."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 0, 1.0, 0.0)
    x[y == 1, 0] += shift
    return x.astype(np.float64), y


def _net(seed: int = 0, n_bins: int = 4) -> SoftBinClassifier:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, n_bins))
    return SoftBinClassifier(body, n_bins).double()


def test_template_loss_equals_the_row_paired_base_loss() -> None:
    # Background-only histosys: with the varied rows handed over as templates, the Fisher
    # information must be the base class's on the same rows given as row-paired aux arrays.
    # Tolerance 1e-10 relative: the same float64 arithmetic in another order.
    x, y = _toy(64, 0)
    x_up, x_dn = x.copy(), x.copy()
    x_up[:, 0] += 0.4
    x_dn[:, 0] -= 0.3
    net = _net()
    base = InfernoStrategy(
        100,
        1000,
        [
            {"name": "fsr", "kind": "histosys", "up": "x_up", "down": "x_down"},
            {"name": "bn", "kind": "normsys", "up": 1.1, "down": 0.9},
        ],
    )
    mine = InfernoTemplateStrategy(
        100,
        1000,
        [
            {"name": "fsr", "kind": "histosys", "up": "up", "down": "down"},
            {"name": "bn", "kind": "normsys", "up": 1.1, "down": 0.9},
        ],
        histogram="softmax",
    )
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    aux = {"x_up": torch.as_tensor(x_up), "x_down": torch.as_tensor(x_dn)}
    expected = base.fisher(net, xt, yt, aux)
    got = mine.fisher(net, xt, yt, {}, templates={"up": (aux["x_up"], yt), "down": (aux["x_down"], yt)})
    assert expected is not None
    assert got is not None
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10)
    # and the loss (σ_μ) with its gradient in the weights
    var_b = torch.linalg.inv(expected)[0, 0]
    var_m = torch.linalg.inv(got)[0, 0]
    g_b = torch.autograd.grad(var_b, list(net.parameters()))
    g_m = torch.autograd.grad(var_m, list(net.parameters()))
    for a, b in zip(g_m, g_b, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_nuisance_on_both_samples_equals_the_closed_form() -> None:
    # One parameter shifting signal and background together, and a one-sided (mirrored) one.
    # At the Asimov point
    # ∂n/∂α = Σ_samples (up − down)/2 (code4p at 0), ∂n/∂μ = S, and I = JᵀD(1/n)J + diag(0, 1, 1).
    # Separate varied samples (not row-paired): different draws. Tolerance 1e-9 relative.
    x, y = _toy(80, 1)
    x_up, y_up = _toy(80, 2, shift=0.5)
    x_dn, y_dn = _toy(80, 3, shift=-0.5)
    x_up[y_up == 0, 1] += 0.3  # the signal moves too
    net = _net(1)
    x_tune, y_tune = _toy(80, 4, shift=0.2)
    s = InfernoTemplateStrategy(
        50,
        500,
        [
            {"name": "fsr", "kind": "histosys", "sample": "both", "up": "u", "down": "d"},
            {"name": "tune", "kind": "histosys", "up": "t", "down": "mirror"},  # one-sided, background
        ],
        histogram="softmax",
    )
    t = {
        k: (torch.as_tensor(a), torch.as_tensor(b))
        for k, a, b in (("u", x_up, y_up), ("d", x_dn, y_dn), ("t", x_tune, y_tune))
    }
    info = s.fisher(net, torch.as_tensor(x), torch.as_tensor(y), {}, templates=t)
    assert info is not None

    def h(arr: np.ndarray, lab: np.ndarray, label: int, total: float) -> torch.Tensor:
        rows = torch.as_tensor(arr[lab == label])
        return soft_histogram(net.bin_logits(rows), 0.1).detach() * total / rows.shape[0]

    sig, bkg = h(x, y, 0, 50), h(x, y, 1, 500)
    d_alpha = (
        h(x_up, y_up, 0, 50) - h(x_dn, y_dn, 0, 50) + h(x_up, y_up, 1, 500) - h(x_dn, y_dn, 1, 500)
    ) / 2
    d_tune = h(x_tune, y_tune, 1, 500) - bkg  # mirrored: (up − (2 nominal − up)) / 2
    jac = torch.stack([sig, d_alpha, d_tune], 1)
    closed = asimov_fisher(sig + bkg, jac, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
    np.testing.assert_allclose(info.detach().numpy(), closed.numpy(), rtol=1e-9)
    assert s.parameter_names == ["mu", "fsr", "tune"]


def test_short_training_from_separate_varied_samples_lowers_sigma_mu() -> None:
    # The varied samples come with the training data (aux "z": 0 nominal, +1 up, −1 down),
    # as `aalearn train --nuisance-file` gives them. A one-output network (KDE histogram of
    # the score). Asserted: the validation σ_μ after 6 epochs is at least 10 % below the
    # first epoch's (measured: 0.327 → 0.270, 17 %, on this toy, seed 0).
    parts = [_toy(1200, 10), _toy(1200, 11, shift=0.6), _toy(1200, 12, shift=-0.6)]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32)
    y = np.concatenate([p[1] for p in parts])
    z = np.repeat([0.0, 1.0, -1.0], 1200)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y, z = x[order], y[order], z[order]
    n_tr = 2700
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    strategy = get_strategy(
        "inferno-templates",
        signal_expected=100,
        background_expected=1000,
        nuisances=[{"name": "shape", "kind": "histosys", "sample": "both", "up": 1, "down": -1}],
        n_bins=5,
        bandwidth=0.1,
    )
    hist = train_classifier(
        net,
        x[:n_tr],
        y[:n_tr],
        x[n_tr:],
        y[n_tr:],
        aux_train={"z": z[:n_tr]},
        aux_val={"z": z[n_tr:]},
        strategy=strategy,
        epochs=6,
        batch_size=256,
        lr=3e-3,
        patience=6,
        progress=False,
        monitor="val_sigma_mu",
    )
    sigma = hist.extra["val_sigma_mu"]
    assert len(sigma) == 6
    assert min(sigma[1:]) < 0.9 * sigma[0], sigma


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="histogram"):
        InfernoTemplateStrategy(histogram="hard")
    with pytest.raises(ValueError, match="not among the templates"):
        InfernoTemplateStrategy(
            nuisances=[{"name": "f", "kind": "histosys", "up": "a", "down": "b"}],
            templates={"a": (np.zeros((2, 2)), np.array([0, 1]))},
        )
    with pytest.raises(ValueError, match="up/down"):
        InfernoTemplateStrategy(nuisances=[{"name": "f", "kind": "histosys", "up": True, "down": -1}])


def test_doctests() -> None:
    result = doctest.testmod(inferno_templates, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
