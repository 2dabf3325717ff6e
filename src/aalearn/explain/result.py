"""``ExplanationResult``: what ``aalearn explain`` returns (implements :class:`aalearn.core.result.Result`).

``to_dict()`` is the ``--json`` object and ``results.json``; its keys are public:
``feature_importance`` (a list of ``{feature, importance, importance_sigma, ...}``, most
important first), ``groups`` (per feature kind and constituent rank),
``observable_correlations``, ``sanity`` (``completeness_error``,
``randomization_rank_correlation``, ``randomization_interpretation``, ``stability``),
``attacks``, ``n_jets``, ``method``, ``seconds``. ``add_to(report)`` writes the
"Explanations" section with its figures.

Example:
    >>> import numpy as np
    >>> from aalearn.explain.sanity import SanityReport
    >>> r = ExplanationResult(
    ...     method="saliency", baseline="zeros", steps=1, n_jets=2, seconds=0.1,
    ...     feature_names=["a", "b"], importance=np.array([1.0, 2.0]), importance_sigma=None,
    ...     mean_attribution=np.array([1.0, -2.0]), importance_by_class={},
    ...     groups=[("other", -1), ("other", -1)], observable_correlations={},
    ...     observable_interpretation="", sanity=SanityReport(None, None, "", None, "", None, 0))
    >>> r.to_dict()["feature_importance"][0]["feature"]
    'b'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.result import ReportBuilder
from aalearn.explain.attack import AttackExplanation
from aalearn.explain.plots import plot_attack_profile, plot_jet_images, plot_rank_profile, plot_top_features
from aalearn.explain.sanity import SanityReport

__all__ = ["ExplanationResult"]

FloatArray = npt.NDArray[np.float64]
_KINDS = ("pt", "eta", "phi")
_OBS_LABEL = {
    "jet_pt": "jet pT",
    "jet_mass": "jet mass",
    "multiplicity": "multiplicity",
    "width": "width (girth)",
    "lead_pt_frac": "leading pT fraction",
    "sublead_pt_frac": "subleading pT fraction",
    "tau21": "τ21",
    "tau32": "τ32",
    "sum_pt": "ΣpT",
}


def _f(value: Any) -> float | None:
    """Finite float or ``None`` (the JSON policy: non-finite -> null)."""
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) else None


@dataclass
class JetImageData:
    """Per-constituent positions and attribution weights for the (η, φ) images."""

    eta: FloatArray
    phi: FloatArray
    weight: FloatArray
    classes: npt.NDArray[np.int64]


@dataclass
class ExplanationResult:
    """Attributions, physics-level explanation, sanity checks and attack explanations.

    Attributes:
        method: Attribution method.
        baseline: Baseline description (``"zeros"``, ``"mean"`` or a file).
        steps: Path points / samples.
        n_jets: Jets explained.
        seconds: Wall time.
        feature_names: Column names, ``(F,)``.
        importance: Mean :math:`|A_i|` per feature (logit units).
        importance_sigma: Mean :math:`|\\partial_i z|\\,\\sigma_i` per feature, or ``None``
            without a resolution model for the layout.
        mean_attribution: Mean signed :math:`A_i` per feature.
        importance_by_class: ``{class: (F,)}`` mean :math:`|A_i|` per class.
        groups: ``(kind, constituent rank)`` of every column.
        observable_correlations: See :func:`aalearn.explain.observables.observable_correlations`.
        observable_interpretation: One sentence (pT-driven or substructure-driven).
        sanity: The sanity checks.
        attacks: Attack explanations (one per adversarial sample).
        class_source: ``"labels"`` or ``"predictions"`` (what the per-class split uses).
        class_names: Display names of the classes.
        images: Data of the jet-image figure (not serialised).
    """

    method: str
    baseline: str
    steps: int
    n_jets: int
    seconds: float
    feature_names: list[str]
    importance: FloatArray
    importance_sigma: FloatArray | None
    mean_attribution: FloatArray
    importance_by_class: dict[str, FloatArray]
    groups: list[tuple[str, int]]
    observable_correlations: dict[str, dict[str, Any]]
    observable_interpretation: str
    sanity: SanityReport
    attacks: list[AttackExplanation] = field(default_factory=list)
    class_source: str = "labels"
    class_names: dict[str, str] = field(default_factory=dict)
    images: JetImageData | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ derived
    def order(self) -> npt.NDArray[np.int64]:
        """Column indices, most important first."""
        out: npt.NDArray[np.int64] = np.argsort(-self.importance, kind="stable")
        return out

    def feature_importance(self) -> list[dict[str, Any]]:
        """One object per feature, most important first."""
        rows = []
        for i in self.order():
            kind, rank = self.groups[i]
            rows.append(
                {
                    "feature": self.feature_names[i],
                    "importance": _f(self.importance[i]),
                    "importance_sigma": None
                    if self.importance_sigma is None
                    else _f(self.importance_sigma[i]),
                    "mean_attribution": _f(self.mean_attribution[i]),
                    "importance_by_class": {k: _f(v[i]) for k, v in self.importance_by_class.items()},
                    "kind": kind,
                    "constituent": rank,
                }
            )
        return rows

    def group_summary(self) -> dict[str, Any]:
        """Importance summed per feature kind and per constituent rank, with shares of the total."""
        total = float(self.importance.sum()) or 1.0
        sig = self.importance_sigma
        total_sig = float(np.nansum(sig)) if sig is not None else 0.0
        kinds: dict[str, dict[str, float | None]] = {}
        for kind in dict.fromkeys(k for k, _ in self.groups):
            idx = [i for i, (k, _) in enumerate(self.groups) if k == kind]
            kinds[kind] = {
                "importance": _f(self.importance[idx].sum()),
                "share": _f(self.importance[idx].sum() / total),
                "share_sigma": _f(np.nansum(sig[idx]) / total_sig) if sig is not None and total_sig else None,
            }
        ranks = []
        for r in sorted({r for _, r in self.groups if r >= 0}):
            idx = [i for i, (_, g) in enumerate(self.groups) if g == r]
            row: dict[str, Any] = {
                "constituent": r,
                "importance": _f(self.importance[idx].sum()),
                "share": _f(self.importance[idx].sum() / total),
            }
            for kind in _KINDS:
                j = [i for i in idx if self.groups[i][0] == kind]
                row[kind] = _f(self.importance[j].sum()) if j else None
            ranks.append(row)
        return {"kind": kinds, "rank": ranks}

    # ------------------------------------------------------------------ Result protocol
    def to_dict(self) -> dict[str, Any]:
        """The JSON object (``--json`` and ``results.json``)."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "steps": self.steps,
            "n_jets": self.n_jets,
            "n_features": len(self.feature_names),
            "seconds": _f(self.seconds),
            "class_source": self.class_source,
            "feature_importance": self.feature_importance(),
            "groups": self.group_summary(),
            "observable_correlations": self.observable_correlations,
            "observable_interpretation": self.observable_interpretation,
            "sanity": self.sanity.to_dict(),
            "attacks": [a.to_dict() for a in self.attacks],
        }

    def summary(self) -> list[dict[str, Any]]:
        """Terminal rows: the ten most important features."""
        return [
            {
                "feature": row["feature"],
                "mean |attribution|": row["importance"],
                "σ units": row["importance_sigma"],
                "mean attribution": row["mean_attribution"],
            }
            for row in self.feature_importance()[:10]
        ]

    def sanity_rows(self) -> dict[str, Any]:
        """The sanity checks as one table (human keys)."""
        s = self.sanity
        return {
            "IG completeness error (relative)": s.completeness_error,
            "IG completeness error (median per jet)": s.completeness_error_median,
            "randomisation rank correlation": s.randomization_rank_correlation,
            "randomisation test": s.randomization_interpretation.split(":")[0],
            "stability (relative change at 0.1σ)": s.stability,
            "jets in the checks": s.n_jets,
        }

    def observable_rows(self) -> list[dict[str, Any]]:
        """One row per observable (human column headers)."""
        rows = []
        for name, e in self.observable_correlations.items():
            fixed = e.get("at_fixed_sum_pt", {})
            rows.append(
                {
                    "observable": _OBS_LABEL.get(name, name),
                    "Pearson r": _f(e.get("pearson")),
                    "Spearman ρ": _f(e.get("spearman")),
                    "mutual information (nats)": _f(e.get("mutual_information")),
                    "Spearman ρ at fixed ΣpT": _f(fixed.get("spearman")),
                    "mutual information at fixed ΣpT": _f(fixed.get("mutual_information")),
                }
            )
        return rows

    def add_to(self, report: ReportBuilder) -> None:
        """The "Explanations" section, its sanity checks, the physics observables and the attacks."""
        figures: list[Any] = [
            plot_top_features(self.feature_names, self.importance, self.importance_sigma),
        ]
        if self.images is not None:
            im = self.images
            figures.append(
                plot_jet_images(im.eta, im.phi, im.weight, im.classes, class_names=self.class_names)
            )
        ranks = sorted({r for _, r in self.groups if r >= 0})
        if ranks:
            by_rank = {
                kind: [
                    float(sum(self.importance[i] for i, g in enumerate(self.groups) if g == (kind, r)))
                    if (kind, r) in self.groups
                    else float("nan")
                    for r in ranks
                ]
                for kind in _KINDS
            }
            figures.append(plot_rank_profile(by_rank, ranks))
        kinds = self.group_summary()["kind"]
        shares = ", ".join(f"{k}: {v['share']:.0%}" for k, v in kinds.items() if v["share"] is not None)
        text = (
            f"{self.method} attributions of the logit for {self.n_jets} jets (baseline {self.baseline}, "
            f"{self.steps} steps). Share of the total mean |attribution| per feature kind: {shares}. "
            f"Physics: {self.observable_interpretation}. "
            f"Randomisation test: {self.sanity.randomization_interpretation}."
        )
        table = [
            {
                "feature": r["feature"],
                "mean |attribution| (logit)": r["importance"],
                "logit change per 1σ": r["importance_sigma"],
                "mean signed attribution": r["mean_attribution"],
                **{
                    f"mean |attribution|, class {self.class_names.get(k, k)}": v
                    for k, v in r["importance_by_class"].items()
                },
            }
            for r in self.feature_importance()[:15]
        ]
        report.add_section("Explanations", text=text, table=table, figures=figures, anchor="explanations")
        report.add_section(
            "Explanation sanity checks",
            text=f"Randomisation test: {self.sanity.randomization_interpretation}.",
            table=self.sanity_rows(),
        )
        if self.observable_correlations:
            report.add_section(
                "Physics-level explanation: model output versus jet observables",
                text=self.observable_interpretation,
                table=self.observable_rows(),
            )
        if self.attacks:
            report.add_section(
                "Attack explanations",
                text="Mean |δ|/σ among successful adversarial jets, and the overlap (Jaccard index) of the "
                "most-attacked and the most-attributed features.",
                table=[
                    {
                        "attack": a.name,
                        "successful jets": a.n_successful,
                        **{f"mean |δ|/σ ({k})": v for k, v in a.per_kind.items()},
                        "most-attacked features": ", ".join(a.top_attacked[:5]),
                        f"top-{a.top_k} overlap": a.overlap,
                    }
                    for a in self.attacks
                ],
                figures=[plot_attack_profile({a.name: a.per_rank for a in self.attacks})],
            )
