"""``aalearn llm``: uncertainty scores, hallucination detection, prompt robustness."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    name="llm",
    help="Uncertainty scores, hallucination detection, prompt robustness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
