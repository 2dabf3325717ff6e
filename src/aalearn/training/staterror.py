r"""Monte Carlo statistical uncertainty of the templates (pyhf ``staterror``) in the INFERNO loss.

``aalearn measure`` fits a pyhf model whose templates carry pyhf's ``staterror``
(Barlow–Beeston lite): one factor :math:`\gamma_i` per bin, shared by all samples,
:math:`n_i \to \gamma_i n_i`, with the Gaussian constraint
:math:`(\gamma_i - 1)^2 / 2\sigma_i^2`, :math:`\sigma_i = \sqrt{V_i}/n_i`,
:math:`V_i = \sum_s V_{s,i}`, where :math:`V_{s,i}` is the variance of sample :math:`s`'s
yield in bin :math:`i` from the finite simulation. For an unweighted simulated sample of
:math:`N_s` events scaled to the expected total :math:`T_s` each event weighs
:math:`T_s/N_s`, so a bin of expected yield :math:`S_{s,i}` holds :math:`S_{s,i} N_s/T_s`
events and :math:`V_{s,i} = S_{s,i}\,T_s/N_s` (:func:`mc_variance`).

**The profiled Fisher information.** At the Asimov point (:math:`n_i = A_i`,
:math:`\gamma = 1`) the Fisher information of :math:`(\theta, \gamma)`,
:math:`\theta = (\mu, \nu)`, has the blocks
:math:`I_{\theta\theta} = \sum_i \partial n_i \partial n_i^\top / A_i`,
:math:`I_{\theta\gamma_i} = \partial n_i` (:math:`\partial(\gamma_i n_i)/\partial\gamma_i = A_i`)
and the diagonal :math:`I_{\gamma_i\gamma_i} = A_i + 1/\sigma_i^2 = A_i + A_i^2/V_i`.
Profiling :math:`\gamma` (Schur complement) gives

.. math::

    I_\theta = \sum_i \partial n_i \partial n_i^\top
        \Bigl[\frac{1}{A_i} - \frac{1}{A_i + A_i^2/V_i}\Bigr]
      = \sum_i \frac{\partial n_i \partial n_i^\top}{A_i + V_i},

plus the constraints of :math:`\nu`: each bin's Poisson term is down-weighted by
:math:`w_i = A_i/(A_i + V_i)` (:func:`staterror_scale`). The loss uses the Poisson NLL
:math:`\sum_i w_i\,[n_i(\theta) - A_i \log n_i(\theta)]` with :math:`w_i` fixed in
:math:`\theta`, whose Hessian at the Asimov point is exactly :math:`I_\theta` above (its
:math:`\partial^2 n_i` term vanishes as :math:`n_i = A_i`); away from that point it is not
the profiled NLL, which the loss never evaluates.

**What carries gradients.** :math:`V_{s,i}` is computed once per step from the current
nominal histograms at :math:`\theta_0`: a constant of the fit model in :math:`\theta` (the
widths of the measurement are numbers computed from its templates), but *not* detached
from the network's weights, since a different network gives different templates and so
different staterror widths, and the loss should see that.

Example:
    >>> import torch
    >>> yields = {"signal": torch.tensor([10.0, 0.0]), "background": torch.tensor([30.0, 0.0])}
    >>> v = mc_variance(yields, {"signal": 10.0, "background": 30.0}, {"signal": 100, "background": 300})
    >>> v.tolist(), staterror_scale(yields["signal"] + yields["background"], v).tolist()
    ([4.0, 0.0], [0.9090909361839294, 1.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["check_mc_events", "mc_variance", "staterror_scale"]

_SAMPLES = ("signal", "background")


def check_mc_events(value: Any) -> dict[str, float] | None:
    """Validate ``mc_events`` (``None``, or positive finite numbers keyed exactly ``signal``/``background``).

    Example:
        >>> check_mc_events({"signal": 3200, "background": 6400})
        {'signal': 3200.0, 'background': 6400.0}
    """
    if value is None:
        return None
    usage = "mc_events must map exactly 'signal' and 'background' to positive numbers of simulated events"
    if not isinstance(value, Mapping) or set(value) != set(_SAMPLES):
        raise ValueError(f"{usage}, got {value!r}")
    out: dict[str, float] = {}
    for sample in _SAMPLES:
        n = value[sample]
        if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)):
            raise ValueError(f"{usage}, got {value!r}")
        if not (math.isfinite(float(n)) and float(n) > 0):
            raise ValueError(f"{usage}, got {value!r}")
        out[sample] = float(n)
    return out


def mc_variance(
    yields: Mapping[str, Tensor], totals: Mapping[str, float], mc_events: Mapping[str, float]
) -> Tensor:
    r"""Per-bin MC variance :math:`V_i = \sum_s S_{s,i}\,T_s/N_s` of the summed templates.

    Args:
        yields: Expected yield per bin of each sample at the nominal point, :math:`S_{s,i}`.
        totals: Expected total of each sample, :math:`T_s`.
        mc_events: Simulated events each template is built from, :math:`N_s`.
    """
    signal, background = (yields[s] * (float(totals[s]) / float(mc_events[s])) for s in _SAMPLES)
    return signal + background


def staterror_scale(asimov: Tensor, variance: Tensor) -> Tensor:
    r"""Per-bin weight :math:`w_i = A_i/(A_i + V_i)` of the Poisson term after profiling :math:`\gamma_i`.

    A bin with :math:`A_i + V_i = 0` (no events) gets 1, with finite gradients (such a bin is
    left out of the likelihood anyway).
    """
    denominator = asimov + variance
    filled = denominator > 0
    return (asimov / denominator.where(filled, 1.0)).where(filled, 1.0)
