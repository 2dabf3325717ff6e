r"""The decision rule: may the surrogate replace the full simulation for this analysis?

**Rule** (also in ``docs/surrogates.md``). A surrogate is **safe** if and only if

1. every statistical check is compatible with the reference-versus-reference null
   after a multiple-testing correction of the whole family of checks at the stated
   level :math:`\alpha` (default 0.05; Holm's step-down method, which controls the
   family-wise error rate under any dependence, or Benjamini-Yekutieli, which controls
   the false-discovery rate under any dependence). The family is: ``fpd``, ``kpd``,
   ``corr`` (correlation-matrix difference), ``c2st``, ``w1:<feature>`` and
   ``ks:<feature>`` for every feature, and ``tail:<feature>:q<q>`` for every feature and
   extreme quantile. A statistical check passes when its adjusted p-value is at least
   :math:`\alpha`;
2. when a downstream closure test is given, its checks pass (``closure:*``: the bias of
   the measurement with surrogate templates, in units of its statistical error, below
   the tolerance stated by the closure test; pulls and coverage as it defines);
3. when the analysis states how many events it needs, the surrogate is worth at least
   that many: ``amplification:n_equiv`` passes when
   :math:`n_\mathrm{equiv} = p(1-p)/\mathrm{MSE} \ge` ``needed_events``
   (Butter et al., arXiv:2008.06545).

Otherwise the verdict is "not safe, because ..." naming every failing check with its
reason and, where known, the region of phase space (the classifier-weight map of the
C2ST, the most deviating quantile bin of a feature, the tail that is missed).

With a perfect surrogate the probability of a "not safe" verdict from part 1 is at
most :math:`\alpha` (Holm). Statistical checks answer "is a difference detectable with
these sample sizes?", not "is it large enough to matter": a huge sample makes every
imperfection significant, which is the conservative direction; tie the sample size
(or the tolerances of parts 2 and 3) to the analysis' own statistical power.

A :class:`Check` is the unit both halves of the suite exchange (the metrics here, the
closure and amplification tests of :mod:`aalearn.surrogates`); for statistical checks
``value`` is the adjusted p-value and ``threshold`` is :math:`\alpha`, for the others
they are physical quantities.

Example:
    >>> checks = statistical_checks(
    ...     ["fpd", "kpd"], [1e-5, 0.4], ["FPD 5.1σ above the null", "KPD compatible"], alpha=0.05
    ... )
    >>> verdict = Verdict.from_checks(checks, alpha=0.05, correction="holm")
    >>> verdict.safe, [c.name for c in verdict.failing_checks]
    (False, ['fpd'])
    >>> str(verdict).startswith("not safe, because fpd")
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.validation.checks import adjust_pvalues

__all__ = ["CORRECTIONS", "Check", "Verdict", "first_step_threshold", "statistical_checks"]

#: Multiple-testing corrections accepted by :func:`statistical_checks`.
CORRECTIONS: tuple[str, ...] = ("holm", "by")


@dataclass(frozen=True)
class Check:
    """One check entering the verdict.

    Attributes:
        name: ``"fpd"``, ``"kpd"``, ``"w1:jet_mass"``, ``"c2st"``, ``"closure:bias"``,
            ``"amplification:n_equiv"``, ...
        passed: Whether the check passed.
        value: The checked quantity (adjusted p-value for statistical checks).
        threshold: The threshold it was compared with (:math:`\\alpha` for statistical
            checks), or ``None``.
        detail: Human-readable reason, including the phase-space region when known.
    """

    name: str
    passed: bool
    value: float
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite values become ``None``).

        Example:
            >>> Check("fpd", True, 0.3, 0.05, "ok").to_dict()["threshold"]
            0.05
        """
        out: dict[str, Any] = to_jsonable(
            {
                "name": self.name,
                "passed": bool(self.passed),
                "value": float(self.value),
                "threshold": None if self.threshold is None else float(self.threshold),
                "detail": self.detail,
            }
        )
        return out


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def statistical_checks(
    names: Sequence[str],
    pvalues: Sequence[float],
    details: Sequence[str],
    *,
    alpha: float = 0.05,
    correction: str = "holm",
) -> list[Check]:
    """Checks from raw p-values, corrected together for multiple testing.

    NaN p-values (tests that could not be run, for example on a constant feature) are
    not part of the family and give passed checks whose detail says so.

    Args:
        names: Check names.
        pvalues: Raw p-values.
        details: Human-readable descriptions (the adjusted p-value is appended).
        alpha: Level of the corrected tests.
        correction: ``"holm"`` (family-wise error rate) or ``"by"`` (Benjamini-Yekutieli
            false-discovery rate).

    Returns:
        One :class:`Check` per name: ``value`` is the adjusted p-value, ``threshold`` ``alpha``.

    Raises:
        ValueError: For mismatched lengths, an unknown correction, or ``alpha`` outside (0, 1).

    Example:
        >>> [c.passed for c in statistical_checks(["a", "b"], [0.03, 0.2], ["", ""], alpha=0.05)]
        [True, True]
        >>> [c.passed for c in statistical_checks(["a", "b"], [0.001, 0.5], ["", ""], alpha=0.05)]
        [False, True]
    """
    alpha = _check_alpha(alpha)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {correction!r}")
    if not len(names) == len(pvalues) == len(details):
        raise ValueError(
            "names, pvalues and details must have the same length, "
            f"got {len(names)}, {len(pvalues)}, {len(details)}"
        )
    if len(set(names)) != len(names):
        raise ValueError("check names must be unique")
    raw = np.asarray(pvalues, dtype=np.float64)
    adjusted = adjust_pvalues(raw, method=correction) if raw.size else raw
    checks = []
    for name, p_raw, p_adj, detail in zip(names, raw, adjusted, details, strict=True):
        if math.isnan(p_adj):
            checks.append(Check(name, True, math.nan, alpha, f"{detail} (no test: constant feature)".strip()))
            continue
        passed = bool(p_adj >= alpha)
        verdict = "compatible with the null" if passed else "incompatible with the null"
        relation = ">=" if passed else "<"
        corrected = f"{correction}-adjusted p = {p_adj:.3g} {relation} {alpha:g}"
        text = f"{detail}; p = {p_raw:.3g}, {corrected}: {verdict}"
        checks.append(Check(name, passed, float(p_adj), alpha, text.lstrip("; ")))
    return checks


def first_step_threshold(n_tests: int, *, alpha: float = 0.05, correction: str = "holm") -> float:
    r"""Raw p-value the most significant of ``n_tests`` tests must fall below to fail after the correction.

    Holm's first step is Bonferroni's :math:`\alpha/m`; Benjamini-Yekutieli's is
    :math:`\alpha/(m\,c_m)` with :math:`c_m = \sum_{i=1}^m 1/i`. A test whose smallest
    attainable p-value lies above this threshold can fail only when other tests fail
    before it, never on its own.

    Example:
        >>> first_step_threshold(10, alpha=0.05)
        0.005
        >>> round(first_step_threshold(2, alpha=0.05, correction="by"), 6)
        0.016667
    """
    alpha = _check_alpha(alpha)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {correction!r}")
    m = max(int(n_tests), 1)
    if correction == "holm":
        return alpha / m
    return alpha / (m * float(np.sum(1.0 / np.arange(1, m + 1))))


@dataclass(frozen=True)
class Verdict:
    """Safe or not safe, with the checks behind it.

    Attributes:
        safe: Every check passed (module docstring).
        checks: All checks, in the order given.
        alpha: Level of the statistical checks.
        correction: Multiple-testing correction of the statistical checks.
    """

    safe: bool
    checks: tuple[Check, ...]
    alpha: float
    correction: str

    @classmethod
    def from_checks(
        cls, checks: Sequence[Check], *, alpha: float = 0.05, correction: str = "holm"
    ) -> Verdict:
        """Apply the rule: safe iff every check passed.

        Raises:
            ValueError: For no checks, duplicate names or items that are not :class:`Check`.

        Example:
            >>> Verdict.from_checks([Check("closure:bias", True, 0.05, 0.2, "|bias| = 0.05 σ")]).safe
            True
        """
        items = tuple(checks)
        if not items:
            raise ValueError("a verdict needs at least one check")
        bad = [type(c).__name__ for c in items if not isinstance(c, Check)]
        if bad:
            raise TypeError(f"checks must be aalearn.surrogates.verdict.Check objects, got {', '.join(bad)}")
        names = [c.name for c in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate check names: {', '.join(dupes)}")
        return cls(all(c.passed for c in items), items, _check_alpha(alpha), correction)

    @property
    def failing_checks(self) -> list[Check]:
        """The checks that failed, in order."""
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        """Why: the failing checks with their details, or what was checked."""
        if self.safe:
            return (
                f"all {len(self.checks)} checks passed (statistical checks at alpha = {self.alpha:g} after "
                f"{self.correction} correction)"
            )
        return "; ".join(f"{c.name} ({c.detail})" for c in self.failing_checks)

    def __str__(self) -> str:
        return f"safe: {self.reason}" if self.safe else f"not safe, because {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``safe``, ``verdict`` (text), ``failing_checks`` (names), ``checks``.

        Example:
            >>> Verdict.from_checks([Check("x", False, 0.0, 0.05, "bad")]).to_dict()["failing_checks"]
            ['x']
        """
        out: dict[str, Any] = to_jsonable(
            {
                "safe": bool(self.safe),
                "verdict": str(self),
                "alpha": self.alpha,
                "correction": self.correction,
                "failing_checks": [c.name for c in self.failing_checks],
                "checks": [c.to_dict() for c in self.checks],
            }
        )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per check, failing checks first.

        Example:
            >>> Verdict.from_checks([Check("x", False, 0.0, 0.05, "bad")]).summary()[0]["passed"]
            False
        """
        return [
            {
                "check": c.name,
                "passed": c.passed,
                "value": c.value,
                "threshold": c.threshold,
                "detail": c.detail,
            }
            for c in sorted(self.checks, key=lambda c: (c.passed, c.name))
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the ``"Surrogate verdict"`` section: the verdict, the decision rule and every check."""
        report.add_section(
            "Surrogate verdict",
            text=str(self)
            + "\n\nDecision rule: every statistical check compatible with the reference-versus-reference "
            f"null after {self.correction} correction at alpha = {self.alpha:g}, closure and "
            "amplification checks passed where given (docs/surrogates.md).",
            table=self.summary(),
        )
