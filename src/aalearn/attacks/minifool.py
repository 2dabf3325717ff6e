r"""MiniFool: a minimiser-based attack with a χ² test statistic (arXiv:2511.01352).

MiniFool minimises

.. math:: \lambda(x_{adv}) = \alpha\,\frac{1}{F}\sum_i\Big(\frac{x_{adv,i}-x_i}{s\,\sigma_i}\Big)^2
          + \beta\,\big(f(x_{adv}) - g\big)^2

where :math:`\sigma_i` are the experimental uncertainties, :math:`s` scales them (the
attack parameter), :math:`f` is the classifier score and :math:`g` the target score on
the other side of the decision threshold. Here it is a configuration of the shared
gradient loop (:class:`~aalearn.attacks.components.MiniFoolObjective` with an Adam step
in σ units); physics repair runs after every step like for every other attack.

**Robustness from an s-scan** (:func:`minifool_scan`): the attack runs for increasing
``s``, each scale warm-started from the previous solution. A jet's **critical scale** is
the smallest ``s`` in the grid at which its decision flips; the flip fraction versus
``s`` is the fraction of jets whose critical scale is at most ``s`` (monotone by
definition: a perturbation admissible at a smaller uncertainty scale is admissible at a
larger one). It works on unlabeled data (a flip is a decision change).

The paper's minimiser, α/β and grid are not public; our defaults: α = β = 1, 200 Adam
steps with learning rate 0.1 σ, g ∈ {0, 1}, grid s ∈ {0.25, 0.5, 1, 2, 4, 8}.

Example:
    >>> atk = minifool(scale=2.0)
    >>> atk.objective.scale
    2.0
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aalearn.attacks.components import AdamStep, FromPoint, MiniFoolObjective
from aalearn.attacks.loop import GradientAttack
from aalearn.attacks.result import AttackResult
from aalearn.constraints import scaled_delta

__all__ = ["DEFAULT_SCALES", "MiniFoolScan", "minifool", "minifool_scan"]

#: Default grid of uncertainty scales s.
DEFAULT_SCALES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def minifool(
    scale: float = 1.0,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    steps: int = 200,
    lr: float = 0.1,
    target_offset: float = 0.0,
) -> GradientAttack:
    """MiniFool at one uncertainty scale ``s``.

    Args:
        scale: Uncertainty scale ``s`` (> 0).
        alpha: Weight of the χ²/N term.
        beta: Weight of the score term.
        steps: Adam iterations.
        lr: Adam learning rate in σ units.
        target_offset: Distance of the target score from 0 or 1.

    Example:
        >>> minifool(0.5, steps=10).steps
        10
    """
    for name, v in (("scale", scale), ("alpha", alpha), ("beta", beta), ("lr", lr)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"MiniFool {name} must be positive, got {v}")
    if not 0 <= target_offset < 0.5:
        raise ValueError(f"target_offset must lie in [0, 0.5), got {target_offset}")
    return GradientAttack(
        "minifool",
        MiniFoolObjective(alpha=alpha, beta=beta, scale=scale, target_offset=target_offset),
        AdamStep(lr=lr),
        steps=steps,
        select="last",
        settings={"scale": scale, "alpha": alpha, "beta": beta, "lr": lr, "target_offset": target_offset},
    )


@dataclass
class MiniFoolScan:
    """Result of an s-scan.

    Attributes:
        scales: The grid, increasing.
        flip_fraction: Per scale, the fraction of attacked jets with critical scale ≤ s.
        critical_scale: Per jet, the smallest flipping scale (``inf`` if none; ``nan`` for
            jets that were not attacked, i.e. misclassified with labels given).
        results: The :class:`AttackResult` per scale.
    """

    scales: list[float]
    flip_fraction: list[float]
    critical_scale: npt.NDArray[np.float64]
    results: list[AttackResult] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        finite = self.critical_scale[np.isfinite(self.critical_scale)]
        return {
            "scales": self.scales,
            "flip_fraction": self.flip_fraction,
            "median_critical_scale": float(np.median(finite)) if finite.size else None,
            "per_scale": [r.metrics() for r in self.results],
        }


def minifool_scan(
    model: nn.Module,
    x: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    alpha: float = 1.0,
    beta: float = 1.0,
    steps: int = 200,
    lr: float = 0.1,
    **run_kwargs: Any,
) -> MiniFoolScan:
    """Run MiniFool over increasing scales with warm starts; per-jet critical scale.

    Args:
        model: The classifier.
        x: Inputs ``(N, F)``.
        labels: Labels, or ``None`` (unlabeled: flips of the model's decision).
        scales: Increasing positive scales.
        alpha: Weight of the χ²/N term.
        beta: Weight of the score term.
        steps: Adam iterations per scale.
        lr: Adam learning rate in σ units.
        **run_kwargs: Passed to :meth:`Attack.run` (features, constraints, seed, ...).

    Returns:
        The :class:`MiniFoolScan`.
    """
    grid = [float(s) for s in scales]
    if not grid or any(not np.isfinite(s) or s <= 0 for s in grid):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {list(scales)}")
    if any(b <= a for a, b in itertools.pairwise(grid)):
        raise ValueError(f"scales must be strictly increasing, got {grid}")
    results: list[AttackResult] = []
    z0: torch.Tensor | None = None
    critical: npt.NDArray[np.float64] | None = None
    for s in grid:
        atk = minifool(s, alpha=alpha, beta=beta, steps=steps, lr=lr)
        if z0 is not None:
            atk.init = FromPoint(z0)
        res = atk.run(model, x, labels, **run_kwargs)
        results.append(res)
        if critical is None:
            critical = np.where(res.attacked, np.inf, np.nan)
        critical = np.where(res.success & np.isinf(critical), s, critical)
        per = torch.from_numpy(np.asarray(_periodic(res)))
        z0 = scaled_delta(
            torch.from_numpy(res.x_adv),
            torch.from_numpy(res.x),
            torch.from_numpy(np.asarray(res.extra["sigma"], dtype=np.float64)),
            per,
        )
    assert critical is not None
    attacked = np.isfinite(critical) | np.isinf(critical)
    n_att = max(int(attacked.sum()), 1)
    flip = [float(((critical <= s) & attacked).sum() / n_att) for s in grid]
    return MiniFoolScan(grid, flip, critical, results)


def _periodic(res: AttackResult) -> npt.NDArray[np.bool_]:
    return np.asarray(res.extra.get("periodic", np.zeros(res.x.shape[1], dtype=bool)))
