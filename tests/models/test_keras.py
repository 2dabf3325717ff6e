"""Keras HDF5 weights → TopoDNN, against the challenge's reference model and synthetic files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch

from aalearn.models import TopoDNN, load_keras_topodnn, load_model, predict_proba, save_checkpoint
from aalearn.physics.features import challenge_feature_names


def _keras_name(kind: str, i: int) -> str:
    return kind if i == 0 else f"{kind}_{i}"


def write_keras_h5(
    model: TopoDNN,
    path: Path,
    *,
    root_level: bool = False,
    last_activation: str = "sigmoid",
) -> Path:
    """Write ``model`` in the Keras 2 HDF5 layout of ``model.save`` (``save_weights`` with ``root_level``)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        g = f if root_level else f.create_group("model_weights")
        names: list[str] = []
        layer_configs: list[dict[str, object]] = []

        def add(name: str, weights: dict[str, npt.NDArray[np.float32]], config: dict[str, object]) -> None:
            outer = g.create_group(name)
            inner = outer.create_group(name)
            for key, arr in weights.items():
                inner.create_dataset(f"{key}:0", data=arr)
            outer.attrs["weight_names"] = np.array([f"{name}/{k}:0" for k in weights], dtype="S")
            names.append(name)
            layer_configs.append({"class_name": config.pop("class_name"), "config": {"name": name, **config}})

        sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        n = len(model.blocks)
        for i in range(n):
            p = f"blocks.{i}"
            add(
                _keras_name("dense", i),
                {"kernel": sd[f"{p}.linear.weight"].T, "bias": sd[f"{p}.linear.bias"]},
                {"class_name": "Dense", "activation": "relu"},
            )
            if model.batchnorm:
                add(
                    _keras_name("batch_normalization", i),
                    {
                        "gamma": sd[f"{p}.norm.weight"],
                        "beta": sd[f"{p}.norm.bias"],
                        "moving_mean": sd[f"{p}.norm.running_mean"],
                        "moving_variance": sd[f"{p}.norm.running_var"],
                    },
                    {"class_name": "BatchNormalization", "epsilon": model.batchnorm_eps, "momentum": 0.99},
                )
        add(
            _keras_name("dense", n),
            {"kernel": sd["output.weight"].T, "bias": sd["output.bias"]},
            {"class_name": "Dense", "activation": last_activation},
        )
        g.attrs["layer_names"] = np.array(names, dtype="S")
        f.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "sequential", "layers": layer_configs}}
        )
    return path


def _random_model(n_features: int = 6, hidden: tuple[int, ...] = (10, 5), batchnorm: bool = True) -> TopoDNN:
    model = TopoDNN(n_features=n_features, hidden=hidden, batchnorm=batchnorm)
    with torch.no_grad():
        for block in model.blocks:
            if batchnorm:
                block.norm.running_mean.uniform_(-0.5, 0.5)
                block.norm.running_var.uniform_(0.5, 2.0)
                block.norm.weight.uniform_(0.5, 1.5)
                block.norm.bias.uniform_(-0.3, 0.3)
    return model.eval()


# --------------------------------------------------------------------------- challenge model


def _numpy_forward(path: Path, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Independent reference: the Keras inference computation from the raw HDF5 datasets."""
    with h5py.File(path, "r") as f:
        w = f["model_weights"]

        def get(layer: str, key: str) -> npt.NDArray[np.float64]:
            return np.asarray(w[layer][layer][f"{key}:0"], dtype=np.float64)

        h = x
        for i in range(4):
            d, b = _keras_name("dense", i), _keras_name("batch_normalization", i)
            h = np.maximum(h @ get(d, "kernel") + get(d, "bias"), 0.0)
            h = (h - get(b, "moving_mean")) / np.sqrt(get(b, "moving_variance") + 1e-3) * get(
                b, "gamma"
            ) + get(b, "beta")
        z = h @ get("dense_4", "kernel") + get("dense_4", "bias")
    return 1.0 / (1.0 + np.exp(-z[:, 0]))


def _challenge(challenge_dir: Path, name: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    df = pd.read_feather(challenge_dir / name)
    names = list(challenge_feature_names())
    assert list(df.columns[: len(names)]) == names
    return df[names].to_numpy(np.float32), df["Label"].to_numpy(np.int64)


def test_challenge_model_architecture(challenge_dir: Path) -> None:
    model = load_keras_topodnn(challenge_dir / "best_model.hdf5")
    assert not model.training
    assert model.config == {
        "n_features": 87,
        "hidden": [300, 102, 12, 6],
        "dropout": 0.0,
        "batchnorm": True,
        "batchnorm_eps": pytest.approx(1e-3),
        "batchnorm_momentum": pytest.approx(0.01),
    }


def test_challenge_model_reproduces_published_accuracies(challenge_dir: Path) -> None:
    model = load_keras_topodnn(challenge_dir / "best_model.hdf5")
    x_clean, y_clean = _challenge(challenge_dir, "Clean_Test_Public.feather")
    x_adv, y_adv = _challenge(challenge_dir, "Adversaries_Test_Public.feather")
    np.testing.assert_array_equal(y_clean, y_adv)
    acc_clean = float(np.mean((predict_proba(model, x_clean) > 0.5) == y_clean))
    acc_adv = float(np.mean((predict_proba(model, x_adv) > 0.5) == y_adv))
    assert acc_clean == pytest.approx(1.000, abs=5e-4)
    assert acc_adv == pytest.approx(0.093, abs=5e-4)


def test_challenge_model_equals_independent_numpy_forward(challenge_dir: Path) -> None:
    path = challenge_dir / "best_model.hdf5"
    x, _ = _challenge(challenge_dir, "Clean_Test_Public.feather")
    torch_p = predict_proba(load_keras_topodnn(path), x)
    numpy_p = _numpy_forward(path, x.astype(np.float64))
    np.testing.assert_allclose(torch_p, numpy_p, rtol=0, atol=1e-5)


def test_truncated_challenge_file_is_a_value_error(challenge_dir: Path, tmp_path: Path) -> None:
    data = (challenge_dir / "best_model.hdf5").read_bytes()
    bad = tmp_path / "truncated.hdf5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_keras_topodnn(bad)


# --------------------------------------------------------------------------- synthetic files


@pytest.mark.parametrize("root_level", [False, True])
@pytest.mark.parametrize(("hidden", "batchnorm"), [((10, 5), True), ((7,), False)])
def test_synthetic_keras_round_trip(
    tmp_path: Path, root_level: bool, hidden: tuple[int, ...], batchnorm: bool
) -> None:
    model = _random_model(hidden=hidden, batchnorm=batchnorm)
    path = write_keras_h5(model, tmp_path / "m.h5", root_level=root_level)
    loaded = load_keras_topodnn(path)
    assert loaded.config == model.config
    x = torch.randn(40, 6)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=1e-6)


def test_layer_order_without_layer_names_attribute(tmp_path: Path) -> None:
    model = _random_model(hidden=(4, 3, 2))
    path = write_keras_h5(model, tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights"].attrs["layer_names"]
    x = torch.randn(5, 6)
    torch.testing.assert_close(load_keras_topodnn(path)(x), model(x), rtol=0, atol=1e-6)


def test_missing_group_is_a_value_error(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/batch_normalization_1"]
    with pytest.raises(ValueError, match="'batch_normalization_1' is missing"):
        load_keras_topodnn(path)
    with h5py.File(path, "r+") as f:
        del f["model_weights"].attrs["layer_names"]
    with pytest.raises(ValueError, match="'batch_normalization_1' is missing"):
        load_keras_topodnn(path)


def test_missing_dataset_is_a_value_error(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1/dense_1/bias:0"]
        f["model_weights/dense_1"].attrs["weight_names"] = np.array(["dense_1/kernel:0"], dtype="S")
    with pytest.raises(ValueError, match="'bias'"):
        load_keras_topodnn(path)


def test_misshaped_kernel_is_a_value_error(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1/dense_1/kernel:0"]
        f["model_weights/dense_1/dense_1"].create_dataset("kernel:0", data=np.zeros((9, 5), np.float32))
    with pytest.raises(ValueError, match="expects 9 inputs"):
        load_keras_topodnn(path)


def test_misshaped_batchnorm_is_a_value_error(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/batch_normalization/batch_normalization/gamma:0"]
        f["model_weights/batch_normalization/batch_normalization"].create_dataset(
            "gamma:0", data=np.ones(3, np.float32)
        )
    with pytest.raises(ValueError, match="gamma has shape"):
        load_keras_topodnn(path)


def test_multi_unit_output_and_wrong_activation_are_rejected(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5", last_activation="softmax")
    with pytest.raises(ValueError, match="activation 'softmax'"):
        load_keras_topodnn(path)
    path = write_keras_h5(_random_model(), tmp_path / "m2.h5")
    with h5py.File(path, "r+") as f:
        for key, shape in (("kernel:0", (5, 2)), ("bias:0", (2,))):
            del f[f"model_weights/dense_2/dense_2/{key}"]
            f["model_weights/dense_2/dense_2"].create_dataset(key, data=np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="has 2 units"):
        load_keras_topodnn(path)


def test_non_keras_and_non_hdf5_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="not Keras weights"):
        load_keras_topodnn(plain)
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        load_keras_topodnn(junk)
    with pytest.raises(FileNotFoundError):
        load_keras_topodnn(tmp_path / "absent.hdf5")


def test_truncated_synthetic_file(tmp_path: Path) -> None:
    path = write_keras_h5(_random_model(), tmp_path / "m.h5")
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_keras_topodnn(cut)
    # A copy is untouched and still loads.
    shutil.copy(path, tmp_path / "copy.h5")
    load_keras_topodnn(tmp_path / "copy.h5")


# --------------------------------------------------------------------------- weightless layers (issue 18)


def _insert_config_layer(path: Path, after: str | None, class_name: str, **config: object) -> None:
    """Insert a weightless layer into the file's ``model_config`` after layer ``after`` (first if None)."""
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers = cfg["config"]["layers"]
        pos = 0 if after is None else 1 + [la["config"]["name"] for la in layers].index(after)
        name = f"{class_name.lower()}_inserted"
        layers.insert(pos, {"class_name": class_name, "config": {"name": name, **config}})
        f.attrs["model_config"] = json.dumps(cfg)


def _relabel(path: Path, name: str, class_name: str) -> None:
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["config"]["name"] == name:
                layer["class_name"] = class_name
        f.attrs["model_config"] = json.dumps(cfg)


def _numpy_chain(
    model: TopoDNN, x: npt.NDArray[np.float64], after_dense0: object, before: object = None
) -> npt.NDArray[np.float64]:
    """Independent NumPy forward pass of a one-hidden-layer model with extra ops (no batch norm)."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    h = x if before is None else before(x)  # type: ignore[operator]
    h = np.maximum(h @ sd["blocks.0.linear.weight"].T + sd["blocks.0.linear.bias"], 0.0)
    h = after_dense0(h)  # type: ignore[operator]
    return h @ sd["output.weight"][0] + sd["output.bias"][0]


def test_activation_tanh_after_first_dense_is_applied(tmp_path: Path) -> None:
    model = _random_model(hidden=(7,), batchnorm=False)
    with torch.no_grad():
        model.blocks[0].linear.weight.mul_(5.0)  # large pre-activations: tanh visibly saturates
    path = write_keras_h5(model, tmp_path / "m.h5")
    _insert_config_layer(path, "dense", "Activation", activation="tanh")
    loaded = load_keras_topodnn(path)
    x = np.random.default_rng(1).normal(size=(50, 6))
    expected = _numpy_chain(model, x, np.tanh)
    got = loaded(torch.as_tensor(x, dtype=torch.float32)).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    plain = model(torch.as_tensor(x, dtype=torch.float32)).detach().double().numpy()
    assert np.max(np.abs(plain - expected)) > 1e-2  # the test would notice a dropped layer


def test_rescaling_dropout_and_input_layer(tmp_path: Path) -> None:
    model = _random_model(hidden=(7,), batchnorm=False)
    path = write_keras_h5(model, tmp_path / "m.h5")
    _insert_config_layer(path, None, "InputLayer", batch_input_shape=[None, 6])
    _insert_config_layer(path, "dense", "Rescaling", scale=1000.0, offset=-0.5)
    _insert_config_layer(path, "rescaling_inserted", "Dropout", rate=0.5)
    loaded = load_keras_topodnn(path)
    x = np.random.default_rng(2).normal(size=(30, 6))
    expected = _numpy_chain(model, x, lambda h: h * 1000.0 - 0.5)
    got = loaded(torch.as_tensor(x, dtype=torch.float32)).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: _insert_config_layer(p, "dense", "Lambda", function="x*2"), "lambda_inserted.*Lambda"),
        (lambda p: _insert_config_layer(p, "dense", "Flatten"), "flatten_inserted.*Flatten"),
        (
            lambda p: _insert_config_layer(p, "dense", "Activation", activation="elu"),
            "activation_inserted.*elu",
        ),
        (lambda p: _insert_config_layer(p, "dense_1", "Activation", activation="tanh"), "after the output"),
        (lambda p: _relabel(p, "dense", "Conv1D"), "'dense'.*Conv1D"),
    ],
)
def test_unsupported_layers_are_refused_by_name(tmp_path: Path, edit: object, match: str) -> None:
    path = write_keras_h5(_random_model(hidden=(7,), batchnorm=False), tmp_path / "m.h5")
    edit(path)  # type: ignore[operator]
    with pytest.raises(ValueError, match=match) as info:
        load_keras_topodnn(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_corrupt_bytes_give_one_line_error_naming_the_file(tmp_path: Path) -> None:
    good = write_keras_h5(_random_model(), tmp_path / "good.h5").read_bytes()
    bad = tmp_path / "bad.h5"
    messages: list[str] = []
    for offset in range(0, min(len(good), 4096), 16):
        data = bytearray(good)
        data[offset : offset + 8] = b"\xff" * 8
        bad.write_bytes(bytes(data))
        try:
            load_keras_topodnn(bad)
        except ValueError as exc:
            messages.append(str(exc))
    assert messages  # some corruptions must be detected
    bad_messages = [m for m in messages if str(bad) not in m or "\n" in m]
    assert not bad_messages


def test_model_with_extra_layers_survives_a_checkpoint(tmp_path: Path) -> None:
    model = _random_model(hidden=(7,), batchnorm=False)
    path = write_keras_h5(model, tmp_path / "m.h5")
    _insert_config_layer(path, "dense", "Activation", activation="tanh")
    _insert_config_layer(path, None, "Rescaling", scale=[0.5] * 6, offset=0.25)
    loaded = load_keras_topodnn(path)
    again = load_model(save_checkpoint(loaded, tmp_path / "m.safetensors"))
    x = torch.randn(20, 6)
    torch.testing.assert_close(again(x), loaded(x), rtol=0, atol=0)
    expected = _numpy_chain(model, x.double().numpy(), np.tanh, before=lambda v: v * 0.5 + 0.25)
    np.testing.assert_allclose(loaded(x).detach().double().numpy(), expected, rtol=0, atol=1e-5)
