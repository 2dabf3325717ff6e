"""Property-based tests (hypothesis) of the jet-file readers (issue 18).

* The aalearn HDF5 format and Feather/Parquet round-trip any finite jets and any JSON
  configuration exactly (float32 features: bit for bit).
* Any single-byte change of an HDF5 jet file is either detected (``ValueError`` naming the file)
  or changes nothing the reader returns: no silent corruption, no other exception.
* Arbitrary bytes under a data-file name give ``ValueError``, never another exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aalearn.data.dataset import JetDataset
from aalearn.data.hdf5 import read_jets_hdf5, write_jets_hdf5
from aalearn.data.io import load_dataset, save_dataset
from aalearn.physics import challenge_feature_names

FINITE = st.floats(-1e6, 1e6, allow_nan=False, width=32)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False)
)
CONFIGS = st.dictionaries(
    st.text(min_size=1, max_size=8), JSON_SCALARS | st.lists(JSON_SCALARS, max_size=3), max_size=5
)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _jets(draw: Any, n: int, k: int) -> dict[str, np.ndarray]:
    f = 3 * k - 3
    return {
        "features": draw(hnp.arrays(np.float32, (n, f), elements=FINITE)),
        "features_truth": draw(hnp.arrays(np.float32, (n, f), elements=FINITE)),
        "labels": draw(hnp.arrays(np.int8, (n,), elements=st.integers(0, 1))),
        "constituents": draw(hnp.arrays(np.float32, (n, k, 3), elements=FINITE)),
        "constituents_truth": np.zeros((n, k, 3), np.float32),
        "jets": draw(hnp.arrays(np.float64, (n, 5), elements=st.floats(-1e9, 1e9, allow_nan=False))),
        "chunk_index": np.zeros(n, np.int32),
        "chunk_seeds": np.array([7], np.int64),
    }


@st.composite
def jet_files(draw: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    n, k = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    names = [f"f{i}" for i in range(3 * k - 3)]
    attrs = {"feature_names": names, "config": draw(CONFIGS), "pt_scale_gev": draw(st.floats(1e-3, 1e4))}
    return _jets(draw, n, k), attrs


@PROPERTY
@given(jet_files())
def test_hdf5_round_trip_is_exact(case: tuple[dict[str, np.ndarray], dict[str, Any]]) -> None:
    arrays, attrs = case
    with tempfile.TemporaryDirectory() as d:
        ds = read_jets_hdf5(write_jets_hdf5(Path(d) / "j.h5", arrays, attrs))
    np.testing.assert_array_equal(ds.features, arrays["features"])
    np.testing.assert_array_equal(ds.labels, arrays["labels"].astype(np.int64))
    for key in ("features_truth", "constituents", "jets"):
        np.testing.assert_array_equal(ds.extras[key], arrays[key])
    assert ds.metadata["config"] == attrs["config"]
    assert ds.metadata["pt_scale_gev"] == attrs["pt_scale_gev"]
    assert ds.feature_names == tuple(attrs["feature_names"])


@PROPERTY
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=FINITE),
    st.booleans(),
    st.sampled_from([".feather", ".parquet"]),
)
def test_feather_and_parquet_round_trip_is_exact(x: np.ndarray, labelled: bool, suffix: str) -> None:
    labels = (np.arange(len(x)) % 2).astype(np.int64) if labelled else None
    names = tuple(f"c{j}" for j in range(x.shape[1]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{suffix}"
        save_dataset(JetDataset(x, labels, names), path)
        ds = load_dataset(path)
    np.testing.assert_array_equal(ds.features, x)
    assert ds.feature_names == names
    if labelled:
        np.testing.assert_array_equal(ds.labels, labels)
    else:
        assert ds.labels is None


@pytest.fixture(scope="module")
def small_jet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, JetDataset]:
    rng = np.random.default_rng(1)
    n, k = 4, 30
    arrays = {
        "features": rng.normal(size=(n, 87)),
        "features_truth": rng.normal(size=(n, 87)),
        "labels": np.array([0, 1, 0, 1]),
        "constituents": rng.normal(size=(n, k, 3)),
        "constituents_truth": rng.normal(size=(n, k, 3)),
        "constituents_unsmeared": rng.normal(size=(n, k, 3)),
        "jets": rng.normal(size=(n, 5)),
        "chunk_index": np.zeros(n),
        "chunk_seeds": np.array([3]),
    }
    attrs = {
        "feature_names": challenge_feature_names(),
        "config": {"process": "w", "seed": 5},
        "pt_scale_gev": 1679.1593,
    }
    path = write_jets_hdf5(tmp_path_factory.mktemp("flip") / "chunk.h5", arrays, attrs)
    return path.read_bytes(), read_jets_hdf5(path)


def _same(a: JetDataset, b: JetDataset) -> bool:
    return (
        np.array_equal(a.features, b.features)
        and np.array_equal(np.asarray(a.labels), np.asarray(b.labels))
        and a.extras.keys() == b.extras.keys()
        and all(np.array_equal(a.extras[k], b.extras[k]) for k in a.extras)
        and a.metadata == b.metadata
        and a.feature_names == b.feature_names
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_changed_byte_is_detected_or_harmless(small_jet_file: tuple[bytes, JetDataset], data: Any) -> None:
    raw, reference = small_jet_file
    # half of the draws inside the attribute region (config, feature names): HDF5's own
    # checksums do not cover attribute values, only the content digest does
    start = raw.find(b"ConstPT_0")
    offset = data.draw(st.integers(0, len(raw) - 1) | st.integers(max(0, start - 2000), start + 2000))
    mask = data.draw(st.integers(1, 255))
    damaged = bytearray(raw)
    damaged[offset] ^= mask
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "chunk.h5"
        path.write_bytes(bytes(damaged))
        try:
            ds: JetDataset | None = read_jets_hdf5(path)
            error = ""
        except ValueError as exc:
            ds, error = None, str(exc)
    if ds is None:
        assert "chunk.h5" in error, error  # the reader names the damaged file
        return
    assert _same(ds, reference), f"byte {offset} ^ {mask:#x}: changed content read without an error"


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([".h5", ".feather", ".parquet"]), st.booleans())
def test_arbitrary_bytes_give_a_value_error(content: bytes, suffix: str, hdf5_signature: bool) -> None:
    if hdf5_signature:
        content = b"\x89HDF\r\n\x1a\n" + content
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{suffix}"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"x\{suffix}"):  # one line naming the file
            load_dataset(path)
