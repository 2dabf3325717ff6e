"""The ``aalearn`` command line: a thin layer over the library API."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``aalearn`` console script."""
    from aalearn.cli.main import main as _main

    _main()
