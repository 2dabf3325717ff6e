"""Validated reading and writing of jet files: Feather, Parquet, ROOT and aalearn HDF5.

:func:`load_dataset` is the one entry point for jets already in a feature layout:

* the challenge's Feather files (columns :func:`~aalearn.physics.features.challenge_feature_names`
  plus ``Label``);
* aalearn HDF5 files (``.h5``, ``.hdf5``), delegated to :func:`aalearn.data.hdf5.read_jets_hdf5`;
* a user's Parquet or ROOT (TTree or RNTuple, read with uproot) files, whose columns either carry
  the aalearn names or are renamed with a column mapping (see :func:`load_column_mapping`).

:func:`as_dataset` also accepts a :class:`~aalearn.data.dataset.JetDataset` the caller already
holds and :func:`load_datasets` concatenates several files; all three take ``n_max`` (keep the
first jets) and ``require_labels``.

:func:`load_constituents` (:mod:`aalearn.data.constituents`, re-exported here) reads per-jet
constituent arrays (jagged ROOT branches, Arrow list columns or one column per constituent) and
applies the TopoDNN preprocessing, giving the challenge layout. :func:`save_dataset` writes
Feather or Parquet atomically (:func:`aalearn.core.io.atomic_path`), and the result reads back
with :func:`load_dataset`. The per-format column readers live in :mod:`aalearn.data.sources`.

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

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aalearn.core.io import atomic_path
from aalearn.core.optional import require
from aalearn.core.validation import check_labels
from aalearn.data.constituents import load_constituents
from aalearn.data.dataset import JetDataset
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.sources import (
    _ARROW_META_KEY,
    _FORMAT_TITLE,
    LABEL_COLUMN,
    SUPPORTED_SUFFIXES,
    DataFileNotFoundError,
    PathLike,
    Source,
    _check_path,
    _close_matches,
    _corrupt,
    _format_of,
    _listing,
    _missing_error,
    _rows_preview,
    _validate_feature_names,
    _validate_mapping,
    open_source,
)
from aalearn.physics.features import challenge_feature_names

__all__ = [
    "LABEL_COLUMN",
    "SUPPORTED_SUFFIXES",
    "DataFileNotFoundError",
    "as_dataset",
    "load_column_mapping",
    "load_constituents",
    "load_dataset",
    "load_datasets",
    "save_dataset",
]

_SAVE_SUFFIXES: dict[str, str] = {".feather": "feather", ".parquet": "parquet", ".pq": "parquet"}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"dataset metadata value of type {type(obj).__name__} is not JSON-serialisable")


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
    n_max: int | None = None,
) -> JetDataset:
    """Load jets in a feature layout from a Feather, Parquet, ROOT or aalearn HDF5 file.

    The one entry point of aalearn for "a labelled dataset from a path": apps and commands
    call it (or :func:`as_dataset` where a caller may already hold a :class:`JetDataset`,
    :func:`load_datasets` for several files) instead of writing their own loader.

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
        n_max: Keep only the first ``n_max`` jets (all of them when the file holds fewer);
            ``None`` keeps every jet.

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
    n_keep = _check_n_max(n_max)
    if fmt == "hdf5":
        ds = _load_hdf5(p, mapping, tree, names, require_labels)
    else:
        with open_source(p, fmt, tree) as source:
            ds = _assemble(source, mapping, label_column, names, require_labels)
    return _head(ds, n_keep)


def as_dataset(
    data: PathLike | JetDataset,
    *,
    require_labels: bool = False,
    n_max: int | None = None,
    **load_kwargs: Any,
) -> JetDataset:
    """A dataset from a file path, or a :class:`JetDataset` the caller already holds.

    Paths go through :func:`load_dataset` (``load_kwargs`` are its other keyword arguments:
    ``columns``, ``label_column``, ``tree``, ``feature_names``); a dataset is passed through,
    with the same ``require_labels`` and ``n_max`` handling.

    Args:
        data: A file path, or a dataset.
        require_labels: Raise if the jets have no labels.
        n_max: Keep only the first ``n_max`` jets; ``None`` keeps all.
        **load_kwargs: Further keyword arguments of :func:`load_dataset` (paths only).

    Returns:
        The dataset (``data`` itself when it is a dataset and nothing is cut).

    Raises:
        TypeError: For keyword arguments given with a dataset, or a bad ``n_max``.
        ValueError: For ``n_max < 1``, a dataset without labels under ``require_labels``,
            and everything :func:`load_dataset` raises.

    Example:
        >>> import numpy as np
        >>> ds = JetDataset(np.zeros((5, 2), np.float32), np.array([0, 1, 0, 1, 0]), ("a", "b"))
        >>> len(as_dataset(ds, n_max=3)), as_dataset(ds) is ds
        (3, True)
    """
    if not isinstance(data, JetDataset):
        return load_dataset(data, require_labels=require_labels, n_max=n_max, **load_kwargs)
    if load_kwargs:
        raise TypeError(
            f"{', '.join(sorted(load_kwargs))} only apply when loading a file, not to a JetDataset"
        )
    n_keep = _check_n_max(n_max)
    if require_labels and data.labels is None:
        raise ValueError(
            f"{data.source or 'the dataset'} holds no labels, but require_labels=True; use labeled jets"
        )
    return _head(data, n_keep)


def load_datasets(paths: Sequence[PathLike | JetDataset], **kwargs: Any) -> JetDataset:
    """Load several files (or datasets) with :func:`as_dataset` and concatenate them.

    Args:
        paths: File paths or datasets, at least one; all must share the feature names and be
            all labeled or all unlabeled.
        **kwargs: Keyword arguments of :func:`as_dataset` for every file (``n_max`` applies
            to each file, not to the total).

    Returns:
        The single dataset itself for one input, else :meth:`JetDataset.concatenate` of all.

    Raises:
        ValueError: For an empty list, mismatched feature names or labels, and everything
            :func:`load_dataset` raises.

    Example:
        >>> import numpy as np
        >>> ds = JetDataset(np.zeros((2, 1), np.float32), np.array([0, 1]), ("a",))
        >>> len(load_datasets([ds, ds]))
        4
    """
    if isinstance(paths, str | os.PathLike | JetDataset):
        raise TypeError("paths must be a list of paths or datasets; wrap a single one in a list")
    if not paths:
        raise ValueError("give at least one data file")
    parts = [as_dataset(p, **kwargs) for p in paths]
    return parts[0] if len(parts) == 1 else JetDataset.concatenate(parts)


def _check_n_max(n_max: int | None) -> int | None:
    if n_max is None:
        return None
    if isinstance(n_max, bool) or not isinstance(n_max, int | np.integer):
        raise TypeError(f"n_max must be an integer or None, got {type(n_max).__name__}")
    if n_max < 1:
        raise ValueError(f"n_max must be positive, got {n_max}")
    return int(n_max)


def _head(ds: JetDataset, n_keep: int | None) -> JetDataset:
    """The first ``n_keep`` jets of ``ds`` (``ds`` itself when nothing is cut)."""
    if n_keep is None or n_keep >= len(ds):
        return ds
    return ds.subset(np.arange(n_keep))


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
    source: Source,
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
    with atomic_path(p) as tmp:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, str(tmp))
        else:
            import pyarrow.feather as feather

            feather.write_feather(table, str(tmp))
