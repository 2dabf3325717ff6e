"""Validated reading and writing of jet files: Feather, Parquet, ROOT and aalearn HDF5.

:func:`load_dataset` is the one entry point for jets already in a feature layout:

* the challenge's Feather files (columns :func:`~aalearn.physics.features.challenge_feature_names`
  plus ``Label``);
* aalearn HDF5 files (``.h5``, ``.hdf5``), delegated to :func:`aalearn.data.hdf5.read_jets_hdf5`;
* a user's Parquet or ROOT (TTree or RNTuple, read with uproot) files, whose columns either carry
  the aalearn names or are renamed with a column mapping (see :func:`load_column_mapping`).

:func:`load_constituents` reads per-jet constituent arrays (jagged ROOT branches, Arrow list
columns or one column per constituent) and applies the TopoDNN preprocessing, giving the
challenge layout. :func:`save_dataset` writes Feather or Parquet atomically, and the result
reads back with :func:`load_dataset`.

Every problem with a file raises a ``ValueError`` or ``TypeError`` that names the file, the
offending column and how to fix it; rows and columns are never dropped silently (columns the
caller did not ask for are listed in ``metadata["loaded_from"]["ignored_columns"]``).

Example:
    >>> import numpy as np, tempfile, os
    >>> from aalearn.data.dataset import JetDataset
    >>> ds = JetDataset(np.ones((4, 2), np.float32), np.array([0, 1, 0, 1]), ("a", "b"))
    >>> path = os.path.join(tempfile.mkdtemp(), "jets.parquet")
    >>> save_dataset(ds, path)
    >>> load_dataset(path).features.shape
    (4, 2)
"""

from __future__ import annotations

import difflib
import json
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.validation import check_labels
from aalearn.data.dataset import JetDataset
from aalearn.physics.features import N_CONSTITUENTS, challenge_feature_names

__all__ = [
    "LABEL_COLUMN",
    "SUPPORTED_SUFFIXES",
    "DataFileNotFoundError",
    "load_column_mapping",
    "load_constituents",
    "load_dataset",
    "save_dataset",
]

#: Name of the label column in the challenge's files and in files written by :func:`save_dataset`.
LABEL_COLUMN: str = "Label"

#: File suffixes :func:`load_dataset` understands, and the format each stands for.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".feather": "feather",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".root": "root",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}
_SAVE_SUFFIXES: dict[str, str] = {".feather": "feather", ".parquet": "parquet", ".pq": "parquet"}
_FORMAT_TITLE = {"feather": "Feather", "parquet": "Parquet", "root": "ROOT", "hdf5": "HDF5"}
#: Key of the aalearn metadata (JSON) in the Arrow schema metadata of files from save_dataset.
_ARROW_META_KEY = b"aalearn"
_ROOT_TREE_CLASSES = frozenset({"TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple"})
_MAX_LISTED = 30

FloatArray = npt.NDArray[np.float64]
PathLike = str | os.PathLike[str]


class DataFileNotFoundError(FileNotFoundError, ValueError):
    """A data file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _listing(names: Sequence[str], limit: int = _MAX_LISTED) -> str:
    """Comma-separated, quoted names; long lists are cut with a count of the rest."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def _rows_preview(rows: npt.NDArray[Any]) -> str:
    rows = np.unique(rows)
    preview = ", ".join(str(int(r)) for r in rows[:10])
    return preview + (f" (and {len(rows) - 10} more)" if len(rows) > 10 else "")


def _check_path(path: PathLike) -> Path:
    """Validate that ``path`` is an existing regular file with a supported suffix."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataFileNotFoundError(f"data file {str(p)!r} does not exist; check the path")
    if not p.is_file():
        raise ValueError(f"{str(p)!r} is not a regular file (a directory?); pass the path of one data file")
    return p


def _format_of(path: Path, table: Mapping[str, str]) -> str:
    fmt = table.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"unsupported file suffix {path.suffix or '(none)'!r} of {str(path)!r}; "
            f"supported: {', '.join(table)}; rename the file or convert it to one of these formats"
        )
    return fmt


def _corrupt(path: Path, fmt: str, exc: BaseException) -> ValueError:
    title = _FORMAT_TITLE[fmt]
    return ValueError(
        f"{str(path)!r} is truncated or corrupt, or not a {title} file "
        f"({type(exc).__name__}: {exc}); re-download or re-create it"
    )


@contextmanager
def _library_errors(path: Path, fmt: str) -> Iterator[None]:
    """Turn a reading library's exception into ``ValueError('... truncated or corrupt ...')``.

    Missing optional packages, permission problems and memory exhaustion pass through.
    """
    try:
        yield
    except (ImportError, PermissionError, MemoryError):
        raise
    except Exception as exc:
        raise _corrupt(path, fmt, exc) from exc


def _close_matches(name: str, available: Sequence[str]) -> list[str]:
    lowered = {a.lower(): a for a in available}
    out = [lowered[name.lower()]] if name.lower() in lowered and lowered[name.lower()] != name else []
    out += [m for m in difflib.get_close_matches(name, available, n=3, cutoff=0.6) if m not in out]
    return out[:3]


def _missing_error(
    path: Path,
    missing: Sequence[str],
    available: Sequence[str],
    what: str,
    hint: str,
    notes: Mapping[str, str] | None = None,
) -> ValueError:
    close = []
    for name in missing[:5]:
        matches = _close_matches(name, available)
        if matches:
            close.append(f"{name!r} → {', '.join(repr(m) for m in matches)}")
    close_txt = f"; close matches: {'; '.join(close)}" if close else ""
    notes = notes or {}
    shown = [f"{n!r} ({notes[n]})" if n in notes else repr(n) for n in missing[:_MAX_LISTED]]
    more = f" ... and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    return ValueError(
        f"{str(path)!r} lacks {len(missing)} {what}: {', '.join(shown)}{more}{close_txt}; "
        f"the file has {len(available)}: {_listing(available, 12)}. {hint}"
    )


def _validate_mapping(columns: Mapping[str, str] | None, *, name: str = "columns") -> dict[str, str]:
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise TypeError(
            f"{name} must be a mapping {{aalearn name: file column}}, got {type(columns).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in columns.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"{name} must map str to str; entry {key!r}: {value!r} has types "
                f"{type(key).__name__}: {type(value).__name__}"
            )
        if not key or not value:
            raise ValueError(f"{name} has an empty name in entry {key!r}: {value!r}")
        out[key] = value
    return out


def _validate_feature_names(feature_names: Sequence[str] | None) -> tuple[str, ...] | None:
    if feature_names is None:
        return None
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
        raise TypeError(
            f"feature_names must be a sequence of str (a list), got {type(feature_names).__name__}"
        )
    names = tuple(feature_names)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"feature_names must be non-empty strings, got {bad[:5]!r}")
    if not names:
        raise ValueError("feature_names is empty; pass at least one feature name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"feature_names has duplicates: {_listing(dup)}")
    return names


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"dataset metadata value of type {type(obj).__name__} is not JSON-serialisable")


# ---------------------------------------------------------------------------------------------
# column sources: one per container format
# ---------------------------------------------------------------------------------------------


class _Source:
    """Columns of one file, read on demand and checked for type and shape."""

    path: Path
    fmt: str
    names: list[str]
    num_rows: int
    stored: dict[str, Any]  # aalearn metadata written by save_dataset, or {}
    extra_info: dict[str, Any]

    def prefetch(self, names: Sequence[str]) -> None:
        """Read ``names`` in one go (formats where that is cheaper)."""

    def scalar(self, name: str, desc: str) -> npt.NDArray[Any]:
        """One number per jet from column ``name`` (1-D numeric array)."""
        raise NotImplementedError

    def ragged(self, name: str, desc: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Per-jet arrays from column ``name`` as (counts per jet, flat float64 values)."""
        raise NotImplementedError


def _numeric_or_raise(arr: npt.NDArray[Any], desc: str) -> npt.NDArray[Any]:
    """Check that an array read from a file holds one number (or boolean) per jet."""
    if arr.dtype == object:
        first = next((v for v in arr if v is not None), None)
        if isinstance(first, str | bytes):
            raise TypeError(f"{desc} holds strings, not numbers; map a numeric column instead or convert it")
        if first is not None and np.ndim(first) > 0:
            raise ValueError(
                f"{desc} is jagged/array-valued (one array per jet) where one number per jet is "
                f"expected; map a scalar column, or use load_constituents for constituent arrays"
            )
        raise TypeError(f"{desc} has non-numeric values (object dtype); convert it to numbers")
    if arr.ndim != 1:
        raise ValueError(
            f"{desc} is array-valued with shape {arr.shape[1:]} per jet where one number per jet is "
            f"expected; map one scalar column per feature, or use load_constituents"
        )
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{desc} must be numeric (integer, float or boolean), got dtype {arr.dtype}; convert it"
        )
    return arr


class _ArrowSource(_Source):
    """Feather (Arrow IPC, or Feather V1) and Parquet files."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._pa = require("pyarrow", purpose=f"reading {_FORMAT_TITLE[fmt]} files")
        with _library_errors(path, fmt):
            self.schema = self._read_schema()
        self.names = list(self.schema.names)
        self.num_rows = -1
        self.extra_info = {}
        self._table: Any = None
        self.stored = self._stored_metadata()

    def _read_schema(self) -> Any:
        pa = self._pa
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(str(self.path))
        try:
            with pa.OSFile(str(self.path), "rb") as fh:
                return pa.ipc.open_file(fh).schema
        except pa.ArrowInvalid:  # Feather V1 (pre-Arrow-IPC) files
            import pyarrow.feather as feather

            return feather.read_table(str(self.path)).schema

    def _stored_metadata(self) -> dict[str, Any]:
        raw = (self.schema.metadata or {}).get(_ARROW_META_KEY)
        if raw is None:
            return {}
        try:
            stored = json.loads(raw)
        except ValueError as exc:
            raise ValueError(
                f"{str(self.path)!r} has aalearn metadata that is not valid JSON ({exc}); "
                "the file is corrupt or was edited by hand"
            ) from exc
        return stored if isinstance(stored, dict) else {}

    def prefetch(self, names: Sequence[str]) -> None:
        loaded = set() if self._table is None else set(self._table.column_names)
        wanted = [n for n in dict.fromkeys(names) if n not in loaded]
        if not wanted:
            return
        counts = {n: self.names.count(n) for n in wanted}
        dup = [n for n, c in counts.items() if c > 1]
        if dup:
            raise ValueError(
                f"{str(self.path)!r} has several columns named {_listing(dup)}; the column to read is "
                "ambiguous, rename the duplicates"
            )
        with _library_errors(self.path, self.fmt):
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(str(self.path), columns=wanted, use_pandas_metadata=False)
            else:
                import pyarrow.feather as feather

                table = feather.read_table(str(self.path), columns=wanted, memory_map=False)
        if self._table is None:
            self._table = table
        else:
            for name in table.column_names:
                self._table = self._table.append_column(name, table.column(name))
        self.num_rows = int(self._table.num_rows)

    def _column(self, name: str) -> Any:
        if self._table is None or name not in self._table.column_names:
            self.prefetch([name])
        return self._table.column(name)

    def scalar(self, name: str, desc: str) -> npt.NDArray[Any]:
        pa = self._pa
        col = self._column(name)
        typ = col.type
        if pa.types.is_dictionary(typ):
            typ = typ.value_type
        if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
            raise ValueError(
                f"{desc} is array-valued (Arrow type {col.type}) where one number per jet is expected; "
                "map a scalar column, or use load_constituents for constituent arrays"
            )
        if pa.types.is_null(typ):
            raise ValueError(f"{desc} is entirely missing (all values null); map a column that has data")
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
            raise TypeError(
                f"{desc} must be numeric (integer, float or boolean), got Arrow type {col.type}; "
                "map a numeric column or convert this one"
            )
        arr = col.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(typ)
        if arr.null_count:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            rows = np.flatnonzero(~valid)
            raise ValueError(
                f"{desc} has {arr.null_count} missing (null) value(s) in rows {_rows_preview(rows)}; "
                "remove or repair these rows"
            )
        return np.asarray(arr.to_numpy(zero_copy_only=False))

    def ragged(self, name: str, desc: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        pa = self._pa
        col = self._column(name)
        typ = col.type
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)):
            raise ValueError(
                f"{desc} holds one value per jet (Arrow type {typ}), not one array per jet; pass a list "
                "column, or a list of per-constituent column names"
            )
        value_type = typ.value_type
        if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
            raise TypeError(f"{desc} must hold numbers, got Arrow type {typ}; convert it")
        arr = col.combine_chunks()
        if arr.null_count:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            rows = np.flatnonzero(~valid)
            raise ValueError(
                f"{desc} has {arr.null_count} missing (null) jet(s) in rows {_rows_preview(rows)}; "
                "use an empty list for a jet without constituents, or remove these rows"
            )
        if pa.types.is_fixed_size_list(typ):
            counts = np.full(len(arr), typ.list_size, dtype=np.int64)
        else:
            counts = np.asarray(arr.value_lengths().to_numpy(zero_copy_only=False), dtype=np.int64)
        values = arr.flatten()
        if values.null_count:
            jet = np.repeat(np.arange(len(arr)), counts)
            valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            raise ValueError(
                f"{desc} has {values.null_count} missing (null) constituent value(s) in jets "
                f"{_rows_preview(jet[~valid])}; remove or repair these jets"
            )
        flat = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        return counts, flat


class _RootSource(_Source):
    """A TTree or RNTuple of a ROOT file opened with uproot."""

    def __init__(self, path: Path, handle: Any, tree: str | None) -> None:
        self.path, self.fmt = path, "root"
        self.stored = {}
        with _library_errors(path, "root"):
            entries = handle.classnames(recursive=True, cycle=False)
        trees = list(dict.fromkeys(k for k, cls in entries.items() if cls in _ROOT_TREE_CLASSES))
        if tree is None:
            if not trees:
                raise ValueError(
                    f"{str(path)!r} holds no TTree or RNTuple (objects: {_listing(list(entries))}); "
                    "store the jets in a TTree"
                )
            if len(trees) > 1:
                raise ValueError(
                    f"{str(path)!r} holds {len(trees)} trees: {_listing(trees)}; pass tree=NAME to choose one"
                )
            tree = trees[0]
        elif not isinstance(tree, str):
            raise TypeError(f"tree must be a str naming the TTree, got {type(tree).__name__}")
        elif tree.split(";")[0] not in trees:
            close = difflib.get_close_matches(tree, trees, n=3)
            hint = f"; did you mean {_listing(close)}?" if close else ""
            raise ValueError(
                f"{str(path)!r} has no TTree or RNTuple named {tree!r}{hint} "
                f"(trees: {_listing(trees) or 'none'})"
            )
        with _library_errors(path, "root"):
            self._tree = handle[tree]
            self.names = list(self._tree.keys())
            self.num_rows = int(self._tree.num_entries)
        self.extra_info = {"tree": tree.split(";")[0]}

    def _read(self, name: str) -> npt.NDArray[Any]:
        with _library_errors(self.path, "root"):
            return np.asarray(self._tree[name].array(library="np"))

    def scalar(self, name: str, desc: str) -> npt.NDArray[Any]:
        arr = self._read(name)
        if arr.dtype.kind in "USa":
            raise TypeError(f"{desc} holds strings, not numbers; map a numeric branch instead")
        return _numeric_or_raise(arr, desc)

    def ragged(self, name: str, desc: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        arr = self._read(name)
        if arr.dtype == object:
            items = list(arr)
            if any(isinstance(v, str | bytes) for v in items[:1]):
                raise TypeError(f"{desc} holds strings, not numbers")
            try:
                counts = np.fromiter((len(v) for v in items), dtype=np.int64, count=len(items))
                flat = (
                    np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in items])
                    if items
                    else np.zeros(0)
                )
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{desc} does not hold one array of numbers per jet ({exc})") from exc
            if counts.sum() != flat.size:
                raise ValueError(f"{desc} holds nested arrays; expected one flat array per jet")
            return counts, flat
        if arr.ndim == 2 and (np.issubdtype(arr.dtype, np.number)):
            return np.full(arr.shape[0], arr.shape[1], dtype=np.int64), arr.astype(np.float64).ravel()
        if arr.ndim == 1:
            raise ValueError(
                f"{desc} holds one value per jet, not one array per jet; pass a jagged or fixed-size "
                "array branch, or a list of per-constituent branch names"
            )
        raise ValueError(f"{desc} has shape {arr.shape[1:]} per jet; expected a 1-D array per jet")


@contextmanager
def _open_source(path: Path, fmt: str, tree: str | None) -> Iterator[_Source]:
    if fmt in ("feather", "parquet"):
        if tree is not None:
            raise ValueError(f"tree={tree!r} only applies to ROOT files, not to {_FORMAT_TITLE[fmt]} files")
        yield _ArrowSource(path, fmt)
        return
    uproot = require("uproot", purpose="reading ROOT files")
    with _library_errors(path, "root"):
        handle = uproot.open(str(path))
    with handle:
        yield _RootSource(path, handle, tree)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def load_column_mapping(path: PathLike) -> dict[str, str]:
    """Read a JSON column mapping ``{aalearn name: file column}``, for ``columns=``.

    The file must hold one flat JSON object whose keys and values are non-empty strings, for
    example ``{"ConstPT_0": "jet_pt0", "Label": "is_w"}``. Duplicate keys are rejected.

    Args:
        path: Path of the ``.json`` file.

    Returns:
        The mapping.

    Raises:
        DataFileNotFoundError: If the file does not exist (also a ``ValueError``).
        ValueError: If the file is not valid JSON, has duplicate keys or empty names.
        TypeError: If the JSON is not an object or an entry is not ``str: str``.

    Example:
        >>> import json, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "map.json")
        >>> _ = open(p, "w").write(json.dumps({"ConstPT_0": "pt0"}))
        >>> load_column_mapping(p)
        {'ConstPT_0': 'pt0'}
    """
    p = _check_path(path)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(
                f"column mapping {str(p)!r} has duplicate keys {_listing(dup)}; keep one of each"
            )
        return dict(pairs)

    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"column mapping {str(p)!r} is not UTF-8 text ({exc}); it must be a JSON file"
        ) from exc
    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"column mapping {str(p)!r} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno}, column {exc.colno}; "
            'it must be an object like {"ConstPT_0": "my_pt_column"}'
        ) from exc
    if not isinstance(data, dict):
        raise TypeError(
            f"column mapping {str(p)!r} must be a JSON object {{aalearn name: file column}}, "
            f"got a JSON {type(data).__name__}"
        )
    return _validate_mapping(data, name=f"column mapping {str(p)!r}")


def load_dataset(
    path: PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    label_column: str | None = LABEL_COLUMN,
    tree: str | None = None,
    feature_names: Sequence[str] | None = None,
    require_labels: bool = False,
) -> JetDataset:
    """Load jets in a feature layout from a Feather, Parquet, ROOT or aalearn HDF5 file.

    The format follows the suffix (:data:`SUPPORTED_SUFFIXES`). Features come out as float32
    in the order of ``feature_names``; labels as int64 (0 = top, 1 = W) or ``None``.

    Args:
        path: The file.
        columns: Mapping ``{aalearn feature name (or "Label"): column or branch name in the
            file}``; features without an entry are read from a column of their own name.
            Not used for HDF5 files.
        label_column: Column holding the labels. If the default ``"Label"`` is absent the
            jets are unlabeled; another name must exist. ``None`` reads no labels. A
            ``"Label"`` entry of ``columns`` takes precedence. Not used for HDF5 files.
        tree: ROOT only: the TTree (or RNTuple) to read; default the file's only tree.
        feature_names: aalearn feature names to read, in order. Default: the names stored by
            :func:`save_dataset` if the file has them, else the 87 challenge names.
        require_labels: Raise if the file has no labels.

    Returns:
        The dataset; ``metadata["loaded_from"]`` records the format, the columns read and the
        columns ignored.

    Raises:
        DataFileNotFoundError: If the file does not exist (also a ``ValueError``).
        ValueError: Unknown suffix, missing columns, NaN/inf or null values, array-valued
            columns, labels not 0/1, missing labels with ``require_labels``, a truncated or
            corrupt file.
        TypeError: Non-numeric columns or badly typed arguments.

    Example:
        >>> from aalearn.core.paths import find_challenge_data
        >>> d = find_challenge_data()
        >>> ds = load_dataset(d / "Clean_Test_Public.feather") if d else None
        >>> ds.features.shape if ds else (5000, 87)
        (5000, 87)
    """
    p = _check_path(path)
    fmt = _format_of(p, SUPPORTED_SUFFIXES)
    mapping = _validate_mapping(columns)
    names = _validate_feature_names(feature_names)
    if label_column is not None and (not isinstance(label_column, str) or not label_column):
        raise TypeError(f"label_column must be a non-empty str or None, got {label_column!r}")
    if fmt == "hdf5":
        return _load_hdf5(p, mapping, tree, names, require_labels)
    with _open_source(p, fmt, tree) as source:
        return _assemble(source, mapping, label_column, names, require_labels)


def _load_hdf5(
    path: Path,
    mapping: dict[str, str],
    tree: str | None,
    names: tuple[str, ...] | None,
    require_labels: bool,
) -> JetDataset:
    if mapping:
        raise ValueError(
            f"columns= does not apply to HDF5 file {str(path)!r}: aalearn HDF5 files carry their feature "
            "names; drop the mapping, or convert the file to Parquet"
        )
    if tree is not None:
        raise ValueError(f"tree={tree!r} only applies to ROOT files, not to HDF5 file {str(path)!r}")
    from aalearn.data.hdf5 import read_jets_hdf5

    try:
        ds = read_jets_hdf5(path)
    except (ImportError, PermissionError, MemoryError, FileNotFoundError):
        raise
    except OSError as exc:  # h5py's "file signature not found", truncated files
        raise _corrupt(path, "hdf5", exc) from exc
    if names is not None and names != ds.feature_names:
        missing = [n for n in names if n not in ds.feature_names]
        if missing:
            raise _missing_error(
                path,
                missing,
                list(ds.feature_names),
                "feature(s)",
                "Pass feature_names that the file holds.",
            )
        idx = [ds.feature_names.index(n) for n in names]
        ds = JetDataset(ds.features[:, idx], ds.labels, names, ds.source, ds.metadata, ds.extras)
    if require_labels and ds.labels is None:
        raise ValueError(f"{str(path)!r} holds no labels, but require_labels=True; use a labeled file")
    return ds


def _assemble(
    source: _Source,
    mapping: dict[str, str],
    label_column: str | None,
    names: tuple[str, ...] | None,
    require_labels: bool,
) -> JetDataset:
    path = source.path
    stored_names = source.stored.get("feature_names")
    if names is None:
        if not mapping and isinstance(stored_names, list) and all(isinstance(n, str) for n in stored_names):
            names = tuple(stored_names)
        else:
            names = tuple(challenge_feature_names())
    # the label column: an explicit mapping entry must exist, the default name may be absent
    label_explicit = False
    if LABEL_COLUMN in mapping and LABEL_COLUMN not in names:
        if label_column is None:
            raise ValueError(
                f"columns maps {LABEL_COLUMN!r} to {mapping[LABEL_COLUMN]!r} but label_column=None asks "
                "for no labels; drop one of the two"
            )
        label_column, label_explicit = mapping[LABEL_COLUMN], True
    elif label_column is not None and label_column != LABEL_COLUMN:
        label_explicit = True
    unknown = [k for k in mapping if k not in names and k != LABEL_COLUMN]
    if unknown:
        close = {k: _close_matches(k, names) for k in unknown}
        hints = "; ".join(f"{k!r} → {', '.join(map(repr, v))}" for k, v in close.items() if v)
        raise ValueError(
            f"columns maps {len(unknown)} name(s) that are not features: {_listing(unknown)}"
            + (f" (close matches: {hints})" if hints else "")
            + f"; keys must be aalearn feature names (here {names[0]!r} ... {names[-1]!r}) "
            f"or {LABEL_COLUMN!r}"
        )
    file_cols = [mapping.get(n, n) for n in names]
    seen: dict[str, str] = {}
    for feat, col in zip(names, file_cols, strict=True):
        if col in seen:
            raise ValueError(
                f"features {seen[col]!r} and {feat!r} both map to column {col!r}; "
                "each feature needs its own column"
            )
        seen[col] = feat
    if label_column is not None and label_column in seen:
        raise ValueError(
            f"label column {label_column!r} is also mapped to feature {seen[label_column]!r}; "
            "use distinct columns (or label_column=None)"
        )

    available = set(source.names)
    missing = [c for c in file_cols if c not in available]
    if missing:
        raise _missing_error(
            path,
            missing,
            source.names,
            "column(s)",
            "Pass a column mapping columns={'ConstPT_0': 'your_column', ...} (or a JSON mapping file) "
            "that names the file's columns, or feature_names for another layout.",
            notes={c: f"feature {f}" for f, c in zip(names, file_cols, strict=True) if f != c},
        )
    has_label = label_column is not None and label_column in available
    if label_column is not None and not has_label and (label_explicit or require_labels):
        raise _missing_error(
            path,
            [label_column],
            source.names,
            "label column",
            "Pass label_column (or a 'Label' entry in columns) naming the file's label column"
            + ("." if require_labels else ", or label_column=None for unlabeled jets."),
        )
    if require_labels and label_column is None:
        raise ValueError("require_labels=True needs a label column; do not pass label_column=None")

    wanted = file_cols + ([label_column] if has_label and label_column is not None else [])
    source.prefetch(wanted)
    num_rows = source.num_rows
    if num_rows == 0:
        raise ValueError(f"{str(path)!r} holds no jets (0 rows); check that the right file was given")

    def desc(col: str, feat: str | None) -> str:
        kind = "branch" if source.fmt == "root" else "column"
        extra = f" (feature {feat})" if feat is not None and feat != col else ""
        return f"{kind} {col!r}{extra} of {str(path)!r}"

    features = np.empty((num_rows, len(names)), dtype=np.float32)
    for j, (feat, col) in enumerate(zip(names, file_cols, strict=True)):
        values = source.scalar(col, desc(col, feat))
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
            features[:, j] = values
    bad = ~np.isfinite(features)
    if bad.any():
        rows, cols = np.nonzero(bad)
        bad_cols = [file_cols[c] for c in np.unique(cols)]
        raise ValueError(
            f"{str(path)!r} has {int(bad.sum())} NaN/inf feature value(s) in {len(np.unique(rows))} row(s): "
            f"rows {_rows_preview(rows)}; in column(s) {_listing(bad_cols, 10)}; "
            "remove or repair these rows before use (values beyond ±3.4e38 overflow float32)"
        )
    labels = None
    if has_label and label_column is not None:
        label_desc = "label " + desc(label_column, None)
        raw = source.scalar(label_column, label_desc)
        try:
            labels = check_labels(raw, name=label_desc, n=num_rows)
        except ValueError as exc:
            raise ValueError(f"{exc}; labels must be 0 (top) or 1 (W)") from exc

    ignored = [c for c in source.names if c not in set(wanted)]
    renamed = {f: c for f, c in zip(names, file_cols, strict=True) if f != c}
    loaded_from: dict[str, Any] = {
        "path": str(path),
        "format": source.fmt,
        "label_column": label_column if has_label else None,
        "renamed_columns": renamed,
        "ignored_columns": ignored,
        **source.extra_info,
    }
    stored_meta = source.stored.get("metadata")
    metadata = dict(stored_meta) if isinstance(stored_meta, dict) else {}
    metadata["loaded_from"] = loaded_from
    return JetDataset(features, labels, names, str(path), metadata)


def _constituent_arrays(
    source: _Source, spec: str | Sequence[str], what: str
) -> tuple[npt.NDArray[np.int64], FloatArray, str]:
    """Read one constituent quantity as (counts, flat values, description)."""
    kind = "branch" if source.fmt == "root" else "column"
    if isinstance(spec, str):
        if spec not in source.names:
            raise _missing_error(
                source.path, [spec], source.names, f"{what} {kind}", f"Pass {what}= naming the file's {kind}."
            )
        desc = f"{what} {kind} {spec!r} of {str(source.path)!r}"
        counts, flat = source.ragged(spec, desc)
        return counts, flat, desc
    if not isinstance(spec, Sequence) or not spec or not all(isinstance(s, str) for s in spec):
        raise TypeError(
            f"{what} must be a column name (an array per jet) or a non-empty list of per-constituent "
            f"column names, got {spec!r}"
        )
    cols = list(spec)
    missing = [c for c in cols if c not in source.names]
    if missing:
        raise _missing_error(
            source.path,
            missing,
            source.names,
            f"{what} {kind}(s)",
            f"Pass {what}= naming the file's {kind}s.",
        )
    source.prefetch(cols)
    stacked = np.stack(
        [source.scalar(c, f"{what} {kind} {c!r} of {str(source.path)!r}").astype(np.float64) for c in cols],
        axis=1,
    )
    desc = f"{what} {kind}s {cols[0]!r} ... {cols[-1]!r} of {str(source.path)!r}"
    return np.full(stacked.shape[0], stacked.shape[1], dtype=np.int64), stacked.ravel(), desc


def load_constituents(
    path: PathLike,
    *,
    pt: str | Sequence[str],
    eta: str | Sequence[str],
    phi: str | Sequence[str],
    label: str | None = None,
    tree: str | None = None,
    pt_unit_gev: float = 1.0,
    n_constituents: int = N_CONSTITUENTS,
) -> JetDataset:
    """Read per-jet constituents and preprocess them into the challenge's feature layout.

    Each of ``pt``, ``eta``, ``phi`` names either one column holding an array per jet (a
    jagged or fixed-size ROOT branch, an Arrow list column) or a list of per-constituent
    scalar columns. Per jet the constituents are sorted by descending pT, truncated or
    zero-padded to ``n_constituents`` and passed through
    :func:`~aalearn.physics.preprocessing.topodnn_preprocess` (pT in units of 1679.1593 GeV).

    Args:
        path: Feather, Parquet or ROOT file.
        pt: Constituent transverse momenta (any unit, see ``pt_unit_gev``).
        eta: Constituent pseudorapidities.
        phi: Constituent azimuths (rad).
        label: Column of 0/1 labels (``None``: unlabeled).
        tree: ROOT only: the TTree to read; default the file's only tree.
        pt_unit_gev: GeV per unit of ``pt`` (``1e-3`` for MeV).
        n_constituents: Constituents kept per jet.

    Returns:
        The dataset in the challenge layout, with ``extras["constituents"]`` the sorted and
        padded ``(N, n_constituents, 3)`` (pT [GeV], η, φ) before preprocessing.

    Raises:
        ValueError: Missing columns, mismatched constituent counts, NaN/inf, negative pT,
            corrupt files and the other problems listed for :func:`load_dataset`.
        TypeError: Non-numeric columns or badly typed arguments.

    Example:
        >>> import numpy as np, tempfile, os, pyarrow as pa, pyarrow.parquet as pq
        >>> t = pa.table({"pt": [[300.0, 100.0]], "eta": [[0.1, 0.3]], "phi": [[1.0, 1.2]]})
        >>> p = os.path.join(tempfile.mkdtemp(), "c.parquet"); pq.write_table(t, p)
        >>> load_constituents(p, pt="pt", eta="eta", phi="phi").features.shape
        (1, 87)
    """
    from aalearn.physics.preprocessing import topodnn_preprocess

    p = _check_path(path)
    fmt = _format_of(p, {k: v for k, v in SUPPORTED_SUFFIXES.items() if v != "hdf5"})
    if not isinstance(pt_unit_gev, int | float) or not np.isfinite(pt_unit_gev) or pt_unit_gev <= 0:
        raise ValueError(
            f"pt_unit_gev must be a finite positive number (GeV per pT unit), got {pt_unit_gev!r}"
        )
    if not isinstance(n_constituents, int) or n_constituents < 2:
        raise ValueError(f"n_constituents must be an integer ≥ 2, got {n_constituents!r}")
    if label is not None and (not isinstance(label, str) or not label):
        raise TypeError(f"label must be a non-empty str or None, got {label!r}")
    with _open_source(p, fmt, tree) as source:
        single = [s for s in (pt, eta, phi) if isinstance(s, str)]
        source.prefetch([n for n in (*single, label) if n is not None and n in source.names])
        read = {
            what: _constituent_arrays(source, spec, what)
            for what, spec in (("pt", pt), ("eta", eta), ("phi", phi))
        }
        labels_raw = None
        if label is not None:
            if label not in source.names:
                raise _missing_error(p, [label], source.names, "label column", "Pass label= naming it.")
            labels_raw = source.scalar(label, f"label column {label!r} of {str(p)!r}")
        extra_info = dict(source.extra_info)
    counts = read["pt"][0]
    for what in ("eta", "phi"):
        c = read[what][0]
        if c.shape != counts.shape:
            raise ValueError(
                f"{read[what][2]} has {c.shape[0]} jets but {read['pt'][2]} has {counts.shape[0]}"
            )
        diff = np.flatnonzero(c != counts)
        if diff.size:
            raise ValueError(
                f"{read[what][2]} and {read['pt'][2]} have different constituent counts in "
                f"{diff.size} jet(s): rows {_rows_preview(diff)}; every constituent needs pT, η and φ"
            )
    n_jets = counts.shape[0]
    if n_jets == 0:
        raise ValueError(f"{str(p)!r} holds no jets (0 rows); check that the right file was given")
    jet = np.repeat(np.arange(n_jets), counts)
    for what in ("pt", "eta", "phi"):
        bad = ~np.isfinite(read[what][1])
        if bad.any():
            raise ValueError(
                f"{read[what][2]} has {int(bad.sum())} NaN/inf value(s) in jets {_rows_preview(jet[bad])}; "
                "remove or repair these jets (pad with pT = 0, not NaN)"
            )
    pt_gev = read["pt"][1] * float(pt_unit_gev)
    if np.any(pt_gev < 0):
        raise ValueError(
            f"{read['pt'][2]} has negative pT in jets {_rows_preview(jet[pt_gev < 0])}; "
            "pT must be ≥ 0 (0 marks padding)"
        )
    # sort by jet, then by descending pT (stable), and keep the leading n_constituents
    order = np.lexsort((-pt_gev, jet))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rank = np.arange(jet.size) - np.repeat(starts, counts)
    keep = rank < n_constituents
    stacked = np.stack([pt_gev, read["eta"][1], read["phi"][1]], axis=1)[order]
    constituents = np.zeros((n_jets, n_constituents, 3), dtype=np.float64)
    constituents[jet[keep], rank[keep]] = stacked[keep]
    features = topodnn_preprocess(constituents, n_constituents=n_constituents).astype(np.float32)
    labels = None
    if labels_raw is not None and label is not None:
        label_desc = f"label column {label!r} of {str(p)!r}"
        try:
            labels = check_labels(labels_raw, name=label_desc, n=n_jets)
        except ValueError as exc:
            raise ValueError(f"{exc}; labels must be 0 (top) or 1 (W)") from exc
    metadata: dict[str, Any] = {
        "loaded_from": {
            "path": str(p),
            "format": fmt,
            "pt": pt if isinstance(pt, str) else list(pt),
            "eta": eta if isinstance(eta, str) else list(eta),
            "phi": phi if isinstance(phi, str) else list(phi),
            "label_column": label,
            **extra_info,
        },
        "preprocessing": "topodnn",
        "pt_unit_gev": float(pt_unit_gev),
        "n_constituents": n_constituents,
        "n_truncated_jets": int(np.sum(counts > n_constituents)),
        "n_empty_jets": int(np.sum(counts == 0)),
    }
    return JetDataset(
        features,
        labels,
        tuple(challenge_feature_names(n_constituents)),
        str(p),
        metadata,
        {"constituents": constituents.astype(np.float32)},
    )


def save_dataset(dataset: JetDataset, path: PathLike) -> None:
    """Write a dataset to Feather or Parquet (by suffix), atomically.

    One float32 column per feature (named as ``dataset.feature_names``) and an int64
    ``Label`` column when the dataset is labeled. The feature names and ``dataset.metadata``
    (as JSON) go into the file's schema metadata, so :func:`load_dataset` restores them.
    ``dataset.extras`` cannot be stored in these formats and is left out with a
    ``UserWarning`` (use the HDF5 writer to keep them). The file is written to a temporary
    name beside ``path`` and moved into place, so a crash never leaves a partial file.

    Args:
        dataset: The jets.
        path: Target ``.feather``, ``.parquet`` or ``.pq`` file (overwritten if present).

    Raises:
        TypeError: If ``dataset`` is not a :class:`JetDataset` or its metadata is not
            JSON-serialisable.
        ValueError: For an unsupported suffix, a missing directory or a feature named ``Label``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> ds = JetDataset(np.zeros((2, 1), np.float32), None, ("x",))
        >>> save_dataset(ds, os.path.join(tempfile.mkdtemp(), "x.feather"))
    """
    if not isinstance(dataset, JetDataset):
        raise TypeError(f"dataset must be a JetDataset, got {type(dataset).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if p.suffix.lower() in (".h5", ".hdf5"):
        raise ValueError(
            f"save_dataset writes Feather or Parquet; for HDF5 {str(p)!r} use aalearn.data.hdf5's writer"
        )
    fmt = _format_of(p, _SAVE_SUFFIXES)
    if not p.parent.is_dir():
        raise ValueError(f"directory {str(p.parent)!r} does not exist; create it first")
    if p.is_dir():
        raise ValueError(f"{str(p)!r} is a directory; pass a file path")
    if LABEL_COLUMN in dataset.feature_names:
        raise ValueError(
            f"a feature is named {LABEL_COLUMN!r}, which clashes with the label column; rename the feature"
        )
    if dataset.extras:
        warnings.warn(
            f"save_dataset: extras {_listing(sorted(dataset.extras))} are not written to {fmt} "
            f"file {str(p)!r}; use the HDF5 writer to keep them",
            UserWarning,
            stacklevel=2,
        )
    try:
        meta_json = json.dumps(
            {"version": 1, "feature_names": list(dataset.feature_names), "metadata": dataset.metadata},
            default=_json_default,
            allow_nan=True,
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot save {str(p)!r}: {exc}; make dataset.metadata JSON-serialisable") from exc
    pa = require("pyarrow", purpose=f"writing {_FORMAT_TITLE[fmt]} files")
    features = np.asarray(dataset.features, dtype=np.float32)
    arrays = [pa.array(features[:, j]) for j in range(features.shape[1])]
    names = list(dataset.feature_names)
    if dataset.labels is not None:
        arrays.append(pa.array(np.asarray(dataset.labels, dtype=np.int64)))
        names.append(LABEL_COLUMN)
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(
        {_ARROW_META_KEY: meta_json.encode("utf-8")}
    )
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, str(tmp))
        else:
            import pyarrow.feather as feather

            feather.write_feather(table, str(tmp))
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
