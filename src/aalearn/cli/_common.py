"""Helpers shared by the CLI's command modules (kept apart from ``main`` to avoid import cycles)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

__all__ = ["JsonOpt", "is_user_error", "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--json`` flag every command takes.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]

#: Exceptions reported as one line with exit code 2. ``OSError`` covers permission, not-a-directory,
#: file-exists, is-a-directory, ``TimeoutError``, ``ConnectionError`` and distributed's ``CommClosedError``.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    OSError,
    ImportError,
    RuntimeError,
)

#: Dask distributed errors matched by class name, so the CLI never imports dask to catch them.
_DASK_ERROR_NAMES = frozenset({"CommClosedError", "FutureCancelledError", "CancelledError", "KilledWorker"})


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is reported as a one-line error (exit code 2) rather than a traceback.

    Example:
        >>> is_user_error(PermissionError("denied")), is_user_error(ZeroDivisionError())
        (True, False)
    """
    if isinstance(exc, _USER_ERRORS):
        return True
    return any(cls.__name__ in _DASK_ERROR_NAMES for cls in type(exc).__mro__)


def _message(exc: BaseException) -> str:
    """One line for ``exc``: its text, or its class name when it has none."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    if not text:
        text = type(exc).__name__
    elif not isinstance(
        exc, (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError)
    ) and not type(exc).__module__.startswith("aalearn"):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.splitlines())


def user_errors(func: F) -> F:
    """Turn user-input, file-system and cluster errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            typer.secho(f"error: {_message(exc)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
