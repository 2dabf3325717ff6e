r"""One training loop for binary classifiers that return logits.

:func:`train_classifier` minimises, per mini-batch :math:`B`,

.. math::

    L(\theta) = \ell_B(\theta) + \lambda_1 \sum_{\text{Linear } k} \lVert W_k \rVert_1,
    \qquad
    \ell_B = -\frac{1}{|B|}\sum_{i \in B} \bigl[y_i \log \sigma(z_i) + (1 - y_i)\log(1 - \sigma(z_i))\bigr],

with Adam (optionally with the coupled L2 ``weight_decay`` of
:class:`torch.optim.Adam`), stops when the validation BCE has not improved for
``patience`` epochs and restores the weights of the best epoch. The L1 term is the
Keras ``kernel_regularizer=L1(λ)`` of the challenge model (λ = 10⁻³ there), applied to
the weights (not biases) of every :class:`torch.nn.Linear`.

The per-batch data loss :math:`\ell_B` is a single pluggable function
(:data:`BatchLoss`, default :func:`bce_batch_loss`): later training strategies
(adversarial training, systematics-aware losses) replace it instead of writing a new
loop.

Reference:
    The challenge model's recipe (Keras, Adam lr 5·10⁻⁵, batch 256, early stopping with
    patience 10 on the validation loss, L1 10⁻³): ECML-PKDD 2025 "Colliding with
    Adversaries" starter kit. TopoDNN: Pearkes et al., arXiv:1704.02124.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from aalearn._validation import check_array, check_labels, check_positive
from aalearn.models.predict import model_device, model_n_features

__all__ = ["BatchLoss", "TrainingHistory", "bce_batch_loss", "l1_penalty", "train_classifier"]

#: Per-batch data loss: ``loss(model, x, y) -> scalar tensor``, with ``x`` of shape
#: ``(B, F)`` and float labels ``y`` of shape ``(B,)`` on the model's device. The model is
#: in train mode when it is called.
BatchLoss = Callable[[nn.Module, Tensor, Tensor], Tensor]


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
        train_loss: Mean data loss (the :data:`BatchLoss`, without the L1 term) over the
            training set, per epoch, accumulated during the epoch in train mode.
        val_loss: Validation BCE in eval mode after each epoch (no penalty).
        val_accuracy: Validation accuracy (threshold 0.5 on :math:`P(\\text{label}=1)`).
        best_epoch: 0-based index of the epoch with the lowest ``val_loss``; its weights
            are the ones returned (``val_loss[best_epoch]`` is the best loss).
        epochs_run: Number of epochs actually run.
        stopped_early: Whether early stopping ended training before ``epochs``.
        seconds: Wall time of the training loop.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all fields.

        Example:
            >>> TrainingHistory(train_loss=[0.5], val_loss=[0.4], val_accuracy=[0.9]).to_dict()["val_loss"]
            [0.4]
        """
        return asdict(self)


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


@torch.no_grad()
def _validate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[float, float]:
    """Validation BCE and accuracy in eval mode (summed over batches, exact means)."""
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


def train_classifier(
    model: nn.Module,
    X_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    patience: int = 5,
    seed: int = 0,
    progress: bool = True,
    batch_loss: BatchLoss = bce_batch_loss,
) -> TrainingHistory:
    r"""Train a binary logit classifier with Adam and early stopping; restore the best weights.

    Every epoch shuffles the training set with a :class:`torch.Generator` seeded from
    ``seed`` (the same permutation sequence for the same seed), runs mini-batches of
    ``batch_size`` through ``batch_loss`` plus ``l1`` times :func:`l1_penalty`, then
    computes the validation BCE and accuracy in eval mode. Training stops when the
    validation loss has not decreased for ``patience`` consecutive epochs; the weights
    (and batch-norm statistics) of the best epoch are then restored. The torch RNG is
    seeded with ``seed`` inside :func:`torch.random.fork_rng`, so dropout is reproducible
    and the caller's global RNG state is left untouched. With the same initial weights,
    data and seed the result is bit-identical on the same machine (CPU).

    A last mini-batch of a single row is skipped, because batch normalisation cannot
    normalise one sample in train mode.

    Args:
        model: Classifier returning logits of :math:`P(\text{label}=1)`, shape ``(N,)``
            or ``(N, 1)``; trained in place on the device of its parameters.
        X_train: Training features ``(N, F)``.
        y_train: Training labels ``(N,)`` in {0, 1}.
        X_val: Validation features ``(M, F)``.
        y_val: Validation labels ``(M,)`` in {0, 1}.
        epochs: Maximum number of epochs (≥ 1).
        batch_size: Mini-batch size (≥ 1).
        lr: Adam learning rate (> 0).
        weight_decay: Adam's L2 weight decay (≥ 0).
        l1: Coefficient :math:`\lambda_1` of the L1 penalty on Linear weights (≥ 0); the
            challenge model used 10⁻³.
        patience: Epochs without improvement of the validation loss before stopping (≥ 1).
        seed: Seed of the data order and of the torch RNG during training.
        progress: Show a tqdm progress bar on stderr (epoch, loss, val loss, val acc).
        batch_loss: Per-batch data loss hook, ``batch_loss(model, x, y) -> scalar``
            (default: mean BCE with logits). The L1 term is added outside the hook.

    Returns:
        The :class:`TrainingHistory`; the model holds the best epoch's weights and is
        left in eval mode.

    Raises:
        ValueError: For bad shapes, labels other than 0/1, NaN/inf features, a feature
            count that differs from the model's, or out-of-range hyperparameters; also
            if the training loss becomes NaN/inf.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 200)
        >>> X = rng.normal(size=(200, 3)) + y[:, None]
        >>> model = TopoDNN(n_features=3, hidden=(8,))
        >>> hist = train_classifier(model, X[:150], y[:150], X[150:], y[150:], epochs=3, progress=False)
        >>> hist.epochs_run
        3
    """
    epochs = _check_int(epochs, name="epochs", minimum=1)
    batch_size = _check_int(batch_size, name="batch_size", minimum=1)
    patience = _check_int(patience, name="patience", minimum=1)
    seed = _check_int(seed, name="seed", minimum=0)
    lr = check_positive(lr, name="lr")
    weight_decay = check_positive(weight_decay, name="weight_decay", strict=False)
    l1 = check_positive(l1, name="l1", strict=False)
    if not callable(batch_loss):
        raise ValueError(f"batch_loss must be callable(model, x, y) -> loss, got {batch_loss!r}")
    x_tr_np, y_tr_np, x_va_np, y_va_np = _check_data(model, X_train, y_train, X_val, y_val)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")

    device = model_device(model)
    dtype = next(p.dtype for p in model.parameters())
    x_tr = torch.from_numpy(x_tr_np).to(device=device, dtype=dtype)
    y_tr = torch.from_numpy(y_tr_np).to(device=device, dtype=dtype)
    x_va = torch.from_numpy(x_va_np).to(device=device, dtype=dtype)
    y_va = torch.from_numpy(y_va_np).to(device=device, dtype=dtype)
    n = x_tr.shape[0]

    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    order_rng = torch.Generator().manual_seed(seed)
    history = TrainingHistory()
    best_loss = float("inf")
    best_state: dict[str, Tensor] = {}
    stale = 0
    t0 = time.perf_counter()
    cuda_devices = [device.index or 0] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        bar = tqdm(range(epochs), desc="training", unit="epoch", file=sys.stderr, disable=not progress)
        for epoch in bar:
            model.train()
            perm = torch.randperm(n, generator=order_rng).to(device)
            # Accumulated on the device: no host synchronisation per batch.
            total = torch.zeros((), device=device, dtype=torch.float64)
            finite = torch.ones((), device=device, dtype=torch.bool)
            seen = 0
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                if idx.numel() == 1 and n > 1:
                    continue  # batch norm cannot normalise a single sample in train mode
                xb, yb = x_tr[idx], y_tr[idx]
                loss = batch_loss(model, xb, yb)
                if loss.ndim != 0:
                    raise ValueError(f"batch_loss must return a scalar, got shape {tuple(loss.shape)}")
                objective = loss + l1 * l1_penalty(model) if l1 > 0 else loss
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                optimizer.step()
                total += loss.detach().to(torch.float64) * idx.numel()
                finite &= torch.isfinite(objective.detach())
                seen += idx.numel()
            train_loss = float(total) / max(seen, 1)
            if not bool(finite) or not np.isfinite(train_loss):
                raise ValueError(
                    f"the training loss became {train_loss} in epoch {epoch + 1}; "
                    "lower lr or check the inputs' scale"
                )
            val_loss, val_acc = _validate(model, x_va, y_va, max(batch_size, 4096))
            history.train_loss.append(train_loss)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            history.epochs_run = epoch + 1
            if val_loss < best_loss:
                best_loss, stale = val_loss, 0
                history.best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            bar.set_postfix(
                loss=f"{history.train_loss[-1]:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}"
            )
            if stale >= patience:
                history.stopped_early = epoch + 1 < epochs
                break
        bar.close()

    if best_state:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - t0
    return history
