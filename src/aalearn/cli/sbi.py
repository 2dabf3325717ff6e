"""``aalearn sbi``: validate on sbibm tasks, coverage diagnostics, physics inference."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    name="sbi",
    help="Validate on sbibm tasks, coverage diagnostics, physics inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
