"""Helpers shared by the CLI's command modules (kept apart from ``main`` to avoid import cycles)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

__all__ = ["JsonOpt", "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--json`` flag every command takes.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]


def user_errors(func: F) -> F:
    """Turn user-input errors into a one-line message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
