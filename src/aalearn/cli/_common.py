"""Helpers shared by the CLI's command modules (kept apart from ``main`` to avoid import cycles)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click
import typer
from typer.core import TyperOption

__all__ = ["BootstrapOpt", "JsonOpt", "LevelOpt", "is_user_error", "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--json`` flag every command takes.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]

#: Bootstrap replicas of the intervals (evaluate, compare, challenge task2); 0 turns them off.
BootstrapOpt = Annotated[
    int,
    typer.Option(
        "--bootstrap",
        help="Bootstrap replicas of the AUC/rejection/mixed-accuracy intervals (accuracies: "
        "Clopper-Pearson); 0: no intervals.",
    ),
]

#: Confidence level of every interval a command reports.
LevelOpt = Annotated[float, typer.Option("--level", help="Confidence level of the intervals, in (0, 1).")]

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


def _hide_flag_types() -> None:
    """Show no value type for on/off flags in ``--help``, as typer's plain-text help already does.

    typer's rich help labels every option with its type, flags included (``--json <bool>``,
    ``--help <bool>``), though a flag takes no value; this makes the rich table agree with
    :meth:`typer.core.TyperOption.get_help_record`, which omits the type of a flag.
    """
    show_type = TyperOption.display_type_rich
    if getattr(show_type, "_aalearn_flags_hidden", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else show_type(self, ctx)

    display_type_rich._aalearn_flags_hidden = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is reported as a one-line error (exit code 2) rather than a traceback.

    Example:
        >>> is_user_error(PermissionError("denied")), is_user_error(ZeroDivisionError())
        (True, False)
        >>> is_user_error(typer.Exit(1))  # a command's own exit code passes through
        False
    """
    # click's and typer's Exit derive from RuntimeError in recent releases: it is a command's
    # chosen exit code (a failed reproduction exits 1), not an error to report.
    if isinstance(exc, (click.exceptions.Exit, typer.Exit)):
        return False
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
