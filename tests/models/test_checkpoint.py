"""safetensors checkpoints, the architecture registry and load_model dispatch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import aalearn.models.checkpoint as ckpt
from aalearn.models import (
    ARCHITECTURES,
    TopoDNN,
    architecture_name,
    load_checkpoint,
    load_model,
    predict_proba,
    register_architecture,
    save_checkpoint,
)


def _model() -> TopoDNN:
    model = TopoDNN(n_features=5, hidden=(8, 4), dropout=0.1)
    with torch.no_grad():
        for block in model.blocks:
            block.norm.running_mean.normal_()
            block.norm.running_var.uniform_(0.5, 2.0)
            block.norm.num_batches_tracked.fill_(17)
    return model.eval()


def test_round_trip_is_bit_identical_and_keeps_metadata(tmp_path: Path) -> None:
    model = _model()
    meta: dict[str, Any] = {
        "history": {"val_loss": [0.5, 0.25]},
        "source": "toy η/φ",
        "epochs": 3,
        "flag": None,
    }
    path = save_checkpoint(model, tmp_path / "model.safetensors", metadata=meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert isinstance(loaded, TopoDNN)
    assert not loaded.training
    assert loaded_meta == meta
    assert loaded.config == model.config
    sd, lsd = model.state_dict(), loaded.state_dict()
    assert sd.keys() == lsd.keys()
    assert all(torch.equal(sd[k], lsd[k]) and sd[k].dtype == lsd[k].dtype for k in sd)
    x = torch.randn(64, 5)
    assert torch.equal(model(x), loaded(x))
    np.testing.assert_array_equal(predict_proba(model, x.numpy()), predict_proba(loaded, x.numpy()))


def test_load_model_dispatches_safetensors(tmp_path: Path) -> None:
    model = _model()
    path = save_checkpoint(model, tmp_path / "sub" / "dir" / "m.safetensors")
    loaded = load_model(str(path))
    assert torch.equal(loaded(torch.ones(2, 5)), model(torch.ones(2, 5)))
    assert load_checkpoint(path)[1] == {}


def test_load_model_dispatches_keras(challenge_dir: Path) -> None:
    model = load_model(challenge_dir / "best_model.hdf5")
    assert isinstance(model, TopoDNN)
    assert model.config["hidden"] == [300, 102, 12, 6]


def test_atomic_write_leaves_only_the_target(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m.safetensors")
    save_checkpoint(_model(), tmp_path / "m.safetensors")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_failed_write_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "m.safetensors"
    save_checkpoint(_model(), target, metadata={"version": "old"})
    before = target.read_bytes()

    def failing_save(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_model(), target, metadata={"version": "new"})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_truncated_checkpoint_is_a_value_error(tmp_path: Path, fraction: float) -> None:
    path = save_checkpoint(_model(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_checkpoint(path)


def test_random_bytes_are_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_model(path)


def test_foreign_safetensors_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(ValueError, match="not an aalearn checkpoint"):
        load_checkpoint(path)


def _rewrite_header(path: Path, **changes: str) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    header.update(changes)
    save_file(tensors, str(path), metadata=header)


def test_unknown_architecture_is_a_value_error(tmp_path: Path) -> None:
    path = save_checkpoint(_model(), tmp_path / "m.safetensors")
    _rewrite_header(path, architecture="transformer-xxl")
    with pytest.raises(ValueError, match=r"unknown architecture 'transformer-xxl' \(known: .*topodnn"):
        load_checkpoint(path)


def test_config_tensor_mismatch_and_bad_json_are_value_errors(tmp_path: Path) -> None:
    path = save_checkpoint(_model(), tmp_path / "m.safetensors")
    config = _model().config | {"hidden": [8, 5]}
    _rewrite_header(path, config=json.dumps(config))
    with pytest.raises(ValueError, match="do not match"):
        load_checkpoint(path)
    _rewrite_header(path, config=json.dumps(config | {"colour": "red"}))
    with pytest.raises(ValueError, match="cannot build"):
        load_checkpoint(path)
    _rewrite_header(path, metadata="{not json")
    with pytest.raises(ValueError, match="corrupt config/metadata"):
        load_checkpoint(path)
    _rewrite_header(path, aalearn_format_version="99")
    with pytest.raises(ValueError, match="format version '99'"):
        load_checkpoint(path)


def test_keras_file_with_missing_group_through_load_model(tmp_path: Path) -> None:
    path = tmp_path / "broken.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array(["dense", "batch_normalization", "dense_1"], dtype="S")
    with pytest.raises(ValueError, match="'dense' is missing"):
        load_model(path)


@pytest.mark.parametrize("spec", ["model.pt", "model.pth", "model.pkl", "model"])
def test_unsupported_suffix_names_supported_formats(spec: str) -> None:
    with pytest.raises(ValueError, match=r"supported formats are \.safetensors.*\.hdf5/\.h5"):
        load_model(spec)


def test_shipped_model_names() -> None:
    with pytest.raises(ValueError, match="no shipped model named 'topodnn-challenge'"):
        load_model("aalearn:topodnn-challenge")


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.safetensors")


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a registered architecture"):
        save_checkpoint(torch.nn.Linear(2, 1), tmp_path / "l.safetensors")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(_model(), tmp_path / "m.safetensors", metadata={"array": np.zeros(2)})
    assert list(tmp_path.iterdir()) == []


def test_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Wide(TopoDNN):
        pass

    monkeypatch.setattr(ckpt, "ARCHITECTURES", dict(ARCHITECTURES))
    assert architecture_name(TopoDNN()) == "topodnn"
    register_architecture("wide", Wide)
    register_architecture("wide", Wide)  # same factory again: no-op
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("wide", TopoDNN)
    with pytest.raises(ValueError, match="non-empty"):
        register_architecture(" ", Wide)
    model = Wide(n_features=3, hidden=(2,)).eval()
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "w.safetensors"))
    assert type(loaded) is Wide
    assert torch.equal(loaded(torch.ones(1, 3)), model(torch.ones(1, 3)))


def test_nan_weights_are_reported_as_a_broken_model(tmp_path: Path) -> None:
    """Issue 18 point 7: NaN weights are a model problem, not bad data rows."""
    model = _model()
    with torch.no_grad():
        model.output.weight.fill_(float("nan"))
    path = save_checkpoint(model, tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match=r"model is broken: tensor 'output\.weight' contains NaN") as info:
        load_model(path)
    assert str(path) in str(info.value)
    # The in-memory model: predict names the model, not the (finite) input rows.
    with pytest.raises(ValueError, match=r"NaN for 3 of 3 finite input row.*model is broken.*not the data"):
        predict_proba(model, np.zeros((3, 5), dtype=np.float32))
