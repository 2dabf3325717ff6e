"""Sanity checks: completeness, model randomisation, stability."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from aalearn.explain import sanity as sanity_module
from aalearn.explain.attack import explain_attack, jaccard_top_k
from aalearn.explain.attributions import attribute
from aalearn.explain.sanity import (
    completeness_error,
    completeness_error_median,
    interpret_randomization,
    randomization_test,
    rank_correlation,
    stability,
)


def test_completeness_error_values() -> None:
    assert completeness_error([[1.0, 1.0], [0.5, 0.5]], [2.0, 1.0], [0.0, 0.0]) == 0.0
    # errors 1 and 0 over |Δz| 2 and 1: mean 0.5 / mean 1.5
    assert completeness_error([[2.0, 1.0], [0.5, 0.5]], [2.0, 1.0], [0.0, 0.0]) == pytest.approx(1 / 3)
    assert completeness_error_median([[2.0, 1.0], [0.5, 0.5], [1.0, 1.0]], [2.0, 1.0, 2.0], [0.0] * 3) == 0.0
    assert np.isnan(completeness_error([[1.0]], [1.0], [1.0]))


def test_rank_correlation_handles_ties_and_order() -> None:
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)
    assert np.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(20, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    )


def _trained_toy() -> tuple[torch.nn.Module, np.ndarray]:
    """An MLP trained on a target that depends on features 0-4 only, with strong weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20)).astype(np.float32)
    y = (x[:, :5] @ np.array([3.0, -2.5, 2.0, -1.5, 1.0], dtype=np.float32)).astype(np.float32)
    model = _mlp(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        loss = ((model(xt).squeeze(1) - yt) ** 2).mean()
        loss.backward()
        opt.step()
    return model.eval(), x[:100]


def test_randomization_test_identical_models_correlate_and_randomised_do_not() -> None:
    model, x = _trained_toy()
    # the identical model: reference attributions of a copy give ρ = 1
    ref = attribute(model, x, method="saliency").mean_abs()
    same = attribute(copy.deepcopy(model), x, method="saliency").mean_abs()
    assert rank_correlation(ref, same) == pytest.approx(1.0)
    rho, text = randomization_test(model, x, method="saliency", seed=0)
    assert rho < 0.5, rho
    assert text.split(":")[0] in ("passes", "inconclusive")


def test_interpretation_thresholds() -> None:
    assert interpret_randomization(0.9).startswith("fails")
    assert interpret_randomization(0.1).startswith("passes")
    assert interpret_randomization(0.4).startswith("inconclusive")
    assert interpret_randomization(float("nan")).startswith("not measured")


def test_stability_zero_for_linear_and_positive_for_relu() -> None:
    lin = torch.nn.Linear(20, 1)
    x = np.random.default_rng(1).normal(size=(50, 20))
    assert stability(lin, x, 0.1, method="saliency") == pytest.approx(0.0, abs=1e-6)
    model, xs = _trained_toy()
    small = stability(model, xs, 0.01, method="saliency", scale=0.1)
    large = stability(model, xs, 1.0, method="saliency", scale=1.0)
    assert 0.0 <= small < large


def test_attack_explanation_values() -> None:
    x = np.zeros((4, 6))
    names = ["ConstPT_0", "ConstPT_1", "ConstPhi_1", "ConstPT_2", "ConstEta_2", "ConstPhi_2"]
    adv = x.copy()
    adv[:2, 1] = 0.2  # two successful jets move ConstPT_1 by 2σ
    adv[:2, 5] = 2 * np.pi - 0.1  # φ is periodic: a move of -0.1, i.e. 1σ
    adv[3, 0] = 5.0  # an unsuccessful jet, ignored
    success = np.array([True, True, False, False])
    res = explain_attack(
        x, adv, 0.1, success=success, feature_names=names, importance=[0, 9, 0, 0, 0, 1], top_k=2
    )
    assert res.n_successful == 2
    np.testing.assert_allclose(res.per_feature, [0, 2, 0, 0, 0, 1], atol=1e-9)
    assert res.per_rank == pytest.approx({0: 0.0, 1: 1.0, 2: 1 / 3})
    assert res.per_kind["pt"] == pytest.approx(2 / 3)
    assert res.top_attacked == ["ConstPT_1", "ConstPhi_2"]
    assert res.overlap == 1.0
    assert jaccard_top_k([1, 2, 3], [3, 2, 1], 1) == 0.0
    with pytest.raises(ValueError, match="strictly positive"):
        explain_attack(x, adv, 0.0)


def test_randomization_plumbing_identical_copy_gives_one(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _trained_toy()
    monkeypatch.setattr(sanity_module, "randomized_copy", lambda m, seed=0: copy.deepcopy(m))
    rho, text = randomization_test(model, x, method="integrated-gradients", steps=16)
    assert rho == pytest.approx(1.0)
    assert text.startswith("fails")


def test_randomization_fails_when_input_scales_dominate() -> None:
    """Integrated Gradients of a linear model is w·x: with feature scales spanning four
    decades the ranking survives any re-initialisation (the Adebayo et al. failure mode)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(20, 1)
    scales = 10.0 ** np.linspace(0, 4, 20)
    x = np.random.default_rng(0).normal(size=(100, 20)) * scales
    rho, text = randomization_test(model, x, method="integrated-gradients", steps=4)
    assert rho > 0.7
    assert text.startswith("fails")
    rho_sal, _ = randomization_test(model, x, method="saliency")  # the gradient ignores the scales
    assert rho_sal < rho
