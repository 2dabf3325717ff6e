"""The aalearn HDF5 jet format: round trip, atomic writes and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from aalearn.data.dataset import LABEL_TOP, LABEL_W
from aalearn.data.hdf5 import (
    DIGEST_ATTR,
    FORMAT_NAME,
    FORMAT_VERSION,
    REQUIRED_DATASETS,
    read_jets_hdf5,
    read_jets_metadata,
    write_jets_hdf5,
)
from aalearn.physics import challenge_feature_names


def _arrays(n: int = 6, k: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.normal(size=(n, 3 * k - 3)),
        "features_truth": rng.normal(size=(n, 3 * k - 3)),
        "labels": np.array([LABEL_TOP, LABEL_W] * (n // 2)),
        "constituents": rng.normal(size=(n, k, 3)),
        "constituents_truth": rng.normal(size=(n, k, 3)),
        "jets": rng.normal(size=(n, 5)),
        "chunk_index": np.repeat([0, 1], n // 2),
        "chunk_seeds": np.array([11, 12]),
    }


def _attrs(**extra: Any) -> dict[str, Any]:
    return {
        "feature_names": challenge_feature_names(),
        "config": {"process": "top", "seed": 1},
        "pt_scale_gev": 1679.1593,
        **extra,
    }


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    return write_jets_hdf5(tmp_path / "jets.h5", _arrays(), _attrs())


def test_round_trip(good_file: Path) -> None:
    arrays = _arrays()
    ds = read_jets_hdf5(good_file)
    assert len(ds) == 6
    assert ds.feature_names == tuple(challenge_feature_names())
    np.testing.assert_array_equal(ds.features, arrays["features"].astype(np.float32))
    np.testing.assert_array_equal(ds.labels, arrays["labels"])
    assert set(ds.extras) == {"features_truth", "constituents", "constituents_truth", "jets", "chunk_index"}
    np.testing.assert_array_equal(ds.extras["jets"], arrays["jets"])  # float64 kept
    meta = ds.metadata
    assert meta["aalearn_format"] == FORMAT_NAME
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["label_names"] == ["top", "w"]
    assert meta["config"] == {"process": "top", "seed": 1}
    assert meta["n_jets"] == 6
    assert meta["chunk_seeds"] == [11, 12]
    assert {"aalearn", "pythia8mc", "numpy", "h5py", "python"} <= set(meta["versions"])
    with h5py.File(good_file) as f:
        assert f["labels"].dtype == np.int8
        assert f["features"].dtype == np.float32
        assert f["features"].compression == "gzip"
        assert json.loads(f.attrs["label_names"]) == ["top", "w"]
    assert read_jets_metadata(good_file)["n_jets"] == 6
    assert list(good_file.parent.iterdir()) == [good_file]  # no temporary file left


def test_writer_rejects_bad_arrays(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["features"][2, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf.*rows 2"):
        write_jets_hdf5(tmp_path / "x.h5", arrays, _attrs())
    arrays = _arrays()
    del arrays["jets"]
    with pytest.raises(ValueError, match="jets"):
        write_jets_hdf5(tmp_path / "x.h5", arrays, _attrs())
    with pytest.raises(ValueError, match="pt_scale_gev"):
        write_jets_hdf5(tmp_path / "x.h5", _arrays(), {"feature_names": [], "config": {}})
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_jets_hdf5(tmp_path / "jets.h5", _arrays(), _attrs())
    before = target.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("aalearn.data.hdf5.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_jets_hdf5(target, _arrays(seed=1), _attrs())
    assert target.read_bytes() == before  # old file intact
    assert list(tmp_path.iterdir()) == [target]  # temporary file removed


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_jets_hdf5(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "jets.h5"
    path.write_text("pT,eta,phi\n1,2,3\n")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        read_jets_hdf5(path)
    with pytest.raises(ValueError, match="directory"):
        read_jets_hdf5(tmp_path)


def test_truncated(good_file: Path) -> None:
    data = good_file.read_bytes()
    good_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_jets_hdf5(good_file)


def test_keras_weights(tmp_path: Path) -> None:
    path = tmp_path / "best_model.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.4.0"
        f.create_group("dense").create_dataset("kernel", data=np.zeros((87, 300)))
    with pytest.raises(ValueError, match="looks like Keras model weights; pass it as --model"):
        read_jets_hdf5(path)


def test_foreign_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("table", data=np.zeros(3))
    with pytest.raises(ValueError, match=r"not an aalearn jet file.*table"):
        read_jets_hdf5(path)


def _edit(path: Path, fn: Any) -> None:
    """Edit a file as another writer would: without the content digest (which would flag any edit)."""
    with h5py.File(path, "r+") as f:
        fn(f)
        if DIGEST_ATTR in f.attrs:
            del f.attrs[DIGEST_ATTR]


def test_an_edit_that_keeps_the_digest_is_reported_as_damage(good_file: Path) -> None:
    with h5py.File(good_file, "r+") as f:
        f.attrs["pt_scale_gev"] = 1679.0  # a valid value, but not the one written
    with pytest.raises(ValueError, match=r"jets\.h5 is truncated or corrupt: .*content_sha256"):
        read_jets_hdf5(good_file)


def _replace(name: str, data: np.ndarray) -> Any:
    def fn(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data)

    return fn


@pytest.mark.parametrize("version", [2, 0])
def test_unsupported_version(good_file: Path, version: int) -> None:
    _edit(good_file, lambda f: f.attrs.__setitem__("format_version", version))
    with pytest.raises(ValueError, match=f"unsupported format_version {version}"):
        read_jets_hdf5(good_file)


@pytest.mark.parametrize("name", REQUIRED_DATASETS)
def test_missing_dataset(good_file: Path, name: str) -> None:
    _edit(good_file, lambda f: f.__delitem__(name))
    with pytest.raises(ValueError, match=f"lacks the dataset.*{name}"):
        read_jets_hdf5(good_file)


def test_missing_attribute(good_file: Path) -> None:
    _edit(good_file, lambda f: f.attrs.__delitem__("pt_scale_gev"))
    with pytest.raises(ValueError, match=r"lacks the attribute.*pt_scale_gev"):
        read_jets_hdf5(good_file)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("features", np.zeros((6, 86)), "'features' has 86 columns"),
        ("labels", np.zeros(5, dtype=np.int8), r"'labels' has shape \(5,\), expected \(6,\)"),
        ("jets", np.zeros((6, 4)), r"'jets' has shape \(6, 4\)"),
        ("constituents_truth", np.zeros((6, 29, 3)), "'constituents_truth' has shape"),
        ("constituents", np.zeros((6, 30)), r"must have shape \(N, K, 3\)"),
    ],
)
def test_wrong_shapes(good_file: Path, name: str, data: np.ndarray, message: str) -> None:
    _edit(good_file, _replace(name, data))
    with pytest.raises(ValueError, match=message):
        read_jets_hdf5(good_file)


def test_nan_rows_are_named(good_file: Path) -> None:
    feats = _arrays()["features"]
    feats[[1, 4], 7] = np.inf
    _edit(good_file, _replace("features", feats))
    with pytest.raises(ValueError, match=r"'features'.*NaN/inf.*rows 1, 4"):
        read_jets_hdf5(good_file)
    jets = _arrays()["jets"]
    jets[3, 0] = np.nan
    _edit(good_file, _replace("features", _arrays()["features"]))
    _edit(good_file, _replace("jets", jets))
    with pytest.raises(ValueError, match=r"'jets'.*rows 3"):
        read_jets_hdf5(good_file)


def test_bad_labels_and_n_jets(good_file: Path) -> None:
    _edit(good_file, lambda f: f.attrs.__setitem__("n_jets", 7))
    with pytest.raises(ValueError, match="n_jets = 7"):
        read_jets_hdf5(good_file)
    _edit(good_file, lambda f: f.attrs.__setitem__("n_jets", 6))
    _edit(good_file, _replace("labels", np.array([0, 1, 2, 0, 1, 0], dtype=np.int8)))
    with pytest.raises(ValueError, match=r"'labels' must hold 0 \(top\) or 1 \(W\); rows \[2\]"):
        read_jets_hdf5(good_file)
