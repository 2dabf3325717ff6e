r"""Figures of the LLM report: detection ROC, risk–coverage, reliability and perturbation curves.

Built with :func:`aalearn.core.plotting.new_figure` and :func:`~aalearn.core.plotting.style`
and, for the reliability diagram, :func:`aalearn.uncertainty.plots.plot_reliability`.

References:
    Y. Geifman, R. El-Yaniv, arXiv:1705.08500 (risk–coverage); C. Guo et al.,
    arXiv:1706.04599 (reliability diagrams); K. Zhu et al., arXiv:2306.04528 (robustness).

Example:
    >>> from aalearn.llm.evaluate import LLMEvaluation
    >>> recs = [{"correct": c, "scores": {"msp": u}} for c, u in [(1, 0.1), (0, 0.9), (1, 0.3), (0, 0.5)]]
    >>> ev = LLMEvaluation({"name": "m"}, "d", recs, ("msp",), {}, None, {}, 0.0)
    >>> len(plot_detection_roc(ev).axes)
    1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.llm.metrics import confidence_calibration, confidence_of, method_values, risk_coverage_curve
from aalearn.uncertainty.plots import plot_reliability

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from aalearn.llm.evaluate import LLMEvaluation, PerturbationStudy

__all__ = [
    "plot_confidence_reliability",
    "plot_detection_roc",
    "plot_perturbation_curves",
    "plot_risk_coverage",
]

_COLORS = (
    "#1f3f77",
    "#c8433a",
    "#2e8b57",
    "#e07b1a",
    "#7b4fa0",
    "#17a2b8",
    "#8c564b",
    "#e377c2",
    "#555555",
    "#bcbd22",
)


def _values(ev: LLMEvaluation, method: str) -> tuple[np.ndarray, np.ndarray]:
    return method_values(ev.records, method)


def plot_detection_roc(ev: LLMEvaluation) -> Figure:
    """ROC curves of every score for detecting wrong answers (true-positive = wrong answer flagged).

    Example:
        >>> fig = plot_detection_roc(ev)  # doctest: +SKIP
    """
    from sklearn.metrics import roc_curve

    with _style():
        fig = _new_figure((5.6, 4.8), "ROC: detecting wrong answers by uncertainty (higher score = flagged)")
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1.0, label="random")
        for i, m in enumerate(ev.methods):
            u, c = _values(ev, m)
            wrong = (c < 0.5).astype(int)
            if u.size == 0 or wrong.min() == wrong.max():
                continue
            fpr, tpr, _ = roc_curve(wrong, u)
            auc = ev.metrics.get(m, {}).get("auroc")
            label = f"{m} ({auc:.2f})" if isinstance(auc, float) else m
            ax.plot(fpr, tpr, color=_COLORS[i % len(_COLORS)], label=label, linewidth=1.4)
        ax.set_xlabel("false-positive rate (correct answers flagged)")
        ax.set_ylabel("true-positive rate (wrong answers flagged)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_risk_coverage(ev: LLMEvaluation) -> Figure:
    """Risk (error rate of answered questions) versus coverage for abstention by each score.

    Example:
        >>> fig = plot_risk_coverage(ev)  # doctest: +SKIP
    """
    with _style():
        fig = _new_figure((5.6, 4.8), "Risk–coverage: abstaining on the most uncertain questions")
        ax = fig.add_subplot()
        base = 1.0 - float(np.mean([r["correct"] for r in ev.records])) if ev.records else 0.0
        ax.axhline(base, color="#999999", linestyle="--", linewidth=1.0, label="no abstention")
        for i, m in enumerate(ev.methods):
            u, c = _values(ev, m)
            if u.size == 0:
                continue
            cov, risk = risk_coverage_curve(u, c)
            ax.plot(cov, risk, color=_COLORS[i % len(_COLORS)], label=m, linewidth=1.4)
        ax.set_xlabel("coverage (fraction answered)")
        ax.set_ylabel("risk (error rate of answered)")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    return fig


def plot_confidence_reliability(ev: LLMEvaluation, methods: tuple[str, ...] | None = None) -> Figure | None:
    """Reliability diagram of the normalised confidences as P(correct) (``None`` if no score has values).

    Example:
        >>> fig = plot_confidence_reliability(ev)  # doctest: +SKIP
    """
    chosen = (
        methods
        or tuple(m for m in ("msp", "perplexity", "semantic_entropy") if m in ev.methods)
        or ev.methods[:3]
    )
    curves: dict[str, Any] = {}
    for m in chosen:
        u, c = _values(ev, m)
        if u.size:
            conf = np.array([confidence_of(m, v) for v in u])
            curves[m] = confidence_calibration(conf, c, n_bins=10)[1]
    if not curves:
        return None
    fig = plot_reliability(curves, view="probability")
    fig.set_label("Reliability of the normalised confidences: fraction correct versus mean confidence")
    ax, ax_n = fig.axes[0], fig.axes[1]
    ax.set_ylabel("fraction of correct answers")
    ax_n.set_ylabel("questions / bin")
    ax_n.set_xlabel("mean confidence (normalised score)")
    return fig


def plot_perturbation_curves(study: PerturbationStudy) -> Figure:
    """Accuracy, flip rate and the first score's mean versus perturbation strength (one panel each).

    Example:
        >>> fig = plot_perturbation_curves(study)  # doctest: +SKIP
    """
    kinds: dict[str, list[dict[str, Any]]] = {}
    for row in study.rows:
        kinds.setdefault(row["perturbation"], []).append(row)
    score = study.methods[0] if study.methods else None
    with _style():
        fig = _new_figure((13.5, 4.2), "Robustness curves under prompt perturbations")
        axes = fig.subplots(1, 3)
        for i, (kind, rows) in enumerate(kinds.items()):
            rows = sorted(rows, key=lambda r: r["strength"])
            s = [r["strength"] for r in rows]
            color = _COLORS[i % len(_COLORS)]
            axes[0].plot(s, [r["accuracy"] for r in rows], "o-", color=color, label=kind)
            axes[1].plot(s, [r["flip_rate"] for r in rows], "o-", color=color, label=kind)
            if score is not None:
                vals = [r["mean_uncertainty"].get(score) for r in rows]
                axes[2].plot(s, [np.nan if v is None else v for v in vals], "o-", color=color, label=kind)
        axes[0].axhline(study.clean_accuracy, color="#999999", linestyle="--", linewidth=1.0, label="clean")
        if score is not None:
            clean = [r["scores"].get(score) for r in study.clean if r["scores"].get(score) is not None]
            if clean:
                axes[2].axhline(
                    float(np.mean(clean)), color="#999999", linestyle="--", linewidth=1.0, label="clean"
                )
        axes[0].set_ylabel("accuracy")
        axes[1].set_ylabel("answer flip rate")
        axes[2].set_ylabel(f"mean {score}" if score else "mean uncertainty")
        for ax in axes:
            ax.set_xlabel("strength (fraction, count or template index)")
            ax.legend(fontsize=7)
        axes[0].set_ylim(-0.02, 1.02)
        axes[1].set_ylim(-0.02, 1.02)
    return fig
