"""Learning to pivot: the adversaries, the strategy's two objectives, resumption and bad configurations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from aalearn.training import train_classifier
from aalearn.training.pivot import (
    CategoricalAdversary,
    MixtureDensityNetwork,
    PivotStrategy,
    fit_adversary,
    gaussian_entropy,
)
from aalearn.training.strategy import Batch, TrainingData, get_strategy

pytestmark = pytest.mark.usefixtures("single_torch_thread")

Toy = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _toy(n: int, seed: int) -> Toy:
    """The pivot paper's toy: class 1's second feature is shifted by the nuisance z ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n)
    x = rng.normal(size=(n, 2)) + y[:, None] * np.array([1.0, 1.0])
    x[:, 1] += y * z
    return x.astype(np.float32), y.astype(np.int64), z


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def test_gaussian_entropy_and_adversary_shapes() -> None:
    assert gaussian_entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e))
    assert gaussian_entropy(2.0) == pytest.approx(gaussian_entropy() + math.log(2.0))
    mdn = MixtureDensityNetwork(n_components=5, hidden=20)
    nll = mdn.nll(torch.rand(7), torch.randn(7))
    assert nll.shape == (7,)
    assert torch.isfinite(nll).all()
    cat = CategoricalAdversary(n_classes=3)
    assert cat.nll(torch.rand(4), torch.tensor([0, 2, 1, 0])).shape == (4,)
    with pytest.raises(ValueError, match="n_components"):
        MixtureDensityNetwork(n_components=0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_entropy(-1.0)


def test_adversary_learns_the_nuisance_from_a_plain_classifier() -> None:
    """The adversary's own objective: on a classifier that uses x1, L_r drops below H(Z)."""
    x, y, z = _toy(2000, seed=1)
    model = _model()
    train_classifier(model, x, y, x[:500], y[:500], epochs=3, batch_size=128, lr=1e-2, progress=False)
    adv = fit_adversary(model, x, z, steps=200, batch_size=256, lr=1e-2)
    x_te, _, z_te = _toy(4000, seed=2)
    assert adv.adversary_loss(model, x_te, z_te) < gaussian_entropy() - 0.02


def test_classifier_step_lowers_the_value_function_with_the_adversary_fixed() -> None:
    """The classifier's own objective E_λ = L_f − λ L_r falls over a few steps (adversary frozen)."""
    x, y, z = _toy(1024, seed=3)
    model = _model()
    strategy = PivotStrategy(lam=5.0, adversary_steps=0, adversary_pretrain_steps=200, adversary_lr=1e-2)
    strategy.setup(model, TrainingData(x, y, {"z": z}, x, y, {"z": z}, seed=0))
    strategy.start_epoch(model, 0)  # pre-trains the adversary on the frozen classifier
    full = Batch(
        torch.from_numpy(x), torch.from_numpy(y).float(), torch.arange(1024), {"z": torch.from_numpy(z)}
    )

    def value() -> float:
        with torch.no_grad():
            return float(strategy.loss(model, full))

    before = value()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(20):
        idx = torch.arange(step * 128, (step + 1) * 128) % 1024
        batch = Batch(full.x[idx], full.y[idx], idx, {"z": full.aux["z"][idx]})
        loss = strategy.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        strategy.after_step(model, batch)  # adversary_steps=0: the adversary stays fixed
    assert value() < before


@pytest.mark.slow
def test_pivot_in_the_training_loop_reduces_the_dependence_on_z() -> None:
    x, y, z = _toy(2000, seed=4)
    x_va, y_va, z_va = _toy(1000, seed=5)
    plain = _model()
    train_classifier(plain, x, y, x_va, y_va, epochs=3, batch_size=128, lr=1e-2, progress=False)
    pivoted = _model()
    pivoted.load_state_dict(plain.state_dict())
    hist = train_classifier(
        pivoted,
        x,
        y,
        x_va,
        y_va,
        strategy="pivot",
        strategy_options={
            "lam": 50.0,
            "adversary_steps": 3,
            "adversary_pretrain_steps": 200,
            "adversary_lr": 1e-2,
        },
        aux_train={"z": z},
        aux_val={"z": z_va},
        epochs=3,
        batch_size=64,
        lr=3e-3,
        patience=3,
        monitor="pivot_val_objective",
        progress=False,
    )
    assert {"adversary_loss", "classifier_bce", "adversary_val_loss", "pivot_val_objective"} <= set(
        hist.extra
    )
    # The dependence on z: mean output of class-1 rows at z = +1 minus at z = −1.
    rng = np.random.default_rng(6)
    x1 = (rng.normal(size=(2000, 2)) + 1.0).astype(np.float32)

    def gap(model: torch.nn.Module) -> float:
        with torch.no_grad():
            hi = torch.sigmoid(model(torch.from_numpy(x1 + np.array([0, 1], np.float32)))).mean()
            lo = torch.sigmoid(model(torch.from_numpy(x1 - np.array([0, 1], np.float32)))).mean()
        return float(hi - lo)

    assert gap(plain) > 0.1
    assert gap(pivoted) < 0.5 * gap(plain)


def test_resumed_pivot_training_is_bit_identical(tmp_path: Path) -> None:
    x, y, z = _toy(512, seed=7)
    options = {"lam": 5.0, "adversary_steps": 2, "adversary_pretrain_steps": 10, "pretrain_epochs": 1}
    kwargs = {
        "strategy": "pivot",
        "strategy_options": options,
        "aux_train": {"z": z},
        "aux_val": {"z": z},
        "batch_size": 128,
        "lr": 3e-3,
        "patience": 5,
        "monitor": "pivot_val_objective",
        "progress": False,
    }
    full = _model(1)
    h_full = train_classifier(full, x, y, x, y, epochs=3, **kwargs)  # type: ignore[arg-type]
    resumed = _model(1)
    train_classifier(resumed, x, y, x, y, epochs=2, checkpoint_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
    resumed = _model(1)  # a fresh process would start from new weights
    h_res = train_classifier(resumed, x, y, x, y, epochs=3, checkpoint_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
    assert h_res.resumed_epochs == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(h_res.extra["adversary_loss"], h_full.extra["adversary_loss"])
    assert math.isnan(h_full.extra["adversary_loss"][0])  # epoch 0 pre-trains the classifier alone
    assert h_full.extra["pivot_val_objective"][0] == math.inf


def test_categorical_nuisance() -> None:
    x, y, _ = _toy(600, seed=8)
    z = np.repeat([-1.0, 0.0, 1.0], 200)
    strategy = PivotStrategy(lam=1.0, nuisance="categorical", adversary_steps=1, adversary_pretrain_steps=5)
    model = _model()
    train_classifier(model, x, y, x, y, strategy=strategy, aux_train={"z": z}, epochs=1, progress=False)
    assert isinstance(strategy.adversary, CategoricalAdversary)
    assert strategy.adversary_loss(model, x, z) > 0
    with pytest.raises(ValueError, match="not seen in the training set"):
        strategy.adversary_loss(model, x[:2], np.array([0.5, 0.0]))


def test_bad_configurations_give_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"lam \(λ\) must be a finite non-negative"):
        PivotStrategy(lam=-1.0)
    with pytest.raises(ValueError, match="lam"):
        get_strategy("pivot", lam=-2.0)
    with pytest.raises(ValueError, match="nuisance must be"):
        PivotStrategy(nuisance="discrete")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adversary_class must be 0, 1 or None"):
        PivotStrategy(adversary_class=2)
    with pytest.raises(ValueError, match="adversary_steps"):
        PivotStrategy(adversary_steps=-1)
    x, y, z = _toy(64, seed=9)
    with pytest.raises(
        ValueError, match=r"needs the nuisance as auxiliary array 'z' in aux_train .*available: mass"
    ):
        train_classifier(
            _model(), x, y, x, y, strategy="pivot", aux_train={"mass": z}, epochs=1, progress=False
        )
    with pytest.raises(ValueError, match="no training row has that label"):
        PivotStrategy(adversary_class=1).setup(_model(), TrainingData(x, 0 * y, {"z": z}, x, y, {}))
    with pytest.raises(ValueError, match="at least 2 distinct values"):
        PivotStrategy(nuisance="categorical").setup(_model(), TrainingData(x, y, {"z": 0 * z}, x, y, {}))
    with pytest.raises(ValueError, match="setup"):
        PivotStrategy(lam=1.0).loss(
            _model(), Batch(torch.from_numpy(x), torch.zeros(64), torch.arange(64), {})
        )
