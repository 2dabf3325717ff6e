"""The ``aalearn`` command line: a thin layer over the apps (:mod:`aalearn.apps`).

The console script runs :func:`aalearn.cli.main.main`; the typer application is
:data:`aalearn.cli.main.app`. Each command parses its options, calls one app function
and prints the result.
"""

from __future__ import annotations

__all__: list[str] = []
