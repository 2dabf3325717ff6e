"""Registry of the attacks, by name, with their strength parameter and default grids.

Example:
    >>> sorted(ATTACKS)[:3]
    ['conservattack', 'fab-l1', 'fgsm']
    >>> get_attack("pgd", eps=0.5).budget.eps
    0.5
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aalearn.attacks.base import Attack
from aalearn.attacks.gradient import fgsm, mifgsm, pgd, sparse
from aalearn.attacks.minifool import DEFAULT_SCALES, minifool
from aalearn.attacks.minimal import fab_l1, minimal
from aalearn.attacks.population import RDSA, CONSERVAttack

__all__ = ["ATTACKS", "AttackInfo", "get_attack"]

Strength = Literal["eps", "scale"] | None


@dataclass(frozen=True)
class AttackInfo:
    """One registered attack.

    Attributes:
        name: Registry name.
        description: One line.
        reference: Paper (arXiv id).
        strength: ``"eps"`` (budget in σ units), ``"scale"`` (MiniFool's s) or ``None``.
        grid: Default strengths for robustness curves (empty: a single run).
        factory: Builds the attack from keyword arguments.
    """

    name: str
    description: str
    reference: str
    strength: Strength
    grid: tuple[float, ...]
    factory: Callable[..., Attack]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "name": self.name,
            "description": self.description,
            "reference": self.reference,
            "strength": self.strength,
            "grid": list(self.grid),
        }


_EPS_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
_L2_GRID = (1.0, 2.0, 4.0, 8.0, 16.0)

ATTACKS: dict[str, AttackInfo] = {
    a.name: a
    for a in (
        AttackInfo(
            "fgsm", "fast gradient sign, L-inf ball in sigma units", "arXiv:1412.6572", "eps", _EPS_GRID, fgsm
        ),
        AttackInfo(
            "pgd",
            "projected gradient descent, L-inf in sigma units, random start",
            "arXiv:1706.06083",
            "eps",
            _EPS_GRID,
            pgd,
        ),
        AttackInfo(
            "pgd-l2",
            "projected gradient descent, L2 ball in sigma units",
            "arXiv:1706.06083",
            "eps",
            _L2_GRID,
            lambda eps=1.0, **kw: pgd(eps, norm="l2", **kw),
        ),
        AttackInfo(
            "pgd-chi2",
            "projected gradient descent, chi2/N <= eps",
            "arXiv:1706.06083; arXiv:2511.01352",
            "eps",
            (0.01, 0.05, 0.1, 0.5, 1.0),
            lambda eps=0.1, **kw: pgd(eps, norm="chi2", **kw),
        ),
        AttackInfo(
            "mifgsm",
            "momentum iterative FGSM, L-inf in sigma units",
            "arXiv:1710.06081",
            "eps",
            _EPS_GRID,
            mifgsm,
        ),
        AttackInfo(
            "sparse",
            "minimal sparse L1 attack (DeepFool-type, box-feasible, refined)",
            "arXiv:1511.04599",
            None,
            (),
            sparse,
        ),
        AttackInfo(
            "fab-l1",
            "FAB minimal-L1 steps (box-feasible, smallest adversarial iterate, refined)",
            "arXiv:1907.02044",
            None,
            (),
            fab_l1,
        ),
        AttackInfo(
            "minimal",
            "per-jet smallest success of sparse + warm-started FAB-L1 (Task-1 combination)",
            "arXiv:1511.04599; arXiv:1907.02044",
            None,
            (),
            minimal,
        ),
        AttackInfo(
            "minifool",
            "chi2 + target-score minimiser at uncertainty scale s",
            "arXiv:2511.01352",
            "scale",
            DEFAULT_SCALES,
            minifool,
        ),
        AttackInfo(
            "rdsa",
            "random distribution shuffle (marginal-preserving, black-box)",
            "arXiv:2501.05588",
            None,
            (),
            RDSA,
        ),
        AttackInfo(
            "conservattack",
            "population-constrained coordinate search (JSD and correlation limits)",
            "arXiv:2603.13970",
            None,
            (),
            lambda **kw: CONSERVAttack(config=kw),
        ),
    )
}


def get_attack(name: str, *, eps: float | None = None, scale: float | None = None, **kwargs: Any) -> Attack:
    """Build a registered attack.

    Args:
        name: Registry name (see :data:`ATTACKS`).
        eps: Budget in σ units for ``eps`` attacks.
        scale: Uncertainty scale for MiniFool.
        **kwargs: Further keyword arguments of the attack's factory.

    Raises:
        ValueError: For an unknown name, or a strength the attack does not take.
    """
    info = ATTACKS.get(name)
    if info is None:
        close = difflib.get_close_matches(name, ATTACKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown attack {name!r}{hint}; known attacks: {', '.join(ATTACKS)}")
    if eps is not None:
        if info.strength != "eps":
            raise ValueError(
                f"attack {name!r} takes no --eps (its strength is {info.strength or 'not a parameter'})"
            )
        kwargs["eps"] = eps
    if scale is not None:
        if info.strength != "scale":
            raise ValueError(f"attack {name!r} takes no --scale (only minifool does)")
        kwargs["scale"] = scale
    try:
        return info.factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad settings for attack {name!r}: {exc}") from None
