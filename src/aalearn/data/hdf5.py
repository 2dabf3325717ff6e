"""The aalearn HDF5 jet format (format version 1): atomic writer and validated reader.

One file holds ``N`` jets of both classes as produced by :mod:`aalearn.data.generate`.

Root attributes:

=====================  ==========================================================
``aalearn_format``     ``"aalearn-jets"`` (identifies the file)
``format_version``     ``1``
``feature_names``      JSON list of the ``F`` feature names (87 challenge columns)
``label_names``        JSON ``["top", "w"]`` (label 0 = top, 1 = W, as the challenge)
``config``             JSON: generator configuration plus ``seed``, ``chunk_size``,
                       ``n_jets``
``versions``           JSON: aalearn, pythia8mc, numpy, h5py, python versions
``pt_scale_gev``       GeV per pT unit of ``features`` (1679.1593 for the challenge)
``n_jets``             ``N``
=====================  ==========================================================

Further scalar or JSON attributes may be present (the generator adds ``config_hash``,
``n_events`` and ``cpu_seconds``); readers keep them in the metadata.

``content_sha256`` (written since issue 18; optional for older files): SHA-256 of every other
root attribute and every dataset (name, dtype, shape and bytes), in a canonical order. The
reader recomputes it from what it decoded, so a damaged file is detected whatever byte was hit:
a flip either raises ``ValueError`` or changed nothing the reader returns. HDF5's own checks
(fletcher32 per data chunk, checksummed object headers) miss about 40 % of single-byte flips,
for example those inside attribute values or uncompressed metadata.

Datasets (chunked, gzip-compressed):

======================  =================  ==============================================
``features``            (N, F) float32     smeared constituents after the TopoDNN
                                           preprocessing (challenge layout, F = 3K - 3)
``features_truth``      (N, F) float32     the same without detector smearing
``labels``              (N,) int8          0 = top, 1 = W
``constituents``        (N, K, 3) float32  smeared (pT [GeV], η, φ) before preprocessing
``constituents_truth``  (N, K, 3) float32  particle-level (pT [GeV], η, φ)
``jets``                (N, 5) float64     particle-level jet (pT [GeV], η, φ,
                                           mass [GeV], number of constituents)
``constituents_unsmeared`` (N, K, 3) float32  optional: detector-level objects before
                                           smearing (written by aalearn >= issue 15)
``chunk_index``         (N,) int32         generation chunk of each jet
``chunk_seeds``         (n_chunks,) int64  Pythia/smearing seed of every chunk
======================  =================  ==============================================

Writes are atomic: the file is written under a temporary name in the target directory
and moved into place with :func:`os.replace` (:func:`aalearn.core.io.atomic_path`), so a reader
never sees a partial file.
The reader turns every kind of bad input into a ``ValueError`` that says what is wrong.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from aalearn.physics import challenge_feature_names
    >>> n = 2
    >>> arrays = {
    ...     "features": np.zeros((n, 87)), "features_truth": np.zeros((n, 87)),
    ...     "labels": np.array([0, 1]), "constituents": np.zeros((n, 30, 3)),
    ...     "constituents_truth": np.zeros((n, 30, 3)), "jets": np.zeros((n, 5)),
    ...     "chunk_index": np.zeros(n), "chunk_seeds": np.array([7]),
    ... }
    >>> attrs = {"feature_names": challenge_feature_names(), "config": {}, "pt_scale_gev": 1679.1593}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "jets.h5"
    >>> _ = write_jets_hdf5(path, arrays, attrs)
    >>> ds = read_jets_hdf5(path)
    >>> len(ds), ds.features.shape[1], ds.metadata["format_version"]
    (2, 87, 1)

References:
    The HDF Group, HDF5 (https://www.hdfgroup.org/HDF5); h5py (https://www.h5py.org).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn import __version__
from aalearn.core.io import atomic_path
from aalearn.core.validation import check_finite
from aalearn.data.dataset import LABEL_NAMES, JetDataset

__all__ = [
    "DIGEST_ATTR",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "JET_COLUMNS",
    "REQUIRED_DATASETS",
    "check_output_name",
    "content_digest",
    "read_jets_hdf5",
    "read_jets_metadata",
    "software_versions",
    "write_jets_hdf5",
]

#: Value of the ``aalearn_format`` root attribute.
FORMAT_NAME: str = "aalearn-jets"
#: Format version written (and the only one read) by this aalearn.
FORMAT_VERSION: int = 1
#: Columns of the ``jets`` dataset.
JET_COLUMNS: tuple[str, ...] = ("pt", "eta", "phi", "mass", "n_constituents")
#: Datasets with one row per jet, in the order they are written.
PER_JET_DATASETS: tuple[str, ...] = (
    "features",
    "features_truth",
    "labels",
    "constituents",
    "constituents_truth",
    "jets",
    "chunk_index",
)
#: Per-jet datasets written and read when present (files of earlier versions lack them).
OPTIONAL_DATASETS: tuple[str, ...] = ("constituents_unsmeared",)
#: Every dataset an aalearn jet file must contain.
REQUIRED_DATASETS: tuple[str, ...] = (*PER_JET_DATASETS, "chunk_seeds")

_DTYPES: dict[str, type[np.generic]] = {
    "features": np.float32,
    "features_truth": np.float32,
    "labels": np.int8,
    "constituents": np.float32,
    "constituents_truth": np.float32,
    "constituents_unsmeared": np.float32,
    "jets": np.float64,
    "chunk_index": np.int32,
    "chunk_seeds": np.int64,
}
_FLOAT_DATASETS = ("features", "features_truth", "constituents", "constituents_truth", "jets")
_REQUIRED_ATTRS = ("feature_names", "label_names", "config", "versions", "pt_scale_gev", "n_jets")
_WRITER_ATTRS = ("aalearn_format", "format_version", "n_jets")
#: Root attribute holding the content digest (see the module docstring).
DIGEST_ATTR = "content_sha256"
_KERAS_MARKERS = ("keras_version", "layer_names", "model_config", "training_config", "backend")


def _h5py() -> Any:
    import h5py

    return h5py


def software_versions() -> dict[str, str]:
    """Versions of the software that produced a file (aalearn, pythia8mc, numpy, h5py, python).

    Example:
        >>> sorted(software_versions())
        ['aalearn', 'h5py', 'numpy', 'pythia8mc', 'python']
    """

    def _version(dist: str) -> str:
        try:
            return importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            return "not installed"

    return {
        "aalearn": __version__,
        "pythia8mc": _version("pythia8mc"),
        "numpy": np.__version__,
        "h5py": _version("h5py"),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- layout checks


def _check_layout(
    shapes: Mapping[str, tuple[int, ...]], n_names: int, n_jets: int | None, where: str
) -> None:
    """Check the shapes of all datasets against each other and the feature names."""
    missing = [k for k in REQUIRED_DATASETS if k not in shapes]
    if missing:
        raise ValueError(
            f"{where} lacks the dataset(s) {', '.join(missing)}; an aalearn jet file needs "
            f"{', '.join(REQUIRED_DATASETS)}"
        )
    feat = shapes["features"]
    if len(feat) != 2:
        raise ValueError(f"{where}: dataset 'features' must have shape (N, F), got {feat}")
    n, f = feat
    if n < 1:
        raise ValueError(f"{where} holds no jets (dataset 'features' has shape {feat})")
    if f != n_names:
        raise ValueError(f"{where}: dataset 'features' has {f} columns but there are {n_names} feature names")
    cons = shapes["constituents"]
    if len(cons) != 3 or cons[2] != 3:
        raise ValueError(f"{where}: dataset 'constituents' must have shape (N, K, 3), got {cons}")
    k = cons[1]
    expected: dict[str, tuple[int, ...]] = {
        "features": (n, 3 * k - 3),
        "features_truth": (n, 3 * k - 3),
        "labels": (n,),
        "constituents": (n, k, 3),
        "constituents_truth": (n, k, 3),
        "jets": (n, len(JET_COLUMNS)),
        "chunk_index": (n,),
    }
    for key in OPTIONAL_DATASETS:
        if key in shapes:
            expected[key] = (n, k, 3)
    for key, want in expected.items():
        if tuple(shapes[key]) != want:
            raise ValueError(
                f"{where}: dataset {key!r} has shape {tuple(shapes[key])}, expected {want} "
                f"(N = {n} jets, K = {k} constituents)"
            )
    seeds = shapes["chunk_seeds"]
    if len(seeds) != 1 or seeds[0] < 1:
        raise ValueError(
            f"{where}: dataset 'chunk_seeds' must have shape (n_chunks,) with n_chunks >= 1, got {seeds}"
        )
    if n_jets is not None and n_jets != n:
        raise ValueError(f"{where}: attribute n_jets = {n_jets} but the datasets hold {n} jets")


def _check_values(arrays: Mapping[str, npt.NDArray[Any]], where: str) -> None:
    """Check finiteness, labels and chunk indices of loaded arrays."""
    for key in (*_FLOAT_DATASETS, *(k for k in OPTIONAL_DATASETS if k in arrays)):
        check_finite(np.asarray(arrays[key]), name=f"{where}: dataset {key!r}")
    labels = np.asarray(arrays["labels"])
    bad = ~np.isin(labels, [0, 1])
    if bad.any():
        rows = np.nonzero(bad)[0]
        raise ValueError(
            f"{where}: dataset 'labels' must hold 0 (top) or 1 (W); rows {rows[:10].tolist()} hold "
            f"{np.unique(labels[bad])[:10].tolist()}"
        )
    chunk_index = np.asarray(arrays["chunk_index"])
    n_chunks = len(arrays["chunk_seeds"])
    if chunk_index.size and (chunk_index.min() < 0 or chunk_index.max() >= n_chunks):
        raise ValueError(f"{where}: dataset 'chunk_index' refers to chunks outside 0..{n_chunks - 1}")


def _canonical_attr(value: Any) -> Any:
    """An attribute value as written (str, int, float or bool), whether encoded or read back."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def content_digest(attrs: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    """SHA-256 of a jet file's root attributes and datasets, the value of ``content_sha256``.

    Args:
        attrs: Root attributes as stored (the digest attribute itself is ignored).
        arrays: The datasets, in their stored dtypes.

    Returns:
        The hexadecimal digest.

    Example:
        >>> a = {"labels": np.array([0, 1], dtype=np.int8)}
        >>> content_digest({"n_jets": 2}, a) == content_digest({"n_jets": np.int64(2)}, a)
        True
    """
    h = hashlib.sha256()
    header = [[k, _canonical_attr(attrs[k])] for k in sorted(attrs) if k != DIGEST_ATTR]
    h.update(json.dumps(header, sort_keys=True).encode())
    for key in sorted(arrays):
        arr = np.asarray(arrays[key])
        little = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        h.update(json.dumps([key, little.dtype.str, list(little.shape)]).encode())
        h.update(little.tobytes())
    return h.hexdigest()


#: File name endings of aalearn jet files.
SUFFIXES: tuple[str, ...] = (".h5", ".hdf5")


def check_output_name(path: str | os.PathLike[str]) -> Path:
    """Refuse an output name that is a directory or promises another format than HDF5.

    Args:
        path: Intended output file.

    Returns:
        The path.

    Raises:
        ValueError: If ``path`` is a directory or does not end in ``.h5`` or ``.hdf5``.

    Example:
        >>> check_output_name("jets.h5").name
        'jets.h5'
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"output {p} is a directory; give a file name such as {p / 'jets.h5'}")
    if p.suffix.lower() not in SUFFIXES:
        got = f"'{p.suffix}'" if p.suffix else "no ending"
        raise ValueError(
            f"output {p}: generated jets are written in the aalearn HDF5 format, so the name must end in "
            f"{' or '.join(SUFFIXES)} (got {got}); e.g. {p.with_suffix('.h5').name}"
        )
    return p


# --------------------------------------------------------------------------- writer


def _encode_attr(key: str, value: Any) -> Any:
    if value is None:
        raise ValueError(f"attribute {key!r} is None; HDF5 attributes need a value")
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=isinstance(value, Mapping))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"attribute {key!r} has unsupported type {type(value).__name__}")


def write_jets_hdf5(
    path: str | os.PathLike[str],
    arrays: Mapping[str, npt.ArrayLike],
    attrs: Mapping[str, Any],
    *,
    compression_level: int = 4,
) -> Path:
    """Write jets in the aalearn HDF5 format, atomically.

    The arrays are validated (shapes, NaN/inf, labels) and cast to the format's dtypes;
    the file appears under ``path`` only once it is complete.

    Args:
        path: Target file; its directory is created if needed.
        arrays: All of :data:`REQUIRED_DATASETS`; extra keys are ignored.
        attrs: At least ``feature_names``, ``config`` and ``pt_scale_gev``.
            ``label_names`` defaults to ``["top", "w"]`` and ``versions`` to
            :func:`software_versions`. Lists, tuples and dicts are stored as JSON;
            ``aalearn_format``, ``format_version`` and ``n_jets`` are set by the writer.
        compression_level: gzip level 0-9.

    Returns:
        The path written.

    Raises:
        ValueError: For missing or inconsistent arrays or attributes.

    Example:
        See the module docstring.
    """
    target = Path(path)
    where = f"jets for {target}"
    missing_attrs = [k for k in ("feature_names", "config", "pt_scale_gev") if k not in attrs]
    if missing_attrs:
        raise ValueError(f"cannot write {target}: attribute(s) {', '.join(missing_attrs)} missing")
    if not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must lie in 0..9, got {compression_level}")
    feature_names = [str(n) for n in attrs["feature_names"]]
    pt_scale = float(attrs["pt_scale_gev"])
    if not np.isfinite(pt_scale) or pt_scale <= 0:
        raise ValueError(f"pt_scale_gev must be a positive number, got {attrs['pt_scale_gev']}")
    missing = [k for k in REQUIRED_DATASETS if k not in arrays]
    if missing:
        raise ValueError(f"cannot write {target}: array(s) {', '.join(missing)} missing")
    data = {k: np.asarray(arrays[k]) for k in (*REQUIRED_DATASETS, *OPTIONAL_DATASETS) if k in arrays}
    _check_layout({k: v.shape for k, v in data.items()}, len(feature_names), None, where)
    _check_values(data, where)
    n = int(data["features"].shape[0])
    for key in _WRITER_ATTRS:
        if key in attrs and key != "n_jets":
            raise ValueError(f"attribute {key!r} is set by the writer")
    if "n_jets" in attrs and int(attrs["n_jets"]) != n:
        raise ValueError(f"attribute n_jets = {attrs['n_jets']} but the arrays hold {n} jets")

    all_attrs: dict[str, Any] = {
        "aalearn_format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "label_names": list(LABEL_NAMES),
        "versions": software_versions(),
    }
    all_attrs.update({k: v for k, v in attrs.items() if k != "n_jets"})
    all_attrs["feature_names"] = feature_names
    all_attrs["pt_scale_gev"] = pt_scale
    all_attrs["n_jets"] = n

    # a content_sha256 copied from another file's metadata is replaced by this file's
    encoded = {key: _encode_attr(key, value) for key, value in all_attrs.items() if key != DIGEST_ATTR}
    stored = {key: data[key].astype(_DTYPES[key], copy=False) for key in data}
    encoded[DIGEST_ATTR] = content_digest(encoded, stored)

    h5py = _h5py()
    # libver "latest": object headers carry checksums; fletcher32: so does every data chunk;
    # content_sha256 covers what these miss (attribute values, uncompressed metadata)
    with atomic_path(target) as tmp, h5py.File(tmp, "w", libver="latest") as f:
        for key, value in encoded.items():
            f.attrs[key] = value
        for key, arr in stored.items():
            rows = max(1, min(arr.shape[0], 1024))
            f.create_dataset(
                key,
                data=arr,
                chunks=(rows, *arr.shape[1:]),
                compression="gzip" if compression_level > 0 else None,
                compression_opts=compression_level if compression_level > 0 else None,
                shuffle=compression_level > 0,
                fletcher32=True,
            )
    return target


# --------------------------------------------------------------------------- reader


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith(("{", "[")):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a directory, not an aalearn HDF5 jet file")
    h5py = _h5py()
    if not h5py.is_hdf5(str(p)):
        raise ValueError(
            f"{p} is not an HDF5 file (no HDF5 signature); aalearn jet files are HDF5 "
            "(use the feather/Parquet/ROOT readers for other formats)"
        )
    return p


def _header(f: Any, p: Path) -> dict[str, Any]:
    """Validate the root attributes of an open file and return them decoded."""
    raw = dict(f.attrs)
    if "aalearn_format" not in raw:
        keys = set(raw) | set(f.keys())
        if keys & set(_KERAS_MARKERS) or "model_weights" in keys:
            raise ValueError(
                f"{p} is not an aalearn jet file: it looks like Keras model weights; pass it as --model "
                "(it has Keras attributes such as 'layer_names' or a 'model_weights' group)"
            )
        content = ", ".join(sorted(f.keys())[:8]) or "nothing"
        raise ValueError(
            f"{p} is an HDF5 file but not an aalearn jet file (no 'aalearn_format' attribute; "
            f"its root holds {content})"
        )
    meta = {k: _decode_attr(v) for k, v in raw.items()}
    if meta["aalearn_format"] != FORMAT_NAME:
        raise ValueError(f"{p} has aalearn_format = {meta['aalearn_format']!r}, expected {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{p} has an unreadable format_version {version!r}; expected {FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        newer = " (written by a newer aalearn; upgrade aalearn)" if version > FORMAT_VERSION else ""
        raise ValueError(
            f"{p} has unsupported format_version {version}; "
            f"this aalearn reads version {FORMAT_VERSION}{newer}"
        )
    missing = [k for k in _REQUIRED_ATTRS if k not in meta]
    if missing:
        raise ValueError(f"{p} lacks the attribute(s) {', '.join(missing)}")
    names = meta["feature_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{p}: attribute feature_names must be a JSON list of strings")
    if not isinstance(meta["config"], dict):
        raise ValueError(f"{p}: attribute config must be a JSON object")
    pt_scale = meta["pt_scale_gev"]
    if not isinstance(pt_scale, int | float) or not np.isfinite(pt_scale) or pt_scale <= 0:
        raise ValueError(f"{p}: attribute pt_scale_gev must be a positive number, got {pt_scale!r}")
    if isinstance(meta["n_jets"], bool) or not isinstance(meta["n_jets"], int):
        raise ValueError(f"{p}: attribute n_jets must be an integer, got {meta['n_jets']!r}")
    for key in (*REQUIRED_DATASETS, *OPTIONAL_DATASETS):
        if key in f and not isinstance(f[key], _h5py().Dataset):
            raise ValueError(f"{p}: {key!r} must be a dataset, found a group")
    shapes = {k: tuple(f[k].shape) for k in (*REQUIRED_DATASETS, *OPTIONAL_DATASETS) if k in f}
    _check_layout(shapes, len(names), meta["n_jets"], str(p))
    return meta


#: What h5py raises for damaged files: OSError (bad signature, truncation, checksum or filter
#: failures), KeyError (corrupt object header: "Unable to open object"), RuntimeError (corrupt
#: attribute messages), UnicodeDecodeError (a damaged string attribute), and TypeError,
#: IndexError or OverflowError for damaged datatype or dataspace messages.
_H5_ERRORS = (OSError, KeyError, RuntimeError, UnicodeError, TypeError, IndexError, OverflowError)


def _damaged(p: Path, what: str, exc: BaseException) -> ValueError:
    detail = str(exc).strip("'\"") or type(exc).__name__
    return ValueError(f"{p} is truncated or corrupt: {what} cannot be read ({detail})")


def _verify_digest(p: Path, raw_attrs: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Compare the stored ``content_sha256`` with the digest of what was read (files without one pass)."""
    if DIGEST_ATTR not in raw_attrs:
        return
    stored = _canonical_attr(raw_attrs[DIGEST_ATTR])
    if stored != content_digest(raw_attrs, arrays):
        raise ValueError(
            f"{p} is truncated or corrupt: its content does not match its {DIGEST_ATTR} checksum "
            "(a damaged attribute or dataset)"
        )


def read_jets_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Validated root attributes and dataset shapes of an aalearn jet file, without loading it.

    Args:
        path: The file.

    Returns:
        The decoded attributes (``config``, ``versions``, ... as Python objects).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a readable aalearn jet file (see :func:`read_jets_hdf5`).
    """
    p = _check_path(path)
    h5py = _h5py()
    try:
        with h5py.File(p, "r") as f:
            return _header(f, p)
    except _H5_ERRORS as exc:
        raise _damaged(p, "its header", exc) from exc


def read_jets_hdf5(path: str | os.PathLike[str]) -> JetDataset:
    """Read and validate an aalearn HDF5 jet file.

    Args:
        path: The file.

    Returns:
        A :class:`~aalearn.data.JetDataset` with ``features`` (smeared, preprocessed),
        ``labels``, ``feature_names``, ``metadata`` (the decoded root attributes plus
        ``chunk_seeds`` as a list) and ``extras`` holding the other per-jet datasets
        (``features_truth``, ``constituents``, ``constituents_truth``, ``jets``,
        ``chunk_index``).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not HDF5, is truncated or corrupt, is another kind
            of HDF5 file (for example Keras weights), misses datasets or attributes,
            has inconsistent shapes, NaN/inf values (the rows are named) or an
            unsupported ``format_version``.

    Example:
        >>> ds = read_jets_hdf5("jets.h5")  # doctest: +SKIP
        >>> ds.extras["jets"][:, 3]  # particle-level jet masses in GeV  # doctest: +SKIP
    """
    p = _check_path(path)
    h5py = _h5py()
    what = "its header"
    try:
        with h5py.File(p, "r") as f:
            meta = _header(f, p)
            arrays = {}
            for k in (*REQUIRED_DATASETS, *OPTIONAL_DATASETS):
                what = f"dataset {k!r}"
                if k in f:
                    arrays[k] = f[k][()]
            raw_attrs = dict(f.attrs)
    except _H5_ERRORS as exc:
        raise _damaged(p, what, exc) from exc
    _verify_digest(p, raw_attrs, arrays)
    _check_values(arrays, str(p))
    meta["chunk_seeds"] = [int(s) for s in arrays["chunk_seeds"]]
    extras = {
        k: arrays[k]
        for k in (*PER_JET_DATASETS, *OPTIONAL_DATASETS)
        if k in arrays and k not in ("features", "labels")
    }
    return JetDataset(
        features=arrays["features"].astype(np.float32, copy=False),
        labels=arrays["labels"].astype(np.int64),
        feature_names=tuple(meta["feature_names"]),
        source=str(p),
        metadata=meta,
        extras=extras,
    )
