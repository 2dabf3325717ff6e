r"""Conditional normalizing flows from zuko (NSF or MAF) as jet surrogates.

See :mod:`aalearn.surrogates.models` for the shared representation and API.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 2))
    >>> FlowSurrogate(transforms=2, hidden=(16,)).fit(x, epochs=1).sample(2, seed=0).shape
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from aalearn.surrogates.models.base import Surrogate, _hidden, _int, _zuko

__all__ = ["FlowSurrogate"]


class FlowSurrogate(Surrogate):
    r"""Conditional normalizing flow from zuko (NSF or MAF), trained by maximum likelihood.

    The loss is the negative log-likelihood :math:`-\log p_\theta(z \mid y)` of the
    standardised rows (zuko: ``-flow(c).log_prob(z).mean()``). NSF: monotonic rational-
    quadratic splines (Durkan et al., arXiv:1906.04032); MAF: affine autoregressive
    transforms (Papamakarios et al., arXiv:1705.07057). The class label enters as a one-hot
    context.

    Args:
        flow: ``"nsf"`` or ``"maf"``.
        transforms: Number of transforms.
        hidden: Hidden-layer widths of each transform's conditioner.
        bins: Spline bins (NSF only).
        passes: ``2`` for coupling transforms (one pass to sample), ``None`` for fully
            autoregressive ones (more expressive, D passes to sample).
        log_features: Columns modelled in log space (see the module doc).
        log_offset: Offset :math:`c` of the log map.
        nonnegative: Further columns clipped at zero after sampling.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(300, 2))
        >>> f = FlowSurrogate(flow="maf", transforms=2, hidden=(16,)).fit(x, epochs=1)
        >>> f.log_prob(x[:2]).shape
        (2,)
    """

    kind: ClassVar[str] = "flow"

    def __init__(
        self,
        *,
        flow: Literal["nsf", "maf"] = "nsf",
        transforms: int = 4,
        hidden: Sequence[int] = (64, 64),
        bins: int = 8,
        passes: int | None = 2,
        log_features: Sequence[int] = (),
        log_offset: float = 0.0,
        nonnegative: Sequence[int] = (),
    ) -> None:
        super().__init__(
            hidden=hidden, log_features=log_features, log_offset=log_offset, nonnegative=nonnegative
        )
        self.flow = flow
        self.transforms = transforms
        self.bins = bins
        self.passes = passes

    def _validated(self) -> dict[str, Any]:
        out = super()._validated()
        if self.flow not in ("nsf", "maf"):
            raise ValueError(f"flow must be 'nsf' or 'maf', got {self.flow!r}")
        _int(self.transforms, name="transforms", minimum=1)
        _int(self.bins, name="bins", minimum=2)
        if self.passes is not None:
            _int(self.passes, name="passes", minimum=2)
        return out

    def _build(self, features: int, context: int) -> nn.Module:
        zuko = _zuko()
        kwargs: dict[str, Any] = {
            "features": features,
            "context": context,
            "transforms": int(self.transforms),
            "hidden_features": list(_hidden(self.hidden)),
        }
        if features > 1 and self.passes is not None:
            kwargs["passes"] = min(int(self.passes), features)
        if self.flow == "nsf":
            module: nn.Module = zuko.flows.NSF(bins=int(self.bins), **kwargs)
        else:
            module = zuko.flows.MAF(**kwargs)
        return module

    def _loss(
        self, module: nn.Module, z: Tensor, c: Tensor | None, generator: torch.Generator | None
    ) -> Tensor:
        return -self._log_prob_std(module, z, c).mean()

    def _sample_std(self, module: nn.Module, n: int, c: Tensor | None) -> Tensor:
        if c is None:
            out: Tensor = module().sample((n,))
        else:
            out = module(c).sample()
        return out

    def _log_prob_std(self, module: nn.Module, z: Tensor, c: Tensor | None) -> Tensor:
        dist = module() if c is None else module(c)
        out: Tensor = dist.log_prob(z)
        return out
