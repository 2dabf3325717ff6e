"""File-level workflows behind the CLI commands: read inputs, call the pillars, return a Result.

Each module here is one command family (``train``, ``evaluate``, ``demo``, ``audit``,
``challenge``, ``uncertainty``, ``measure``, ``sbi``, ``surrogate``, ``llm``). The CLI only
parses options, calls an app and prints or writes the returned
:class:`~aalearn.core.result.Result` (through :func:`aalearn.report.write_run`).
"""

from __future__ import annotations

__all__: list[str] = []
