r"""DisCo: decorrelating a classifier's output from a chosen variable with distance correlation.

Kasieczka and Shih (arXiv:2001.05310, PRL 125 (2020) 122001) add to the classifier's
loss a penalty on the squared distance correlation between the classifier's output
:math:`f(x)` and a variable :math:`v` that the output must not depend on (jet mass, or a
nuisance parameter), computed on one class (the background in the paper):

.. math::

    \mathcal L = \mathcal L_\text{BCE}
        + \lambda\,\mathrm{dCor}^2_w\bigl(f(X), v\bigr)\big|_{Y = \text{class}} .

Distance correlation (Székely, Rizzo, Bakirov, Ann. Statist. 35 (2007) 2769) is zero if
and only if the two variables are independent, so unlike a linear correlation it removes
every dependence. :func:`distance_correlation` is the (optionally weighted) V-statistic,
:math:`O(B^2)` in time and memory per batch, differentiable in torch; the reference
library `dcor <https://dcor.readthedocs.io>`_ computes the same numbers but is
NumPy-only and not differentiable, so it cannot be used inside a training loss (the tests
compare against it).

Example:
    >>> import torch
    >>> x = torch.randn(200, dtype=torch.float64)
    >>> float(distance_correlation(x, x))
    1.0
    >>> from aalearn.training.strategy import get_strategy
    >>> s = get_strategy("disco", lam=5.0, aux_key="mass")
    >>> s.name, s.lam
    ('disco', 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aalearn.data.dataset import LABEL_W
from aalearn.training.strategy import Batch, Strategy, TrainingData, logits_of, register_strategy

__all__ = ["DiscoStrategy", "distance_correlation"]

#: Rows of the validation set used for the per-epoch validation dCor² (memory is O(n²)).
_VAL_ROWS = 2048


def _double_centered(d: Tensor, w: Tensor) -> Tensor:
    r"""Weighted double centring of a symmetric distance matrix.

    :math:`A_{ij} = a_{ij} - \bar a_{i\cdot} - \bar a_{\cdot j} + \bar a_{\cdot\cdot}` with weighted means.
    """
    row = d @ w  # Σ_j w_j a_ij (d is symmetric, so this is also the column mean)
    grand = w @ row
    return d - row[:, None] - row[None, :] + grand


def distance_correlation(
    x: Tensor, y: Tensor, weights: Tensor | None = None, *, squared: bool = True
) -> Tensor:
    r"""Squared distance correlation :math:`\mathrm{dCor}^2(x, y)` (V-statistic), differentiable.

    With :math:`a_{ij} = |x_i - x_j|`, :math:`b_{ij} = |y_i - y_j|`, normalised weights
    :math:`w_i` (uniform by default) and the weighted double-centred matrices
    :math:`A, B`,

    .. math::

        \mathrm{dCov}^2(x, y) = \sum_{ij} w_i w_j A_{ij} B_{ij}, \qquad
        \mathrm{dCor}^2(x, y) = \frac{\mathrm{dCov}^2(x, y)}
        {\sqrt{\mathrm{dCov}^2(x, x)\,\mathrm{dCov}^2(y, y)}} \in [0, 1].

    This is the DisCo penalty of Kasieczka & Shih (arXiv:2001.05310; their reference
    code's ``distance_corr(..., power=1)``, which despite the name returns the
    *squared* correlation). Unweighted, it equals ``dcor.distance_correlation_sqr(x, y)``
    = ``dcor.distance_correlation(x, y) ** 2`` (dcor is the reference implementation but
    NumPy-only and not differentiable). Integer weights equal repeating rows. Cost and
    memory are :math:`O(n^2)`. A constant input has no spread; the result is then 0.

    Args:
        x: First variable ``(n,)`` (for example the classifier output).
        y: Second variable ``(n,)`` (for example the jet mass).
        weights: Optional non-negative per-row weights ``(n,)``, normalised internally.
        squared: Return :math:`\mathrm{dCor}^2` (default, the DisCo penalty) or
            :math:`\mathrm{dCor}`.

    Returns:
        A scalar tensor (differentiable with respect to ``x``, ``y`` and ``weights``).

    Raises:
        ValueError: For mismatched lengths, fewer than 2 rows, negative weights or weights
            summing to 0.

    Example:
        >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0])
        >>> round(float(distance_correlation(x, x**2)), 4)
        0.9379
    """
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("distance_correlation needs torch tensors; wrap NumPy arrays with torch.as_tensor")
    xv, yv = x.reshape(-1), y.reshape(-1)
    n = xv.shape[0]
    if yv.shape[0] != n:
        raise ValueError(f"x has {n} values but y has {yv.shape[0]}; they must be paired row by row")
    if n < 2:
        raise ValueError(f"distance correlation needs at least 2 rows, got {n}")
    dtype = torch.promote_types(xv.dtype, yv.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    xv, yv = xv.to(dtype), yv.to(dtype)
    if weights is None:
        w = torch.full((n,), 1.0 / n, dtype=dtype, device=xv.device)
    else:
        wv = weights.reshape(-1).to(dtype)
        if wv.shape[0] != n:
            raise ValueError(f"weights has {wv.shape[0]} values but x has {n}")
        if bool((wv < 0).any()) or not bool(torch.isfinite(wv).all()):
            raise ValueError("weights must be finite and non-negative")
        total = wv.sum()
        if float(total) <= 0:
            raise ValueError("weights sum to 0; at least one row needs a positive weight")
        w = wv / total
    a = _double_centered((xv[:, None] - xv[None, :]).abs(), w)
    b = _double_centered((yv[:, None] - yv[None, :]).abs(), w)
    dcov_xy = w @ (a * b) @ w
    dvar = (w @ (a * a) @ w) * (w @ (b * b) @ w)
    tiny = torch.finfo(dtype).tiny
    dcor2 = torch.where(dvar > tiny, dcov_xy / dvar.clamp_min(tiny).sqrt(), torch.zeros_like(dcov_xy))
    dcor2 = dcor2.clamp_min(0.0)  # the V-statistic is ≥ 0; rounding can dip below
    return dcor2 if squared else dcor2.sqrt()


def _check_lam(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"lam (λ) must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"lam (λ) must be a finite non-negative (≥ 0) number, got {value!r}")
    return v


class DiscoStrategy(Strategy):
    r"""Binary cross-entropy plus :math:`\lambda\,\mathrm{dCor}^2` to a variable (registered as ``"disco"``).

    Per batch (arXiv:2001.05310)

    .. math::

        \ell_B = \mathrm{BCE}_B + \lambda\,\mathrm{dCor}^2_w\bigl(\sigma(z), v\bigr)
        \quad\text{on the rows of } B \text{ with } y = \texttt{decorrelate\_class},

    with :math:`v` = ``Batch.aux[aux_key]`` and optional per-event weights
    :math:`w` = ``Batch.aux[weight_key]``. The penalty is skipped for a batch with fewer
    than two rows of the class. Larger batches estimate dCor² better (the paper trains
    with large batches); memory grows as the square of the batch size.

    Args:
        lam: :math:`\lambda \ge 0` (0 is plain training).
        aux_key: Name of the per-row variable to decorrelate from (default ``"mass"``).
        decorrelate_class: Label of the rows on which the penalty is computed: 0, 1 or
            ``None`` for all rows. Default: the background class, which in aalearn's
            convention (signal = top = label 0, see :mod:`aalearn.evaluation`) is the W
            class, label :data:`aalearn.data.LABEL_W` = 1.
        weight_key: Name of a per-row weight array in ``aux_train`` (``None``: unweighted).

    Raises:
        ValueError: For :math:`\lambda < 0`, a class other than 0/1/None or a bad key.

    Example:
        >>> DiscoStrategy(lam=10.0, decorrelate_class=None).config()["decorrelate_class"] is None
        True
        >>> DiscoStrategy(decorrelate_class=2)
        Traceback (most recent call last):
        ...
        ValueError: decorrelate_class must be 0, 1 or None (all rows), got 2
    """

    name: ClassVar[str] = "disco"

    def __init__(
        self,
        lam: float = 10.0,
        *,
        aux_key: str = "mass",
        decorrelate_class: int | None = LABEL_W,
        weight_key: str | None = None,
    ) -> None:
        self.lam = _check_lam(lam)
        if not isinstance(aux_key, str) or not aux_key:
            raise ValueError(f"aux_key must be a non-empty string, got {aux_key!r}")
        if weight_key is not None and (not isinstance(weight_key, str) or not weight_key):
            raise ValueError(f"weight_key must be a non-empty string or None, got {weight_key!r}")
        if decorrelate_class is not None and (
            isinstance(decorrelate_class, bool) or decorrelate_class not in (0, 1)
        ):
            raise ValueError(f"decorrelate_class must be 0, 1 or None (all rows), got {decorrelate_class!r}")
        self.aux_key = aux_key
        self.decorrelate_class = decorrelate_class
        self.weight_key = weight_key
        self._model: nn.Module | None = None
        self._val: tuple[Tensor, Tensor, Tensor | None] | None = None  # rows, v, weights
        self._val_all: tuple[Tensor, Tensor] | None = None  # X_val, y_val
        self._sum_pen: Tensor | float = 0.0
        self._sum_bce: Tensor | float = 0.0
        self._n = 0

    def _check_aux(self, aux: Mapping[str, Any], n: int, where: str) -> None:
        for key in (self.aux_key, self.weight_key):
            if key is None:
                continue
            if key not in aux:
                known = ", ".join(sorted(aux)) or "none"
                raise ValueError(
                    f"the disco strategy needs the auxiliary array {key!r} in {where} "
                    f"(pass {where}={{{key!r}: values}}); available: {known}"
                )
            arr = np.asarray(aux[key])
            if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
                raise ValueError(f"auxiliary array {key!r} in {where} must be finite, numeric, shape ({n},)")
        if self.weight_key is not None and bool((np.asarray(aux[self.weight_key]) < 0).any()):
            raise ValueError(f"weights {self.weight_key!r} must be non-negative")

    def _mask(self, y: Tensor) -> Tensor | None:
        return None if self.decorrelate_class is None else y == self.decorrelate_class

    def penalty(self, scores: Tensor, y: Tensor, v: Tensor, weights: Tensor | None = None) -> Tensor:
        r""":math:`\mathrm{dCor}^2` of ``scores`` and ``v`` on the rows of ``decorrelate_class``.

        Zero (connected to the graph) when fewer than two rows of the class are present.
        """
        mask = self._mask(y)
        if mask is not None:
            scores, v = scores[mask], v[mask]
            weights = None if weights is None else weights[mask]
        if scores.shape[0] < 2:
            return scores.sum() * 0.0
        return distance_correlation(scores, v, weights)

    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Check the auxiliary arrays and the class; keep a validation subset for the epoch metric."""
        self._check_aux(data.aux, data.X.shape[0], "aux_train")
        if self.decorrelate_class is not None and not bool(
            (np.asarray(data.y) == self.decorrelate_class).any()
        ):
            raise ValueError(f"decorrelate_class={self.decorrelate_class} but no training row has that label")
        self._model = model
        self._val = None
        self._val_all = None
        if self.aux_key in data.aux_val and len(data.X_val) > 1:
            self._check_aux(data.aux_val, data.X_val.shape[0], "aux_val")
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            dtype = next((p.dtype for p in model.parameters()), torch.float32)
            y_val = np.asarray(data.y_val)
            x_val = torch.as_tensor(np.asarray(data.X_val), device=device, dtype=dtype)
            self._val_all = (x_val, torch.as_tensor(y_val, device=device, dtype=dtype))
            rows = np.arange(y_val.shape[0])
            if self.decorrelate_class is not None:
                rows = rows[y_val == self.decorrelate_class]
            rows = rows[:_VAL_ROWS]
            if rows.size > 1:
                w = None
                if self.weight_key is not None:
                    w = torch.as_tensor(np.asarray(data.aux_val[self.weight_key])[rows], device=device)
                self._val = (
                    torch.as_tensor(rows, device=device),
                    torch.as_tensor(np.asarray(data.aux_val[self.aux_key])[rows], device=device),
                    w,
                )

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Reset the per-epoch averages."""
        self._sum_pen, self._sum_bce, self._n = 0.0, 0.0, 0

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        r""":math:`\mathrm{BCE} + \lambda\,\mathrm{dCor}^2` on the batch."""
        if self.aux_key not in batch.aux:
            raise ValueError(f"the batch has no auxiliary array {self.aux_key!r} (DisCo's variable)")
        weights = None
        if self.weight_key is not None:
            if self.weight_key not in batch.aux:
                raise ValueError(f"the batch has no auxiliary array {self.weight_key!r} (DisCo's weights)")
            weights = batch.aux[self.weight_key]
        logits = logits_of(model, batch.x)
        bce = F.binary_cross_entropy_with_logits(logits, batch.y)
        pen = self.penalty(torch.sigmoid(logits), batch.y, batch.aux[self.aux_key], weights)
        self._sum_pen = self._sum_pen + pen.detach()
        self._sum_bce = self._sum_bce + bce.detach()
        self._n += 1
        return bce + self.lam * pen if self.lam > 0 else bce

    def epoch_metrics(self) -> dict[str, float]:
        """Per-epoch numbers for the training history.

        ``disco_penalty`` (mean batch dCor²), ``classifier_bce`` (mean batch BCE) and, when
        ``aux_val`` has the variable, ``disco_val_dcor2`` (dCor² on up to 2048 validation
        rows of the class) and ``disco_val_objective`` (validation BCE + λ·dCor², a
        sensible ``monitor`` for early stopping).
        """
        out: dict[str, float] = {}
        if self._n:
            out["disco_penalty"] = float(self._sum_pen) / self._n
            out["classifier_bce"] = float(self._sum_bce) / self._n
        if self._val_all is not None and self._model is not None:
            x_val, y_val = self._val_all
            was = self._model.training
            self._model.eval()
            try:
                with torch.no_grad():
                    logits = torch.cat(
                        [
                            logits_of(self._model, x_val[i : i + 65536])
                            for i in range(0, x_val.shape[0], 65536)
                        ]
                    )
                    bce = float(F.binary_cross_entropy_with_logits(logits, y_val))
                    dcor2 = 0.0
                    if self._val is not None:
                        rows, v, w = self._val
                        dcor2 = float(distance_correlation(torch.sigmoid(logits[rows]), v, w))
            finally:
                self._model.train(was)
            out["disco_val_dcor2"] = dcor2
            out["disco_val_objective"] = bce + self.lam * dcor2
        return out

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        return {
            "strategy": self.name,
            "lam": self.lam,
            "aux_key": self.aux_key,
            "decorrelate_class": self.decorrelate_class,
            "weight_key": self.weight_key,
        }


register_strategy(DiscoStrategy)
