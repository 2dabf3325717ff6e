r"""Per-question scoring and the result objects of an LLM evaluation and a perturbation study.

The pillar half of ``aalearn llm evaluate`` and ``aalearn llm perturb`` (the workflows
that read a question set, run it through a backend — on Dask when asked — and write the
files are in :mod:`aalearn.apps.llm`):

* :func:`score_one` answers and scores one question, with the epistemic/aleatoric split
  when asked; :func:`answer_record` turns it into the per-question record of a result;
* :class:`LLMEvaluation` holds the records and the detection metrics of every score
  (:mod:`aalearn.llm.metrics`: AUROC, PRR, AURC, ECE);
* :func:`robustness_row` computes one point of the robustness curves (accuracy, flip rate,
  PDR, Cohen's h and the score shifts) and :class:`PerturbationStudy` holds them;
* both results implement :class:`aalearn.core.result.Result` (``to_dict``, ``summary``,
  ``add_to``), and :func:`add_llm_sections` adds their report sections.

Example:
    >>> recs = [{"id": i, "category": "c", "question": "q", "gold": "g", "answer": "a",
    ...          "correct": c, "scores": {"msp": u}, "seconds_generation": 0.0, "seconds_scoring": 0.0}
    ...         for i, (c, u) in enumerate([(True, 0.1), (False, 0.9)])]
    >>> from aalearn.llm.metrics import score_metrics
    >>> metrics = {"msp": score_metrics(recs, "msp")}
    >>> ev = LLMEvaluation({"name": "m"}, "d", recs, ("msp",), metrics, None, {}, 0.0)
    >>> ev.to_dict()["auroc"], ev.summary()[0]["auroc"]
    ({'msp': 1.0}, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aalearn.core.result import ReportBuilder
from aalearn.llm import plots
from aalearn.llm.backends import Backend, SamplingConfig
from aalearn.llm.datasets import QAItem
from aalearn.llm.decomposition import (
    input_ensemble_decomposition,
    iterative_prompting_decomposition,
    remainder_name,
)
from aalearn.llm.metrics import auroc_wrong, cohens_h
from aalearn.llm.scores import QUESTION_TEMPLATE, ScoredAnswer, score_question
from aalearn.llm.semantic import EntailmentBackend

__all__ = [
    "LLMEvaluation",
    "LLMRun",
    "PerturbationStudy",
    "add_llm_sections",
    "answer_record",
    "robustness_row",
    "score_one",
]

_METRIC_KEYS = ("auroc", "prr", "prr_50", "aurc", "ece")


# --------------------------------------------------------------------------- one question
def score_one(
    backend: Backend,
    question: str,
    *,
    methods: Sequence[str] | str | None = None,
    entailment: EntailmentBackend | None = None,
    config: SamplingConfig | None = None,
    template: str = QUESTION_TEMPLATE,
    decomposition: str | None = None,
    variants: Sequence[str] = (),
    tolerance: tuple[float, float, str | None] | None = None,
    count_repeats: bool = False,
    retry_truncated: int = 0,
) -> ScoredAnswer:
    """Answer and score one question; add the epistemic/aleatoric split when asked.

    Args:
        backend: The model.
        question: The question.
        methods: Score names (``None``: all).
        entailment: Entailment backend (needed by the clustering methods and any decomposition).
        config: Sampling settings.
        template: Prompt template.
        decomposition: ``None``, ``"paraphrase"``, ``"clarification"`` or ``"iterative"``.
        variants: The clarified questions (``"clarification"``; none: the split is skipped
            with a note).
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question for the quantity check of
            the clustering (:attr:`aalearn.llm.datasets.QAItem.tolerance`).
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).
        retry_truncated: Retries of a truncated greedy answer with a doubled token budget.

    Returns:
        The :class:`~aalearn.llm.scores.ScoredAnswer`, its ``decomposition`` set (without
        ``details``) when a split was computed.

    Raises:
        ValueError: For a decomposition without an entailment backend.

    Example:
        >>> score_one(backend, "What is 2 + 2?", methods="msp").answer  # doctest: +SKIP
        '4'
    """
    result = score_question(
        backend,
        question,
        methods=methods,
        entailment=entailment,
        config=config,
        template=template,
        tolerance=tolerance,
        count_repeats=count_repeats,
        retry_truncated=retry_truncated,
    )
    if decomposition is None:
        return result
    if entailment is None:
        raise ValueError("the decomposition needs an entailment backend")
    if decomposition == "iterative":
        d = iterative_prompting_decomposition(
            backend,
            question,
            entailment=entailment,
            config=config,
            template=template,
            tolerance=tolerance,
            weighting="likelihood" if backend.supports_logprobs else "frequency",
        )
    elif decomposition == "clarification" and not variants:
        result.notes.append("decomposition: the question has no clarifications")
        return result
    else:
        d = input_ensemble_decomposition(
            backend,
            question,
            entailment=entailment,
            varied=decomposition,
            variants=list(variants) or None,
            config=config,
            template=template,
            tolerance=tolerance,
        )
    result.decomposition = d.to_dict()
    details = result.decomposition.pop("details", {})
    result.decomposition["diagnostics"] = {  # small diagnostics kept; the sampled texts are dropped
        k: v
        for k, v in details.items()
        if k
        in (
            "n_distinct_tuples",
            "weighting",
            "length_normalized",
            "plugin_total",
            "plugin_mutual_information",
            "null_mean_mutual_information",
            "mutual_information_p_value",
            "tuples",
            "joint",
            "pairs",
        )
    }
    return result


def answer_record(item: QAItem, res: ScoredAnswer) -> dict[str, Any]:
    """The per-question record of a result: the item, the answer, its correctness and scores.

    Decomposition parts become scores named ``"<varied>_epistemic"`` and
    ``"<varied>_aleatoric"`` (``"iterative_conditional_entropy"`` for iterative prompting). A
    truncated answer (it hit the token budget) is graded as wrong and flagged ``truncated``.

    Example:
        >>> answer_record(item, scored)["correct"]  # doctest: +SKIP
        True
    """
    scores = dict(res.scores)
    if res.decomposition is not None:
        varied = res.decomposition["varied"]
        rest = remainder_name(varied)
        scores[f"{varied}_epistemic"] = res.decomposition["epistemic"]
        scores[f"{varied}_{rest}"] = res.decomposition[rest]
    return {
        "id": item.id,
        "category": item.category,
        "question": item.question,
        "gold": item.gold,
        "answer": res.answer,
        "correct": (not res.truncated) and item.is_correct(res.answer),
        "truncated": res.truncated,
        "finish_reason": res.finish_reason,
        "truncated_samples": res.truncated_samples,
        "approximate_scores": res.approximate_scores,
        "scores": scores,
        "samples": res.samples,
        "cluster_ids": res.cluster_ids,
        "decomposition": res.decomposition,
        "notes": res.notes,
        "seconds_generation": res.seconds_generation,
        "seconds_scoring": res.seconds_scoring,
    }


def _interval(metrics: dict[str, Any], key: str) -> str | None:
    """``"[lo, hi]"`` of a metric's bootstrap interval (``None`` when undefined)."""
    ci = (metrics.get("ci") or {}).get(key)
    return None if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


@dataclass
class LLMEvaluation:
    """Result of :func:`aalearn.apps.llm.evaluate_model` (a :class:`~aalearn.core.result.Result`).

    Attributes:
        model: Backend description.
        dataset: Dataset name or path.
        records: Per question: id, category, question, gold, answer, correct, scores, …
        methods: Score names evaluated (decomposition parts appear as ``"<varied>_epistemic"``
            and ``"<varied>_aleatoric"``).
        metrics: Method → ``{"auroc", "prr", "prr_50", "aurc", "ece", "mean", "n"}``.
        entailment: Entailment backend description (``None`` if unused).
        config: Sampling settings.
        seconds: Wall time.
        notes: Remarks (approximations, missing scores).
    """

    model: dict[str, Any]
    dataset: str
    records: list[dict[str, Any]]
    methods: tuple[str, ...]
    metrics: dict[str, dict[str, Any]]
    entailment: dict[str, Any] | None
    config: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Fraction of correct greedy answers."""
        return float(np.mean([r["correct"] for r in self.records])) if self.records else math.nan

    def to_dict(self, *, per_question: bool = True) -> dict[str, Any]:
        """JSON-serialisable summary (keys ``accuracy``, ``auroc``, ``prr`` per method, ``seconds``, …)."""
        cats: dict[str, list[bool]] = {}
        for r in self.records:
            cats.setdefault(r["category"], []).append(bool(r["correct"]))
        out: dict[str, Any] = {
            "model": self.model.get("name"),
            "backend": self.model,
            "dataset": self.dataset,
            "n_questions": len(self.records),
            "accuracy": self.accuracy,
            "accuracy_by_category": {k: float(np.mean(v)) for k, v in cats.items()},
            "methods": list(self.methods),
            "auroc": {m: self.metrics[m]["auroc"] for m in self.methods},
            "prr": {m: self.metrics[m]["prr"] for m in self.methods},
            "prr_50": {m: self.metrics[m]["prr_50"] for m in self.methods},
            "aurc": {m: self.metrics[m]["aurc"] for m in self.methods},
            "ece": {m: self.metrics[m]["ece"] for m in self.methods},
            "intervals": {m: self.metrics[m].get("ci") for m in self.methods},
            "interval_level": 0.95,
            "small_sample": any(self.metrics[m].get("small_sample") for m in self.methods),
            "n_truncated": int(sum(bool(r.get("truncated")) for r in self.records)),
            "metrics": self.metrics,
            "entailment": self.entailment,
            "approximate_entailment": bool(self.entailment and self.entailment.get("approximate")),
            "config": self.config,
            "seconds": self.seconds,
            "seconds_generation": float(sum(r["seconds_generation"] for r in self.records)),
            "seconds_scoring": float(sum(r["seconds_scoring"] for r in self.records)),
            "notes": list(self.notes),
        }
        if per_question:
            out["questions"] = self.records
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per score: AUROC, PRR, PRR@50 %, AURC and ECE, with the 95 % intervals."""
        return [
            {
                "score": m,
                **{k: self.metrics[m][k] for k in _METRIC_KEYS},
                **{f"{k}_95": _interval(self.metrics[m], k) for k in ("auroc", "prr", "ece")},
                "n": self.metrics[m]["n"],
            }
            for m in self.methods
        ]

    def add_to(self, report: ReportBuilder, *, max_rows: int = 40) -> None:
        """The hallucination-detection section (metrics table and figures) and the answers table.

        Args:
            report: The report.
            max_rows: Questions shown in the per-question table.
        """
        d = self.to_dict(per_question=False)
        ent = self.entailment
        text = (
            f"Model {d['model']} answered {d['n_questions']} questions of {self.dataset}; "
            f"accuracy {d['accuracy']:.3f}. Scores follow one contract: higher = more uncertain. "
            "AUROC: detection of wrong answers; PRR: prediction-rejection ratio (0 = random rejection, "
            "1 = oracle), PRR@50 % over the first half of the rejection curve; AURC: area under the "
            "risk–coverage curve (lower is better); ECE of the normalised confidences. Brackets: 95 % "
            "percentile-bootstrap intervals (questions resampled)."
        )
        if d["small_sample"]:
            text += (
                "\n\nWARNING: small sample (fewer than 50 questions, or fewer than 10 wrong or right "
                "answers): the metrics are indicative only."
            )
        if d["n_truncated"]:
            text += (
                f"\n\n{d['n_truncated']} answers hit the token budget (truncated) and are graded as wrong."
            )
        if ent is not None:
            text += f"\n\nMeaning clusters: {ent['name']}."
            if ent.get("approximate"):
                text += " This is an APPROXIMATION of bidirectional entailment (not an NLI model)."
        if self.notes:
            text += "\n\nNotes: " + "; ".join(self.notes[:8])
        table = [
            {
                "score": m,
                "AUROC": self.metrics[m]["auroc"],
                "AUROC 95%": _interval(self.metrics[m], "auroc"),
                "PRR": self.metrics[m]["prr"],
                "PRR 95%": _interval(self.metrics[m], "prr"),
                "PRR@50%": self.metrics[m]["prr_50"],
                "AURC": self.metrics[m]["aurc"],
                "ECE": self.metrics[m]["ece"],
                "ECE 95%": _interval(self.metrics[m], "ece"),
                "questions": self.metrics[m]["n"],
            }
            for m in self.methods
        ]
        figs = []
        if 0 < sum(r["correct"] for r in self.records) < len(self.records):
            figs += [plots.plot_detection_roc(self), plots.plot_risk_coverage(self)]
        rel = plots.plot_confidence_reliability(self)
        if rel is not None:
            figs.append(rel)
        report.add_section("LLM hallucination detection", text=text, table=table, figures=figs)
        rows = [
            {
                "id": r["id"],
                "question": r["question"],
                "gold": r["gold"],
                "answer": r["answer"],
                "correct": r["correct"],
                **{m: r["scores"].get(m) for m in self.methods[:4]},
            }
            for r in self.records[:max_rows]
        ]
        report.add_section("LLM answers", table=rows)


@dataclass
class PerturbationStudy:
    """Result of :func:`aalearn.apps.llm.perturbation_study` (a :class:`~aalearn.core.result.Result`).

    Attributes:
        model: Backend description.
        clean: Per question: answer, correct, scores on the clean question.
        rows: One per (perturbation, strength): ``accuracy``, ``flip_rate``, ``pdr``,
            ``cohens_h``, ``mean_uncertainty`` and ``uncertainty_shift`` per method, and
            ``flip_auroc`` (AUROC of the perturbed question's score for "the answer flipped").
        methods: Score names.
        seconds: Wall time.
        notes: Remarks.
    """

    model: dict[str, Any]
    clean: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    methods: tuple[str, ...]
    seconds: float
    entailment: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def clean_accuracy(self) -> float:
        """Accuracy on the unperturbed questions."""
        return float(np.mean([r["correct"] for r in self.clean])) if self.clean else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "model": self.model.get("name"),
            "backend": self.model,
            "n_questions": len(self.clean),
            "clean_accuracy": self.clean_accuracy,
            "methods": list(self.methods),
            "curves": self.rows,
            "clean": self.clean,
            "entailment": self.entailment,
            "seconds": self.seconds,
            "notes": self.notes,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per (perturbation, strength), with the shifts of the first two scores."""
        return [
            {
                "perturbation": r["perturbation"],
                "strength": r["strength"],
                "accuracy": r["accuracy"],
                "flip_rate": r["flip_rate"],
                "pdr": r["pdr"],
                "cohens_h": r["cohens_h"],
                **{f"Δ{m}": r["uncertainty_shift"].get(m) for m in self.methods[:2]},
            }
            for r in self.rows
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """The robustness section: table and curves versus perturbation strength."""
        rows = [
            {
                "perturbation": r["perturbation"],
                "strength": r["strength"],
                "accuracy": r["accuracy"],
                "flip rate": r["flip_rate"],
                "PDR": r["pdr"],
                "Cohen's h": r["cohens_h"],
                **{f"Δ {m}": r["uncertainty_shift"].get(m) for m in self.methods[:3]},
            }
            for r in self.rows
        ]
        text = (
            f"Clean accuracy {self.clean_accuracy:.3f} on {len(self.clean)} questions. "
            "Flip rate: fraction of answers that changed meaning; PDR = 1 − acc/acc_clean; Cohen's h = "
            "2 asin√acc_clean − 2 asin√acc; Δ: mean change of each uncertainty score."
        )
        if self.notes:
            text += "\n\nNotes: " + "; ".join(self.notes)
        report.add_section(
            "LLM robustness under prompt perturbations",
            text=text,
            table=rows,
            figures=[plots.plot_perturbation_curves(self)],
        )


# --------------------------------------------------------------------------- perturbation point
def robustness_row(
    perturbation: str,
    strength: float,
    clean: Sequence[dict[str, Any]],
    perturbed: Sequence[dict[str, Any]],
    flips: Sequence[bool],
    methods: Sequence[str],
) -> dict[str, Any]:
    """One point of the robustness curves: accuracy, flip rate, PDR, Cohen's h and score shifts.

    Args:
        perturbation: Perturbation name.
        strength: Its strength.
        clean: Records (:func:`answer_record`) of the clean questions.
        perturbed: Records of the perturbed questions, in the same order, each with its
            ``"perturbed_question"``.
        flips: Per question, whether the perturbed answer changed meaning.
        methods: Score names followed.

    Returns:
        ``perturbation``, ``strength``, ``accuracy``, ``flip_rate``, ``pdr`` (``None`` at zero
        clean accuracy), ``cohens_h``, per method ``mean_uncertainty``, ``uncertainty_shift``
        and ``flip_auroc`` (AUROC of the perturbed score for "the answer flipped"), and three
        ``examples``.

    Example:
        >>> c = [{"correct": True, "scores": {"msp": 0.1}}, {"correct": False, "scores": {"msp": 0.5}}]
        >>> p = [{"correct": False, "scores": {"msp": 0.4}, "perturbed_question": "q?"},
        ...      {"correct": False, "scores": {"msp": 0.5}, "perturbed_question": "r?"}]
        >>> row = robustness_row("typo", 0.1, c, p, [True, False], ["msp"])
        >>> row["accuracy"], row["flip_rate"], row["pdr"], row["flip_auroc"]["msp"]
        (0.0, 0.5, 1.0, 0.0)
    """
    acc_clean = float(np.mean([r["correct"] for r in clean]))
    acc = float(np.mean([r["correct"] for r in perturbed]))
    row: dict[str, Any] = {
        "perturbation": perturbation,
        "strength": strength,
        "accuracy": acc,
        "flip_rate": float(np.mean(flips)),
        "pdr": (1.0 - acc / acc_clean) if acc_clean > 0 else None,
        "cohens_h": cohens_h(acc_clean, acc),
        "mean_uncertainty": {},
        "uncertainty_shift": {},
        "flip_auroc": {},
        "examples": [r["perturbed_question"] for r in perturbed[:3]],
    }
    for m in methods:
        pairs = [
            (c["scores"].get(m), r["scores"].get(m), f)
            for c, r, f in zip(clean, perturbed, flips, strict=True)
            if c["scores"].get(m) is not None and r["scores"].get(m) is not None
        ]
        if not pairs:
            row["mean_uncertainty"][m] = row["uncertainty_shift"][m] = row["flip_auroc"][m] = None
            continue
        before = np.array([a for a, _, _ in pairs], dtype=np.float64)
        after = np.array([b for _, b, _ in pairs], dtype=np.float64)
        flipped = np.array([f for _, _, f in pairs], dtype=np.float64)
        row["mean_uncertainty"][m] = float(after.mean())
        row["uncertainty_shift"][m] = float((after - before).mean())
        row["flip_auroc"][m] = auroc_wrong(after, 1.0 - flipped)
    return row


# --------------------------------------------------------------------------- report
@dataclass
class LLMRun:
    """An evaluation and/or a perturbation study written together (``results.json`` + ``report.html``).

    ``to_dict()`` is ``{"evaluation": ..., "perturbation": ...}`` (the parts present).

    Raises:
        ValueError: If neither part is given.

    Example:
        >>> LLMRun().to_dict()
        Traceback (most recent call last):
        ...
        ValueError: LLMRun needs an evaluation or a perturbation study
    """

    evaluation: LLMEvaluation | None = None
    perturbation: PerturbationStudy | None = None

    def _check(self) -> None:
        if self.evaluation is None and self.perturbation is None:
            raise ValueError("LLMRun needs an evaluation or a perturbation study")

    @property
    def model_name(self) -> str:
        """Name of the model (``"?"`` when unknown)."""
        source = self.evaluation if self.evaluation is not None else self.perturbation
        return str(source.model.get("name")) if source is not None else "?"

    def to_dict(self) -> dict[str, Any]:
        """``{"evaluation": ..., "perturbation": ...}`` with the parts present."""
        self._check()
        payload: dict[str, Any] = {}
        if self.evaluation is not None:
            payload["evaluation"] = self.evaluation.to_dict()
        if self.perturbation is not None:
            payload["perturbation"] = self.perturbation.to_dict()
        return payload

    def summary(self) -> list[dict[str, Any]]:
        """The evaluation's rows, then the perturbation study's."""
        self._check()
        rows: list[dict[str, Any]] = []
        if self.evaluation is not None:
            rows += self.evaluation.summary()
        if self.perturbation is not None:
            rows += self.perturbation.summary()
        return rows

    def add_to(self, report: ReportBuilder) -> None:
        """The sections of :func:`add_llm_sections`."""
        add_llm_sections(report, self.evaluation, self.perturbation)


def add_llm_sections(
    report: ReportBuilder,
    evaluation: LLMEvaluation | None = None,
    perturbation: PerturbationStudy | None = None,
    *,
    max_rows: int = 40,
) -> None:
    """Add the LLM sections to a report (an :class:`aalearn.report.Report`).

    Evaluation: a summary (model, accuracy, entailment backend, approximations), the
    metrics table per score, ROC curves for detecting wrong answers, risk–coverage curves,
    a reliability diagram of the normalised confidences and the per-question table.
    Perturbation: the robustness table and curves (accuracy, flip rate and mean
    uncertainty versus strength).

    Args:
        report: The report.
        evaluation: Result of :func:`aalearn.apps.llm.evaluate_model`.
        perturbation: Result of :func:`aalearn.apps.llm.perturbation_study`.
        max_rows: Questions shown in the per-question table.

    Raises:
        ValueError: If neither result is given.

    Example:
        >>> add_llm_sections(report, evaluation=ev)  # doctest: +SKIP
    """
    if evaluation is None and perturbation is None:
        raise ValueError("add_llm_sections needs an evaluation or a perturbation study")
    if evaluation is not None:
        evaluation.add_to(report, max_rows=max_rows)
    if perturbation is not None:
        perturbation.add_to(report)
