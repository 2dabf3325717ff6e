"""One set of training settings that travels through every training call.

:class:`TrainConfig` is accepted by the training loop
(:func:`aalearn.training.train_classifier`), the ensemble trainer, the adversarial-sample
detector, the nuisance study, the uncertainty predictors and the surrogate models, so
defaults are written once and a setting given on the command line reaches every
model a command trains.

Example:
    >>> cfg = TrainConfig(epochs=5, seed=1)
    >>> cfg.replace(lr=3e-4).lr
    0.0003
    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["TrainConfig"]

#: The validation quantities every run logs; a strategy may log more ``val_*`` quantities
#: (``val_sigma_mu`` for the inference-aware strategies), which the training loop checks
#: against what the strategy reports.
_MONITORS = ("val_loss", "val_accuracy")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping settings of one training run.

    Attributes:
        epochs: Maximum number of epochs.
        batch_size: Mini-batch size.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2).
        l1: Weight of the L1 penalty on the weights.
        patience: Epochs without improvement of ``monitor`` before stopping early.
        seed: Seed of the initialisation, the shuffling and the strategies' draws.
        progress: Show a progress bar.
        monitor: The early-stopping quantity: ``"val_loss"``, ``"val_accuracy"`` or another
            ``val_*`` quantity the strategy logs (``"val_sigma_mu"`` for ``inferno``/``neos``).
    """

    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    l1: float = 0.0
    patience: int = 5
    seed: int = 0
    progress: bool = True
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("weight_decay", "l1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.monitor, str) or not (
            self.monitor in _MONITORS or (self.monitor.startswith("val_") and len(self.monitor) > 4)
        ):
            raise ValueError(
                f"monitor must be one of {', '.join(_MONITORS)} or a strategy's val_* quantity, "
                f"got {self.monitor!r}"
            )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-friendly mapping."""
        return dataclasses.asdict(self)
