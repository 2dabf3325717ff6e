"""JSON with one NaN/inf policy, shared by results files and the CLI's ``--json``.

The policy: non-finite floats (NaN, ±inf: for example an infinite background rejection
when no background passes a cut) are written as ``null``; NumPy scalars and arrays,
paths and dataclasses are converted. Every JSON file and every ``--json`` object of
aalearn goes through :func:`to_jsonable`, so a reader needs only one rule.

Example:
    >>> import numpy as np
    >>> to_jsonable({"auc": np.float32(0.5), "rejection": float("inf")})
    {'auc': 0.5, 'rejection': None}
    >>> dumps({"x": [1, float("nan")]})
    '{\\n  "x": [\\n    1,\\n    null\\n  ]\\n}'
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aalearn.core.io import atomic_write

__all__ = ["dumps", "read_json_file", "to_jsonable", "write_json"]


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, paths, dataclasses and non-finite floats for JSON.

    Non-finite floats (for example an infinite background rejection) become ``None``.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """``json.dumps`` after :func:`to_jsonable`, refusing anything left non-standard."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`aalearn.core.io.atomic_write`).

    Example:
        >>> import pathlib, tempfile
        >>> p = write_json({"a": 1}, pathlib.Path(tempfile.mkdtemp()) / "r.json")
        >>> p.read_text()
        '{\\n  "a": 1\\n}\\n'
    """
    return atomic_write(path, dumps(obj) + "\n")


def read_json_file(path: str | Path, *, what: str) -> Any:
    """The parsed content of the JSON file ``path``, with one-line errors naming ``what`` it should be.

    Raises:
        FileNotFoundError: ``no such {what} file: PATH``.
        ValueError: ``PATH is not a JSON {what} file (...)`` for bytes that are not JSON.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "pu.json"
        >>> _ = p.write_text('{"mu": 21}')
        >>> read_json_file(p, what="pile-up")
        {'mu': 21}
        >>> read_json_file(p.with_name("missing.json"), what="pile-up")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no such pile-up file: ...missing.json
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such {what} file: {file}")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not a JSON {what} file ({exc})") from None
