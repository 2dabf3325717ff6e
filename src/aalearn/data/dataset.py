"""The in-memory jet dataset shared by all readers, the generator and the models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.validation import check_array, check_labels

__all__ = ["LABEL_NAMES", "LABEL_TOP", "LABEL_W", "JetDataset"]

#: Label of the top-quark class. The challenge files use 0 for top (their label-0 jets
#: have the larger mass: median 102 GeV versus 73 GeV in the public clean file), and
#: aalearn follows that convention so that its files and the challenge's mix.
LABEL_TOP: int = 0
#: Label of the W-boson class.
LABEL_W: int = 1
LABEL_NAMES: tuple[str, str] = ("top", "w")


@dataclass
class JetDataset:
    """Jets as features (challenge layout or any other) with optional labels.

    Attributes:
        features: ``(N, F)`` float32 features.
        labels: ``(N,)`` int64 labels (0 = top, 1 = W) or ``None`` for unlabeled data.
        feature_names: Column names, length ``F``.
        source: Where the jets came from (a path or a description).
        metadata: Free-form, JSON-serialisable metadata (generator settings, versions).
        extras: Further per-jet arrays with ``N`` rows (``jets``, ``constituents``,
            ``features_truth``, ...).
    """

    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64] | None
    feature_names: tuple[str, ...]
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = check_array(self.features, name=f"features of {self.source or 'dataset'}", ndim=2)
        self.feature_names = tuple(self.feature_names)
        if len(self.feature_names) != self.features.shape[1]:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {self.features.shape[1]} feature columns"
            )
        if self.labels is not None:
            self.labels = check_labels(self.labels, n=self.features.shape[0])
        for key, arr in self.extras.items():
            if len(arr) != self.features.shape[0]:
                raise ValueError(f"extra array {key!r} has {len(arr)} rows, features have {len(self)}")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def subset(self, index: npt.ArrayLike) -> JetDataset:
        """Rows ``index`` (integer or boolean array) as a new dataset."""
        idx = np.asarray(index)
        return JetDataset(
            self.features[idx],
            None if self.labels is None else self.labels[idx],
            self.feature_names,
            self.source,
            dict(self.metadata),
            {k: v[idx] for k, v in self.extras.items()},
        )

    @staticmethod
    def concatenate(parts: list[JetDataset]) -> JetDataset:
        """Concatenate datasets with the same feature names (extras kept where all have them)."""
        if not parts:
            raise ValueError("need at least one dataset to concatenate")
        names = parts[0].feature_names
        for p in parts[1:]:
            if p.feature_names != names:
                raise ValueError(
                    f"cannot concatenate {p.source}: its feature names differ from {parts[0].source}"
                )
        if any(p.labels is None for p in parts) and not all(p.labels is None for p in parts):
            raise ValueError("cannot concatenate labeled and unlabeled datasets")
        labels = (
            None
            if parts[0].labels is None
            else np.concatenate([p.labels for p in parts if p.labels is not None])
        )
        common = set.intersection(*(set(p.extras) for p in parts))
        return JetDataset(
            np.concatenate([p.features for p in parts]),
            labels,
            names,
            " + ".join(p.source for p in parts),
            {"parts": [p.metadata for p in parts]},
            {k: np.concatenate([p.extras[k] for p in parts]) for k in sorted(common)},
        )
