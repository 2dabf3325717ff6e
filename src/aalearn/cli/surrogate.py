"""``aalearn surrogate``: train small flows on jets, validate a candidate sample."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    name="surrogate",
    help="Train small flows on jets, validate a candidate sample.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
