"""Stratified splits of row indices, shared by training, the detector and the uncertainty study."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["split_indices"]


def split_indices(
    labels: npt.ArrayLike, *, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, npt.NDArray[np.int64]]:
    """Stratified train/validation/test split of row indices.

    Example:
        >>> parts = split_indices(np.array([0, 1] * 50), fractions=(0.6, 0.2, 0.2), seed=0)
        >>> [len(parts[k]) for k in ("train", "val", "test")]
        [60, 20, 20]

    Args:
        labels: Class labels used for stratification.
        fractions: Fractions for ``train``, ``val`` and ``test`` (a zero test fraction is
            allowed); they must sum to 1.
        seed: Seed of the permutation.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each sorted.
    """
    y = np.asarray(labels)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    if fractions[0] <= 0 or fractions[1] <= 0:
        raise ValueError("the train and validation fractions must be positive")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[npt.NDArray[np.int64]]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        if fractions[2] == 0:
            n_val = len(idx) - n_train
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train : n_train + n_val])
        parts["test"].append(idx[n_train + n_val :])
    out = {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}
    if len(out["train"]) == 0 or len(out["val"]) == 0:
        raise ValueError(f"too few jets ({len(y)}) to split into training and validation sets")
    return out
