"""Seeding: reproducible randomness without touching the caller's global RNG state.

Every stochastic function in aalearn takes an integer ``seed``; these helpers turn it
into generators (:func:`numpy_rng`, :func:`torch_generator`) or run a block with the
global torch RNG seeded and restored afterwards (:func:`seeded`). Child seeds for
independent streams (ensemble members, chunks, workers) come from :func:`spawn_seeds`,
so the numbers do not depend on the number of workers.

Example:
    >>> import torch
    >>> with seeded(3):
    ...     a = torch.rand(2)
    >>> with seeded(3):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    >>> spawn_seeds(0, 3) == spawn_seeds(0, 3)
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["MAX_SEED", "check_seed", "numpy_rng", "seeded", "spawn_seeds", "torch_generator"]

#: Largest seed accepted everywhere (Pythia's own limit is lower and checked there).
MAX_SEED = 2**32 - 1


def check_seed(seed: object, *, name: str = "seed") -> int:
    """Return ``seed`` as an ``int`` or raise a clear error.

    Raises:
        TypeError: For a non-integer (``bool`` included).
        ValueError: For a negative seed or one above :data:`MAX_SEED`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(seed).__name__}")
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be between 0 and {MAX_SEED}, got {value}")
    return value


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) seeded with ``seed``."""
    return np.random.default_rng(check_seed(seed))


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    return torch.Generator().manual_seed(check_seed(seed))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with the global torch RNG seeded, restoring the previous state after.

    Weight initialisation and dropout draw from the global torch RNG; forking it keeps
    a library call from changing the random stream of the caller.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_seed(seed))
        yield


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent child seeds derived from ``seed`` (NumPy ``SeedSequence.spawn``).

    The i-th child depends only on ``seed`` and ``i``, never on how many workers run.
    """
    if n < 0:
        raise ValueError(f"the number of seeds must be non-negative, got {n}")
    children = np.random.SeedSequence(check_seed(seed)).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
