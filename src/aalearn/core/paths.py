"""Where aalearn finds the challenge's public files and keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHALLENGE_FILES", "cache_dir", "find_challenge_data", "require_challenge_data"]

#: File names of the ECML-PKDD 2025 "Colliding with Adversaries" public files.
CHALLENGE_FILES = {
    "clean": "Clean_Test_Public.feather",
    "adversarial": "Adversaries_Test_Public.feather",
    "model": "best_model.hdf5",
}


def find_challenge_data() -> Path | None:
    """Locate the directory holding the challenge's public files.

    Search order: the environment variable ``AALEARN_CHALLENGE_DATA``; then
    ``shared/data/colliding-adversaries`` beside the current directory or beside the
    aalearn source checkout (``../shared/...``). Returns ``None`` when none holds the
    three files.
    """
    candidates: list[Path] = []
    env = os.environ.get("AALEARN_CHALLENGE_DATA")
    if env:
        candidates.append(Path(env))
    rel = Path("shared") / "data" / "colliding-adversaries"
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidates += [base / rel, base.parent / rel]
    for cand in candidates:
        if all((cand / f).is_file() for f in CHALLENGE_FILES.values()):
            return cand
    return None


def require_challenge_data() -> Path:
    """Like :func:`find_challenge_data`, but raise ``FileNotFoundError`` saying how to fix it."""
    root = find_challenge_data()
    if root is None:
        raise FileNotFoundError(
            "the challenge's public files were not found; set AALEARN_CHALLENGE_DATA to the directory "
            f"holding {', '.join(CHALLENGE_FILES.values())}"
        )
    return root


def cache_dir() -> Path:
    """aalearn's cache directory (``$AALEARN_CACHE`` or ``~/.cache/aalearn``), created if needed."""
    path = Path(os.environ.get("AALEARN_CACHE", Path.home() / ".cache" / "aalearn"))
    path.mkdir(parents=True, exist_ok=True)
    return path
