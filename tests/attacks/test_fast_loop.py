"""The fast paths of the gradient loop (issue 19): the one-node fused TopoDNN and the carried ``z``.

Truths used here, each independent of the code under test:

* the fused chain's value and input gradient against autograd through the unfused
  :class:`~aalearn.models.TopoDNN` (float64, tolerance 1e-10) and against finite
  differences (``torch.autograd.gradcheck``);
* PGD-L∞ on a linear logit :math:`w\\cdot x + b`: every sign step moves each entry by
  ``alpha`` against ``sign(w)`` until the ball's face, so iterate ``k`` is
  :math:`x_0 - \\min(k\\alpha, \\epsilon)\\,\\sigma\\,\\mathrm{sign}(w)`, computed here in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aalearn.attacks import pgd
from aalearn.attacks.components import CrossEntropyObjective, SignStep, ZeroInit
from aalearn.attacks.loop import GradientAttack
from aalearn.attacks.model import _ReluChain, fuse_topodnn
from aalearn.constraints import Budget
from aalearn.models import TopoDNN


def _random_topodnn(n_features: int, dtype: torch.dtype) -> TopoDNN:
    """A TopoDNN with non-trivial batch-norm statistics and input scaling, in eval mode."""
    torch.manual_seed(0)
    m = TopoDNN(n_features=n_features, hidden=(9, 6, 4)).to(dtype)
    with torch.no_grad():
        for block in m.blocks:
            norm = block.norm
            assert isinstance(norm, nn.BatchNorm1d)
            assert norm.running_mean is not None
            assert norm.running_var is not None
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
        m.input_mean.uniform_(-1, 1)
        m.input_scale.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("n_features", [7, 8, 87])  # 7 and 87: the padded first-layer gradient
def test_fused_chain_value_and_input_gradient_match_autograd(n_features: int) -> None:
    m = _random_topodnn(n_features, torch.float64)
    fused = fuse_topodnn(m)
    assert fused is not None
    x = torch.randn(64, n_features, dtype=torch.float64)
    target = (torch.rand(64) > 0.5).double()

    def value_and_grad(f: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        xa = x.clone().requires_grad_(True)
        z = f(xa).reshape(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(z, target, reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        return z.detach(), g

    z_ref, g_ref = value_and_grad(m)
    z_fused, g_fused = value_and_grad(fused)
    torch.testing.assert_close(z_fused, z_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(g_fused, g_ref, rtol=0, atol=1e-10)
    assert g_fused.shape == x.shape


def test_fused_chain_gradcheck_and_fallback() -> None:
    m = _random_topodnn(5, torch.float64)
    fused = fuse_topodnn(m)
    assert fused is not None
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _ReluChain.apply(t, fused), (x,), eps=1e-6, atol=1e-7)
    # no gradient recorded under no_grad; a single row (1-D input) takes the reference path
    with torch.no_grad():
        assert not fused(x).requires_grad
        z1 = fused(x.detach()[0])
    torch.testing.assert_close(z1, m(x.detach()[:1]).reshape(()), rtol=0, atol=1e-10)


class _Linear(nn.Module):
    def __init__(self, w: np.ndarray, b: float) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(w[None, :]))
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).reshape(-1)


def _linear_case() -> tuple[_Linear, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    f = 6
    w = rng.normal(size=f)
    w[2] = 0.0  # zero gradient: this entry never moves
    x = rng.normal(size=(40, f)).astype(np.float32).astype(np.float64)
    sigma = rng.uniform(0.05, 0.3, size=(40, f))
    model = _Linear(w, 0.0).eval()
    with torch.no_grad():
        labels = (model(torch.as_tensor(x, dtype=torch.float32)) >= 0).long().numpy()
    return model, x, sigma, w, labels


def test_pgd_without_box_reaches_the_face_of_the_ball() -> None:
    """The carried-z path (no box constraint): x_adv = x0 - eps·σ·sign(w)·(±1 by label)."""
    model, x, sigma, w, labels = _linear_case()
    eps = 0.5
    res = pgd(eps, steps=4, alpha=0.2, random_start=False).run(
        model, x, labels, sigma=sigma, constraints="none", batch_size=16
    )
    away = np.where(labels == 1, -1.0, 1.0)[:, None]  # the logit moves away from the label's side
    expected = x + away * eps * sigma * np.sign(w)[None, :]
    np.testing.assert_allclose(res.x_adv, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(res.x_adv[:, 2], x[:, 2])
    assert np.max(np.abs(res.x_adv - x) / sigma) <= eps  # exact budget, no tolerance


def test_frozen_rows_keep_their_first_fooling_iterate() -> None:
    """stop_on_success with the carried z: each row stops at the first iterate that fools."""
    model, x, sigma, w, labels = _linear_case()
    eps, alpha, steps = 2.0, 0.25, 8
    attack = GradientAttack(
        name="pgd-stop",
        objective=CrossEntropyObjective(),
        step=SignStep(alpha),
        steps=steps,
        init=ZeroInit(),
        budget=Budget("linf", eps),
        stop_on_success=True,
    )
    res = attack.run(model, x, labels, sigma=sigma, constraints="none", batch_size=16)
    # NumPy truth: iterate k, its logit, the first k that flips the decision
    away = np.where(labels == 1, -1.0, 1.0)[:, None]
    expected = x.copy()
    for i in range(len(x)):
        for k in range(steps + 1):
            xk = x[i] + away[i] * min(k * alpha, eps) * sigma[i] * np.sign(w)
            if (float(xk @ w) >= 0) != bool(labels[i]):
                expected[i] = xk
                break
    fooled = np.any(expected != x, axis=1)
    assert 0 < fooled.sum() < len(x)  # some rows freeze early, others never flip
    np.testing.assert_allclose(res.x_adv[fooled], expected[fooled], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(res.success, fooled)
