"""Terminal output: readable tables (rich) or one JSON object on stdout."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aalearn.core.jsonutil import to_jsonable

__all__ = ["emit", "print_table", "to_jsonable"]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
        return f"{v:.4g}"
    return str(value)


def print_table(
    title: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], *, stream: Any = None
) -> None:
    """Print a table: a mapping becomes two columns (key, value), a list of rows a grid."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout, soft_wrap=True)
    table = Table(title=title, title_justify="left")
    if isinstance(rows, Mapping):
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for k, v in rows.items():
            table.add_row(str(k), _fmt(v))
    else:
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        for c in columns:
            table.add_column(c)
        for row in rows:
            table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)


def emit(
    result: Mapping[str, Any],
    *,
    json_mode: bool,
    title: str,
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
) -> None:
    """Print ``result`` as one JSON object (``json_mode``) or as a table."""
    if json_mode:
        sys.stdout.write(json.dumps(to_jsonable(result)) + "\n")
        sys.stdout.flush()
    else:
        print_table(
            title,
            rows if rows is not None else {k: v for k, v in result.items() if not isinstance(v, dict | list)},
        )
