"""Input validation helpers that raise clear ``ValueError``/``TypeError`` messages.

aalearn never uses ``assert`` for user input: every check below says what was wrong
and how to fix it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "check_array",
    "check_finite",
    "check_labels",
    "check_output_path",
    "check_positive",
    "check_probability",
]


def check_array(
    x: Any,
    *,
    name: str,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: type | np.dtype[Any] = np.float32,
    finite: bool = True,
) -> npt.NDArray[Any]:
    """Convert ``x`` to a NumPy array and check its shape, dtype and values.

    Args:
        x: Array-like input.
        name: Name used in error messages.
        ndim: Required number of dimensions.
        shape: Required shape; ``None`` entries are free.
        dtype: Target dtype (numeric input is cast; non-numeric input is rejected).
        finite: Reject NaN and infinite values.

    Returns:
        The validated array with dtype ``dtype``.

    Raises:
        TypeError: For non-numeric input.
        ValueError: For a wrong shape or non-finite values.

    Example:
        >>> check_array([[1.0, 2.0]], name="x", ndim=2).shape
        (1, 2)
    """
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}; convert it to float first")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None and (
        arr.ndim != len(shape)
        or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=False))
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    arr = arr.astype(dtype, copy=False)
    if finite:
        check_finite(arr, name=name)
    return arr


def check_finite(arr: npt.NDArray[Any], *, name: str) -> None:
    """Raise ``ValueError`` naming the first offending rows if ``arr`` has NaN or inf."""
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            preview = ", ".join(str(int(r)) for r in rows[:10])
            more = f" (and {len(rows) - 10} more)" if len(rows) > 10 else ""
            raise ValueError(
                f"{name} contains {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s): "
                f"rows {preview}{more}; remove or repair these rows before use"
            )


def check_labels(y: Any, *, name: str = "labels", n: int | None = None) -> npt.NDArray[np.int64]:
    """Validate binary labels (0/1) and return them as ``int64``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the features have {n} rows")
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must be numeric 0/1, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf")
    values = np.unique(arr)
    if not np.all(np.isin(values, [0, 1])):
        raise ValueError(f"{name} must be 0 or 1, found values {values[:10].tolist()}")
    return arr.astype(np.int64)


def check_positive(value: float, *, name: str, strict: bool = True) -> float:
    """Check that a scalar is positive (``strict``) or non-negative."""
    if not np.isfinite(value) or (value <= 0 if strict else value < 0):
        kind = "positive" if strict else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {value}")
    return float(value)


def check_probability(value: float, *, name: str) -> float:
    """Check that a scalar lies in [0, 1]."""
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def check_output_path(path: str | os.PathLike[str], *, suffixes: Sequence[str], what: str = "--out") -> Path:
    """Check, before any work, that an output file has an accepted suffix and can be written.

    The parent directory must exist (or be creatable below an existing, writable directory) and be
    writable (a probe file is created and removed there); an existing ``path`` must be a writable
    file, not a directory.

    Args:
        path: The output file.
        suffixes: Accepted suffixes, with the dot (``[".safetensors"]``); empty accepts any.
        what: Name of the option in error messages.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: For a suffix not in ``suffixes``.
        PermissionError: When the file or its directory cannot be written.
        NotADirectoryError: When a parent of ``path`` is a file.
        IsADirectoryError: When ``path`` is a directory.

    Example:
        >>> check_output_path("model.pt", suffixes=[".safetensors"])
        Traceback (most recent call last):
        ...
        ValueError: --out must end in .safetensors, got 'model.pt'
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in {s.lower() for s in suffixes}:
        choices = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if len(suffixes) > 1 else suffixes)
        raise ValueError(f"{what} must end in {choices}, got {out.name!r}")
    if out.is_dir():
        raise IsADirectoryError(f"{what} {out} is a directory, not a file")
    if out.exists() and not os.access(out, os.W_OK):
        raise PermissionError(f"{what} {out} is not writable")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{what} {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {out}: directory {parent} is not writable")
    try:  # os.access says yes to root on sysfs/procfs: create and remove a probe file to be sure
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".aalearn-probe-"):
            pass
    except OSError as exc:
        raise PermissionError(f"{what} {out}: directory {parent} is not writable ({exc.strerror})") from None
    return out
