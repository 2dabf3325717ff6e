r"""Training strategies: what one mini-batch step optimises, plugged into the one training loop.

:func:`aalearn.training.train_classifier` owns everything that is the same for every
strategy (data order, optimiser, early stopping, checkpoints, resumption, progress). A
:class:`Strategy` only says what the classifier's objective is on a batch and what else
happens around a step:

* :meth:`Strategy.setup` once before the first epoch (also after a resume), with the
  whole :class:`TrainingData` (for example to fit RDSA marginals or build an adversary);
* :meth:`Strategy.start_epoch` at the start of every epoch (re-draw an augmentation pool);
* :meth:`Strategy.loss` per batch: the scalar the classifier's optimiser minimises;
* :meth:`Strategy.after_step` after the classifier's optimiser step (an adversary's own
  update, as in learning to pivot);
* :meth:`Strategy.epoch_metrics` extra per-epoch numbers logged in the history;
* :meth:`Strategy.state_dict` / :meth:`Strategy.load_state_dict` what a checkpoint must
  hold to resume bit-identically (tensors, numbers, strings, lists and dicts of those:
  the checkpoint is read back with ``torch.load(..., weights_only=True)``);
* :meth:`Strategy.config` the JSON-serialisable settings written into checkpoint
  metadata and model cards.

Strategies are registered by name (:func:`register_strategy`) and built with
:func:`get_strategy`, so the CLI's ``aalearn train --strategy NAME`` and the library
share one table (:data:`STRATEGIES`).

Example:
    >>> import torch
    >>> from aalearn.models import TopoDNN
    >>> s = get_strategy("nominal")
    >>> batch = Batch(x=torch.zeros(4, 3), y=torch.ones(4), index=torch.arange(4), aux={})
    >>> float(s.loss(TopoDNN(3, (4,), batchnorm=False), batch).detach()) > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "STRATEGIES",
    "Batch",
    "NominalStrategy",
    "Strategy",
    "TrainingData",
    "get_strategy",
    "logits_of",
    "register_strategy",
    "weighted_bce",
]


def weighted_bce(logits: Tensor, y: Tensor, weight: Tensor) -> Tensor:
    r"""Weighted mean binary cross-entropy :math:`\sum_i w_i \ell_i / \sum_i w_i` of logits.

    A batch whose weights are all zero gives 0 (no gradient), not NaN.

    Example:
        >>> import torch
        >>> z, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
        >>> float(weighted_bce(z, y, torch.tensor([1.0, 0.0])))  # only the first row: log 2
        0.6931471824645996
    """
    per_row = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (weight * per_row).sum() / weight.sum().clamp_min(torch.finfo(per_row.dtype).tiny)


def logits_of(model: nn.Module, x: Tensor) -> Tensor:
    """The model's logits as a vector ``(B,)`` (a ``(B, 1)`` output is squeezed)."""
    out = model(x)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    return out


@dataclass
class Batch:
    """One mini-batch, on the model's device.

    Attributes:
        x: Features ``(B, F)`` in the model's dtype.
        y: Labels ``(B,)`` as floats in {0, 1}.
        index: Row indices ``(B,)`` (int64) of the batch in the training set, to look up
            per-row data a strategy prepared in :meth:`Strategy.setup`.
        aux: Per-row auxiliary arrays of the training set sliced to the batch (for
            example ``{"z": nuisance}`` for learning to pivot, ``{"mass": m}`` for DisCo).
        weight: Per-row sample weights ``(B,)`` in the model's dtype, or ``None`` for an
            unweighted run (the default; the loss is then the plain mean).
    """

    x: Tensor
    y: Tensor
    index: Tensor
    aux: dict[str, Tensor] = field(default_factory=dict)
    weight: Tensor | None = None


@dataclass
class TrainingData:
    """The whole training set as the loop sees it (NumPy, validated, not yet on a device).

    Attributes:
        X: Features ``(N, F)`` (float32).
        y: Labels ``(N,)`` (int64 in {0, 1}).
        aux: Per-row auxiliary arrays, each of length ``N``.
        X_val: Validation features ``(M, F)``.
        y_val: Validation labels ``(M,)``.
        aux_val: Per-row auxiliary arrays of the validation set.
        seed: The run's seed (strategies derive their own RNGs from it).
        weight: Per-row sample weights ``(N,)`` (float64), or ``None`` (unweighted).
        weight_val: Per-row sample weights of the validation set, or ``None``.
    """

    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    aux: dict[str, npt.NDArray[Any]]
    X_val: npt.NDArray[np.float32]
    y_val: npt.NDArray[np.int64]
    aux_val: dict[str, npt.NDArray[Any]]
    seed: int = 0
    weight: npt.NDArray[np.float64] | None = None
    weight_val: npt.NDArray[np.float64] | None = None


class Strategy:
    r"""Base class and the nominal strategy: mean binary cross-entropy of the logits.

    .. math::

        \ell_B = -\frac{1}{|B|}\sum_{i \in B}\bigl[y_i\log\sigma(z_i) + (1-y_i)\log(1-\sigma(z_i))\bigr]

    With sample weights :math:`w_i` (``Batch.weight``) the mean becomes the weighted
    mean :math:`\sum_B w_i \ell_i / \sum_B w_i`; only strategies with
    ``supports_sample_weight = True`` accept weights (the loop refuses the others).

    Subclasses override :meth:`loss` and, where needed, the other hooks. They must not
    draw from NumPy's or torch's global RNG without seeding from ``TrainingData.seed``
    (the loop runs inside :func:`torch.random.fork_rng` seeded with the run's seed, so
    torch's global RNG is reproducible there).

    Attributes:
        name: Registry name (class attribute).
        requires_aux: Names of auxiliary arrays the strategy needs (class attribute);
            the loop raises ``ValueError`` when one is missing.
        supports_sample_weight: Whether :meth:`loss` uses ``Batch.weight`` (class
            attribute; ``False`` unless a subclass implements it, so a subclass that
            overrides :meth:`loss` never silently drops weights).
    """

    name: ClassVar[str] = "nominal"
    requires_aux: ClassVar[tuple[str, ...]] = ()
    supports_sample_weight: ClassVar[bool] = False

    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Prepare for training (called once before the first epoch, also after a resume)."""

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Called at the start of every epoch (0-based ``epoch``)."""

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Scalar objective of the classifier on ``batch`` (model in train mode)."""
        if batch.weight is None:
            return F.binary_cross_entropy_with_logits(logits_of(model, batch.x), batch.y)
        return weighted_bce(logits_of(model, batch.x), batch.y, batch.weight)

    def after_step(self, model: nn.Module, batch: Batch) -> None:
        """Called after the classifier's optimiser step on ``batch``."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra numbers of the finished epoch for the history (name → value)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint for resumption (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (checkpoint metadata, model cards)."""
        return {"strategy": self.name}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "strategy")
        return f"{type(self).__name__}({cfg})"


class NominalStrategy(Strategy):
    """Plain training: the mean BCE of :class:`Strategy` (registered as ``"nominal"``)."""

    name: ClassVar[str] = "nominal"
    supports_sample_weight: ClassVar[bool] = True


#: Registered strategies: name → factory accepting keyword settings.
STRATEGIES: dict[str, Callable[..., Strategy]] = {}

S = TypeVar("S", bound=type[Strategy])


def register_strategy(cls: S) -> S:
    """Class decorator: register a :class:`Strategy` subclass under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"register_strategy needs a Strategy subclass, got {cls!r}")
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    STRATEGIES[cls.name] = cls
    return cls


register_strategy(NominalStrategy)


def get_strategy(name: str | Strategy, **settings: Any) -> Strategy:
    """Build a registered strategy by name (a :class:`Strategy` instance is returned as is).

    Raises:
        ValueError: For an unknown name (the message lists the known ones) or settings
            the strategy rejects.

    Example:
        >>> get_strategy("nominal").name
        'nominal'
    """
    if isinstance(name, Strategy):
        if settings:
            raise ValueError("settings cannot be given together with a Strategy instance")
        return name
    if not isinstance(name, str) or name not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown training strategy {name!r}; known strategies: {known}")
    try:
        return STRATEGIES[name](**settings)
    except TypeError as exc:
        raise ValueError(f"bad settings for strategy {name!r}: {exc}") from None
