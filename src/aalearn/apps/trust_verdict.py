r"""The decision rule of the trust audit: checks with thresholds, and the verdict they give.

A tagger is **trustworthy for a measurement** of the signal strength :math:`\mu` when
none of the following checks fails (thresholds are the :class:`DecisionRule` fields):

1. ``attack_shift`` (fail): every attack within ``max_budget`` σ whose adversarial sample
   passes the validation checks (the perturbation is invisible to the data/simulation
   comparisons of :mod:`aalearn.validation`) moves :math:`\hat\mu` by at most
   ``max_shift`` :math:`\sigma_\mu`: :math:`|\Delta\hat\mu/\sigma_\mu| \le` ``max_shift``.
   This is the question of arXiv:2511.01352: a perturbation as large as the detector
   resolution, which the analysis cannot see, must not bias the result beyond its
   uncertainty.
   ``attack_shift_visible`` (warn): the same for attacks within ``max_budget`` σ whose
   sample *fails* the validation checks (a bias the data/simulation comparisons would
   reveal, so a warning, not a failure).
2. ``variation_shift`` (fail, with variations): pseudo-data from each modelling variation
   move :math:`\hat\mu` by at most ``max_shift`` :math:`\sigma_\mu` (the variations are
   nuisances of the fit, so a larger shift means the fit does not cover them).
3. ``auc`` (fail): the lower end of the bootstrap interval of the AUC is at least ``min_auc``.
4. ``calibration`` (warn): ECE ≤ ``max_ece``.
5. ``uncertainty_flags_attacks`` (warn): the epistemic uncertainty separates successful
   adversaries from clean jets with AUROC ≥ ``min_flag_auroc`` (skipped without an
   uncertainty estimate).
6. ``detection`` (warn): the corrected fooling ratio (fooled and not flagged by the
   adversarial-sample detector) at ``max_budget`` is at most ``max_corrected_fooling_ratio``.

Verdict: ``"not trustworthy: ..."`` when a *fail* check fails (the message of the first
failing check, then the others), ``"trustworthy within limits: ..."`` when only
*warn* checks fail, ``"trustworthy: ..."`` otherwise.

Example:
    >>> rule = DecisionRule()
    >>> checks = [Check("attack_shift", "measurement", 3.4, 1.0, False, "fail",
    ...                 "an attack within 1σ that passes the validation checks moves μ̂ by 3.4 σ_μ")]
    >>> verdict(checks, rule)
    'not trustworthy: an attack within 1σ that passes the validation checks moves μ̂ by 3.4 σ_μ'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Check", "DecisionRule", "evaluate_checks", "verdict"]


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the trust audit's decision rule (see the module docstring).

    Attributes:
        max_budget: Attacks within this budget (σ units) must not bias the measurement.
        max_shift: Largest tolerated :math:`|\\Delta\\hat\\mu/\\sigma_\\mu|`.
        min_auc: Smallest tolerated lower end of the AUC interval.
        max_ece: Largest tolerated expected calibration error (warning).
        min_flag_auroc: Smallest tolerated AUROC of the epistemic uncertainty for attacks (warning).
        max_corrected_fooling_ratio: Largest tolerated corrected fooling ratio (warning).
    """

    max_budget: float = 1.0
    max_shift: float = 1.0
    min_auc: float = 0.6
    max_ece: float = 0.05
    min_flag_auroc: float = 0.6
    max_corrected_fooling_ratio: float = 0.05

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"DecisionRule.{key} must be positive, got {value}")

    def to_dict(self) -> dict[str, Any]:
        """The thresholds and the rule in words."""
        return {**asdict(self), "text": self.text()}

    def text(self) -> str:
        """The rule in words, for the report."""
        return (
            f"Not trustworthy if an attack within {self.max_budget:g}σ whose adversarial sample passes the "
            f"validation checks moves μ̂ by more than {self.max_shift:g} σ_μ, if a modelling variation moves "
            "μ̂ "
            f"by more than {self.max_shift:g} σ_μ, or if the lower end of the AUC interval is below "
            f"{self.min_auc:g}. Warnings (trustworthy within limits): an attack within {self.max_budget:g}σ "
            f"that fails the validation checks moving μ̂ by more than {self.max_shift:g} σ_μ, "
            f"ECE above {self.max_ece:g}, epistemic "
            f"uncertainty flagging attacked jets with AUROC below {self.min_flag_auroc:g}, corrected fooling "
            f"ratio at {self.max_budget:g}σ above {self.max_corrected_fooling_ratio:g}."
        )


@dataclass(frozen=True)
class Check:
    """One check of the decision rule.

    Attributes:
        name: Check name (``attack_shift``, ``auc``, ...).
        section: Section of the audit it belongs to.
        value: The measured value (``None`` when it could not be measured).
        threshold: The threshold of the rule.
        passed: Whether the check passed.
        severity: ``"fail"`` (decides "not trustworthy") or ``"warn"``.
        message: One line for the verdict and the report.
    """

    name: str
    section: str
    value: float | None
    threshold: float
    passed: bool
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields."""
        return asdict(self)


def verdict(checks: list[Check], rule: DecisionRule) -> str:
    """The verdict sentence from the checks (see the module docstring)."""
    fails = [c for c in checks if not c.passed and c.severity == "fail"]
    warns = [c for c in checks if not c.passed and c.severity != "fail"]
    if fails:
        return "not trustworthy: " + "; ".join(c.message for c in fails)
    if warns:
        return "trustworthy within limits: " + "; ".join(c.message for c in warns)
    return (
        f"trustworthy: no attack within {rule.max_budget:g}σ that passes the validation checks moves μ̂ by "
        f"more than {rule.max_shift:g} σ_μ, and every other check passed"
    )


def evaluate_checks(
    rule: DecisionRule,
    performance: Mapping[str, Any],
    measurement: Mapping[str, Any],
    uncertainty: Mapping[str, Any],
    detection: Mapping[str, Any] | None,
) -> list[Check]:
    """The checks of the decision rule (module docstring) from the sections of ``results.json``."""
    checks: list[Check] = []
    shifts = measurement["shifts"]
    within = [r for r in shifts if r.get("budget") is not None and r["budget"] <= rule.max_budget + 1e-12]
    passing = [r for r in within if r["passes_validation"] and r["delta_mu_over_sigma"] is not None]
    if passing:
        worst = max(passing, key=lambda r: abs(r["delta_mu_over_sigma"]))
        v = abs(worst["delta_mu_over_sigma"])
        ok = v <= rule.max_shift
        msg = (
            f"an attack within {rule.max_budget:g}σ that passes the validation checks ({worst['name']}) "
            f"moves μ̂ by {v:.2f} σ_μ" + ("" if ok else f" (> {rule.max_shift:g})")
        )
    else:
        v, ok = None, True
        msg = f"no attack within {rule.max_budget:g}σ passes the validation checks"
    checks.append(Check("attack_shift", "measurement", v, rule.max_shift, ok, "fail", msg))
    failing = [r for r in within if not r["passes_validation"] and r["delta_mu_over_sigma"] is not None]
    if failing:
        worst = max(failing, key=lambda r: abs(r["delta_mu_over_sigma"]))
        v = abs(worst["delta_mu_over_sigma"])
        ok = v <= rule.max_shift
        checks.append(
            Check(
                "attack_shift_visible",
                "measurement",
                v,
                rule.max_shift,
                ok,
                "warn",
                f"{worst['name']} moves μ̂ by {v:.2f} σ_μ"
                + ("" if ok else ", but its sample fails the validation checks (visible in data/simulation)"),
            )
        )
    var = [r for r in shifts if r.get("variation") is not None and r["delta_mu_over_sigma"] is not None]
    if var:
        worst = max(var, key=lambda r: abs(r["delta_mu_over_sigma"]))
        v = abs(worst["delta_mu_over_sigma"])
        checks.append(
            Check(
                "variation_shift",
                "measurement",
                v,
                rule.max_shift,
                v <= rule.max_shift,
                "fail",
                f"the modelling variation {worst['name']} moves μ̂ by {v:.2f} σ_μ",
            )
        )
    auc = performance["metrics"]["auc"]
    low = auc["low"]
    ok = low is not None and np.isfinite(low) and low >= rule.min_auc
    checks.append(
        Check(
            "auc",
            "performance",
            low,
            rule.min_auc,
            bool(ok),
            "fail",
            f"the AUC interval reaches down to {low:.3f} (< {rule.min_auc:g})"
            if not ok
            else f"AUC {auc['value']:.3f} (68% interval from {low:.3f})",
        )
    )
    ece = uncertainty["ece"]
    checks.append(
        Check(
            "calibration",
            "uncertainty",
            ece,
            rule.max_ece,
            ece <= rule.max_ece,
            "warn",
            f"the scores are miscalibrated (ECE {ece:.3f} > {rule.max_ece:g})"
            if ece > rule.max_ece
            else f"ECE {ece:.3f}",
        )
    )
    flag = uncertainty.get("attack_flag_auroc")
    if flag is not None:
        ok = flag >= rule.min_flag_auroc
        checks.append(
            Check(
                "uncertainty_flags_attacks",
                "uncertainty",
                flag,
                rule.min_flag_auroc,
                ok,
                "warn",
                f"the epistemic uncertainty flags fooled jets with AUROC {flag:.2f}"
                + ("" if ok else f" (< {rule.min_flag_auroc:g})"),
            )
        )
    if detection is not None and detection.get("corrected_fooling_ratio") is not None:
        cfr = float(detection["corrected_fooling_ratio"])
        ok = cfr <= rule.max_corrected_fooling_ratio
        checks.append(
            Check(
                "detection",
                "detection",
                cfr,
                rule.max_corrected_fooling_ratio,
                ok,
                "warn",
                f"{detection['attack']} fools {cfr:.1%} of the jets undetected"
                + ("" if ok else f" (> {rule.max_corrected_fooling_ratio:.0%})"),
            )
        )
    return checks
