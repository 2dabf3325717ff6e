"""Attributions: exact on linear models, concentrated on the only feature a model uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aalearn.explain.attributions import (
    METHODS,
    attribute,
    feature_groups,
    make_baseline,
    mean_abs_by_class,
    randomized_copy,
    sigma_importance,
)
from aalearn.explain.sanity import completeness_error
from aalearn.models import TopoDNN


def _linear(weights: list[float], bias: float = 0.3) -> torch.nn.Linear:
    lin = torch.nn.Linear(len(weights), 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weights]))
        lin.bias.fill_(bias)
    return lin


@pytest.mark.parametrize("method", ["integrated-gradients", "deeplift", "gradient-shap"])
@pytest.mark.parametrize("baseline", ["zeros", "mean"])
def test_linear_model_attribution_is_weight_times_displacement(method: str, baseline: str) -> None:
    w = np.array([2.0, -1.0, 0.5, 0.0])
    x = np.random.default_rng(1).normal(size=(16, 4))
    b = np.zeros(4) if baseline == "zeros" else x.mean(axis=0)
    attr = attribute(_linear(w.tolist()), x, method=method, baseline=baseline, steps=16)
    np.testing.assert_allclose(attr.values, w * (x - b), atol=1e-5)
    if method != "gradient-shap":
        np.testing.assert_allclose(attr.values.sum(axis=1), attr.logits - attr.baseline_logits, atol=1e-5)


def test_saliency_of_linear_model_is_the_weight() -> None:
    w = [1.5, -3.0, 0.25]
    x = np.random.default_rng(2).normal(size=(5, 3))
    attr = attribute(_linear(w), x, method="saliency")
    np.testing.assert_allclose(attr.values, np.tile(w, (5, 1)), atol=1e-6)
    assert np.all(np.isnan(attr.baseline_logits))


def test_explicit_baseline_point() -> None:
    w = np.array([1.0, 2.0])
    x = np.array([[3.0, 4.0]])
    attr = attribute(_linear(w.tolist()), x, baseline=np.array([1.0, 1.0]), steps=4)
    np.testing.assert_allclose(attr.values, [[2.0, 6.0]], atol=1e-5)


def test_integrated_gradients_completeness_on_topodnn_like_mlp() -> None:
    torch.manual_seed(3)
    model = TopoDNN(n_features=87, hidden=(64, 32, 8)).eval()
    # give the batch-norm layers non-trivial statistics, as a trained model has
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = np.abs(np.random.default_rng(4).normal(0.0, 0.3, size=(200, 87)))
    attr = attribute(model, x, method="integrated-gradients")  # default steps
    err = completeness_error(attr.values, attr.logits, attr.baseline_logits)
    assert err <= 0.01
    # and the check is sensitive: too few steps break completeness measurably
    coarse = attribute(model, x, method="integrated-gradients", steps=2)
    assert completeness_error(coarse.values, coarse.logits, coarse.baseline_logits) > err


class _OnlyFeature(torch.nn.Module):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.n_features = 10  # the first Linear layer sees one column only
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, self.index : self.index + 1]).squeeze(1)


@pytest.mark.parametrize("method", METHODS)
def test_model_using_one_feature_gets_all_attribution(method: str) -> None:
    torch.manual_seed(5)
    model = _OnlyFeature(3)
    x = np.random.default_rng(6).normal(size=(64, 10))
    imp = attribute(model, x, method=method, baseline="mean", steps=32).mean_abs()
    assert int(np.argmax(imp)) == 3
    assert imp[3] / imp.sum() > 0.99


def test_unknown_method_and_baseline_and_width() -> None:
    lin = _linear([1.0, 2.0])
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(lin, np.zeros((2, 2)), method="lime")
    with pytest.raises(ValueError, match="unknown baseline"):
        attribute(lin, np.zeros((2, 2)), baseline="median")
    with pytest.raises(ValueError, match="expects 2 input features"):
        attribute(lin, np.zeros((2, 3)))


def test_sigma_importance_is_gradient_times_sigma() -> None:
    lin = _linear([2.0, -4.0])
    out = sigma_importance(lin, np.zeros((3, 2)), np.array([0.5, 0.25]))
    np.testing.assert_allclose(out, np.tile([1.0, 1.0], (3, 1)), atol=1e-6)


def test_helpers() -> None:
    np.testing.assert_allclose(make_baseline(np.array([[1.0, 3.0], [3.0, 5.0]]), "mean"), [[2.0, 4.0]])
    assert mean_abs_by_class([[1.0, -2.0], [3.0, 4.0], [-5.0, 0.0]], [0, 1, 1])["1"].tolist() == [4.0, 2.0]
    assert feature_groups(["ConstPT_0", "ConstEta_2", "x"]) == [("pt", 0), ("eta", 2), ("other", -1)]
    lin = _linear([1.0, 2.0])
    rnd = randomized_copy(lin, seed=1)
    assert not torch.equal(rnd.weight, lin.weight)
    assert torch.equal(lin.weight, torch.tensor([[1.0, 2.0]]))  # the original is untouched
