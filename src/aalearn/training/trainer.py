r"""One training loop for binary classifiers that return logits, with pluggable strategies.

:func:`train_classifier` minimises, per mini-batch :math:`B`,

.. math::

    L(\theta) = \ell_B(\theta) + \lambda_1 \sum_{\text{Linear } k} \lVert W_k \rVert_1,
    \qquad
    \ell_B^\text{nominal} = -\frac{1}{|B|}\sum_{i \in B}
        \bigl[y_i \log \sigma(z_i) + (1 - y_i)\log(1 - \sigma(z_i))\bigr],

with Adam (optionally with the coupled L2 ``weight_decay`` of
:class:`torch.optim.Adam`), stops when the monitored validation quantity (default the
validation BCE) has not improved for ``patience`` epochs and restores the weights of the
best epoch. The L1 term is the Keras ``kernel_regularizer=L1(λ)`` of the challenge model
(λ = 10⁻³ there), applied to the weights (not biases) of every :class:`torch.nn.Linear`.

The per-batch data loss :math:`\ell_B` comes from a :class:`~aalearn.training.strategy.Strategy`
(nominal, adversarial training, RDSA augmentation, learning to pivot, DisCo, ...): the
loop owns everything the strategies share (data order, optimiser, early stopping,
seeding, checkpoints and resumption, progress), a strategy only says what a step
optimises and what happens around it.

**Resumable training.** With ``checkpoint_dir`` the complete state of the run (model,
optimiser, best weights, early-stopping counter, history, the data-order generator, the
torch RNG and the strategy's :meth:`~aalearn.training.strategy.Strategy.state_dict`) is
written atomically after every epoch to ``checkpoint_dir/training_state.pt``. A new call
with the same data and settings continues after the last finished epoch, and its final
weights and history are bit-identical to those of an uninterrupted run (same machine and
device). The file is read back with ``torch.load(..., weights_only=True)``: nothing is
unpickled.

Reference:
    The challenge model's recipe (Keras, Adam lr 5·10⁻⁵, batch 256, early stopping with
    patience 10 on the validation loss, L1 10⁻³): ECML-PKDD 2025 "Colliding with
    Adversaries" starter kit. TopoDNN: Pearkes et al., arXiv:1704.02124. Adam: Kingma &
    Ba, arXiv:1412.6980.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

# Importing the strategy modules registers their names ("adversarial", "rdsa", "pivot", "disco").
import aalearn.training.disco
import aalearn.training.pivot
import aalearn.training.strategies  # noqa: F401
from aalearn.core.config import TrainConfig
from aalearn.core.io import atomic_path
from aalearn.core.validation import check_array, check_labels, check_positive
from aalearn.models.checkpoint import architecture_name, save_checkpoint
from aalearn.models.predict import model_device, model_n_features
from aalearn.training.strategy import STRATEGIES, Batch, Strategy, TrainingData, get_strategy

__all__ = [
    "CHECKPOINT_FILE",
    "DIVERGED_VAL_LOSS",
    "FINAL_MODEL_FILE",
    "BatchLoss",
    "TrainingDivergedError",
    "TrainingHistory",
    "bce_batch_loss",
    "l1_penalty",
    "train_classifier",
]

#: Per-batch data loss: ``loss(model, x, y) -> scalar tensor``, with ``x`` of shape
#: ``(B, F)`` and float labels ``y`` of shape ``(B,)`` on the model's device. The model is
#: in train mode when it is called.
BatchLoss = Callable[[nn.Module, Tensor, Tensor], Tensor]

#: Name of the resumable training state inside ``checkpoint_dir``.
CHECKPOINT_FILE = "training_state.pt"
#: Name of the final model (safetensors, :func:`aalearn.models.save_checkpoint`) inside ``checkpoint_dir``.
FINAL_MODEL_FILE = "model.safetensors"

_CHECKPOINT_FORMAT = "aalearn-training-state"
_CHECKPOINT_VERSION = 1


#: Validation BCE (nats per jet) above which training counts as diverged: a mean loss of
#: 10⁴ needs logits of order 10⁴ on wrong predictions, far beyond the float32 saturation of
#: the sigmoid (:math:`|z| \approx 17`); a working tagger stays below ~1 (chance: ln 2).
DIVERGED_VAL_LOSS = 1e4


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss; raised before any checkpoint of the diverged model is written."""


def bce_batch_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    r"""Mean binary cross-entropy of the model's logits, :math:`\ell_B` above.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> model = TopoDNN(n_features=2, hidden=(3,), batchnorm=False)
        >>> bce_batch_loss(model, torch.zeros(4, 2), torch.ones(4)).ndim
        0
    """
    logits = model(x)
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    return F.binary_cross_entropy_with_logits(logits, y)


def l1_penalty(model: nn.Module) -> Tensor:
    r""":math:`\sum_k \lVert W_k \rVert_1` over the weights of all :class:`torch.nn.Linear` modules.

    Example:
        >>> lin = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> float(l1_penalty(lin).detach())
        3.0
    """
    terms = [m.weight.abs().sum() for m in model.modules() if isinstance(m, nn.Linear)]
    if not terms:
        return torch.zeros((), device=model_device(model))
    return torch.stack(terms).sum()


@dataclass
class TrainingHistory:
    """Per-epoch record of :func:`train_classifier`.

    Attributes:
        train_loss: Mean data loss (the strategy's batch loss, without the L1 term) over
            the training set, per epoch, accumulated during the epoch in train mode.
        val_loss: Validation BCE in eval mode after each epoch (no penalty).
        val_accuracy: Validation accuracy (threshold 0.5 on :math:`P(\\text{label}=1)`).
        best_epoch: 0-based index of the epoch with the best monitored value (by default
            the lowest ``val_loss``); its weights are the ones returned.
        epochs_run: Number of epochs actually run (including those of an earlier,
            interrupted call that this one resumed).
        stopped_early: Whether early stopping ended training before ``epochs``.
        seconds: Wall time of the training loop (summed over resumed calls).
        extra: Per-epoch numbers of the strategy (:meth:`Strategy.epoch_metrics`), name →
            one value per epoch (NaN for an epoch that did not report it).
        epoch_seconds: Wall time of each epoch (training, validation and checkpoint).
        jets_per_second: Training rows processed per second in each epoch's batch loop.
        strategy: The strategy's :meth:`Strategy.config`.
        monitor: Quantity early stopping watched.
        resumed_epochs: Epochs loaded from a checkpoint at the start of the last call
            (0 for a fresh run).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    extra: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    jets_per_second: list[float] = field(default_factory=list)
    strategy: dict[str, Any] = field(default_factory=dict)
    monitor: str = "val_loss"
    resumed_epochs: int = 0

    #: Fields that depend on the wall clock (excluded from reproducibility comparisons).
    TIMING_FIELDS: ClassVar[tuple[str, ...]] = (
        "seconds",
        "epoch_seconds",
        "jets_per_second",
        "resumed_epochs",
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all fields.

        Example:
            >>> TrainingHistory(train_loss=[0.5], val_loss=[0.4], val_accuracy=[0.9]).to_dict()["val_loss"]
            [0.4]
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingHistory:
        """Rebuild from :meth:`to_dict` (unknown keys are ignored).

        Example:
            >>> h = TrainingHistory(val_loss=[0.3], extra={"adv_loss": [0.5]})
            >>> TrainingHistory.from_dict(h.to_dict()) == h
            True
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self) -> dict[str, Any]:
        """Compact summary for model metadata: best epoch, its validation numbers, epochs, time.

        Example:
            >>> h = TrainingHistory(val_loss=[0.5, 0.4], val_accuracy=[0.7, 0.8], best_epoch=1)
            >>> h.summary()["val_loss"]
            0.4
        """
        best = self.best_epoch
        out: dict[str, Any] = {
            "epochs_run": self.epochs_run,
            "best_epoch": best,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
            "monitor": self.monitor,
        }
        if 0 <= best < len(self.val_loss):
            out["val_loss"] = self.val_loss[best]
            out["val_accuracy"] = self.val_accuracy[best]
            out.update({k: v[best] for k, v in self.extra.items() if best < len(v)})
        return out


# --------------------------------------------------------------------------- validation
def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_data(
    model: nn.Module, X_train: Any, y_train: Any, X_val: Any, y_val: Any
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    # Copies: torch.from_numpy needs writable arrays, and training must not alias the caller's data.
    x_tr = np.array(check_array(X_train, name="X_train", ndim=2), copy=True)
    x_va = np.array(check_array(X_val, name="X_val", ndim=2), copy=True)
    if x_tr.shape[0] < 2:
        raise ValueError(f"X_train needs at least 2 rows, got {x_tr.shape[0]}")
    if x_va.shape[0] < 1:
        raise ValueError("X_val is empty")
    if x_va.shape[1] != x_tr.shape[1]:
        raise ValueError(f"X_val has {x_va.shape[1]} feature columns but X_train has {x_tr.shape[1]}")
    n_features = model_n_features(model)
    if n_features is not None and x_tr.shape[1] != n_features:
        raise ValueError(f"X_train has {x_tr.shape[1]} feature columns but the model expects {n_features}")
    y_tr = np.array(check_labels(y_train, name="y_train", n=x_tr.shape[0]), copy=True)
    y_va = np.array(check_labels(y_val, name="y_val", n=x_va.shape[0]), copy=True)
    return x_tr, y_tr, x_va, y_va


def _check_weight(weight: npt.ArrayLike | None, *, name: str, n: int) -> npt.NDArray[np.float64] | None:
    if weight is None:
        return None
    w = np.array(check_array(weight, name=name, ndim=1, dtype=np.float64), copy=True)
    if w.shape[0] != n:
        raise ValueError(f"{name} must have one weight per row ({n}), got {w.shape[0]}")
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"{name} must be non-negative with at least one positive weight")
    return w


def _check_aux(aux: Mapping[str, npt.ArrayLike] | None, *, name: str, n: int) -> dict[str, npt.NDArray[Any]]:
    if aux is None:
        return {}
    if not isinstance(aux, Mapping):
        raise TypeError(f"{name} must be a mapping name → per-row array, got {type(aux).__name__}")
    out: dict[str, npt.NDArray[Any]] = {}
    for key, value in aux.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings, got {key!r}")
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"{name}[{key!r}] must be numeric, got dtype {arr.dtype}")
        if arr.ndim < 1 or arr.shape[0] != n:
            raise ValueError(f"{name}[{key!r}] must have one entry per row ({n}), got shape {arr.shape}")
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{key!r}] contains NaN/inf")
        out[key] = np.array(arr, copy=True)
    return out


class _BatchLossStrategy(Strategy):
    """A plain ``batch_loss(model, x, y)`` function as a strategy (backwards compatibility)."""

    name: ClassVar[str] = "custom"

    def __init__(self, fn: BatchLoss) -> None:
        self.fn = fn

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        return self.fn(model, batch.x, batch.y)

    def config(self) -> dict[str, Any]:
        return {"strategy": self.name, "batch_loss": getattr(self.fn, "__qualname__", type(self.fn).__name__)}


def _resolve_strategy(
    strategy: str | Strategy, options: Mapping[str, Any] | None, batch_loss: BatchLoss | None
) -> Strategy:
    if batch_loss is not None:
        if not callable(batch_loss):
            raise ValueError(f"batch_loss must be callable(model, x, y) -> loss, got {batch_loss!r}")
        if not (isinstance(strategy, str) and strategy == "nominal") or options:
            raise ValueError("give either batch_loss or a strategy (with strategy_options), not both")
        return _BatchLossStrategy(batch_loss)
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"strategy_options must be a mapping of settings, got {type(options).__name__}")
    return get_strategy(strategy, **dict(options or {}))


# --------------------------------------------------------------------------- checkpoints
def _digest(arr: npt.NDArray[Any]) -> list[Any]:
    data = np.ascontiguousarray(arr)
    return [list(data.shape), str(data.dtype), hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()]


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON (sorted keys; tuples become lists) for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True, default=repr))


def _fingerprint(
    model: nn.Module, data: TrainingData, strategy: Strategy, settings: Mapping[str, Any]
) -> dict[str, Any]:
    config = getattr(model, "config", None)
    return _jsonable(
        {
            "model": {
                "class": f"{type(model).__module__}.{type(model).__qualname__}",
                "config": config if isinstance(config, dict) else None,
                "state": [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()],
            },
            "data": {
                "X_train": _digest(data.X),
                "y_train": _digest(data.y),
                "X_val": _digest(data.X_val),
                "y_val": _digest(data.y_val),
                "aux_train": {k: _digest(v) for k, v in sorted(data.aux.items())},
                "aux_val": {k: _digest(v) for k, v in sorted(data.aux_val.items())},
                # only weighted runs carry the key: unweighted checkpoints keep their fingerprint
                **({} if data.weight is None else {"weight_train": _digest(data.weight)}),
                **({} if data.weight_val is None else {"weight_val": _digest(data.weight_val)}),
            },
            "settings": dict(settings),
            "strategy": strategy.config(),
        }
    )


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if old == new else [prefix or "(root)"]


def _load_state(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file
        # Only torch's first line: its advice to pass weights_only=False (which would unpickle
        # arbitrary code) must not reach the user.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        first = first if "weights_only" not in first else "not a weights-only torch file"
        raise ValueError(
            f"cannot read the training checkpoint {str(path)!r} ({type(exc).__name__}: {first}); "
            f"delete {path.name} (or use another checkpoint directory) to start over"
        ) from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not an aalearn training checkpoint; use another checkpoint_dir")
    if state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(
            f"{str(path)!r} has checkpoint version {state.get('version')!r}, this aalearn writes "
            f"{_CHECKPOINT_VERSION}; delete {path.name} (or use another checkpoint directory) to start over"
        )
    old = json.loads(state["fingerprint"])
    if old != fingerprint:
        diff = ", ".join(_differences(old, fingerprint)[:8])
        raise ValueError(
            f"the checkpoint in {str(path.parent)!r} belongs to a different training run (differs in: "
            f"{diff}); use another checkpoint directory, or delete {path.name} in it to start over"
        )
    return state


def _save_final_model(model: nn.Module, directory: Path, history: TrainingHistory, seed: int) -> Path | None:
    """Write the final model with :func:`aalearn.models.save_checkpoint` if its architecture is registered."""
    try:
        architecture_name(model)
    except ValueError:
        return None  # an unregistered architecture: the training state still holds the weights
    metadata = {
        "strategy": history.strategy,
        "seed": seed,
        "history": history.summary(),
        "trained_with": "aalearn.training.train_classifier",
    }
    return save_checkpoint(model, directory / FINAL_MODEL_FILE, metadata=_jsonable(metadata))


# --------------------------------------------------------------------------- the loop
@torch.no_grad()
def _validate(
    model: nn.Module, x: Tensor, y: Tensor, batch_size: int, weight: Tensor | None = None
) -> tuple[float, float]:
    """Validation BCE and accuracy in eval mode (summed over batches, exact means).

    With ``weight`` both are weighted means (:func:`_validate_weighted`).
    """
    if weight is not None:
        return _validate_weighted(model, x, y, batch_size, weight)
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model(xb)
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        total_loss += float(F.binary_cross_entropy_with_logits(logits, yb, reduction="sum"))
        correct += int(((logits > 0).to(yb.dtype) == yb).sum())
    return total_loss / x.shape[0], correct / x.shape[0]


@torch.no_grad()
def _validate_weighted(
    model: nn.Module, x: Tensor, y: Tensor, batch_size: int, weight: Tensor
) -> tuple[float, float]:
    """Weighted validation BCE (sum of w_i l_i over sum of w_i) and weighted accuracy."""
    model.eval()
    total_loss, correct = 0.0, 0.0
    for start in range(0, x.shape[0], batch_size):
        xb, yb, wb = (
            x[start : start + batch_size],
            y[start : start + batch_size],
            weight[start : start + batch_size],
        )
        logits = model(xb)
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        per_row = F.binary_cross_entropy_with_logits(logits, yb, reduction="none")
        total_loss += float((wb * per_row).sum())
        correct += float((wb * ((logits > 0).to(yb.dtype) == yb).to(wb.dtype)).sum())
    w_sum = float(weight.sum())
    return total_loss / w_sum, correct / w_sum


def _maximise(monitor: str) -> bool:
    return monitor.endswith("accuracy") or monitor.endswith("auc")


def _aux_tensor(arr: npt.NDArray[Any], device: torch.device, dtype: torch.dtype) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(device=device, dtype=dtype if t.is_floating_point() else None)


@dataclass(frozen=True)
class _Settings:
    """The validated settings of one :func:`train_classifier` call."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    l1: float
    patience: int
    seed: int
    progress: bool
    monitor: str

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint (``epochs`` may differ)."""
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "l1": self.l1,
            "patience": self.patience,
            "seed": self.seed,
            "monitor": self.monitor,
        }


def _resolve_settings(config: TrainConfig | None, overrides: Mapping[str, Any]) -> _Settings:
    """``config`` (default :class:`TrainConfig`) with the given (not ``None``) keywords applied, validated."""
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be an aalearn.core.config.TrainConfig, got {type(config).__name__}")
    base = config if config is not None else TrainConfig()
    value = {name: getattr(base, name) if v is None else v for name, v in overrides.items()}
    monitor = value["monitor"]
    settings = _Settings(
        epochs=_check_int(value["epochs"], name="epochs", minimum=1),
        batch_size=_check_int(value["batch_size"], name="batch_size", minimum=1),
        patience=_check_int(value["patience"], name="patience", minimum=1),
        seed=_check_int(value["seed"], name="seed", minimum=0),
        lr=check_positive(value["lr"], name="lr"),
        weight_decay=check_positive(value["weight_decay"], name="weight_decay", strict=False),
        l1=check_positive(value["l1"], name="l1", strict=False),
        progress=bool(value["progress"]),
        monitor=monitor,
    )
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor must be a non-empty string such as 'val_loss', got {monitor!r}")
    return settings


def _training_data(
    model: nn.Module,
    strat: Strategy,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    aux_train: Mapping[str, npt.ArrayLike] | None,
    aux_val: Mapping[str, npt.ArrayLike] | None,
    seed: int,
    sample_weight: npt.ArrayLike | None = None,
    sample_weight_val: npt.ArrayLike | None = None,
) -> TrainingData:
    """Validated copies of the data and auxiliary arrays, checked against the strategy and model."""
    x_tr_np, y_tr_np, x_va_np, y_va_np = _check_data(model, X_train, y_train, X_val, y_val)
    aux_tr_np = _check_aux(aux_train, name="aux_train", n=x_tr_np.shape[0])
    aux_va_np = _check_aux(aux_val, name="aux_val", n=x_va_np.shape[0])
    missing = [k for k in strat.requires_aux if k not in aux_tr_np]
    if missing:
        raise ValueError(
            f"strategy {strat.name!r} needs the per-row auxiliary array(s) {missing} of the training set; "
            f"pass aux_train={{{', '.join(repr(k) + ': ...' for k in missing)}}}"
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")
    w_tr = _check_weight(sample_weight, name="sample_weight", n=x_tr_np.shape[0])
    w_va = _check_weight(sample_weight_val, name="sample_weight_val", n=x_va_np.shape[0])
    if w_va is not None and w_tr is None:
        raise ValueError("sample_weight_val needs sample_weight (weights of the training rows) too")
    if w_tr is not None and not strat.supports_sample_weight:
        weighted = sorted(n for n, f in STRATEGIES.items() if getattr(f, "supports_sample_weight", False))
        raise ValueError(
            f"strategy {strat.name!r} does not support sample weights; use one that does "
            f"({', '.join(weighted)}) or no weights"
        )
    return TrainingData(x_tr_np, y_tr_np, aux_tr_np, x_va_np, y_va_np, aux_va_np, seed, w_tr, w_va)


def _checkpoint_path(checkpoint_dir: str | Path | None) -> Path | None:
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    if ckpt_path is not None and ckpt_path.parent.exists() and not ckpt_path.parent.is_dir():
        raise ValueError(f"checkpoint_dir {str(ckpt_path.parent)!r} exists and is not a directory")
    return ckpt_path


@dataclass
class _Tensors:
    """The training and validation data on the model's device."""

    x_tr: Tensor
    y_tr: Tensor
    x_va: Tensor
    y_va: Tensor
    aux_tr: dict[str, Tensor]
    w_tr: Tensor | None = None
    w_va: Tensor | None = None

    @classmethod
    def of(cls, data: TrainingData, device: torch.device, dtype: torch.dtype) -> _Tensors:
        return cls(
            x_tr=torch.from_numpy(data.X).to(device=device, dtype=dtype),
            y_tr=torch.from_numpy(data.y).to(device=device, dtype=dtype),
            x_va=torch.from_numpy(data.X_val).to(device=device, dtype=dtype),
            y_va=torch.from_numpy(data.y_val).to(device=device, dtype=dtype),
            aux_tr={k: _aux_tensor(v, device, dtype) for k, v in data.aux.items()},
            w_tr=None
            if data.weight is None
            else torch.from_numpy(data.weight).to(device=device, dtype=dtype),
            w_va=None
            if data.weight_val is None
            else torch.from_numpy(data.weight_val).to(device=device, dtype=dtype),
        )


@dataclass
class _LoopState:
    """Everything the loop carries from epoch to epoch (and into a checkpoint)."""

    optimizer: torch.optim.Optimizer
    order_rng: torch.Generator
    history: TrainingHistory
    cuda_devices: list[int]
    best_value: float = math.inf
    best_state: dict[str, Tensor] = field(default_factory=dict)
    stale: int = 0
    start_epoch: int = 0
    prev_seconds: float = 0.0


def _restore(state: _LoopState, saved: Mapping[str, Any], model: nn.Module, strat: Strategy) -> None:
    """Load a checkpoint written by :func:`_write_checkpoint` into the model, optimiser and RNGs."""
    device = model_device(model)
    model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.best_state = {k: v.to(device) for k, v in saved["best_state"].items()}
    state.best_value, state.stale = float(saved["best_value"]), int(saved["stale"])
    state.history = TrainingHistory.from_dict(json.loads(saved["history"]))
    state.order_rng.set_state(saved["order_rng"])
    torch.set_rng_state(saved["torch_rng"])
    if state.cuda_devices and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"], state.cuda_devices[0])
    strat.load_state_dict(saved["strategy"])
    state.start_epoch = state.history.epochs_run
    state.history.resumed_epochs = state.start_epoch
    state.prev_seconds = state.history.seconds


def _write_checkpoint(
    path: Path, fingerprint: Mapping[str, Any], model: nn.Module, state: _LoopState, strat: Strategy
) -> None:
    """The complete state of the run, written atomically (``torch.load(..., weights_only=True)`` reads it)."""
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "version": _CHECKPOINT_VERSION,
        "fingerprint": json.dumps(fingerprint, sort_keys=True),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": state.optimizer.state_dict(),
        "best_state": {k: v.cpu() for k, v in state.best_state.items()},
        "best_value": state.best_value,
        "stale": state.stale,
        "history": json.dumps(state.history.to_dict()),
        "order_rng": state.order_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(state.cuda_devices[0]) if state.cuda_devices else None,
        "strategy": strat.state_dict(),
    }
    with atomic_path(path, fsync=False) as tmp:
        torch.save(payload, tmp)


def _train_epoch(
    model: nn.Module, strat: Strategy, state: _LoopState, data: _Tensors, settings: _Settings, epoch: int
) -> tuple[float, int]:
    """One pass over the shuffled training set; returns the mean data loss and the rows seen."""
    device = data.x_tr.device
    n = data.x_tr.shape[0]
    strat.start_epoch(model, epoch)
    model.train()
    perm = torch.randperm(n, generator=state.order_rng).to(device)
    # Accumulated on the device: no host synchronisation per batch.
    total = torch.zeros((), device=device, dtype=torch.float64)
    finite = torch.ones((), device=device, dtype=torch.bool)
    seen = 0
    l1 = settings.l1
    for start in range(0, n, settings.batch_size):
        idx = perm[start : start + settings.batch_size]
        if idx.numel() == 1 and n > 1:
            continue  # batch norm cannot normalise a single sample in train mode
        aux = {k: v[idx] for k, v in data.aux_tr.items()}
        weight = None if data.w_tr is None else data.w_tr[idx]
        batch = Batch(x=data.x_tr[idx], y=data.y_tr[idx], index=idx, aux=aux, weight=weight)
        loss = strat.loss(model, batch)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"the strategy's loss must return a scalar tensor, got shape {shape}")
        objective = loss + l1 * l1_penalty(model) if l1 > 0 else loss
        state.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        state.optimizer.step()
        strat.after_step(model, batch)
        total += loss.detach().to(torch.float64) * idx.numel()
        finite &= torch.isfinite(objective.detach())
        seen += idx.numel()
    train_loss = float(total) / max(seen, 1)
    if not bool(finite) or not np.isfinite(train_loss):
        raise TrainingDivergedError(
            f"training diverged: the training loss became {train_loss} in epoch {epoch + 1}; no model was "
            "saved; try a smaller learning rate (--lr) or check the inputs' scale"
        )
    return train_loss, seen


def _record_epoch(
    model: nn.Module,
    strat: Strategy,
    state: _LoopState,
    settings: _Settings,
    epoch: int,
    train_loss: float,
    val_loss: float,
    val_acc: float,
) -> bool:
    """Append the epoch to the history, update early stopping; returns whether training is done."""
    history = state.history
    history.train_loss.append(train_loss)
    history.val_loss.append(val_loss)
    history.val_accuracy.append(val_acc)
    metrics = {str(k): float(v) for k, v in strat.epoch_metrics().items()}
    for key in set(history.extra) | set(metrics):
        history.extra.setdefault(key, [math.nan] * epoch).append(metrics.get(key, math.nan))
    history.epochs_run = epoch + 1
    values = {"val_loss": val_loss, "val_accuracy": val_acc, "train_loss": train_loss}
    values.update({k: v[-1] for k, v in history.extra.items()})
    monitor = settings.monitor
    if monitor not in values:
        raise ValueError(f"unknown monitor {monitor!r}; choose one of {', '.join(values)}")
    sign = -1.0 if _maximise(monitor) else 1.0  # minimise sign * value
    value = sign * values[monitor]
    if value < state.best_value:
        state.best_value, state.stale = value, 0
        history.best_epoch = epoch
        state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        state.stale += 1
    history.stopped_early = state.stale >= settings.patience and epoch + 1 < settings.epochs
    return state.stale >= settings.patience or epoch + 1 >= settings.epochs


def _epoch_loop(
    model: nn.Module,
    strat: Strategy,
    state: _LoopState,
    data: _Tensors,
    settings: _Settings,
    ckpt_path: Path | None,
    fingerprint: Mapping[str, Any],
    t0: float,
) -> None:
    """Run epochs from ``state.start_epoch`` until early stopping or ``settings.epochs``."""
    done = state.stale >= settings.patience or state.start_epoch >= settings.epochs
    bar = tqdm(
        total=settings.epochs,
        initial=min(state.start_epoch, settings.epochs),
        desc="training",
        unit="epoch",
        file=sys.stderr,
        disable=not settings.progress,
    )
    epoch = state.start_epoch
    history = state.history
    while not done:
        e0 = time.perf_counter()
        train_loss, seen = _train_epoch(model, strat, state, data, settings, epoch)
        loop_seconds = time.perf_counter() - e0
        val_loss, val_acc = _validate(model, data.x_va, data.y_va, max(settings.batch_size, 4096), data.w_va)
        if not val_loss <= DIVERGED_VAL_LOSS:  # also catches NaN
            bar.close()
            raise TrainingDivergedError(
                f"training diverged: the validation loss became {val_loss:.4g} in epoch {epoch + 1} (limit "
                f"{DIVERGED_VAL_LOSS:g}); no model was saved; try a smaller learning rate (--lr) or check "
                "the inputs' scale"
            )
        done = _record_epoch(model, strat, state, settings, epoch, train_loss, val_loss, val_acc)
        history.jets_per_second.append(seen / max(loop_seconds, 1e-12))
        history.epoch_seconds.append(time.perf_counter() - e0)
        history.seconds = state.prev_seconds + time.perf_counter() - t0
        if ckpt_path is not None:
            _write_checkpoint(ckpt_path, fingerprint, model, state, strat)
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
        epoch += 1
    bar.close()


def train_classifier(
    model: nn.Module,
    X_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    strategy: str | Strategy = "nominal",
    strategy_options: Mapping[str, Any] | None = None,
    aux_train: Mapping[str, npt.ArrayLike] | None = None,
    aux_val: Mapping[str, npt.ArrayLike] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    config: TrainConfig | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    l1: float | None = None,
    patience: int | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    batch_loss: BatchLoss | None = None,
    monitor: str | None = None,
    sample_weight: npt.ArrayLike | None = None,
    sample_weight_val: npt.ArrayLike | None = None,
) -> TrainingHistory:
    r"""Train a binary logit classifier with a training strategy, Adam and early stopping.

    Every epoch calls the strategy's ``start_epoch``, shuffles the training set with a
    :class:`torch.Generator` seeded from ``seed`` (the same permutation sequence for the
    same seed), runs mini-batches (:class:`~aalearn.training.strategy.Batch` with the row
    indices and the auxiliary arrays sliced to the batch) through the strategy's ``loss``
    plus ``l1`` times :func:`l1_penalty`, calls ``after_step`` after each optimiser step,
    then computes the validation BCE and accuracy in eval mode and records the strategy's
    ``epoch_metrics`` in :attr:`TrainingHistory.extra`. Training stops when ``monitor``
    has not improved for ``patience`` consecutive epochs; the weights (and batch-norm
    statistics) of the best epoch are then restored. The torch RNG is seeded with
    ``seed`` inside :func:`torch.random.fork_rng`, so dropout and the strategies' random
    draws are reproducible and the caller's global RNG state is left untouched. With the
    same initial weights, data and seed the result is bit-identical on the same machine.

    A last mini-batch of a single row is skipped, because batch normalisation cannot
    normalise one sample in train mode.

    Args:
        model: Classifier returning logits of :math:`P(\text{label}=1)`, shape ``(N,)``
            or ``(N, 1)``; trained in place on the device of its parameters.
        X_train: Training features ``(N, F)``.
        y_train: Training labels ``(N,)`` in {0, 1}.
        X_val: Validation features ``(M, F)``.
        y_val: Validation labels ``(M,)`` in {0, 1}.
        strategy: Registered strategy name (``"nominal"``, ``"adversarial"``,
            ``"rdsa"``, ...; see :data:`aalearn.training.strategy.STRATEGIES`) or a
            :class:`~aalearn.training.strategy.Strategy` instance.
        strategy_options: Settings of a strategy given by name.
        aux_train: Per-row auxiliary arrays of the training set (for example the
            nuisance ``{"z": z}`` for learning to pivot); the strategy's
            ``requires_aux`` names must be present.
        aux_val: Per-row auxiliary arrays of the validation set.
        checkpoint_dir: Directory for the resumable training state
            (:data:`CHECKPOINT_FILE`, written atomically after every epoch) and, at the
            end, the final model (:data:`FINAL_MODEL_FILE`, if the architecture is
            registered with :func:`aalearn.models.register_architecture`).
        resume: Continue from the state in ``checkpoint_dir`` when there is one (its
            data and settings must match this call; ``epochs`` may differ). ``False``
            starts over and overwrites it.
        config: The optimiser and stopping settings (:class:`aalearn.core.config.TrainConfig`,
            default ``TrainConfig()``: 50 epochs, batch 256, lr 10⁻³, no weight decay or
            L1, patience 5, seed 0, progress bar, monitor ``"val_loss"``). Each of the
            keywords below that is given (not ``None``) overrides its field.
        epochs: Maximum number of epochs (≥ 1), counting resumed ones.
        batch_size: Mini-batch size (≥ 1).
        lr: Adam learning rate (> 0).
        weight_decay: Adam's L2 weight decay (≥ 0).
        l1: Coefficient :math:`\lambda_1` of the L1 penalty on Linear weights (≥ 0); the
            challenge model used 10⁻³.
        patience: Epochs without improvement of ``monitor`` before stopping (≥ 1).
        seed: Seed of the data order, of the torch RNG during training and of the
            strategy's own random draws.
        progress: Show a tqdm progress bar on stderr (epoch, loss, val loss, val acc).
        batch_loss: Deprecated form of a custom strategy: ``batch_loss(model, x, y) ->
            scalar`` (wrapped into a strategy named ``"custom"``); not together with
            ``strategy``.
        monitor: What early stopping watches: ``"val_loss"`` (default),
            ``"val_accuracy"``, ``"train_loss"`` or a name the strategy reports in
            ``epoch_metrics``. Names ending in ``accuracy`` or ``auc`` are maximised,
            all others minimised.
        sample_weight: Per-row non-negative weights ``(N,)`` of the training set (for
            example :func:`aalearn.data.reweight.reweight_to_reference`'s spectrum
            weights). The batch loss becomes the weighted mean
            :math:`\sum_B w_i\ell_i/\sum_B w_i` (:func:`~aalearn.training.strategy.weighted_bce`);
            only strategies with ``supports_sample_weight`` (nominal, adversarial, rdsa,
            inferno, neos, inferno-templates) accept them. ``None`` (default) runs exactly
            the unweighted loop.
        sample_weight_val: Weights of the validation rows; the validation BCE and
            accuracy (and so early stopping) become weighted means. Needs ``sample_weight``.

    Returns:
        The :class:`TrainingHistory`; the model holds the best epoch's weights and is
        left in eval mode.

    Raises:
        ValueError: For bad shapes, labels other than 0/1, NaN/inf features, a feature
            count that differs from the model's, out-of-range hyperparameters, an
            unknown strategy or monitor, missing auxiliary arrays, a checkpoint of a
            different run; also if the training loss becomes NaN/inf.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 200)
        >>> X = rng.normal(size=(200, 3)) + y[:, None]
        >>> model = TopoDNN(n_features=3, hidden=(8,))
        >>> hist = train_classifier(model, X[:150], y[:150], X[150:], y[150:],
        ...                         config=TrainConfig(epochs=3, progress=False))
        >>> hist.epochs_run, hist.strategy["strategy"]
        (3, 'nominal')
    """
    settings = _resolve_settings(
        config,
        {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "l1": l1,
            "patience": patience,
            "seed": seed,
            "progress": progress,
            "monitor": monitor,
        },
    )
    strat = _resolve_strategy(strategy, strategy_options, batch_loss)
    data = _training_data(
        model,
        strat,
        X_train,
        y_train,
        X_val,
        y_val,
        aux_train,
        aux_val,
        settings.seed,
        sample_weight,
        sample_weight_val,
    )
    ckpt_path = _checkpoint_path(checkpoint_dir)
    fingerprint = _fingerprint(model, data, strat, settings.fingerprint()) if ckpt_path is not None else {}
    saved = (
        _load_state(ckpt_path, fingerprint)
        if ckpt_path is not None and resume and ckpt_path.exists()
        else None
    )

    device = model_device(model)
    dtype = next(p.dtype for p in model.parameters())
    tensors = _Tensors.of(data, device, dtype)
    state = _LoopState(
        optimizer=torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay),
        order_rng=torch.Generator().manual_seed(settings.seed),
        history=TrainingHistory(strategy=_jsonable(strat.config()), monitor=settings.monitor),
        cuda_devices=[device.index or 0] if device.type == "cuda" else [],
    )
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=state.cuda_devices):
        torch.manual_seed(settings.seed)
        strat.setup(model, data)
        if saved is not None:
            _restore(state, saved, model, strat)
        _epoch_loop(model, strat, state, tensors, settings, ckpt_path, fingerprint, t0)

    history = state.history
    history.stopped_early = state.stale >= settings.patience and history.epochs_run < settings.epochs
    history.seconds = state.prev_seconds + time.perf_counter() - t0
    if state.best_state:
        model.load_state_dict(state.best_state)
    model.eval()
    if ckpt_path is not None:
        _save_final_model(model, ckpt_path.parent, history, settings.seed)
    return history
