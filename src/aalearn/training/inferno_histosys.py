r"""The measurement's histosys treatment inside the INFERNO loss (one-sided and asymmetric variations).

``aalearn measure`` (``--histosys auto``, :func:`aalearn.inference.systematics.treat_histosys`)
mirrors a one-sided variation (up and down shift the yields to the same side) and symmetrises
a strongly asymmetric one, so that the fit sees its first-order effect. The INFERNO loss
interpolates the templates with pyhf's ``code4p``, whose slope at :math:`\alpha = 0` is
:math:`(\delta^+ - \delta^-)/2` with :math:`\delta^\pm` the signed up/down shifts: for a
one-sided variation it is close to 0, so an untreated loss is nearly blind to the very
systematic the measurement then counts in full (a generator's FSR or ISR variation on jets is
often one-sided: the varied taggers' score distributions move the same way for ×2 and ×½).

This module gives the loss the measurement's likelihood: a **plan** decided once per loss
evaluation on the detached templates at the nominal point, with exactly the measurement's rule
(:func:`aalearn.inference.systematics.classify_shifts` on the shifts weighted by
:math:`\sqrt{s_i + b_i}`, all samples of one nuisance together), and a differentiable
**treatment** applied to the up/down templates for every parameter value:

* ``mirror``: :math:`\delta` = the larger shift (up − nominal or down − nominal), up/down =
  nominal ± δ, clipped at 0;
* ``symmetrize``: :math:`\delta = (u - d)/2`, up/down = nominal ± δ;
* ``none``: the templates as given.

Nuisances named ``name@signal``/``name@background`` (one parameter acting on both samples,
:class:`~aalearn.training.inferno_templates.InfernoTemplateStrategy`) are classified together,
as the measurement classifies one variation over both samples.

Symmetrising keeps ``code4p``'s slope at 0, so of the three only ``mirror`` changes the Asimov
Fisher information. The strategies' option ``histosys`` defaults to ``none``: on the project's
jets the treatment decided on each batch's noisy templates trained worse taggers (see
:class:`~aalearn.training.inferno_templates.InfernoTemplateStrategy`).

Example:
    >>> import torch
    >>> from aalearn.training.inferno import Nuisance
    >>> nu = [Nuisance(name="fsr", kind="histosys", sample="background", up="u", down="d")]
    >>> nominal = {"signal": torch.tensor([5.0, 5.0]), "background": torch.tensor([50.0, 50.0])}
    >>> shifts = {0: (torch.tensor([55.0, 48.0]), torch.tensor([54.0, 49.0]))}  # both sides up-ish
    >>> plan = histosys_plan(nominal, shifts, nu, "auto")
    >>> plan
    {0: ('mirror', True)}
    >>> [t.tolist() for t in treat(nominal["background"], *shifts[0], plan[0])]
    [[55.0, 48.0], [45.0, 52.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aalearn.inference.systematics import applied_method, check_histosys_method, classify_shifts

if TYPE_CHECKING:  # type-only: inferno.py imports this module at run time
    from aalearn.training.inferno import Nuisance

__all__ = ["Plan", "histosys_plan", "treat"]

#: Nuisance index → (applied method, whether the up shift is the larger one).
Plan = dict[int, tuple[str, bool]]


def histosys_plan(
    nominal: Mapping[str, Tensor],
    shifts: Mapping[int, tuple[Tensor, Tensor]],
    nuisances: Sequence[Nuisance],
    method: str,
) -> Plan:
    r"""Decide each histosys nuisance's treatment as ``aalearn measure --histosys METHOD`` would.

    Args:
        nominal: Expected counts per sample at the nominal point (signal at :math:`\mu = 1`).
        shifts: Nuisance index → its sample's (up, down) expected counts at the nominal point.
        nuisances: The loss's nuisances (for the names and samples of ``shifts``' indices).
        method: One of ``auto``, ``mirror``, ``symmetrize``, ``none``.

    Returns:
        Index → (method applied, up shift larger), for every index of ``shifts``; an empty
        plan for ``none``.
    """
    if check_histosys_method(method) == "none" or not shifts:
        return {}
    with torch.no_grad():
        sigma = (nominal["signal"] + nominal["background"]).detach().double().clamp_min(1e-12).sqrt()
        groups: dict[str, list[int]] = {}
        for j in shifts:
            groups.setdefault(nuisances[j].name.split("@", 1)[0], []).append(j)
        plan: Plan = {}
        for members in groups.values():
            up_w, down_w = [], []
            for j in members:
                base = nominal[nuisances[j].sample].detach().double()
                up, down = shifts[j]
                up_w.append((up.detach().double() - base) / sigma)
                down_w.append((down.detach().double() - base) / sigma)
            info = classify_shifts(torch.cat(up_w).cpu().numpy(), torch.cat(down_w).cpu().numpy())
            how = (applied_method(info["kind"], method), info["size_up"] >= info["size_down"])
            plan.update(dict.fromkeys(members, how))
    return plan


def treat(nominal: Tensor, up: Tensor, down: Tensor, how: tuple[str, bool]) -> tuple[Tensor, Tensor]:
    """The (up, down) templates after the treatment ``how`` (differentiable in all three)."""
    method, up_larger = how
    if method == "none":
        return up, down
    if method == "mirror":
        delta = (up if up_larger else down) - nominal
    elif method == "symmetrize":
        delta = 0.5 * (up - down)
    else:
        raise ValueError(f"unknown histosys treatment {method!r}")
    return (nominal + delta).clamp_min(0.0), (nominal - delta).clamp_min(0.0)
