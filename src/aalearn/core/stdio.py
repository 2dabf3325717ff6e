"""Keep standard output clean for machine-readable output (``--json`` prints there).

C++ libraries (Pythia, FastJet) print banners on file descriptor 1; :func:`redirect_fd1`
points it at stderr or ``/dev/null`` for a while.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Literal

__all__ = ["redirect_fd1"]


@contextlib.contextmanager
def redirect_fd1(target: Literal["stderr", "devnull"]) -> Iterator[None]:
    """Point file descriptor 1 (C++ ``std::cout``) at stderr or /dev/null for a while.

    Keeps stdout clean for machine-readable output (the CLI prints JSON there).
    """
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (embedded interpreters)
        yield
        return
    try:
        if target == "devnull":
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.close(fd)
        else:
            os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
