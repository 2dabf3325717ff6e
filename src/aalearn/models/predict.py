r"""Batched inference for binary classifiers that return logits.

aalearn's binary models return the logit :math:`z` of :math:`P(\text{label}=1)` with
shape ``(N,)`` (or ``(N, 1)``); :func:`predict_proba` turns NumPy features into
probabilities :math:`\sigma(z)` in batches, in eval mode and without gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aalearn.core.validation import check_array

__all__ = ["model_device", "model_n_features", "predict_logits", "predict_proba"]


def model_n_features(model: nn.Module) -> int | None:
    """Number of input features a model expects, or ``None`` when it cannot be told.

    Looks at an integer ``n_features`` attribute, then ``model.config["n_features"]``,
    then the first :class:`torch.nn.Linear` layer.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> model_n_features(TopoDNN(n_features=5, hidden=(3,)))
        5
    """
    n = getattr(model, "n_features", None)
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    config = getattr(model, "config", None)
    if isinstance(config, dict) and isinstance(config.get("n_features"), int):
        return int(config["n_features"])
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return int(module.in_features)
    return None


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _check_inputs(model: nn.Module, X: Any, batch_size: int) -> npt.NDArray[np.float32]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    x = check_array(X, name="X", ndim=2, dtype=np.float32)
    if not x.flags.writeable:  # torch.from_numpy warns about read-only (for example Arrow-backed) arrays
        x = x.copy()
    n_features = model_n_features(model)
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(
            f"X has {x.shape[1]} feature columns but the model expects {n_features}; "
            "check the feature layout (the challenge layout has 87 columns)"
        )
    return x


@torch.no_grad()
def predict_logits(model: nn.Module, X: npt.ArrayLike, *, batch_size: int = 8192) -> npt.NDArray[np.float32]:
    r"""Logits :math:`z` of :math:`P(\text{label}=1)` for features ``X``, shape ``(N,)``.

    Args:
        model: Binary classifier returning logits of shape ``(N,)`` or ``(N, 1)``.
        X: Features, shape ``(N, F)``; converted to float32 and checked for NaN/inf.
        batch_size: Rows per forward pass.

    Returns:
        float32 logits of shape ``(N,)``.

    Raises:
        ValueError: For a wrong shape, non-finite values, a feature count that differs
            from the model's ``n_features``, a bad ``batch_size``, or a model that returns
            NaN for finite inputs (a broken model, e.g. NaN weights).

    Example:
        >>> from aalearn.models import TopoDNN
        >>> predict_logits(TopoDNN(n_features=3, hidden=(4,)), np.zeros((5, 3))).shape
        (5,)
    """
    x = _check_inputs(model, X, batch_size)
    was_training = model.training
    model.eval()
    device = model_device(model)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    out = np.empty(x.shape[0], dtype=np.float32)
    try:
        for start in range(0, x.shape[0], batch_size):
            batch = torch.from_numpy(x[start : start + batch_size]).to(device=device, dtype=dtype)
            logits = model(batch)
            if logits.ndim == 2 and logits.shape[1] == 1:
                logits = logits[:, 0]
            if logits.shape != (batch.shape[0],):
                raise ValueError(
                    f"the model returned shape {tuple(logits.shape)} for a batch of {batch.shape[0]}; "
                    "a binary classifier must return one logit per row, shape (N,) or (N, 1)"
                )
            out[start : start + batch.shape[0]] = logits.float().cpu().numpy()
    finally:
        model.train(was_training)
    bad = np.isnan(out)
    if bad.any():  # the inputs were checked finite: NaN outputs come from the model itself
        raise ValueError(
            f"the model returned NaN for {int(bad.sum())} of {out.size} finite input row(s); "
            "the model is broken "
            "(NaN weights or statistics, e.g. from diverged training), not the data"
        )
    return out


def predict_proba(model: nn.Module, X: npt.ArrayLike, *, batch_size: int = 8192) -> npt.NDArray[np.float32]:
    r"""Probabilities :math:`P(\text{label}=1 \mid x) = \sigma(z)` for features ``X``, shape ``(N,)``.

    The model is run in eval mode (batch norm uses its running statistics, dropout is
    off) under :func:`torch.no_grad`, in batches of ``batch_size`` rows, on the device
    of its parameters; its previous train/eval mode is restored afterwards.

    Args:
        model: Binary classifier returning logits of shape ``(N,)`` or ``(N, 1)``.
        X: Features, shape ``(N, F)``; converted to float32 and checked for NaN/inf.
        batch_size: Rows per forward pass.

    Returns:
        float32 probabilities of shape ``(N,)``. With the challenge's labels this is
        :math:`P(\text{W})`, since label 0 is the top class.

    Raises:
        ValueError: For a wrong shape, non-finite values, a feature count that differs
            from the model's ``n_features`` or a bad ``batch_size``.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> p = predict_proba(TopoDNN(n_features=3, hidden=(4,)), np.zeros((5, 3)))
        >>> p.shape, p.dtype
        ((5,), dtype('float32'))
    """
    logits = predict_logits(model, X, batch_size=batch_size)
    return torch.sigmoid(torch.from_numpy(logits)).numpy()
