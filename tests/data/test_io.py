"""Tests of aalearn.data.io: loading, saving and rejecting jet files."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from aalearn.data.dataset import JetDataset
from aalearn.data.io import (
    SUPPORTED_SUFFIXES,
    DataFileNotFoundError,
    as_dataset,
    load_column_mapping,
    load_constituents,
    load_dataset,
    load_datasets,
    save_dataset,
)
from aalearn.physics.features import challenge_feature_names
from aalearn.physics.preprocessing import topodnn_preprocess

NAMES = tuple(challenge_feature_names())


def _synthetic(n: int = 12, seed: int = 1) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int64)
    return x, y


def _table(
    x: npt.NDArray[Any], y: npt.NDArray[Any] | None, names: Sequence[str], label: str = "Label"
) -> pa.Table:
    cols = {name: x[:, j] for j, name in enumerate(names)}
    if y is not None:
        cols[label] = y
    return pa.table(cols)


def _write_parquet(path: Path, **cols: Any) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


@pytest.fixture
def renamed() -> dict[str, str]:
    """A mapping aalearn name → a user's column name, for every feature and the label."""
    mapping = {name: f"col{j}" for j, name in enumerate(NAMES)}
    mapping["Label"] = "is_w"
    return mapping


# ---------------------------------------------------------------- the challenge's file


def test_load_challenge_clean_feather(challenge_dir: Path) -> None:
    path = challenge_dir / "Clean_Test_Public.feather"
    ds = load_dataset(path, require_labels=True)
    assert ds.features.shape == (5000, 87)
    assert ds.features.dtype == np.float32
    assert ds.feature_names == tuple(NAMES)
    assert ds.labels is not None
    assert ds.labels.dtype == np.int64
    assert np.bincount(ds.labels).tolist() == [2733, 2267]
    assert ds.source == str(path)
    raw = feather.read_table(path, columns=["ConstPhi_1", "ConstPT_29"])
    np.testing.assert_array_equal(ds.features[:, 2], raw.column("ConstPhi_1").to_numpy().astype(np.float32))
    np.testing.assert_array_equal(ds.features[:, 84], raw.column("ConstPT_29").to_numpy().astype(np.float32))
    assert ds.metadata["loaded_from"]["format"] == "feather"
    assert ds.metadata["loaded_from"]["ignored_columns"] == []


def test_truncated_real_feather(challenge_dir: Path, tmp_path: Path) -> None:
    data = (challenge_dir / "Clean_Test_Public.feather").read_bytes()
    cut = tmp_path / "half.feather"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half\.feather.*truncated or corrupt"):
        load_dataset(cut)


# ---------------------------------------------------------------- Parquet and Feather


def test_parquet_round_trip_with_mapping(tmp_path: Path, renamed: dict[str, str]) -> None:
    x, y = _synthetic()
    names = [renamed[n] for n in NAMES]
    table = _table(x[:, ::-1], y, names[::-1], label="is_w").append_column("event", pa.array(np.arange(12)))
    path = tmp_path / "user.parquet"
    pq.write_table(table, path)
    ds = load_dataset(path, columns=renamed, require_labels=True)
    np.testing.assert_array_equal(ds.features, x)  # challenge order, whatever the file's order
    assert ds.labels is not None
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.labels.dtype == np.int64
    assert ds.feature_names == tuple(NAMES)
    info = ds.metadata["loaded_from"]
    assert info["ignored_columns"] == ["event"]
    assert info["label_column"] == "is_w"
    assert info["renamed_columns"]["ConstPT_0"] == "col0"


def test_partial_mapping_and_label_column(tmp_path: Path) -> None:
    x, y = _synthetic()
    names = list(NAMES)
    names[0] = "leading_pt"
    path = tmp_path / "p.pq"
    pq.write_table(_table(x, y, names, label="truth"), path)
    ds = load_dataset(path, columns={"ConstPT_0": "leading_pt"}, label_column="truth")
    np.testing.assert_array_equal(ds.features, x)
    assert ds.labels is not None
    np.testing.assert_array_equal(ds.labels, y)
    unlabeled = load_dataset(path, columns={"ConstPT_0": "leading_pt"}, label_column=None)
    assert unlabeled.labels is None


def test_unlabeled_file_and_require_labels(tmp_path: Path) -> None:
    x, _ = _synthetic()
    path = tmp_path / "nolabel.parquet"
    pq.write_table(_table(x, None, NAMES), path)
    assert load_dataset(path).labels is None
    with pytest.raises(ValueError, match=r"lacks 1 label column: 'Label'"):
        load_dataset(path, require_labels=True)
    with pytest.raises(ValueError, match=r"require_labels=True needs a label column"):
        load_dataset(path, label_column=None, require_labels=True)


def test_custom_feature_names(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "m.parquet", mass=[80.0, 170.0], tau32=[0.9, 0.5], Label=[1, 0])
    ds = load_dataset(path, feature_names=["tau32", "mass"])
    np.testing.assert_array_equal(ds.features, np.array([[0.9, 80.0], [0.5, 170.0]], np.float32))
    assert ds.feature_names == ("tau32", "mass")


def test_boolean_labels(tmp_path: Path) -> None:
    path = tmp_path / "b.feather"
    feather.write_feather(pa.table({"a": [1.0, 2.0], "Label": [True, False]}), path)
    ds = load_dataset(path, feature_names=["a"])
    assert ds.labels is not None
    assert ds.labels.tolist() == [1, 0]
    assert ds.labels.dtype == np.int64


@pytest.mark.parametrize("suffix", [".feather", ".parquet", ".pq"])
def test_save_round_trip(tmp_path: Path, suffix: str) -> None:
    x, y = _synthetic()
    ds = JetDataset(x, y, NAMES, "synthetic", {"generator": "test", "seed": np.int64(3)})
    path = tmp_path / f"jets{suffix}"
    save_dataset(ds, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left behind
    back = load_dataset(path)
    np.testing.assert_array_equal(back.features, x)
    assert back.labels is not None
    np.testing.assert_array_equal(back.labels, y)
    assert back.feature_names == tuple(NAMES)
    assert {k: v for k, v in back.metadata.items() if k != "loaded_from"} == {"generator": "test", "seed": 3}
    # overwrite in place with an unlabeled dataset of another layout
    other = JetDataset(x[:3, :2], None, ("a", "b"))
    save_dataset(other, path)
    again = load_dataset(path)
    assert again.feature_names == ("a", "b")
    assert again.labels is None
    np.testing.assert_array_equal(again.features, x[:3, :2])


def test_save_errors(tmp_path: Path) -> None:
    x, y = _synthetic()
    ds = JetDataset(x, y, NAMES)
    with pytest.raises(ValueError, match=r"unsupported file suffix '\.csv'.*\.feather, \.parquet, \.pq"):
        save_dataset(ds, tmp_path / "x.csv")
    with pytest.raises(ValueError, match="HDF5"):
        save_dataset(ds, tmp_path / "x.h5")
    with pytest.raises(ValueError, match="does not exist"):
        save_dataset(ds, tmp_path / "nowhere" / "x.parquet")
    with pytest.raises(TypeError, match="JetDataset"):
        save_dataset(x, tmp_path / "x.parquet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clashes with the label column"):
        save_dataset(JetDataset(x[:, :1], y, ("Label",)), tmp_path / "x.parquet")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save_dataset(JetDataset(x, y, NAMES, metadata={"f": object()}), tmp_path / "x.parquet")
    with_extras = JetDataset(x, y, NAMES, extras={"jets": np.zeros((12, 4))})
    with pytest.warns(UserWarning, match="'jets' are not written"):
        save_dataset(with_extras, tmp_path / "x.feather")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.feather"]


def test_failed_save_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _synthetic()
    path = tmp_path / "jets.feather"
    save_dataset(JetDataset(x, y, NAMES), path)
    before = path.read_bytes()

    def broken(table: Any, where: str, *args: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"partial")  # the writer got half-way
        raise OSError("disk full")

    monkeypatch.setattr(feather, "write_feather", broken)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(JetDataset(x[:2], y[:2], NAMES), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_n_max_keeps_the_first_jets(tmp_path: Path) -> None:
    x, y = _synthetic(n=12)
    path = tmp_path / "jets.parquet"
    save_dataset(JetDataset(x, y, NAMES), path)
    head = load_dataset(path, n_max=5)
    np.testing.assert_array_equal(head.features, x[:5])
    assert head.labels is not None
    np.testing.assert_array_equal(head.labels, y[:5])
    assert len(load_dataset(path, n_max=100)) == 12  # fewer jets than n_max: all of them
    with pytest.raises(ValueError, match="n_max must be positive, got 0"):
        load_dataset(path, n_max=0)
    with pytest.raises(TypeError, match="n_max must be an integer"):
        load_dataset(path, n_max=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_max must be an integer"):
        load_dataset(path, n_max=True)


def test_as_dataset_paths_and_datasets(tmp_path: Path) -> None:
    x, y = _synthetic(n=6)
    ds = JetDataset(x, y, NAMES, "memory")
    assert as_dataset(ds) is ds
    cut = as_dataset(ds, n_max=4, require_labels=True)
    np.testing.assert_array_equal(cut.features, x[:4])
    unlabeled = JetDataset(x, None, NAMES, "unlabeled jets")
    with pytest.raises(ValueError, match="unlabeled jets holds no labels"):
        as_dataset(unlabeled, require_labels=True)
    with pytest.raises(TypeError, match="columns only apply when loading a file"):
        as_dataset(ds, columns={"a": "b"})
    path = tmp_path / "jets.feather"
    save_dataset(unlabeled, path)
    assert len(as_dataset(str(path), n_max=2)) == 2
    with pytest.raises(ValueError, match="lacks 1 label column: 'Label'"):
        as_dataset(path, require_labels=True)


def test_load_datasets_concatenates(tmp_path: Path) -> None:
    x, y = _synthetic(n=6)
    a, b = tmp_path / "a.parquet", tmp_path / "b.feather"
    save_dataset(JetDataset(x[:4], y[:4], NAMES), a)
    save_dataset(JetDataset(x[4:], y[4:], NAMES), b)
    both = load_datasets([a, b])
    np.testing.assert_array_equal(both.features, x)
    assert both.labels is not None
    np.testing.assert_array_equal(both.labels, y)
    heads = load_datasets([a, b], n_max=1)  # per file
    np.testing.assert_array_equal(heads.features, x[[0, 4]])
    assert load_datasets([a]).source == str(a)
    with pytest.raises(ValueError, match="at least one"):
        load_datasets([])
    with pytest.raises(TypeError, match="list"):
        load_datasets(str(a))  # type: ignore[arg-type]


# ---------------------------------------------------------------- ROOT


def _uproot() -> Any:
    return pytest.importorskip("uproot")


def test_root_round_trip_with_mapping(tmp_path: Path, renamed: dict[str, str]) -> None:
    uproot = _uproot()
    x, y = _synthetic()
    branches = {renamed[n]: x[:, j].astype(np.float64) for j, n in enumerate(NAMES)}
    branches["is_w"] = y.astype(np.int32)
    path = tmp_path / "jets.root"
    with uproot.recreate(path) as f:
        f.mktree("jets", {k: v.dtype for k, v in branches.items()}).extend(branches)
    ds = load_dataset(path, columns=renamed, require_labels=True)  # the only tree is picked
    np.testing.assert_array_equal(ds.features, x)
    assert ds.labels is not None
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.metadata["loaded_from"]["tree"] == "jets"


def test_root_tree_selection(tmp_path: Path) -> None:
    uproot = _uproot()
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f.mktree("signal", {"m": np.float64}).extend({"m": np.array([80.0, 81.0])})
        f.mktree("background", {"m": np.float64}).extend({"m": np.array([170.0])})
    with pytest.raises(ValueError, match=r"holds 2 trees: 'signal', 'background'; pass tree=NAME"):
        load_dataset(path, feature_names=["m"])
    ds = load_dataset(path, feature_names=["m"], tree="background")
    np.testing.assert_array_equal(ds.features, [[170.0]])
    with pytest.raises(ValueError, match=r"no TTree or RNTuple named 'signl'; did you mean 'signal'"):
        load_dataset(path, feature_names=["m"], tree="signl")


def test_root_rntuple_auto_pick(tmp_path: Path) -> None:
    uproot = _uproot()
    path = tmp_path / "nt.root"
    with uproot.recreate(path) as f:
        f["events"] = {"m": np.array([80.0, 170.0]), "Label": np.array([1, 0])}
    ds = load_dataset(path, feature_names=["m"])
    np.testing.assert_array_equal(ds.features[:, 0], [80.0, 170.0])
    assert ds.labels is not None
    assert ds.labels.tolist() == [1, 0]


def test_root_array_valued_branches(tmp_path: Path) -> None:
    uproot = _uproot()
    ak = pytest.importorskip("awkward")
    path = tmp_path / "arr.root"
    with uproot.recreate(path) as f:
        tree = f.mktree("t", {"m": np.float64, "pts": "var * float64", "fixed": ("float64", (3,))})
        tree.extend({"m": np.ones(2), "pts": ak.Array([[1.0, 2.0], [3.0]]), "fixed": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"branch 'pts'.*jagged/array-valued"):
        load_dataset(path, feature_names=["m", "pts"])
    with pytest.raises(ValueError, match=r"branch 'fixed'.*array-valued with shape \(3,\)"):
        load_dataset(path, feature_names=["fixed"])


def test_root_string_branch(tmp_path: Path) -> None:
    uproot = _uproot()
    path = tmp_path / "s.root"
    with uproot.recreate(path) as f:
        f["t"] = {"m": np.ones(2), "name": np.array(["a", "b"])}
    with pytest.raises(TypeError, match=r"branch 'name'.*strings"):
        load_dataset(path, feature_names=["m", "name"])


# ---------------------------------------------------------------- bad input


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"nope\.feather' does not exist") as info:
        load_dataset(tmp_path / "nope.feather")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FileNotFoundError)
    csv = tmp_path / "jets.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported file suffix '\.csv'.*supported: \.feather, \.parquet"):
        load_dataset(csv)
    with pytest.raises(ValueError, match="not a regular file"):
        load_dataset(tmp_path)
    assert set(SUPPORTED_SUFFIXES) == {".feather", ".parquet", ".pq", ".root", ".h5", ".hdf5"}


def test_missing_columns_listed_with_close_matches(tmp_path: Path) -> None:
    x, y = _synthetic()
    names = list(NAMES)
    names[4] = "ConstEta_2_"  # a typo
    table = _table(x[:, :80], y, names[:80])  # and only 80 of the 87 columns: a wrong layout
    path = tmp_path / "short.feather"
    feather.write_feather(table, path)
    with pytest.raises(ValueError, match=r"lacks 8 column\(s\): 'ConstEta_2'.*'ConstPhi_29'") as info:
        load_dataset(path)
    msg = str(info.value)
    assert "short.feather" in msg
    assert "'ConstEta_2' → 'ConstEta_2_'" in msg
    assert "columns=" in msg


def test_missing_mapped_column_names_the_feature(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "m.parquet", mass=[80.0])
    with pytest.raises(ValueError, match=r"'jet_mass' \(feature m\)"):
        load_dataset(path, feature_names=["m"], columns={"m": "jet_mass"})


def test_bad_mappings(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "m.parquet", a=[1.0], b=[2.0], Label=[0])
    with pytest.raises(ValueError, match=r"not features: 'ConstPT0'.*'ConstPT0' → 'ConstPT_0'"):
        load_dataset(path, columns={"ConstPT0": "a"})
    with pytest.raises(ValueError, match="both map to column 'a'"):
        load_dataset(path, feature_names=["x", "y"], columns={"x": "a", "y": "a"})
    with pytest.raises(TypeError, match="must map str to str"):
        load_dataset(path, feature_names=["x"], columns={"x": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a mapping"):
        load_dataset(path, columns=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label_column=None"):
        load_dataset(path, feature_names=["a"], columns={"Label": "b"}, label_column=None)
    with pytest.raises(ValueError, match="also mapped to feature"):
        load_dataset(path, feature_names=["a", "b"], label_column="b")
    with pytest.raises(ValueError, match="lacks 1 label column: 'truth'"):
        load_dataset(path, feature_names=["a"], label_column="truth")
    with pytest.raises(ValueError, match="only applies to ROOT"):
        load_dataset(path, feature_names=["a"], tree="t")
    with pytest.raises(ValueError, match="duplicates"):
        load_dataset(path, feature_names=["a", "a"])


def test_nan_and_inf_named(tmp_path: Path) -> None:
    x, y = _synthetic()
    x[3, 5] = np.nan
    x[7, 0] = np.inf
    x[7, 1] = np.nan
    path = tmp_path / "nan.parquet"
    pq.write_table(_table(x, y, NAMES), path)
    pattern = (
        r"nan\.parquet' has 3 NaN/inf feature value\(s\) in 2 row\(s\): rows 3, 7; in column\(s\) 'ConstPT_0'"
    )
    with pytest.raises(ValueError, match=pattern):
        load_dataset(path)
    big = _write_parquet(tmp_path / "big.parquet", a=[1.0, 1e300])
    with pytest.raises(ValueError, match=r"rows 1;.*overflow float32"):
        load_dataset(big, feature_names=["a"])


def test_nulls_named(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "null.parquet", a=pa.array([1.0, None, 3.0]))
    with pytest.raises(
        ValueError, match=r"column 'a' of .*null\.parquet' has 1 missing \(null\) value\(s\) in rows 1"
    ):
        load_dataset(path, feature_names=["a"])


def test_wrong_dtype_named(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "s.parquet", a=[1.0, 2.0], flavour=["top", "w"], Label=["t", "w"])
    with pytest.raises(TypeError, match=r"column 'flavour' of .*s\.parquet' must be numeric.*string"):
        load_dataset(path, feature_names=["a", "flavour"])
    with pytest.raises(TypeError, match=r"column 'Label'.*must be numeric"):
        load_dataset(path, feature_names=["a"])
    categorical = _write_parquet(tmp_path / "c.parquet", a=pa.array(["x", "y"]).dictionary_encode())
    with pytest.raises(TypeError, match=r"column 'a' .*must be numeric.*dictionary<values=string"):
        load_dataset(categorical, feature_names=["a"])
    listed = _write_parquet(tmp_path / "l.parquet", a=[[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"column 'a' .*array-valued \(Arrow type list"):
        load_dataset(listed, feature_names=["a"])


@pytest.mark.parametrize(("values", "shown"), [([0, 2, 1], r"\[0, 1, 2\]"), ([0.0, 0.5, 1.0], r"0\.5")])
def test_labels_not_binary(tmp_path: Path, values: list[float], shown: str) -> None:
    path = _write_parquet(tmp_path / "y.parquet", a=[1.0, 2.0, 3.0], Label=values)
    with pytest.raises(ValueError, match=rf"label column 'Label' of .*y\.parquet' must be 0 or 1.*{shown}"):
        load_dataset(path, feature_names=["a"])


def test_no_rows(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "empty.parquet", a=pa.array([], pa.float64()))
    with pytest.raises(ValueError, match=r"holds no jets"):
        load_dataset(path, feature_names=["a"])


@pytest.mark.parametrize("suffix", [".feather", ".parquet", ".root"])
@pytest.mark.parametrize("content", [b"", b"random"])
def test_corrupt_files(tmp_path: Path, suffix: str, content: bytes) -> None:
    if suffix == ".root":
        _uproot()
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(4096) if content else b"")
    with pytest.raises(ValueError, match=rf"bad\{suffix}' is truncated or corrupt"):
        load_dataset(path)


def test_truncated_parquet_and_root(tmp_path: Path) -> None:
    uproot = _uproot()
    x, y = _synthetic(200)
    good = tmp_path / "good.parquet"
    pq.write_table(_table(x, y, NAMES), good)
    data = good.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_dataset(cut)
    root = tmp_path / "good.root"
    with uproot.recreate(root) as f:
        f.mktree("t", {"m": np.float64}).extend({"m": np.arange(1000.0)})
    cut_root = tmp_path / "cut.root"
    cut_root.write_bytes(root.read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_dataset(cut_root, feature_names=["m"])


def test_hdf5_branch_rejects_mapping(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="columns= does not apply to HDF5"):
        load_dataset(path, columns={"a": "b"})


def test_hdf5_keras_weights_rejected(challenge_dir: Path) -> None:
    try:
        importlib.import_module("aalearn.data.hdf5")
    except ImportError:
        pytest.skip("aalearn.data.hdf5 is not available")
    with pytest.raises(ValueError, match="best_model"):
        load_dataset(challenge_dir / "best_model.hdf5")


# ---------------------------------------------------------------- column mapping files


def test_load_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"ConstPT_0": "pt0", "Label": "is_w"}))
    assert load_column_mapping(path) == {"ConstPT_0": "pt0", "Label": "is_w"}


@pytest.mark.parametrize(
    ("text", "error", "pattern"),
    [
        ('{"a": "b",}', ValueError, r"not valid JSON: .* at line 1"),
        ('["a", "b"]', TypeError, r"must be a JSON object .* got a JSON list"),
        ('{"a": {"b": "c"}}', TypeError, r"entry 'a': \{'b': 'c'\}"),
        ('{"a": 1}', TypeError, r"must map str to str; entry 'a': 1"),
        ('{"a": "b", "a": "c"}', ValueError, r"duplicate keys 'a'"),
        ('{"a": ""}', ValueError, r"empty name"),
    ],
)
def test_bad_column_mapping(tmp_path: Path, text: str, error: type[Exception], pattern: str) -> None:
    path = tmp_path / "map.json"
    path.write_text(text)
    with pytest.raises(error, match=pattern):
        load_column_mapping(path)


def test_column_mapping_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        load_column_mapping(tmp_path / "map.json")


# ---------------------------------------------------------------- constituents


def _random_jets(n: int, rng: np.random.Generator) -> list[npt.NDArray[np.float64]]:
    jets = []
    for _ in range(n):
        k = int(rng.integers(3, 45))
        jets.append(np.stack([rng.uniform(1, 300, k), rng.normal(0, 0.3, k), rng.normal(0, 0.3, k)], axis=1))
    return jets


def _expected(jets: list[npt.NDArray[np.float64]], scale: float = 1.0) -> npt.NDArray[np.float32]:
    padded = np.zeros((len(jets), 30, 3))
    for i, j in enumerate(jets):
        j = j[np.argsort(-j[:, 0], kind="stable")][:30] * [scale, 1.0, 1.0]
        padded[i, : len(j)] = j
    return topodnn_preprocess(padded).astype(np.float32)


def test_load_constituents_root_jagged(tmp_path: Path) -> None:
    uproot = _uproot()
    ak = pytest.importorskip("awkward")
    rng = np.random.default_rng(5)
    jets = _random_jets(8, rng)
    labels = np.arange(8) % 2
    path = tmp_path / "c.root"
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "jets", {"pt": "var * float64", "eta": "var * float64", "phi": "var * float64", "y": np.int8}
        )
        tree.extend(
            {
                "pt": ak.Array([list(j[:, 0] * 1000.0) for j in jets]),  # MeV
                "eta": ak.Array([list(j[:, 1]) for j in jets]),
                "phi": ak.Array([list(j[:, 2]) for j in jets]),
                "y": labels.astype(np.int8),
            }
        )
    ds = load_constituents(path, pt="pt", eta="eta", phi="phi", label="y", pt_unit_gev=1e-3)
    assert ds.feature_names == tuple(NAMES)
    np.testing.assert_allclose(ds.features, _expected(jets), rtol=1e-5, atol=1e-6)
    assert ds.labels is not None
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.extras["constituents"].shape == (8, 30, 3)
    assert ds.metadata["n_truncated_jets"] == sum(len(j) > 30 for j in jets)
    lead = ds.extras["constituents"][:, 0, 0]
    np.testing.assert_allclose(lead, [j[:, 0].max() for j in jets], rtol=1e-6)


def test_load_constituents_parquet_lists_and_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    jets = _random_jets(5, rng)
    path = _write_parquet(
        tmp_path / "c.parquet",
        pt=[list(j[:, 0]) for j in jets],
        eta=[list(j[:, 1]) for j in jets],
        phi=[list(j[:, 2]) for j in jets],
    )
    ds = load_constituents(path, pt="pt", eta="eta", phi="phi")
    np.testing.assert_allclose(ds.features, _expected(jets), rtol=1e-5, atol=1e-6)
    assert ds.labels is None
    # fixed width: one column per constituent, zero padded
    fixed = np.zeros((5, 3, 4))
    for i, j in enumerate(jets):
        fixed[i, :, :3] = j[:3].T  # the fourth constituent is padding (pT = 0)
    cols: dict[str, Any] = {}
    for q, name in enumerate(("pt", "eta", "phi")):
        for k in range(4):
            cols[f"{name}{k}"] = fixed[:, q, k]
    wide = _write_parquet(tmp_path / "w.parquet", **cols)
    ds = load_constituents(
        wide,
        pt=[f"pt{k}" for k in range(4)],
        eta=[f"eta{k}" for k in range(4)],
        phi=[f"phi{k}" for k in range(4)],
    )
    np.testing.assert_allclose(ds.features, _expected([j[:3] for j in jets]), rtol=1e-5, atol=1e-6)


def test_load_constituents_errors(tmp_path: Path) -> None:
    path = _write_parquet(
        tmp_path / "c.parquet",
        pt=[[10.0, 5.0], [3.0, -1.0]],
        eta=[[0.0, 0.1], [0.2]],
        phi=[[0.0, 0.1], [0.2, float("nan")]],
        m=[1.0, 2.0],
    )
    with pytest.raises(
        ValueError, match=r"eta column 'eta'.*different constituent counts in 1 jet\(s\): rows 1"
    ):
        load_constituents(path, pt="pt", eta="eta", phi="phi")
    with pytest.raises(ValueError, match=r"lacks 1 eta column: 'Eta'.*'Eta' → 'eta'"):
        load_constituents(path, pt="pt", eta="Eta", phi="phi")
    with pytest.raises(ValueError, match=r"column 'm'.*one value per jet"):
        load_constituents(path, pt="pt", eta="m", phi="phi")
    ok_eta = _write_parquet(
        tmp_path / "d.parquet", pt=[[10.0, -5.0]], eta=[[0.0, 0.1]], phi=[[0.0, float("nan")]]
    )
    with pytest.raises(ValueError, match=r"phi column 'phi'.*1 NaN/inf value\(s\) in jets 0"):
        load_constituents(ok_eta, pt="pt", eta="eta", phi="phi")
    neg = _write_parquet(tmp_path / "e.parquet", pt=[[10.0, -5.0]], eta=[[0.0, 0.1]], phi=[[0.0, 0.1]])
    with pytest.raises(ValueError, match=r"negative pT in jets 0"):
        load_constituents(neg, pt="pt", eta="eta", phi="phi")
    with pytest.raises(ValueError, match="pt_unit_gev"):
        load_constituents(neg, pt="pt", eta="eta", phi="phi", pt_unit_gev=0.0)
