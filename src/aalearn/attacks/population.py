r"""Population-level attacks: RDSA and CONSERVAttack, plugged into the attack framework.

These are their own method family (search over the attacked *set*, not a per-jet
gradient loop). The searches live in :mod:`aalearn.attacks.rdsa` and
:mod:`aalearn.attacks.conservattack`; this module connects them to the framework: the
model becomes a success oracle (and a gradient for CONSERVAttack), the enabled physics
constraints become the repair of RDSA's proposals and the candidate limits of
CONSERVAttack, and :class:`~aalearn.attacks.base.Attack` enforces feasibility and
computes the metrics.

* :class:`RDSA` (arXiv:2501.05588) keeps each feature's marginal and breaks the
  correlations between features: it passes marginal checks by construction and fails
  correlation checks.
* :class:`CONSERVAttack` (arXiv:2603.13970) keeps marginals (Jensen-Shannon distance) and
  linear correlations (relative Frobenius change) within limits for the whole set.

Example:
    >>> atk = RDSA(n_features=15, max_tries=25)
    >>> atk.params()["max_tries"]
    25
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from aalearn.attacks.base import Attack, AttackSetup, FloatArray
from aalearn.attacks.conservattack import ConservConfig, conserv_search
from aalearn.attacks.model import ModelAdapter
from aalearn.attacks.rdsa import rdsa_search

__all__ = ["RDSA", "CONSERVAttack"]


def _repair_fn(setup: AttackSetup) -> Any:
    if not setup.constraints.constraints:
        return None

    def repair(cand: np.ndarray, orig: np.ndarray) -> np.ndarray:
        out = setup.constraints.repair_numpy(cand, orig)
        return np.where(setup.mutable[None, :], out, orig)

    return repair


@dataclass
class RDSA(Attack):
    """Random Distribution Shuffle Attack (black-box, marginal-preserving).

    Attributes:
        n_features: Features re-drawn per try (at most the number of mutable features).
        max_tries: Tries per jet; stops at the first flip.
        bins: Histogram bins per feature.
        discrete_threshold: Features with fewer unique values are drawn from their values.
        keep_failed: Return the last failed draw (the reference code's behaviour)
            instead of the clean jet.
    """

    n_features: int = 15
    max_tries: int = 25
    bins: int = 100
    discrete_threshold: int = 50
    keep_failed: bool = False
    name: str = "rdsa"
    budget: None = None

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("name", "budget")}

    def search(self, setup: AttackSetup, seed: int) -> tuple[FloatArray, dict[str, Any]]:
        rows = np.flatnonzero(setup.attacked)
        out = setup.x.copy()
        if rows.size == 0:
            return out, {}
        k = min(self.n_features, int(setup.mutable.sum()))
        res = rdsa_search(
            setup.x[rows],
            lambda cand, idx: setup.fooled(cand, rows[idx]),
            n_features=k,
            max_tries=self.max_tries,
            bins=self.bins,
            discrete_threshold=self.discrete_threshold,
            mutable=setup.mutable,
            repair=_repair_fn(setup),
            keep_failed=self.keep_failed,
            seed=seed,
            batch_size=setup.batch_size,
            progress=setup.progress,
        )
        out[rows] = res.x_adv
        return out, {"mean_tries": float(res.tries.mean()), "n_features_redrawn": k}


@dataclass
class CONSERVAttack(Attack):
    """CONSERVAttack: gradient-directed coordinate search under population-level limits.

    Attributes:
        config: The search settings (:class:`aalearn.attacks.conservattack.ConservConfig`
            fields as keyword arguments; defaults documented there).
    """

    config: dict[str, Any] = field(default_factory=dict)
    name: str = "conservattack"
    budget: None = None

    def __post_init__(self) -> None:
        self._config = ConservConfig(**self.config)  # validates the settings early

    def params(self) -> dict[str, Any]:
        return asdict(self._config)

    def search(self, setup: AttackSetup, seed: int) -> tuple[FloatArray, dict[str, Any]]:
        rows = np.flatnonzero(setup.attacked)
        out = setup.x.copy()
        if rows.size < 2:  # a population-level attack needs a population
            return out, {"skipped": f"{rows.size} attacked jet(s); CONSERVAttack needs at least 2"}
        target = torch.as_tensor(setup.target, device=setup.model.device)

        def gradient(xb: np.ndarray, idx: np.ndarray) -> np.ndarray:
            xt = setup.tensor(xb).requires_grad_(True)
            logits = setup.model.logits(xt)
            loss = ModelAdapter.cross_entropy(logits, target[torch.as_tensor(rows[idx])])
            (g,) = torch.autograd.grad(loss.sum(), xt)
            grad: np.ndarray = g.detach().double().cpu().numpy()
            return grad

        xr = setup.x[rows]
        # Candidate limits: each feature's clean range (the authors' choice). Physical clean
        # jets satisfy the box-type constraints (pT >= 0, phi_1 <= 0, bounds), so every value
        # in the range does too; row-specific rules (padded constituents) are enforced by
        # the framework afterwards (rows that break them are reverted).
        lower, upper = xr.min(axis=0), xr.max(axis=0)
        res = conserv_search(
            xr,
            gradient,
            lambda cand, idx: setup.fooled(cand, rows[idx]),
            config=self._config,
            lower=lower,
            upper=upper,
            mutable=setup.mutable,
            seed=seed,
            progress=setup.progress,
        )
        out[rows] = res.x_adv
        return out, {
            "accepted_iteration": res.accepted_iteration,
            "history": res.history,
            "max_jsd": float(np.max(res.jsd_per_feature)) if res.jsd_per_feature.size else 0.0,
            "rel_corr_change": float(res.rel_corr_change),
        }
