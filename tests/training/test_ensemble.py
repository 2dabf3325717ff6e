"""Deep ensembles of any strategy: members differ by seed and dropout, train resumably, load back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

from aalearn.models import TopoDNN
from aalearn.training.ensemble import train_ensemble
from aalearn.training.trainer import FINAL_MODEL_FILE
from aalearn.uncertainty import DeepEnsemble

pytestmark = pytest.mark.usefixtures("single_torch_thread")

Data = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]


def _toy(n_train: int = 128, n_val: int = 64, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_train + n_val)
    x = (rng.normal(size=(n_train + n_val, 3)) + 1.5 * (y[:, None] - 0.5)).astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _build(k: int, dropout: float = 0.0) -> TopoDNN:
    return TopoDNN(n_features=3, hidden=(8,), dropout=dropout, batchnorm_momentum=0.1)


KW: dict[str, Any] = {"epochs": 2, "batch_size": 32, "lr": 3e-3}


def _weights(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_members_differ_and_are_checkpointed(tmp_path: Path) -> None:
    data = _toy()
    ens = train_ensemble(_build, *data, n_members=3, dropouts=[0.0, 0.2, 0.2], seeds=[4, 4, 5],
                         checkpoint_dir=tmp_path, **KW)  # fmt: skip
    assert isinstance(ens, DeepEnsemble)
    assert ens.n_members == 3
    assert ens.seeds == [4, 4, 5]
    assert ens.histories is not None
    assert all(h.epochs_run == 2 for h in ens.histories)
    assert [m.config["dropout"] for m in ens.models] == [0.0, 0.2, 0.2]  # type: ignore[operator]
    w = [_weights(m) for m in ens.models]
    assert not torch.equal(w[0]["output.weight"], w[1]["output.weight"])  # same seed, other dropout
    assert not torch.equal(w[1]["output.weight"], w[2]["output.weight"])  # same dropout, other seed
    assert not any(m.training for m in ens.models)
    files = [tmp_path / f"member-{k}" / FINAL_MODEL_FILE for k in range(3)]
    assert all(f.is_file() for f in files)
    reloaded = DeepEnsemble.from_checkpoints(files)
    np.testing.assert_allclose(reloaded.member_probs(data[2]), ens.member_probs(data[2]), rtol=1e-6)
    assert ens.predict(data[2]).epistemic.shape == (len(data[2]),)


def test_a_rerun_resumes_from_the_member_checkpoints(tmp_path: Path) -> None:
    data = _toy()
    first = train_ensemble(_build, *data, n_members=2, checkpoint_dir=tmp_path, **KW)
    built: list[int] = []

    def build(k: int) -> TopoDNN:
        built.append(k)
        return _build(k)

    again = train_ensemble(build, *data, n_members=2, checkpoint_dir=tmp_path, **KW)
    assert built == [0, 1]
    assert again.histories is not None
    assert all(h.resumed_epochs == 2 for h in again.histories)
    for a, b in zip(first.models, again.models, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seeds_give_the_same_ensemble_without_checkpoints() -> None:
    data = _toy(n_train=64, n_val=32)
    e1 = train_ensemble(_build, *data, n_members=2, seed=7, **KW)
    e2 = train_ensemble(_build, *data, n_members=2, seed=7, **KW)
    assert e1.seeds == e2.seeds == [7, 8]
    np.testing.assert_array_equal(e1.member_probs(data[2]), e2.member_probs(data[2]))


def test_ensembles_of_robust_strategies() -> None:
    data = _toy(n_train=64, n_val=32)
    ens = train_ensemble(_build, *data, n_members=2, strategy="adversarial",
                         strategy_options={"sigma": 0.5, "steps": 2}, epochs=1)  # fmt: skip
    assert ens.histories is not None
    assert all(h.strategy["strategy"] == "adversarial" for h in ens.histories)
    assert all("adv_loss" in h.extra for h in ens.histories)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_members": 1}, ValueError, "n_members"),
        ({"seeds": [1, 2, 3]}, ValueError, "seeds must be a sequence of 2"),
        ({"dropouts": [0.1]}, ValueError, "dropouts must be a sequence of 2"),
        ({"dropouts": [0.1, 1.5]}, ValueError, r"dropout rate must lie in \[0, 1\)"),
        ({"seeds": [3, 3]}, ValueError, "identical"),
        ({"seeds": [1, 2], "seed": 3}, TypeError, "not both"),
        ({"strategy": "adversarial", "strategy_options": {"mix": 2.0}}, ValueError, "mix"),
    ],
)
def test_bad_settings(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        train_ensemble(_build, *_toy(n_train=16, n_val=8), **{"n_members": 2, **kwargs}, epochs=1)


def test_bad_builders() -> None:
    data = _toy(n_train=16, n_val=8)
    with pytest.raises(ValueError, match="must accept a dropout keyword"):
        train_ensemble(lambda k: _build(k), *data, n_members=2, dropouts=[0.0, 0.1], epochs=1)
    with pytest.raises(ValueError, match=r"must return a torch\.nn\.Module"):
        train_ensemble(lambda k: "model", *data, n_members=2, epochs=1)
    shared = _build(0)
    with pytest.raises(ValueError, match="same module twice"):
        train_ensemble(lambda k: shared, *data, n_members=2, epochs=1)
