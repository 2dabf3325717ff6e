"""Reproductions of published numbers and peer-library outputs, runnable as commands.

Every check of a published number is registered here with its source and tolerance,
listed by ``aalearn reproduce --list``, run by ``aalearn reproduce NAME [--json]`` and by
the test suite.

Example:
    >>> from aalearn.reproduce import REGISTRY
    >>> list(REGISTRY)[0]
    'challenge-model'
"""

from __future__ import annotations

import aalearn.reproduce.inferno  # noqa: F401  (registers "inferno", listed after the registry's own)
from aalearn.reproduce.registry import REGISTRY, Reproduction, ReproductionResult, get, run

__all__ = ["REGISTRY", "Reproduction", "ReproductionResult", "get", "run"]
