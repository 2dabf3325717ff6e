"""TopoDNN architecture, logits/probabilities and the batched inference helper."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from aalearn.models import DEFAULT_HIDDEN, TopoDNN, model_n_features, predict_logits, predict_proba


def _n_params(n_features: int, hidden: tuple[int, ...], batchnorm: bool = True) -> int:
    widths = (n_features, *hidden, 1)
    linear = sum(a * b + b for a, b in itertools.pairwise(widths))
    return linear + (2 * sum(hidden) if batchnorm else 0)


def test_default_architecture_matches_the_challenge_model() -> None:
    model = TopoDNN()
    assert model.n_features == 87
    assert model.hidden == DEFAULT_HIDDEN == (300, 102, 12, 6)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (87, 300),
        (300, 102),
        (102, 12),
        (12, 6),
        (6, 1),
    ]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [300, 102, 12, 6]
    assert all(m.eps == pytest.approx(1e-3) and m.momentum == pytest.approx(0.01) for m in norms)
    # 26 400 + 30 702 + 1 236 + 78 + 7 weights and biases, 2 × 420 batch-norm affine parameters.
    assert model.n_parameters == _n_params(87, DEFAULT_HIDDEN) == 59_263


def test_block_order_is_keras_dense_relu_then_batchnorm() -> None:
    block = TopoDNN(n_features=3, hidden=(4,)).blocks[0]
    kinds = [type(m) for m in block.children()]
    assert kinds[:3] == [nn.Linear, nn.ReLU, nn.BatchNorm1d]
    # Functional check: with non-trivial BN statistics, eval output = BN(ReLU(Wx + b)).
    with torch.no_grad():
        block.norm.running_mean.copy_(torch.tensor([0.5, -0.2, 0.1, 0.3]))
        block.norm.running_var.copy_(torch.tensor([2.0, 0.5, 1.5, 0.7]))
        block.norm.weight.copy_(torch.tensor([1.5, 0.5, -1.0, 2.0]))
        block.norm.bias.copy_(torch.tensor([0.1, 0.2, 0.3, -0.4]))
    block.eval()
    x = torch.randn(6, 3)
    h = torch.relu(block.linear(x))
    bn = block.norm
    expected = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize(("hidden", "batchnorm"), [((8, 4), True), ((5,), False), ((), True)])
def test_configurable_sizes_and_config_rebuilds(hidden: tuple[int, ...], batchnorm: bool) -> None:
    model = TopoDNN(n_features=6, hidden=hidden, batchnorm=batchnorm, dropout=0.2)
    assert model.n_parameters == _n_params(6, hidden, batchnorm)
    rebuilt = TopoDNN(**model.config)
    assert rebuilt.config == model.config
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == (batchnorm and bool(hidden))
    assert any(isinstance(m, nn.Dropout) for m in model.modules()) == bool(hidden)


def test_forward_returns_logits_and_predict_proba_is_their_sigmoid() -> None:
    model = TopoDNN(n_features=5, hidden=(16, 4)).eval()
    x = torch.randn(32, 5)
    logits = model(x)
    assert logits.shape == (32,)
    torch.testing.assert_close(model.predict_proba(x), torch.sigmoid(logits))
    p = predict_proba(model, x.numpy())
    assert p.dtype == np.float32
    assert p.shape == (32,)
    np.testing.assert_allclose(p, torch.sigmoid(logits).detach().numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(predict_logits(model, x.numpy()), logits.detach().numpy(), rtol=0, atol=1e-6)


def test_predict_proba_batches_uses_eval_mode_and_restores_training_mode() -> None:
    model = TopoDNN(n_features=4, hidden=(8,), dropout=0.5)
    with torch.no_grad():
        model.blocks[0].norm.running_mean.fill_(3.0)  # eval mode must use these statistics
    model.train()
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    p_small = predict_proba(model, x, batch_size=7)
    p_big = predict_proba(model, x, batch_size=8192)
    np.testing.assert_allclose(p_small, p_big, rtol=0, atol=1e-6)
    assert model.training  # restored
    model.eval()
    np.testing.assert_allclose(p_big, model.predict_proba(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


def test_dropout_is_only_active_in_train_mode() -> None:
    model = TopoDNN(n_features=4, hidden=(64,), dropout=0.5, batchnorm=False)
    x = torch.randn(8, 4)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_predict_proba_input_errors() -> None:
    model = TopoDNN(n_features=4, hidden=(3,))
    with pytest.raises(ValueError, match="expects 4"):
        predict_proba(model, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        predict_proba(model, np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="dimensions"):
        predict_proba(model, np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        predict_proba(model, np.zeros((2, 4)), batch_size=0)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        model(torch.zeros(2, 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_features": 0}, "n_features"),
        ({"n_features": 2.5}, "n_features"),
        ({"hidden": (3, 0)}, "hidden width"),
        ({"hidden": "300"}, "sequence"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"batchnorm_eps": 0.0}, "batchnorm_eps"),
        ({"batchnorm_momentum": 1.5}, "batchnorm_momentum"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TopoDNN(**kwargs)  # type: ignore[arg-type]


def test_model_n_features_fallbacks() -> None:
    assert model_n_features(TopoDNN(n_features=9, hidden=(2,))) == 9
    assert model_n_features(nn.Sequential(nn.Linear(7, 1))) == 7
    assert model_n_features(nn.Sequential(nn.ReLU())) is None


def test_input_scaling_is_part_of_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from aalearn.models import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 0.01, size=(200, 87)).astype(np.float32)
    x[:, 5] = 0.0  # a constant column keeps scale 1
    model = TopoDNN().fit_input_scaling(x)
    standardized = (torch.as_tensor(x) - model.input_mean) / model.input_scale
    assert torch.allclose(standardized.mean(0), torch.zeros(87), atol=1e-3)
    assert model.input_scale[5] == 1.0
    assert torch.allclose(standardized[:, :5].std(0), torch.ones(5), atol=1e-3)
    path = save_checkpoint(model.eval(), tmp_path / "m.safetensors")
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.input_scale, model.input_scale)  # type: ignore[arg-type]
    assert torch.equal(loaded(torch.as_tensor(x[:8])), model(torch.as_tensor(x[:8])))
    with pytest.raises(ValueError, match="NaN"):
        TopoDNN().fit_input_scaling(np.full((4, 87), np.nan))
    with pytest.raises(ValueError, match="at least 2 rows"):
        TopoDNN().fit_input_scaling(np.zeros((4, 86)))
