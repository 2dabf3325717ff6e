r"""TopoDNN: the fully connected top tagger of the "Colliding with Adversaries" challenge.

TopoDNN (Pearkes et al., arXiv:1704.02124) classifies a jet from the pT, η and φ of
its leading constituents after a standard preprocessing (centre on the leading
constituent, rotate the second onto :math:`\eta = 0`, flip, scale pT). It is one of
the reference taggers of the community comparison by Kasieczka et al.
(arXiv:1902.09914). The ECML-PKDD 2025 challenge "Colliding with Adversaries" uses a
variant with batch normalisation after every hidden layer and an L1 penalty of
:math:`10^{-3}` on the kernels:

.. math::

    h_0 = x, \qquad
    h_{k} = \mathrm{BN}_k\bigl(\mathrm{ReLU}(W_k h_{k-1} + b_k)\bigr), \qquad
    z = w^\top h_K + c, \qquad
    P(y = 1 \mid x) = \sigma(z),

with hidden widths 300, 102, 12 and 6 (87 → 300 → 102 → 12 → 6 → 1). The order
Dense → ReLU → BatchNorm is the Keras order of the challenge model (a ``Dense`` layer
with ``activation="relu"`` followed by ``BatchNormalization``), so that its weights load
unchanged (:func:`aalearn.models.load_keras_topodnn`).

:meth:`TopoDNN.forward` returns the logit :math:`z` with shape ``(N,)``: binary models
trained with BCE-with-logits are first-class in aalearn, and gradient attacks need
logits, not saturated probabilities.

References:
    J. Pearkes, W. Fedorko, A. Lister, C. Gay, "Jet Constituents for Deep Neural Network
    Based Top Quark Tagging", arXiv:1704.02124.

    G. Kasieczka et al., "The Machine Learning Landscape of Top Taggers",
    SciPost Phys. 7, 014 (2019), arXiv:1902.09914.

    ECML-PKDD 2025 challenge "Colliding with Adversaries: A Challenge on Robust Learning
    in High Energy Physics Discovery" (reference model ``best_model.hdf5``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_HIDDEN", "TopoDNN"]

#: Hidden-layer widths of TopoDNN and of the challenge's reference model.
DEFAULT_HIDDEN: tuple[int, ...] = (300, 102, 12, 6)


def _check_int(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


class _HiddenBlock(nn.Module):
    """Linear → ReLU → (BatchNorm1d) → (Dropout), the Keras ``Dense(relu)`` + ``BatchNormalization`` pair."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        batchnorm: bool,
        eps: float,
        momentum: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.activation = nn.ReLU()
        self.norm: nn.Module = (
            nn.BatchNorm1d(n_out, eps=eps, momentum=momentum) if batchnorm else nn.Identity()
        )
        self.dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.norm(self.activation(self.linear(x))))


class TopoDNN(nn.Module):
    r"""Fully connected binary jet tagger returning logits of :math:`P(\text{label} = 1)`.

    Each hidden block is ``Linear → ReLU → BatchNorm1d → Dropout`` (batch norm and
    dropout optional); the output layer is a single ``Linear`` unit whose output is the
    logit :math:`z`, :math:`P(\text{label}=1 \mid x) = \sigma(z)`. With the challenge's
    label convention (:data:`aalearn.data.LABEL_TOP` = 0) the output is the probability
    that the jet is a **W** jet.

    Args:
        n_features: Number of input features (87 for the challenge layout).
        hidden: Hidden-layer widths, default ``(300, 102, 12, 6)``.
        dropout: Dropout probability after each hidden block (0 disables it).
        batchnorm: Whether each hidden block ends with batch normalisation (the
            challenge model has it; the original TopoDNN does not).
        batchnorm_eps: :math:`\epsilon` of the batch normalisation (Keras default 1e-3).
        batchnorm_momentum: PyTorch momentum of the running statistics,
            :math:`1 - m_\text{Keras}`; 0.01 corresponds to Keras' 0.99.

    Example:
        >>> model = TopoDNN()
        >>> x = torch.zeros(4, 87)
        >>> model.eval()(x).shape
        torch.Size([4])
        >>> model.config["hidden"]
        [300, 102, 12, 6]
        >>> TopoDNN(**model.config).n_parameters == model.n_parameters
        True
    """

    def __init__(
        self,
        n_features: int = 87,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        *,
        dropout: float = 0.0,
        batchnorm: bool = True,
        batchnorm_eps: float = 1e-3,
        batchnorm_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        self.n_features = _check_int(n_features, name="n_features")
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}")
        self.hidden = tuple(_check_int(h, name="each hidden width") for h in hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if not float(batchnorm_eps) > 0:
            raise ValueError(f"batchnorm_eps must be positive, got {batchnorm_eps}")
        if not 0.0 <= float(batchnorm_momentum) <= 1.0:
            raise ValueError(f"batchnorm_momentum must lie in [0, 1], got {batchnorm_momentum}")
        self.dropout = float(dropout)
        self.batchnorm = bool(batchnorm)
        self.batchnorm_eps = float(batchnorm_eps)
        self.batchnorm_momentum = float(batchnorm_momentum)

        widths = (self.n_features, *self.hidden)
        self.blocks = nn.ModuleList(
            _HiddenBlock(
                n_in,
                n_out,
                batchnorm=self.batchnorm,
                eps=self.batchnorm_eps,
                momentum=self.batchnorm_momentum,
                dropout=self.dropout,
            )
            for n_in, n_out in itertools.pairwise(widths)
        )
        self.output = nn.Linear(widths[-1], 1)
        # Fixed input standardisation x -> (x - mean) / scale, part of the model so that
        # attacks and checkpoints see one function of the physical features. Identity by
        # default (the challenge model was trained on raw features).
        self.input_mean: Tensor
        self.input_scale: Tensor
        self.register_buffer("input_mean", torch.zeros(self.n_features))
        self.register_buffer("input_scale", torch.ones(self.n_features))

    def fit_input_scaling(self, x: Any, *, min_scale: float = 1e-6) -> TopoDNN:
        """Set the input standardisation from training features (per-feature mean and std).

        Features whose standard deviation is below ``min_scale`` (for example columns that
        are always zero) keep a scale of 1.

        Args:
            x: Training features, array-like of shape ``(N, n_features)``.
            min_scale: Smallest standard deviation treated as non-constant.

        Returns:
            ``self``.
        """
        t = torch.as_tensor(x, dtype=torch.float32)
        if t.ndim != 2 or t.shape[1] != self.n_features or t.shape[0] < 2:
            raise ValueError(f"fit_input_scaling expects at least 2 rows of {self.n_features} features")
        if not torch.isfinite(t).all():
            raise ValueError("fit_input_scaling: features contain NaN/inf")
        std = t.std(dim=0)
        self.input_mean.copy_(t.mean(dim=0))
        self.input_scale.copy_(torch.where(std > min_scale, std, torch.ones_like(std)))
        return self

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``TopoDNN(**model.config)`` rebuilds the architecture."""
        return {
            "n_features": self.n_features,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "batchnorm": self.batchnorm,
            "batchnorm_eps": self.batchnorm_eps,
            "batchnorm_momentum": self.batchnorm_momentum,
        }

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters (batch-norm running statistics excluded)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        """Logits :math:`z` of :math:`P(\\text{label}=1)`, shape ``(N,)``, for ``x`` of shape ``(N, F)``.

        Raises:
            ValueError: If ``x`` is not two-dimensional with ``n_features`` columns.
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"TopoDNN expects input of shape (N, {self.n_features}), got {tuple(x.shape)}")
        h = (x - self.input_mean) / self.input_scale
        for block in self.blocks:
            h = block(h)
        return self.output(h).squeeze(-1)

    def predict_proba(self, x: Tensor) -> Tensor:
        r"""Probability :math:`P(\text{label}=1 \mid x) = \sigma(z)`, shape ``(N,)``.

        Uses the module's current mode (call ``model.eval()`` first for inference);
        for NumPy arrays and batching use :func:`aalearn.models.predict_proba`.

        Example:
            >>> model = TopoDNN(n_features=3, hidden=(4,)).eval()
            >>> p = model.predict_proba(torch.zeros(2, 3))
            >>> bool(((p > 0) & (p < 1)).all())
            True
        """
        return torch.sigmoid(self.forward(x))

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, hidden={list(self.hidden)}"
