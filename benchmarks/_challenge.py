"""Shared by the attack benchmarks: ``--data``/``--model`` options defaulting to the challenge's public files.

The files are located with :func:`aalearn.core.paths.find_challenge_data` (``$AALEARN_CHALLENGE_DATA``,
then ``shared/data/colliding-adversaries`` beside the working directory or the checkout), the
same lookup the tests and ``aalearn reproduce`` use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aalearn.core.paths import CHALLENGE_FILES, find_challenge_data

__all__ = ["add_challenge_args"]


def add_challenge_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--data`` (the public clean jets) and ``--model`` (the frozen TopoDNN) to ``parser``."""
    root = find_challenge_data() or Path("../shared/data/colliding-adversaries")
    data, model = root / CHALLENGE_FILES["clean"], root / CHALLENGE_FILES["model"]
    parser.add_argument("--data", type=Path, default=data, help=f"jets to attack (default {data})")
    parser.add_argument("--model", type=Path, default=model, help=f"frozen classifier (default {model})")
