r"""Attack explanations: which features an adversarial attack moves, and are they the important ones?

For clean jets :math:`x`, their adversarial versions :math:`x'` and the per-entry
resolution :math:`\sigma`, :func:`explain_attack` reports, among the **successful**
adversarial jets, the mean :math:`|x'_i - x_i| / \sigma_i` per feature, grouped per feature
kind and per constituent rank, and the overlap (Jaccard index of the top-:math:`k` sets)
between the most-attacked features and the most-attributed ones. A high overlap means
the attack pushes exactly where the tagger looks; a low one that it exploits features
the attribution does not rank (for example many small moves of soft constituents).
Periodic features (φ) are differenced on the circle.

Example:
    >>> import numpy as np
    >>> x = np.zeros((3, 4)); adv = x.copy(); adv[:, 2] = 0.5
    >>> res = explain_attack(x, adv, 0.1, feature_names=["a", "b", "c", "d"], top_k=1)
    >>> res.top_attacked, float(res.per_feature[2])
    (['c'], 5.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.validation import check_array
from aalearn.explain.attributions import feature_groups
from aalearn.physics.features import FeatureSet
from aalearn.physics.kinematics import wrap_phi

__all__ = ["AttackExplanation", "explain_attack", "jaccard_top_k"]

FloatArray = npt.NDArray[np.float64]


def jaccard_top_k(a: npt.ArrayLike, b: npt.ArrayLike, k: int) -> float:
    """Jaccard index of the indices of the ``k`` largest entries of ``a`` and of ``b``.

    Example:
        >>> jaccard_top_k([3, 2, 1, 0], [0, 2, 3, 1], 2)
        0.3333333333333333
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"cannot compare rankings of {x.size} and {y.size} features")
    k = int(min(max(k, 1), x.size))
    top_a = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(top_a & top_b) / len(top_a | top_b)


@dataclass
class AttackExplanation:
    """What an attack moved, in σ units.

    Attributes:
        name: The attack (or adversarial file).
        n_successful: Successful adversarial jets the averages run over.
        n_jets: All jets.
        feature_names: Column names.
        per_feature: Mean :math:`|\\delta_i|/\\sigma_i` per feature, ``(F,)``.
        per_kind: Mean over the features of each kind (pT, η, φ).
        per_rank: Mean over the features of each constituent rank.
        top_attacked: The ``top_k`` most-moved features.
        top_attributed: The ``top_k`` most-attributed features (when attributions were given).
        overlap: Jaccard index of the two top-``k`` sets (``None`` without attributions).
        top_k: ``k``.
    """

    name: str
    n_successful: int
    n_jets: int
    feature_names: list[str]
    per_feature: FloatArray
    per_kind: dict[str, float]
    per_rank: dict[int, float]
    top_attacked: list[str]
    top_attributed: list[str] = field(default_factory=list)
    overlap: float | None = None
    top_k: int = 10

    def to_dict(self) -> dict[str, Any]:
        """JSON object."""
        return {
            "name": self.name,
            "n_successful": self.n_successful,
            "n_jets": self.n_jets,
            "per_feature": [
                {"feature": n, "delta_over_sigma": float(v)}
                for n, v in zip(self.feature_names, self.per_feature, strict=True)
            ],
            "per_kind": dict(self.per_kind),
            "per_rank": [
                {"constituent": int(r), "delta_over_sigma": float(v)} for r, v in self.per_rank.items()
            ],
            "top_attacked": list(self.top_attacked),
            "top_attributed": list(self.top_attributed),
            "overlap_top_k": self.overlap,
            "top_k": self.top_k,
        }


def explain_attack(
    x_clean: npt.ArrayLike,
    x_adv: npt.ArrayLike,
    sigma: float | npt.ArrayLike,
    *,
    success: npt.ArrayLike | None = None,
    feature_names: Sequence[str] | None = None,
    features: FeatureSet | None = None,
    importance: npt.ArrayLike | None = None,
    top_k: int = 10,
    name: str = "attack",
) -> AttackExplanation:
    """Mean :math:`|\\delta|/\\sigma` per feature and rank among successful adversarial jets.

    Args:
        x_clean: Clean jets ``(N, F)``.
        x_adv: Adversarial jets ``(N, F)``, row-paired with ``x_clean``.
        sigma: Per-entry resolution σ (scalar, ``(F,)`` or ``(N, F)``), strictly positive.
        success: Which rows are successful adversarial examples; default: rows that
            changed at all.
        feature_names: Column names (default ``f0, f1, ...``).
        features: Feature set (periodic columns, kinds and ranks); without it φ columns
            are recognised by the challenge names.
        importance: Per-feature attribution importance ``(F,)`` for the overlap.
        top_k: Size of the top sets.
        name: Label of the attack.

    Returns:
        The explanation.

    Raises:
        ValueError: For mismatched shapes or non-positive σ.
    """
    xc = check_array(x_clean, name="x_clean", ndim=2, dtype=np.float64)
    xa = check_array(x_adv, name="x_adv", ndim=2, dtype=np.float64)
    if xc.shape != xa.shape:
        raise ValueError(f"clean {xc.shape} and adversarial {xa.shape} arrays differ in shape")
    n, f = xc.shape
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(f)]
    if len(names) != f:
        raise ValueError(f"{len(names)} feature names for {f} columns")
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), xc.shape)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("sigma must be finite and strictly positive")
    groups = feature_groups(names, features)
    periodic = (
        features.periodic_mask
        if features is not None and len(features) == f
        else np.array([k == "phi" for k, _ in groups])
    )
    delta = xa - xc
    delta[:, periodic] = wrap_phi(delta[:, periodic])
    ratio = np.abs(delta) / s
    ok = np.any(delta != 0, axis=1) if success is None else np.asarray(success, dtype=bool).ravel()
    if ok.shape != (n,):
        raise ValueError(f"success must have {n} entries, got {ok.shape}")
    per_feature = ratio[ok].mean(axis=0) if np.any(ok) else np.zeros(f)
    kinds = [k for k, _ in groups]
    per_kind = {
        kind: float(per_feature[[i for i, g in enumerate(kinds) if g == kind]].mean())
        for kind in dict.fromkeys(kinds)
    }
    ranks = sorted({r for _, r in groups if r >= 0})
    per_rank = {r: float(per_feature[[i for i, (_, g) in enumerate(groups) if g == r]].mean()) for r in ranks}
    k = int(min(max(top_k, 1), f))
    top_attacked = [names[i] for i in np.argsort(-per_feature, kind="stable")[:k]]
    top_attributed: list[str] = []
    overlap = None
    if importance is not None:
        imp = np.asarray(importance, dtype=np.float64).ravel()
        if imp.size != f:
            raise ValueError(f"importance has {imp.size} entries for {f} features")
        top_attributed = [names[i] for i in np.argsort(-imp, kind="stable")[:k]]
        overlap = jaccard_top_k(per_feature, imp, k)
    return AttackExplanation(
        name,
        int(ok.sum()),
        n,
        names,
        per_feature,
        per_kind,
        per_rank,
        top_attacked,
        top_attributed,
        overlap,
        k,
    )
