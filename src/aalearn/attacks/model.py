r"""A thin adapter that makes any torch classifier attackable.

Binary single-output models are first-class: a model returning shape ``(N,)`` or
``(N, 1)`` is read as the logit :math:`z` of :math:`P(\text{label}=1)` (aalearn's
convention) or, with ``output="probability"``, as that probability itself. The decision
is :math:`\hat y = 1[z \ge 0]` (equivalently :math:`p \ge 0.5`, the challenge's rule).
Models returning ``(N, C)`` with :math:`C \ge 2` are multi-class logits, decision
``argmax``.

The **margin** of a row with respect to a class :math:`t` is positive while the model
predicts :math:`t` and negative once it does not (binary: :math:`z` for :math:`t = 1`,
:math:`-z` for :math:`t = 0`; multi-class: :math:`z_t - \max_{k \ne t} z_k`). Gradient
attacks maximise a loss; minimal attacks drive the margin below zero.

Example:
    >>> import torch
    >>> m = ModelAdapter(torch.nn.Linear(3, 1))
    >>> m.decision(torch.tensor([0.5, -0.1]))
    tensor([1, 0])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from aalearn.models.topodnn import TopoDNN

__all__ = ["ModelAdapter", "fuse_topodnn"]

Output = Literal["logit", "probability"]
_EPS = 1e-7


class _ReluChain(torch.autograd.Function):
    """``Linear → ReLU → … → Linear`` as ONE autograd node with a hand-written input gradient.

    The weights are constants (no weight gradients). Forward: ``addmm`` and in-place ReLUs;
    the post-ReLU activations are saved. Backward: per layer one matrix product ``g @ W``
    and the ReLU mask (``threshold_backward``), which is what autograd computes (the results
    are bit-identical on the challenge TopoDNN), without its per-layer nodes, views and
    temporaries. Issue 19, challenge TopoDNN, 1000 rows, one thread, minimum CPU time of
    20 x 10 passes on the loaded 2-core machine: 4.7 ms per forward+backward pass against
    5.0 ms with per-layer autograd.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, net: _Fused) -> Tensor:
        h = x
        saved: list[Tensor] = []
        last = len(net.weights) - 1
        for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            h = torch.addmm(b, h, w.t())  # what F.linear computes
            if k < last:
                h.relu_()
                saved.append(h)
        ctx.save_for_backward(*saved)
        ctx.net = net
        return h.squeeze(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        saved = ctx.saved_tensors
        net = ctx.net
        g = grad.unsqueeze(-1)
        for k in range(len(net.weights) - 1, 0, -1):
            g = torch.ops.aten.threshold_backward(torch.mm(g, net.weights[k]), saved[k - 1], 0)
        # the input gradient through the first layer with its weight zero-padded to a
        # multiple of 8 columns: BLAS is about 25 % faster for 88 output columns than for 87
        # (measured, 1000 x 300 @ 300 x 87, one thread); the padding is sliced off (a view)
        n_in = net.weights[0].shape[1]
        return torch.mm(g, net.w0_padded)[:, :n_in], None


class _Fused(nn.Module):
    """``Linear → ReLU → … → Linear`` on plain tensors (one autograd node), output ``(N,)``."""

    def __init__(self, weights: list[Tensor], biases: list[Tensor]) -> None:
        super().__init__()
        self.weights, self.biases = weights, biases
        w0 = weights[0]
        pad = -w0.shape[1] % 8
        self.w0_padded = torch.cat([w0, w0.new_zeros(w0.shape[0], pad)], dim=1) if pad else w0

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.dtype != self.weights[0].dtype:
            return self._reference(x)
        out: Tensor = _ReluChain.apply(x, self)
        return out

    def _reference(self, x: Tensor) -> Tensor:
        """The same chain with per-layer autograd (any shape, mixed dtypes)."""
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = F.linear(h, w, b)
            if k < last:
                h = torch.relu(h)
        return h.squeeze(-1)


def _affine_bn(norm: nn.Module, width: int) -> tuple[Tensor, Tensor]:
    """``(a, c)`` with ``norm(h) = a·h + c`` in eval mode (identity: ``a = 1, c = 0``)."""
    if isinstance(norm, nn.Identity):
        return torch.ones(width, dtype=torch.float64), torch.zeros(width, dtype=torch.float64)
    assert isinstance(norm, nn.BatchNorm1d)
    assert norm.running_mean is not None
    assert norm.running_var is not None
    a = torch.rsqrt(norm.running_var.double() + norm.eps)
    if norm.weight is not None:
        a = a * norm.weight.detach().double()
    c = -norm.running_mean.double() * a
    if norm.bias is not None:
        c = c + norm.bias.detach().double()
    return a, c


@torch.no_grad()
def fuse_topodnn(model: nn.Module) -> nn.Module | None:
    r"""An equivalent ``Linear → ReLU`` chain of an eval-mode :class:`~aalearn.models.TopoDNN`, or ``None``.

    In eval mode the input standardisation and each batch normalisation are affine maps;
    folded into the neighbouring linear layers (in float64, then cast to the model's
    dtype) they leave four matrix products and four ReLUs, which halves the elementwise
    work of every forward and backward pass of a gradient attack. Batch normalisation
    after a ReLU folds into the *next* layer: :math:`W(a\odot h + c) + b = (W\,\mathrm{diag}\,a)h
    + (Wc + b)`. Returns ``None`` for other models, a model in training mode, or active dropout.

    Example:
        >>> m = TopoDNN(n_features=3, hidden=(4, 2)).eval()
        >>> x = torch.randn(5, 3)
        >>> bool(torch.allclose(fuse_topodnn(m)(x), m(x), atol=1e-5))
        True
    """
    if type(model) is not TopoDNN or model.training:
        return None
    dtype = model.output.weight.dtype
    # input standardisation (x - mean)/scale as the affine map in front of the first layer
    a = 1.0 / model.input_scale.double()
    c = -model.input_mean.double() * a
    weights: list[Tensor] = []
    biases: list[Tensor] = []
    linears = [b.linear for b in model.blocks] + [model.output]
    for i, lin in enumerate(linears):
        if not isinstance(lin, nn.Linear):
            return None
        w64 = lin.weight.double()
        w = w64 * a[None, :]
        b = (lin.bias.double() if lin.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)) + (
            w64 @ c
        )
        weights.append(w.to(dtype).contiguous())
        biases.append(b.to(dtype))
        if i < len(model.blocks):
            block = model.blocks[i]
            if not isinstance(block.activation, nn.ReLU) or not isinstance(
                block.dropout, nn.Identity | nn.Dropout
            ):
                return None
            norm = block.norm
            assert isinstance(norm, nn.Module)
            a, c = _affine_bn(norm, w.shape[0])
    return _Fused(weights, biases)


class ModelAdapter:
    """Uniform access to a binary or multi-class torch classifier.

    Args:
        model: Any ``nn.Module``; it is put in ``eval()`` mode while attacked.
        output: Whether the model returns logits (default) or probabilities.
    """

    def __init__(self, model: nn.Module, output: Output = "logit") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if output not in ("logit", "probability"):
            raise ValueError(f"output must be 'logit' or 'probability', got {output!r}")
        self.model = model
        self.output = output
        #: The fused equivalent of the model (:func:`fuse_topodnn`), set while evaluating.
        self.fused: nn.Module | None = None
        self._fuse_pending = False
        try:
            p = next(model.parameters())
            self.device, self.dtype = p.device, p.dtype
        except StopIteration:
            self.device, self.dtype = torch.device("cpu"), torch.float32

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode and frozen weights while attacking; every flag is restored afterwards."""
        # restore every submodule's own flag: a model may mix train- and eval-mode parts
        modes = [(m, m.training) for m in self.model.modules()]
        # attacks need input gradients only: frozen weights keep autograd from recording
        # what the weight gradients would need (about 15 % faster on TopoDNN)
        grads = [(p, p.requires_grad) for p in self.model.parameters()]
        self.model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        self._fuse_pending = True  # fused on the first fast call (cheap, but not free)
        try:
            yield
        finally:
            self.fused = None
            self._fuse_pending = False
            for m, training in modes:
                m.training = training
            for p, flag in grads:
                p.requires_grad_(flag)

    def logits(self, x: Tensor, *, fast: bool = False) -> Tensor:
        """Logits: ``(N,)`` for binary models, ``(N, C)`` for multi-class ones.

        With ``fast`` (inside :meth:`evaluating`) the fused equivalent of the model is
        used where there is one (:func:`fuse_topodnn`; equal up to float round-off).
        """
        if fast and self._fuse_pending:
            self.fused, self._fuse_pending = fuse_topodnn(self.model), False
        net = self.fused if fast and self.fused is not None else self.model
        out = net(x.to(self.device, self.dtype))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim not in (1, 2) or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"the model returned shape {tuple(out.shape)} for {x.shape[0]} rows; "
                "expected (N,), (N, 1) or (N, C)"
            )
        if self.output == "probability":
            if out.ndim == 1:
                p = out.clamp(_EPS, 1 - _EPS)
                out = torch.log(p) - torch.log1p(-p)
            else:
                out = torch.log(out.clamp(min=_EPS))
        return out

    @staticmethod
    def decision(logits: Tensor) -> Tensor:
        """Predicted class per row (binary: ``1[z >= 0]``)."""
        if logits.ndim == 1:
            return (logits >= 0).long()
        return logits.argmax(dim=1)

    @staticmethod
    def margin(logits: Tensor, target: Tensor) -> Tensor:
        """Margin of ``target`` (positive while predicted, negative once not)."""
        if logits.ndim == 1:
            return torch.where(target == 1, logits, -logits)
        true = logits.gather(1, target[:, None])[:, 0]
        other = logits.masked_fill(F.one_hot(target, logits.shape[1]).bool(), -torch.inf).amax(dim=1)
        return true - other

    @staticmethod
    def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
        """Per-row cross-entropy (binary cross-entropy for single-logit models)."""
        if logits.ndim == 1:
            return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")
        return F.cross_entropy(logits, target, reduction="none")

    @staticmethod
    def score(logits: Tensor) -> Tensor:
        """Classifier score: :math:`P(\\text{label}=1)` (binary) or class probabilities."""
        return torch.sigmoid(logits) if logits.ndim == 1 else torch.softmax(logits, dim=1)

    def fooled(self, logits: Tensor, target: Tensor) -> Tensor:
        """Rows whose decision differs from ``target``."""
        return self.decision(logits) != target
