"""Column sources for the jet-file readers: one per container format, with their error helpers.

:func:`aalearn.data.io.load_dataset` and :func:`aalearn.data.constituents.load_constituents`
read columns through a source (:func:`open_source`): Arrow files (Feather, Parquet) and ROOT
files (TTree or RNTuple, through uproot). A source reads a column on demand and checks its type
and shape; every problem becomes a ``ValueError`` or ``TypeError`` naming the file, the column
and how to fix it. The helpers that word those errors (missing columns with close matches,
corrupt files) live here too, so the readers share one wording.

Example:
    >>> import os, tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "t.parquet"
    >>> pq.write_table(pa.table({"a": [1.0, 2.0]}), p)
    >>> with open_source(p, "parquet", None) as source:
    ...     source.names, source.scalar("a", "column 'a'").tolist()
    (['a'], [1.0, 2.0])
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require

__all__ = [
    "LABEL_COLUMN",
    "SUPPORTED_SUFFIXES",
    "DataFileNotFoundError",
    "Source",
    "open_source",
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


# ---------------------------------------------------------------------------------------------
# column sources: one per container format
# ---------------------------------------------------------------------------------------------


class Source:
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


class _ArrowSource(Source):
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


class _RootSource(Source):
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
def open_source(path: Path, fmt: str, tree: str | None) -> Iterator[Source]:
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
