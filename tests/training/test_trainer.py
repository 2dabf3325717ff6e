"""The training loop: learning, determinism, early stopping, L1, hooks and input validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aalearn.core.config import TrainConfig
from aalearn.models import TopoDNN, predict_proba
from aalearn.training import TrainingHistory, bce_batch_loss, l1_penalty, train_classifier
from aalearn.training.strategy import Batch, Strategy, TrainingData
from aalearn.training.trainer import CHECKPOINT_FILE, FINAL_MODEL_FILE, TrainingDivergedError

Data = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread; two threads stall on a shared, busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _toy(
    n_train: int = 400, n_val: int = 200, n_features: int = 4, shift: float = 2.0, seed: int = 0
) -> Data:
    """Two unit Gaussian blobs at ±shift/2 along every axis (nearly separable, centred)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_train + n_val)
    x = rng.normal(size=(n_train + n_val, n_features)) + shift * (y[:, None] - 0.5)
    x = x.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _model(n_features: int = 4, seed: int = 1, **kw: Any) -> TopoDNN:
    torch.manual_seed(seed)
    return TopoDNN(n_features=n_features, hidden=kw.pop("hidden", (16, 8)), **kw)


def _val_metrics(
    model: nn.Module, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> tuple[float, float]:
    p = predict_proba(model, x).astype(np.float64)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(np.mean((p > 0.5) == y))


def test_training_improves_validation_loss_and_accuracy() -> None:
    x_tr, y_tr, x_va, y_va = _toy()
    model = _model()
    loss0, acc0 = _val_metrics(model, x_va, y_va)
    hist = train_classifier(model, x_tr, y_tr, x_va, y_va, epochs=8, batch_size=32, lr=3e-3, progress=False)
    loss1, acc1 = _val_metrics(model, x_va, y_va)
    assert isinstance(hist, TrainingHistory)
    assert len(hist.train_loss) == len(hist.val_loss) == len(hist.val_accuracy) == hist.epochs_run
    assert loss1 < loss0 - 0.2
    assert acc1 > max(acc0, 0.9)
    assert hist.val_loss[hist.best_epoch] == min(hist.val_loss)
    assert loss1 == pytest.approx(hist.val_loss[hist.best_epoch], abs=1e-5)
    assert acc1 == pytest.approx(hist.val_accuracy[hist.best_epoch])
    assert hist.seconds > 0
    assert not model.training
    d = hist.to_dict()
    assert json.loads(json.dumps(d))["epochs_run"] == hist.epochs_run


def test_config_and_keyword_overrides_give_the_same_run() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=120, n_val=40)
    a, b, c = _model(dropout=0.2), _model(dropout=0.2), _model(dropout=0.2)
    config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, seed=4, progress=False)
    h_cfg = train_classifier(a, x_tr, y_tr, x_va, y_va, config=config)
    kw: dict[str, Any] = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "seed": 4, "progress": False}
    h_kw = train_classifier(b, x_tr, y_tr, x_va, y_va, **kw)
    other = config.replace(epochs=5, seed=0)
    h_mix = train_classifier(c, x_tr, y_tr, x_va, y_va, config=other, epochs=2, seed=4)
    assert h_cfg.val_loss == h_kw.val_loss == h_mix.val_loss
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    with pytest.raises(TypeError, match="TrainConfig"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, config={"epochs": 1})  # type: ignore[arg-type]


def test_same_seed_gives_identical_weights_and_global_rng_is_untouched() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=200, n_val=50)
    kw: dict[str, Any] = {"epochs": 3, "batch_size": 32, "progress": False}
    models = [_model(dropout=0.3), _model(dropout=0.3), _model(dropout=0.3)]
    state = torch.get_rng_state()
    h0 = train_classifier(models[0], x_tr, y_tr, x_va, y_va, seed=7, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    h1 = train_classifier(models[1], x_tr, y_tr, x_va, y_va, seed=7, **kw)
    train_classifier(models[2], x_tr, y_tr, x_va, y_va, seed=8, **kw)
    s0, s1, s2 = (m.state_dict() for m in models)
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert h0.val_loss == h1.val_loss
    assert h0.train_loss == h1.train_loss
    assert not all(torch.equal(s0[k], s2[k]) for k in s0)


def test_early_stopping_stops_on_a_plateau_and_restores_the_best_epoch() -> None:
    # Random labels: nothing to learn, so the validation loss rises while the model memorises.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = rng.integers(0, 2, 96)
    model = _model(hidden=(64, 64))
    patience = 3
    hist = train_classifier(
        model,
        x[:64],
        y[:64],
        x[64:],
        y[64:],
        epochs=60,
        batch_size=16,
        lr=1e-2,
        patience=patience,
        progress=False,
    )
    assert hist.stopped_early
    assert hist.epochs_run < 60
    assert hist.best_epoch == int(np.argmin(hist.val_loss))
    assert hist.epochs_run == hist.best_epoch + 1 + patience
    assert all(v >= hist.val_loss[hist.best_epoch] for v in hist.val_loss[hist.best_epoch + 1 :])
    assert hist.val_loss[-1] > hist.val_loss[hist.best_epoch]
    loss_after, _ = _val_metrics(model, x[64:], y[64:])
    assert loss_after == pytest.approx(hist.val_loss[hist.best_epoch], abs=1e-5)


def test_constant_loss_stops_after_patience_epochs() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=64, n_val=32)
    model = _model(batchnorm=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def zero_loss(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return 0.0 * m(x).sum()

    hist = train_classifier(
        model, x_tr, y_tr, x_va, y_va, epochs=20, patience=2, batch_loss=zero_loss, progress=False
    )
    assert (hist.epochs_run, hist.best_epoch, hist.stopped_early) == (3, 0, True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_l1_penalty_shrinks_weights() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=200, n_val=50)
    kw: dict[str, Any] = {"epochs": 6, "batch_size": 32, "lr": 1e-2, "progress": False, "patience": 10}
    plain, sparse = _model(), _model()
    train_classifier(plain, x_tr, y_tr, x_va, y_va, **kw)
    train_classifier(sparse, x_tr, y_tr, x_va, y_va, l1=1e-2, **kw)
    assert float(l1_penalty(sparse).detach()) < 0.7 * float(l1_penalty(plain).detach())
    assert predict_proba(sparse, x_va).std() > 0  # still a working classifier, not all weights zero


def test_l1_penalty_value() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    expected = sum(float(m.weight.detach().abs().sum()) for m in model if isinstance(m, nn.Linear))
    assert float(l1_penalty(model).detach()) == pytest.approx(expected)
    assert float(l1_penalty(nn.ReLU())) == 0.0


def test_batch_loss_hook_is_used() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=64, n_val=16)
    calls: list[int] = []

    def hook(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        calls.append(x.shape[0])
        return bce_batch_loss(model, x, y)

    train_classifier(
        _model(), x_tr, y_tr, x_va, y_va, epochs=2, batch_size=16, batch_loss=hook, progress=False
    )
    assert calls == [16] * 8

    def not_scalar(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(model(x), y, reduction="none")

    with pytest.raises(ValueError, match="scalar"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=1, batch_loss=not_scalar, progress=False)


def test_single_row_last_batch_is_skipped_and_generic_modules_train() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=9, n_val=8)
    hist = train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=2, batch_size=4, progress=False)
    assert hist.epochs_run == 2
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))  # (N, 1) logits
    hist = train_classifier(
        seq, *_toy(n_train=100, n_val=50), epochs=3, batch_size=16, lr=1e-2, progress=False
    )
    assert hist.val_accuracy[hist.best_epoch] > 0.8


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=32, n_val=16)
    train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "val_loss" in captured.err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"patience": 0}, "patience"),
        ({"l1": -1e-3}, "l1"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_hyperparameters(kwargs: dict[str, Any], match: str) -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=16, n_val=8)
    with pytest.raises(ValueError, match=match):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, progress=False, **kwargs)


def test_bad_data() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=16, n_val=8)
    model = _model()
    with pytest.raises(ValueError, match="0 or 1"):
        train_classifier(model, x_tr, y_tr + 1, x_va, y_va, progress=False)
    with pytest.raises(ValueError, match="entries"):
        train_classifier(model, x_tr, y_tr[:-1], x_va, y_va, progress=False)
    with pytest.raises(ValueError, match="X_val has 3 feature columns"):
        train_classifier(model, x_tr, y_tr, x_va[:, :3], y_va, progress=False)
    with pytest.raises(ValueError, match="model expects 4"):
        train_classifier(model, x_tr[:, :3], y_tr, x_va[:, :3], y_va, progress=False)
    bad = x_tr.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_classifier(model, bad, y_tr, x_va, y_va, progress=False)
    with pytest.raises(ValueError, match="dimensions"):
        train_classifier(model, x_tr[:, 0], y_tr, x_va, y_va, progress=False)
    with pytest.raises(ValueError, match="at least 2 rows"):
        train_classifier(model, x_tr[:1], y_tr[:1], x_va, y_va, progress=False)


def test_diverging_loss_is_a_value_error() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=32, n_val=8)

    def nan_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return model(x).sum() * float("nan")

    with pytest.raises(ValueError, match="training loss became nan"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=2, batch_loss=nan_loss, progress=False)


# --------------------------------------------------------------------------- strategies in the loop
class _Recorder(Strategy):
    """Records every hook call; its loss is the nominal BCE."""

    name = "recorder-test"
    requires_aux = ("z",)

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.aux_ok = True
        self.n = 0

    def setup(self, model: nn.Module, data: TrainingData) -> None:
        self.calls.append(("setup", data.X.shape[0]))
        self.n = data.X.shape[0]

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        self.calls.append(("start_epoch", epoch))

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        self.calls.append(("loss", batch.x.shape[0]))
        assert model.training
        self.aux_ok &= torch.equal(batch.aux["z"], batch.index.to(batch.aux["z"].dtype))
        return super().loss(model, batch)

    def after_step(self, model: nn.Module, batch: Batch) -> None:
        self.calls.append(("after_step", batch.x.shape[0]))

    def epoch_metrics(self) -> dict[str, float]:
        epoch = sum(1 for c in self.calls if c[0] == "start_epoch") - 1
        return {"my_metric": float(10 - epoch)} if epoch != 1 else {}


def test_strategy_hooks_run_in_order_with_sliced_aux() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=48, n_val=16)
    rec = _Recorder()
    aux = {"z": np.arange(48, dtype=np.float64)}
    hist = train_classifier(
        _model(), x_tr, y_tr, x_va, y_va, strategy=rec, aux_train=aux, epochs=3, batch_size=16, progress=False
    )
    per_epoch = [("loss", 16), ("after_step", 16)] * 3
    expected = [("setup", 48)]
    for e in range(3):
        expected += [("start_epoch", e), *per_epoch]
    assert rec.calls == expected
    assert rec.aux_ok
    assert hist.extra["my_metric"][0] == 10.0
    assert np.isnan(hist.extra["my_metric"][1])
    assert hist.extra["my_metric"][2] == 8.0
    assert hist.strategy == {"strategy": "recorder-test"}


def test_history_records_strategy_config_and_throughput() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=64, n_val=16)
    hist = train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=2, batch_size=16, progress=False)
    assert hist.strategy == {"strategy": "nominal"}
    assert len(hist.epoch_seconds) == len(hist.jets_per_second) == 2
    assert all(v > 0 for v in hist.jets_per_second)
    assert hist.seconds >= sum(hist.epoch_seconds) * 0.99
    assert hist.resumed_epochs == 0
    assert hist.summary()["val_loss"] == hist.val_loss[hist.best_epoch]
    assert TrainingHistory.from_dict(json.loads(json.dumps(hist.to_dict()))) == hist


def test_monitor_picks_the_best_epoch() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=128, n_val=64)
    kw: dict[str, Any] = {"epochs": 4, "batch_size": 16, "lr": 1e-2, "patience": 10, "progress": False}
    hist = train_classifier(_model(), x_tr, y_tr, x_va, y_va, monitor="val_accuracy", **kw)
    assert hist.monitor == "val_accuracy"
    assert hist.best_epoch == int(np.argmax(hist.val_accuracy))
    rec = _Recorder()
    hist = train_classifier(
        _model(),
        x_tr,
        y_tr,
        x_va,
        y_va,
        strategy=rec,
        aux_train={"z": np.arange(128.0)},
        monitor="my_metric",
        **kw,
    )
    assert hist.best_epoch == 3  # my_metric = 10, NaN, 8, 7: the lowest is the last
    with pytest.raises(
        ValueError, match="unknown monitor 'nope'; choose one of val_loss, val_accuracy, train_loss"
    ):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, monitor="nope", **kw)


def test_strategy_argument_errors() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=16, n_val=8)
    with pytest.raises(ValueError, match="either batch_loss or a strategy"):
        train_classifier(
            _model(), x_tr, y_tr, x_va, y_va, strategy="rdsa", batch_loss=bce_batch_loss, progress=False
        )
    with pytest.raises(TypeError, match="strategy_options must be a mapping"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, strategy_options=[1], progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown training strategy 'nope'"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, strategy="nope", progress=False)
    with pytest.raises(ValueError, match=r"aux_val\['z'\] must have one entry per row \(8\)"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, aux_val={"z": np.zeros(3)}, progress=False)
    with pytest.raises(TypeError, match=r"aux_train\['z'\] must be numeric"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, aux_train={"z": ["a"] * 16}, progress=False)


# --------------------------------------------------------------------------- sample weights
def test_weighted_bce_equals_torch_weighted_sum_over_weight_sum() -> None:
    from aalearn.training.strategy import weighted_bce

    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(50, generator=g), (torch.rand(50, generator=g) > 0.5).float()
    w = torch.rand(50, generator=g) * 3
    ref = F.binary_cross_entropy_with_logits(z, y, weight=w, reduction="sum") / w.sum()
    assert float(weighted_bce(z, y, w)) == pytest.approx(float(ref), rel=1e-6)
    assert float(weighted_bce(z, y, torch.zeros(50))) == 0.0


def test_unit_weights_reproduce_the_unweighted_run() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=200, n_val=80)
    a, b = _model(), _model()
    kw: dict[str, Any] = {"epochs": 3, "batch_size": 32, "lr": 3e-3, "progress": False}
    h_a = train_classifier(a, x_tr, y_tr, x_va, y_va, **kw)
    h_b = train_classifier(
        b, x_tr, y_tr, x_va, y_va, sample_weight=np.ones(200), sample_weight_val=np.ones(80), **kw
    )
    # weighted mean with unit weights = the plain mean up to float32 rounding
    np.testing.assert_allclose(h_a.val_loss, h_b.val_loss, rtol=1e-4)
    np.testing.assert_allclose(h_a.train_loss, h_b.train_loss, rtol=1e-4)


def test_weighted_validation_equals_numpy_weighted_means() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=120, n_val=90, shift=0.5)
    w_va = np.random.default_rng(3).uniform(0, 2, 90)
    model = _model()
    hist = train_classifier(
        model,
        x_tr,
        y_tr,
        x_va,
        y_va,
        sample_weight=np.ones(120),
        sample_weight_val=w_va,
        epochs=1,
        batch_size=32,
        progress=False,
    )
    p = np.clip(predict_proba(model, x_va).astype(np.float64), 1e-12, 1 - 1e-12)
    bce = -(y_va * np.log(p) + (1 - y_va) * np.log(1 - p))
    assert hist.val_loss[0] == pytest.approx(np.sum(w_va * bce) / w_va.sum(), rel=1e-4)
    assert hist.val_accuracy[0] == pytest.approx(np.sum(w_va * ((p > 0.5) == y_va)) / w_va.sum(), rel=1e-6)


def test_class_weights_shift_the_predictions() -> None:
    # overlapping classes: upweighting class 1 ten times multiplies the prior odds by 10
    # (Bayes-optimal logit + log 10); the mean P(label=1) must rise well above the unweighted one
    x_tr, y_tr, x_va, y_va = _toy(n_train=600, n_val=200, shift=0.5)
    kw: dict[str, Any] = {"epochs": 6, "batch_size": 64, "lr": 3e-3, "progress": False}
    plain, weighted = _model(), _model()
    train_classifier(plain, x_tr, y_tr, x_va, y_va, **kw)
    train_classifier(
        weighted,
        x_tr,
        y_tr,
        x_va,
        y_va,
        sample_weight=np.where(y_tr == 1, 10.0, 1.0),
        sample_weight_val=np.where(y_va == 1, 10.0, 1.0),
        **kw,
    )
    p_plain = predict_proba(plain, x_va).mean()
    p_weighted = predict_proba(weighted, x_va).mean()
    assert p_weighted > p_plain + 0.08  # measured +0.14; ignoring the weights gives +0.00


def test_sample_weight_errors() -> None:
    x_tr, y_tr, x_va, y_va = _toy(n_train=40, n_val=20)
    with pytest.raises(ValueError, match="one weight per row"):
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, sample_weight=np.ones(3), epochs=1, progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        train_classifier(
            _model(), x_tr, y_tr, x_va, y_va, sample_weight=-np.ones(40), epochs=1, progress=False
        )

    class Unweighted(Strategy):  # a strategy that overrides the loss without weights
        name = "unweighted-test"

    with pytest.raises(ValueError, match=r"does not support sample weights; use one that does \(.*rdsa"):
        train_classifier(
            _model(),
            x_tr,
            y_tr,
            x_va,
            y_va,
            strategy=Unweighted(),
            sample_weight=np.ones(40),
            epochs=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="needs sample_weight"):
        train_classifier(
            _model(), x_tr, y_tr, x_va, y_va, sample_weight_val=np.ones(20), epochs=1, progress=False
        )


def test_divergent_training_raises_naming_the_epoch_and_saves_nothing(tmp_path: Any) -> None:
    """Issue 18 item 6: lr=1e6 must not be reported as a successful run nor leave a final model."""
    x_tr, y_tr, x_va, y_va = _toy(n_train=200, n_val=100)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1\b.*smaller learning rate \(--lr\)") as info:
        train_classifier(
            _model(),
            x_tr,
            y_tr,
            x_va,
            y_va,
            epochs=3,
            lr=1e6,
            batch_size=32,
            progress=False,
            checkpoint_dir=tmp_path,
        )
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert not (tmp_path / FINAL_MODEL_FILE).exists()


def test_unreadable_checkpoint_message_offers_only_real_remedies(tmp_path: Any) -> None:
    """Issue 18 point 7: no ``resume=False`` (the CLI lacks it), no torch ``weights_only=False`` advice."""
    x_tr, y_tr, x_va, y_va = _toy(n_train=60, n_val=30)
    torch.save({"obj": _Unsafe()}, tmp_path / CHECKPOINT_FILE)  # not loadable with weights_only=True
    with pytest.raises(ValueError, match="cannot read the training checkpoint") as info:
        train_classifier(_model(), x_tr, y_tr, x_va, y_va, epochs=1, progress=False, checkpoint_dir=tmp_path)
    message = str(info.value)
    assert "weights_only" not in message
    assert "resume=False" not in message
    assert "\n" not in message
    assert f"delete {CHECKPOINT_FILE}" in message


class _Unsafe:
    """A pickled class instance: refused by ``torch.load(..., weights_only=True)``."""
