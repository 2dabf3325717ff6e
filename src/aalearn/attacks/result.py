r"""The result of an attack and the metrics computed from it.

Metrics (all computed from the stored arrays, never supplied by the attack):

* **fooling ratio** — fooled jets among those the model classified correctly (or, without
  labels, among all jets: a flip is a decision change);
* **accuracy** and **AUC** under attack (binary models with labels);
* **MAD** — the challenge's mean over jets of the mean over features of
  :math:`|x_{adv} - x|` (feature units, no wrapping, as in the challenge's scorer);
* **challenge score** :math:`\mathrm{FR}\cdot e^{-20\,\mathrm{MAD}}` with the challenge's
  :math:`\mathrm{FR} = 1 - \text{accuracy under attack}` (ECML-PKDD 2025 "Colliding
  with Adversaries", Task 1);
* **unphysical fraction** — adversarial jets violating any of the physical constraints
  (pT ≥ 0, φ range, preprocessing invariants, bounds), whether or not they were enabled;
* distances per jet in σ units (L∞, L2, χ²/N) and the number of changed features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.evaluation import evaluate_scores

__all__ = ["AttackResult", "challenge_score", "mean_absolute_deviation"]

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]


def mean_absolute_deviation(x: npt.ArrayLike, x_adv: npt.ArrayLike) -> float:
    """The challenge's MAD: mean over rows of the mean over features of ``|x_adv - x|``.

    Example:
        >>> mean_absolute_deviation([[0.0, 0.0]], [[0.1, -0.3]])
        0.2
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(x_adv, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"clean and adversarial arrays differ in shape: {a.shape} vs {b.shape}")
    return float(np.abs(b - a).mean()) if a.size else 0.0


def challenge_score(fooling_ratio: float, mad: float) -> float:
    """Task 1 score of the challenge: ``FR * exp(-20 * MAD)``.

    Example:
        >>> round(challenge_score(0.907, 0.00664), 3)
        0.794
    """
    return float(fooling_ratio * math.exp(-20.0 * mad))


@dataclass
class AttackResult:
    """Adversarial inputs with everything needed to judge them.

    Attributes:
        attack: Name of the attack.
        params: The attack's parameters (JSON-serialisable).
        x: Clean inputs ``(N, F)``.
        x_adv: Adversarial inputs ``(N, F)``; rows that were not attacked or not fooled
            within the threat model are returned unchanged (or as the attack's best
            feasible point).
        target: The class each row must stop being predicted as (label, or clean decision).
        labels: True labels, or ``None`` for unlabeled data.
        decision_clean: Model decision on ``x``.
        decision_adv: Model decision on ``x_adv``.
        score_clean: Classifier score ``P(label=1)`` on ``x`` (binary), else ``None``.
        score_adv: Classifier score on ``x_adv``.
        attacked: Rows the attack tried (correctly classified ones).
        success: Rows fooled (attacked and decision changed).
        feasible: Rows satisfying every enabled constraint and the budget.
        violations: Per enabled constraint (and ``"budget"``), the violating rows.
        physical_violations: Per physical constraint, violating rows (always computed).
        distance: Per-row distances: ``linf_sigma``, ``l2_sigma``, ``chi2_sigma`` and
            ``l1`` (feature units), ``n_changed``.
        seconds: Wall-clock time of the attack.
        extra: Attack-specific diagnostics (history, per-jet critical scale, ...).
    """

    attack: str
    params: dict[str, Any]
    x: FloatArray
    x_adv: FloatArray
    target: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64] | None
    decision_clean: npt.NDArray[np.int64]
    decision_adv: npt.NDArray[np.int64]
    score_clean: FloatArray | None
    score_adv: FloatArray | None
    attacked: BoolArray
    success: BoolArray
    feasible: BoolArray
    violations: dict[str, BoolArray]
    physical_violations: dict[str, BoolArray]
    distance: dict[str, FloatArray]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of jets."""
        return int(self.x.shape[0])

    @property
    def fooling_ratio(self) -> float:
        """Fooled jets among the attacked (correctly classified) ones."""
        n = int(self.attacked.sum())
        return float(self.success.sum() / n) if n else 0.0

    @property
    def accuracy_clean(self) -> float | None:
        """Accuracy on the clean inputs (``None`` without labels)."""
        return None if self.labels is None else float((self.decision_clean == self.labels).mean())

    @property
    def accuracy(self) -> float | None:
        """Accuracy under attack (``None`` without labels)."""
        return None if self.labels is None else float((self.decision_adv == self.labels).mean())

    @property
    def flip_fraction(self) -> float:
        """Fraction of all jets whose decision changed."""
        return float((self.decision_adv != self.decision_clean).mean()) if self.n else 0.0

    @property
    def mad(self) -> float:
        """The challenge's MAD (feature units)."""
        return mean_absolute_deviation(self.x, self.x_adv)

    @property
    def challenge_score(self) -> float:
        """``(1 - accuracy under attack) * exp(-20 MAD)``; without labels the flip fraction is used."""
        fr = self.flip_fraction if self.accuracy is None else 1.0 - self.accuracy
        return challenge_score(fr, self.mad)

    @property
    def unphysical(self) -> BoolArray:
        """Rows violating any physical constraint."""
        out = np.zeros(self.n, dtype=bool)
        for v in self.physical_violations.values():
            out |= v
        return out

    @property
    def unphysical_fraction(self) -> float:
        """Fraction of adversarial jets that are unphysical."""
        return float(self.unphysical.mean()) if self.n else 0.0

    def auc(self, signal_label: int = 0) -> float | None:
        """AUC under attack (binary models with labels of both classes), else ``None``."""
        if self.labels is None or self.score_adv is None or len(np.unique(self.labels)) < 2:
            return None
        auc = evaluate_scores(self.labels, self.score_adv, signal_label=signal_label).auc
        return None if auc is None else float(auc)

    def violation_summary(self) -> dict[str, float]:
        """Fraction of rows violating each enabled constraint and the budget."""
        return {k: float(v.mean()) for k, v in self.violations.items()}

    def metrics(self) -> dict[str, Any]:
        """The headline numbers as a flat dict (JSON-serialisable)."""
        fooled = self.success
        return {
            "attack": self.attack,
            "n": self.n,
            "n_attacked": int(self.attacked.sum()),
            "fooling_ratio": self.fooling_ratio,
            "accuracy_clean": self.accuracy_clean,
            "accuracy": self.accuracy,
            "auc": self.auc(),
            "flip_fraction": self.flip_fraction,
            "mad": self.mad,
            "challenge_score": self.challenge_score,
            "unphysical_fraction": self.unphysical_fraction,
            "feasible_fraction": float(self.feasible.mean()) if self.n else 1.0,
            "median_linf_sigma_fooled": _median(self.distance["linf_sigma"][fooled]),
            "median_l2_sigma_fooled": _median(self.distance["l2_sigma"][fooled]),
            "median_chi2_sigma_fooled": _median(self.distance["chi2_sigma"][fooled]),
            "median_changed_features_fooled": _median(self.distance["n_changed"][fooled]),
            "violations": self.violation_summary(),
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """Metrics, parameters and JSON-friendly diagnostics (no large arrays)."""
        out = self.metrics()
        out["params"] = self.params
        out["extra"] = {k: v for k, v in self.extra.items() if not isinstance(v, np.ndarray)}
        return out


def _median(a: FloatArray) -> float | None:
    return float(np.median(a)) if a.size else None
