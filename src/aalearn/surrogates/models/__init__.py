r"""Small generative surrogates of jets: a zuko normalizing flow and conditional flow matching.

Two families of conditional density estimators :math:`p(x \mid y)` (:math:`y` = class label,
for example 0 = top, 1 = W), with one sklearn-like API (``fit``, ``sample``, ``log_prob``,
``save``/``load``):

* :class:`FlowSurrogate`: a neural spline flow (NSF; Durkan, Bekasov, Murray, Papamakarios,
  arXiv:1906.04032) or a masked autoregressive flow (MAF; Papamakarios, Pavlakou, Murray,
  arXiv:1705.07057) from zuko (Rozet et al., https://github.com/probabilists/zuko), trained
  by maximum likelihood. aalearn does not write flows by hand.
* :class:`FlowMatchingSurrogate`: conditional flow matching (Lipman, Chen, Ben-Hamu, Nickel,
  Le, arXiv:2210.02747) with the straight (optimal-transport) probability path and
  :math:`\sigma_\text{min} = 0` (also "rectified flow", Liu, Gong, Liu, arXiv:2209.03003):
  with :math:`x_0 \sim N(0, I)`, :math:`t \sim U(0, 1)` and :math:`x_t = (1 - t) x_0 + t x_1`
  the velocity field :math:`v_\theta(x_t, t, y)` (a small MLP) minimises
  :math:`\lVert v_\theta(x_t, t, y) - (x_1 - x_0)\rVert^2`. Samples integrate
  :math:`\dot x = v_\theta` from :math:`t = 0` to 1 with a fixed-step midpoint (RK2) solver.
  zuko 1.6 has a continuous flow (``zuko.flows.CNF``, FFJORD) but trains it by maximum
  likelihood through an adaptive ODE solver, not with the flow-matching loss; aalearn writes
  the (short) loss and the fixed-step sampler and uses zuko's
  ``FreeFormJacobianTransform`` only for the exact log-density (instantaneous change of
  variables, Chen et al. arXiv:1806.07366) of the trained velocity field.

**Representation.** Both models see standardised inputs: selected columns are first mapped
to log space, :math:`u = \log(x + c)` (``log_features``, ``log_offset`` = :math:`c`), then
every column is shifted and scaled to zero mean and unit variance on the training data.
Sampling inverts the map, so log-space columns come back strictly above :math:`-c` and are
clipped at 0 (transverse momenta and masses are never negative); ``nonnegative`` columns
are clipped at 0 as well. ``log_prob`` includes the Jacobian of this map, so it is a
density in the original units.

**Why these sizes.** The defaults (NSF: 4 coupling transforms, 2 × 64 hidden units, 8 bins;
flow matching: 3 × 128 SiLU MLP, 50 midpoint steps) train on a few thousand to 10⁵ jets
described by a handful of jet-level observables in seconds to a few minutes on 2 CPU cores
(``shared/notes/surrogates.md`` §6.3). Coupling (``passes=2``) rather than fully
autoregressive transforms keeps sampling one network pass per transform.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2))
    >>> flow = FlowSurrogate(transforms=2, hidden=(16,)).fit(x, epochs=2, seed=0)
    >>> flow.sample(3, seed=1).shape
    (3, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aalearn.surrogates.models.base import (
    SURROGATE_FORMAT,
    SURROGATE_TRAIN_CONFIG,
    Surrogate,
    load_surrogate,
)
from aalearn.surrogates.models.flow import FlowSurrogate
from aalearn.surrogates.models.flow_matching import FlowMatchingSurrogate

__all__ = [
    "SURROGATE_FORMAT",
    "SURROGATE_TRAIN_CONFIG",
    "FlowMatchingSurrogate",
    "FlowSurrogate",
    "Surrogate",
    "load_surrogate",
    "make_surrogate",
]


def make_surrogate(kind: str, **kwargs: Any) -> Surrogate:
    """A surrogate by kind: ``"flow"`` (:class:`FlowSurrogate`) or ``"flow-matching"``.

    Example:
        >>> type(make_surrogate("flow-matching", steps=20)).__name__
        'FlowMatchingSurrogate'
    """
    kinds: Mapping[str, Callable[..., Surrogate]] = {
        FlowSurrogate.kind: FlowSurrogate,
        FlowMatchingSurrogate.kind: FlowMatchingSurrogate,
    }
    if kind not in kinds:
        raise ValueError(f"unknown surrogate kind {kind!r}; use one of {sorted(kinds)}")
    return kinds[kind](**kwargs)
