"""Tests written to kill surviving mutants of ``attacks/`` (issue 23; docs/dev/mutation.md).

Each test checks a value against an independent reference: a hand-solved knapsack or FAB
step (the arithmetic is written out next to each expected number), scikit-learn's AUC, or
NumPy distances recomputed from the adversarial jets.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from aalearn.attacks.components import (
    CrossEntropyObjective,
    FABL1Step,
    MomentumSignStep,
    SignStep,
    SparseL1Step,
    StepContext,
    ZeroInit,
    l1_knapsack,
)
from aalearn.attacks.loop import GradientAttack
from aalearn.constraints import Budget


def _ctx(
    z: list[list[float]],
    *,
    margin: list[float],
    grad_z: list[list[float]] | None = None,
    grad_margin: list[list[float]] | None = None,
    lo: list[list[float]] | None = None,
) -> StepContext:
    zt = torch.tensor(z, dtype=torch.float64)
    return StepContext(
        z=zt,
        grad_z=torch.zeros_like(zt) if grad_z is None else torch.tensor(grad_z, dtype=torch.float64),
        value=torch.zeros(len(z), dtype=torch.float64),
        margin=torch.tensor(margin, dtype=torch.float64),
        lo=None if lo is None else torch.tensor(lo, dtype=torch.float64),
        hi=None,
        state={"sigma": torch.ones_like(zt), "momentum": torch.zeros_like(zt)},
        grad_margin=None if grad_margin is None else torch.tensor(grad_margin, dtype=torch.float64),
    )


def test_fab_step_mixes_the_two_projections_with_alpha_as_a_ratio() -> None:
    """z = (0.2, 0), margin 1, ∇m = (1, 2), lower limits (-1, -0.1), η = 1, α_max = 1.

    From z (need 1): coordinate 1 first (|g| = 2) down to its limit, δ₁ = -0.1 (decrease
    0.2), then coordinate 0, δ₀ = -0.8 (decrease 0.8): δ = (-0.8, -0.1), |δ|₁ = 0.9.
    From the clean point (need 1 - g·z = 0.8): δ₁ = -0.1, then δ₀ = -0.6: δ₀' = (-0.6, -0.1),
    |δ₀'|₁ = 0.7. α = 0.9 / 1.6 = 0.5625;
    z' = 0.4375 (z + δ) + 0.5625 δ₀' = 0.4375 (-0.6, -0.1) + 0.5625 (-0.6, -0.1) = (-0.6, -0.1).
    Without the lower limits on the clean projection δ₀' = (0, -0.4), |δ₀'| = 0.4, and
    z' = (-0.1846, -0.3077); with α a product instead of a ratio, z' = (-0.57, -0.1025).
    """
    ctx = _ctx([[0.2, 0.0]], margin=[1.0], grad_margin=[[1.0, 2.0]], lo=[[-1.0, -0.1]])
    out = FABL1Step(alpha_max=1.0, eta=1.0, beta=0.9, weights="raw")(ctx)
    torch.testing.assert_close(out, torch.tensor([[-0.6, -0.1]], dtype=torch.float64), rtol=0, atol=1e-9)


def test_fab_step_without_box_follows_the_hand_computation() -> None:
    """z = (0.2, 0), margin 1, ∇m = (1, -2), no box, η = 1, α_max = 1.

    δ = (0, 0.5) (need 1 on coordinate 1), |δ| = 0.5; from the clean point the need is
    1 - 0.2 = 0.8: δ₀' = (0, 0.4), |δ₀'| = 0.4. α = 0.5 / 0.9 = 5/9;
    z' = 4/9 (0.2, 0.5) + 5/9 (0, 0.4) = (0.0888…, 0.4444…).
    """
    ctx = _ctx([[0.2, 0.0]], margin=[1.0], grad_margin=[[1.0, -2.0]])
    out = FABL1Step(alpha_max=1.0, eta=1.0, weights="raw")(ctx)
    expected = torch.tensor([[4 / 9 * 0.2, 4 / 9 * 0.5 + 5 / 9 * 0.4]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def test_sparse_step_uses_the_margin_gradient_when_given() -> None:
    """∇m = (1, 0) given; ∇objective = (0, -3) would point at the other coordinate.

    need = margin + overshoot = 1.02 on coordinate 0: z' = (-1.02, 0).
    """
    ctx = _ctx([[0.0, 0.0]], margin=[1.0], grad_z=[[0.0, -3.0]], grad_margin=[[1.0, 0.0]])
    out = SparseL1Step(overshoot=0.02)(ctx)
    torch.testing.assert_close(out, torch.tensor([[-1.02, 0.0]], dtype=torch.float64), rtol=0, atol=1e-12)


def test_momentum_step_does_not_move_entries_without_gradient() -> None:
    """sign(0) = 0: an entry whose gradient and momentum are zero stays where it is."""
    ctx = _ctx([[0.5, -0.5]], margin=[1.0], grad_z=[[2.0, 0.0]])
    out = MomentumSignStep(alpha=0.1)(ctx)
    torch.testing.assert_close(out, torch.tensor([[0.6, -0.5]], dtype=torch.float64), rtol=0, atol=1e-12)


def test_knapsack_caps_unbounded_coordinates_at_1e6_sigma() -> None:
    """A need the caps cannot meet: every coordinate goes to its 1e6 σ cap (largest decrease).

    g = (2e-7, 1e-7), need 1: 1e6 σ of each lowers the function by 0.2 + 0.1 = 0.3 < 1.
    """
    d = l1_knapsack(
        torch.tensor([[2e-7, 1e-7]], dtype=torch.float64),
        torch.zeros(1, 2, dtype=torch.float64),
        torch.tensor([1.0], dtype=torch.float64),
        None,
        None,
        torch.ones(1, 2, dtype=torch.float64),
    )
    torch.testing.assert_close(d, torch.tensor([[-1e6, -1e6]], dtype=torch.float64), rtol=1e-12, atol=0)


def _attack(**kw: object) -> GradientAttack:
    args: dict[str, object] = {
        "name": "pgd-test",
        "objective": CrossEntropyObjective(),
        "step": SignStep(0.25),
        "steps": 3,
        "init": ZeroInit(),
        "budget": Budget("linf", 0.5),
    }
    args.update(kw)
    return GradientAttack(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attr", "value"), [("steps", True), ("steps", 2.5), ("restarts", True), ("restarts", 0)]
)
def test_loop_refuses_non_integer_counts(attr: str, value: object) -> None:
    with pytest.raises(ValueError, match=attr):
        _attack(**{attr: value})


def test_loop_params_name_every_component() -> None:
    assert _attack(refine=True).params() == {
        "steps": 3,
        "restarts": 1,
        "select": "objective",
        "stop_on_success": False,
        "refine": True,
        "objective": "CrossEntropyObjective",
        "step": "SignStep",
        "init": "ZeroInit",
        "norm": "linf",
        "eps": 0.5,
    }


class _Linear(nn.Module):
    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(w[None, :], dtype=torch.float32))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).reshape(-1)


def _case() -> tuple[_Linear, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    w = rng.normal(size=5)
    x = rng.normal(size=(60, 5)).astype(np.float32).astype(np.float64)
    sigma = rng.uniform(0.2, 0.6, size=(60, 5))
    model = _Linear(w).eval()
    with torch.no_grad():
        labels = (model(torch.as_tensor(x, dtype=torch.float32)) >= 0).long().numpy()
    return model, x, sigma, labels


def test_result_metrics_are_the_numpy_values(capsys: pytest.CaptureFixture[str]) -> None:
    """Distances of the fooled jets, AUC per signal label and iteration counts, recomputed."""
    model, x, sigma, labels = _case()
    res = _attack(budget=Budget("linf", 1.5), steps=6).run(
        model, x, labels, sigma=sigma, constraints="none", batch_size=32, progress=False
    )
    assert "pgd-test" not in capsys.readouterr().err  # no progress bar unless asked
    m = res.metrics()
    mask = res.success
    assert mask.sum() >= 10  # the budget of 1.5 σ fools a good share of these jets
    z = (res.x_adv - x) / sigma
    assert m["attack"] == "pgd-test"
    assert m["median_l2_sigma_fooled"] == pytest.approx(np.median(np.linalg.norm(z[mask], axis=1)), rel=1e-9)
    assert m["median_changed_features_fooled"] == pytest.approx(
        np.median((res.x_adv[mask] != x[mask]).sum(axis=1)), abs=0
    )
    assert m["median_linf_sigma_fooled"] == pytest.approx(np.median(np.abs(z[mask]).max(axis=1)), rel=1e-9)
    # the AUC of the attacked scores, with either class as the signal (sklearn's positive class)
    assert res.score_adv is not None
    for signal in (0, 1):
        expected = roc_auc_score(labels == signal, res.score_adv if signal == 1 else -res.score_adv)
        assert res.auc(signal_label=signal) == pytest.approx(expected, abs=1e-12)
    # every attacked row ran every step (no early stop): integer counts, all equal
    it = res.extra["iterations"]
    assert it.dtype.kind == "i"
    assert len(set(it.tolist())) == 1


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, sigma, labels = _case()
    _attack().run(model, x, labels, sigma=sigma, constraints="none", progress=True)
    assert "pgd-test" in capsys.readouterr().err


def test_empty_input_reports_every_row_feasible() -> None:
    """No rows: nothing is infeasible, so the feasible fraction is 1 (not NaN)."""
    model, x, sigma, labels = _case()
    res = _attack().run(model, x[:0], labels[:0], sigma=sigma[:0], constraints="none")
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        m = res.metrics()
    assert m["n"] == 0
    assert m["feasible_fraction"] == 1.0
