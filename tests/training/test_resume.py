"""Resumable training: a killed or shortened run continues bit-identically from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

from aalearn.models import TopoDNN, load_checkpoint
from aalearn.training import TrainingHistory, train_classifier
from aalearn.training.strategy import NominalStrategy, Strategy
from aalearn.training.trainer import CHECKPOINT_FILE, FINAL_MODEL_FILE

pytestmark = pytest.mark.usefixtures("single_torch_thread")

Data = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]


def _toy(n_train: int = 192, n_val: int = 64, n_features: int = 4, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_train + n_val)
    x = (rng.normal(size=(n_train + n_val, n_features)) + 1.5 * (y[:, None] - 0.5)).astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _model(seed: int = 1, n_features: int = 4) -> TopoDNN:
    torch.manual_seed(seed)
    return TopoDNN(n_features=n_features, hidden=(16, 8), dropout=0.2, batchnorm_momentum=0.1)


def _comparable(h: TrainingHistory) -> dict[str, Any]:
    d = h.to_dict()
    for key in TrainingHistory.TIMING_FIELDS:
        d.pop(key)
    return d


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _Killed(RuntimeError):
    pass


class _KillAt(NominalStrategy):
    """The nominal strategy (same config, so the same fingerprint) that dies at the start of an epoch."""

    name: ClassVar[str] = "nominal"

    def __init__(self, epoch: int) -> None:
        self.kill_epoch = epoch

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        if epoch == self.kill_epoch:
            raise _Killed(f"killed at the start of epoch {epoch}")


def _strategy_options(kind: str) -> tuple[str, dict[str, Any] | None]:
    if kind == "adversarial":
        return "adversarial", {"sigma": 0.5, "steps": 2}
    if kind == "rdsa-pool":
        return "rdsa", {"mode": "pool", "pool_size": 3, "n_features": 2}
    if kind == "rdsa-epoch":
        return "rdsa", {"mode": "epoch", "n_features": 2, "only_successful": True, "max_tries": 3}
    return "nominal", None


KW: dict[str, Any] = {"batch_size": 32, "lr": 3e-3, "patience": 10, "seed": 5, "progress": False}


def test_killed_run_resumes_bit_identically(tmp_path: Path) -> None:
    data = _toy()
    ref = _model()
    h_ref = train_classifier(ref, *data, epochs=4, checkpoint_dir=tmp_path / "ref", **KW)

    killed = _model()
    with pytest.raises(_Killed):
        train_classifier(killed, *data, epochs=4, strategy=_KillAt(2), checkpoint_dir=tmp_path / "run", **KW)
    state = torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)
    assert json.loads(state["history"])["epochs_run"] == 2

    resumed = _model(seed=99)  # the initial weights do not matter: the checkpoint's are loaded
    h = train_classifier(resumed, *data, epochs=4, checkpoint_dir=tmp_path / "run", **KW)
    assert h.resumed_epochs == 2
    assert h.epochs_run == 4
    assert _comparable(h) == _comparable(h_ref)
    assert _same_weights(resumed, ref)


@pytest.mark.parametrize("kind", ["nominal", "adversarial", "rdsa-pool", "rdsa-epoch"])
def test_extending_a_run_equals_the_uninterrupted_run(kind: str, tmp_path: Path) -> None:
    strategy, options = _strategy_options(kind)
    data = _toy(n_train=96, n_val=32)
    kw = {**KW, "strategy": strategy, "strategy_options": options}
    ref = _model()
    h_ref = train_classifier(ref, *data, epochs=3, **kw)

    first = _model()
    h1 = train_classifier(first, *data, epochs=1, checkpoint_dir=tmp_path, **kw)
    assert h1.epochs_run == 1
    second = _model()
    h2 = train_classifier(second, *data, epochs=3, checkpoint_dir=tmp_path, **kw)
    assert h2.resumed_epochs == 1
    assert _comparable(h2) == _comparable(h_ref)
    assert _same_weights(second, ref)


def test_a_finished_run_is_reloaded_without_training(tmp_path: Path) -> None:
    data = _toy(n_train=64, n_val=32)
    model = _model()
    h = train_classifier(model, *data, epochs=2, checkpoint_dir=tmp_path, **KW)
    calls: list[int] = []

    class Spy(NominalStrategy):
        def start_epoch(self, model: nn.Module, epoch: int) -> None:
            calls.append(epoch)

    again = _model(seed=3)
    h2 = train_classifier(again, *data, epochs=2, checkpoint_dir=tmp_path, strategy=Spy(), **KW)
    assert calls == []
    assert h2.resumed_epochs == 2
    assert _comparable(h2) == _comparable(h)
    assert _same_weights(again, model)


def test_fingerprint_mismatch_is_a_clear_error_and_resume_false_starts_over(tmp_path: Path) -> None:
    data = _toy(n_train=64, n_val=32)
    train_classifier(_model(), *data, epochs=1, checkpoint_dir=tmp_path, **KW)
    with pytest.raises(
        ValueError, match=r"different training run \(differs in: settings\.lr\).*delete .* to start over"
    ):
        train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, **{**KW, "lr": 1e-2})
    x_other = data[0].copy()
    x_other[0, 0] += 1.0
    with pytest.raises(ValueError, match=r"data\.X_train"):
        train_classifier(_model(), x_other, *data[1:], epochs=2, checkpoint_dir=tmp_path, **KW)
    with pytest.raises(ValueError, match=r"strategy"):
        train_classifier(
            _model(), *data, epochs=2, checkpoint_dir=tmp_path, strategy="rdsa", **KW
        )  # another strategy
    h = train_classifier(
        _model(), *data, epochs=2, checkpoint_dir=tmp_path, resume=False, **{**KW, "lr": 1e-2}
    )
    assert h.resumed_epochs == 0
    assert h.epochs_run == 2


def test_corrupt_checkpoint_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the training checkpoint"):
        train_classifier(_model(), *_toy(n_train=32, n_val=8), epochs=1, checkpoint_dir=tmp_path, **KW)
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        train_classifier(_model(), *_toy(n_train=32, n_val=8), epochs=1, checkpoint_dir=not_dir, **KW)


def test_final_model_is_saved_with_metadata_for_registered_architectures(tmp_path: Path) -> None:
    data = _toy(n_train=64, n_val=32)
    model = _model()
    h = train_classifier(model, *data, epochs=2, checkpoint_dir=tmp_path / "topo", **KW)
    loaded, meta = load_checkpoint(tmp_path / "topo" / FINAL_MODEL_FILE)
    assert _same_weights(loaded, model)
    assert meta["seed"] == KW["seed"]
    assert meta["strategy"] == {"strategy": "nominal"}
    assert meta["history"]["best_epoch"] == h.best_epoch
    assert meta["history"]["val_loss"] == pytest.approx(h.val_loss[h.best_epoch])

    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))  # not a registered architecture
    train_classifier(seq, *data, epochs=1, checkpoint_dir=tmp_path / "seq", **KW)
    assert (tmp_path / "seq" / CHECKPOINT_FILE).is_file()
    assert not (tmp_path / "seq" / FINAL_MODEL_FILE).exists()


def test_checkpoint_holds_only_plain_data(tmp_path: Path) -> None:
    train_classifier(_model(), *_toy(n_train=64, n_val=32), epochs=1, checkpoint_dir=tmp_path, **KW)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)  # no pickled objects
    assert state["format"] == "aalearn-training-state"
    assert set(state) >= {"model", "optimizer", "best_state", "stale", "history", "order_rng", "torch_rng"}
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


class _Counter(Strategy):
    """A strategy with state: counts its steps; the count must survive a resume."""

    name: ClassVar[str] = "counter-test"

    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, model: nn.Module, batch: Any) -> None:
        self.steps += 1

    def epoch_metrics(self) -> dict[str, float]:
        return {"steps": float(self.steps)}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: Any) -> None:
        self.steps = int(state["steps"])


def test_strategy_state_is_checkpointed(tmp_path: Path) -> None:
    data = _toy(n_train=64, n_val=32)
    train_classifier(_model(), *data, epochs=1, checkpoint_dir=tmp_path, strategy=_Counter(), **KW)
    h = train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, strategy=_Counter(), **KW)
    assert h.extra["steps"] == [2.0, 4.0]
