r"""Does the uncertainty of a language model detect its wrong answers? Metrics, workflows and report.

Metrics, for a question set with gold answers (quality :math:`q_i \in \{0, 1\}`: the
greedy answer is correct) and an uncertainty score :math:`u_i` per question:

* **AUROC** of :math:`u` for detecting wrong answers (0.5 = chance, 1 = perfect);
* **PRR**, the prediction-rejection ratio (Malinin & Gales; lm-polygraph's normalised
  ``PredictionRejectionArea``): reject the most uncertain questions first; the area under
  the curve of the mean quality of the kept questions versus the rejected fraction,
  normalised between random rejection (0) and the oracle that rejects wrong answers first (1):

  .. math::

      \mathrm{PRR} = \frac{\mathrm{AUC}_u - \mathrm{AUC}_\text{random}}
                          {\mathrm{AUC}_\text{oracle} - \mathrm{AUC}_\text{random}} .

  The area is the mean over the rejection levels :math:`0, 1/n, \dots` up to
  ``max_rejection`` (``prr``: all; ``prr_50``: the first half, as recent papers report,
  arXiv:2505.20045). The random baseline is its exact expectation (the mean quality at
  every level) rather than an average over permutations; ties in :math:`u` are resolved by
  their expectation too (each tied group contributes its mean quality);
* **risk–coverage** curves for abstention (risk = error rate among the answered
  questions, coverage = fraction answered) and their area **AURC** (lower is better);
* **calibration** of the normalised confidences (:func:`aalearn.llm.scores.confidence`)
  as :math:`P(\text{correct})`: ECE over equal-width bins of the confidence, computed from
  :func:`aalearn.uncertainty.reliability_curve` (its probability view).

Workflows used by the command line: :func:`score_many` (questions through
:func:`aalearn.core.parallel.map_tasks`, so ``workers``/``scheduler`` run them on Dask),
:func:`evaluate_model` (``aalearn llm evaluate``) and :func:`perturbation_study`
(``aalearn llm perturb``: flip rate, accuracy, performance-drop rate PDR and Cohen's h per
perturbation strength, and how the scores move), and :func:`add_llm_sections` for reports.

References:
    A. Malinin, M. Gales, "Uncertainty Estimation in Autoregressive Structured
    Prediction", ICLR 2021, arXiv:2002.07650 (prediction rejection ratio).

    R. Vashurin et al., "Benchmarking Uncertainty Quantification Methods for Large Language
    Models with LM-Polygraph", TACL 2025, arXiv:2406.15627.

    Y. Geifman, R. El-Yaniv, "Selective Classification for Deep Neural Networks", NeurIPS
    2017, arXiv:1705.08500 (risk–coverage).

    K. Zhu et al., arXiv:2306.04528 (PDR); J. Cohen, "Statistical Power Analysis for the
    Behavioral Sciences" (1988) (Cohen's h).

Example:
    >>> correct = np.array([1, 1, 0, 0, 1, 0])
    >>> prediction_rejection_ratio(1 - correct, correct)  # the oracle's own ranking
    1.0
    >>> auroc_wrong(np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7]), correct)
    1.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.parallel import map_tasks
from aalearn.llm.backends import Backend, SamplingConfig, load_backend
from aalearn.llm.datasets import QAItem, load_dataset
from aalearn.llm.decomposition import (
    DECOMPOSITIONS,
    input_ensemble_decomposition,
    iterative_prompting_decomposition,
)
from aalearn.llm.perturb import DEFAULT_STRENGTHS, check_perturbations, perturb
from aalearn.llm.scores import (
    ENTAILMENT_METHODS,
    QUESTION_TEMPLATE,
    SCORES,
    WHITE_BOX_METHODS,
    ScoredAnswer,
    check_methods,
    score_question,
)
from aalearn.llm.semantic import EntailmentBackend, load_entailment

__all__ = [
    "LLMEvaluation",
    "PerturbationStudy",
    "add_llm_sections",
    "auroc_wrong",
    "cohens_h",
    "confidence_calibration",
    "evaluate_model",
    "perturbation_study",
    "prediction_rejection_ratio",
    "rejection_curve",
    "risk_coverage_curve",
    "score_many",
    "write_llm_report",
]

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- metrics
def _paired(uncertainty: Any, quality: Any) -> tuple[FloatArray, FloatArray]:
    u = np.asarray(uncertainty, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if u.ndim != 1 or q.ndim != 1 or u.size != q.size:
        raise ValueError(
            f"uncertainty and quality must be 1-d of equal length, got shapes {u.shape} and {q.shape}"
        )
    if u.size == 0:
        raise ValueError("no questions to evaluate")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(q))):
        raise ValueError("uncertainty and quality must be finite (drop questions whose score is missing)")
    return u, q


def _tie_averaged(u: FloatArray, q: FloatArray) -> FloatArray:
    """Qualities in increasing order of ``u``, each tied group replaced by its mean (expected value
    under random tie-breaking)."""
    order = np.argsort(u, kind="stable")
    us, qs = u[order], q[order].copy()
    _, start, counts = np.unique(us, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        if c > 1:
            qs[s : s + c] = qs[s : s + c].mean()
    return qs


def rejection_curve(
    uncertainty: npt.ArrayLike, quality: npt.ArrayLike, *, max_rejection: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Mean quality of the kept questions versus the fraction rejected (most uncertain first).

    Args:
        uncertainty: Score per question (higher = more uncertain).
        quality: Quality per question (1 = correct).
        max_rejection: Largest rejected fraction in (0, 1].

    Returns:
        ``(rejected_fraction, mean_quality)``: levels :math:`0, 1/n, \\dots` (at least one).

    Example:
        >>> rejection_curve([0.1, 0.9], [1, 0])[1].tolist()
        [0.5, 1.0]
    """
    if not isinstance(max_rejection, (int, float)) or not 0.0 < max_rejection <= 1.0:
        raise ValueError(f"max_rejection must lie in (0, 1], got {max_rejection!r}")
    u, q = _paired(uncertainty, quality)
    n = u.size
    n_levels = max(1, int(max_rejection * n))
    qs = _tie_averaged(u, q)
    cums = np.cumsum(qs)
    kept = np.arange(n, n - n_levels, -1)
    return (n - kept) / n, cums[kept - 1] / kept


def prediction_rejection_ratio(
    uncertainty: npt.ArrayLike, quality: npt.ArrayLike, *, max_rejection: float = 1.0
) -> float | None:
    """Normalised prediction-rejection ratio: 0 for random rejection, 1 for the oracle.

    Args:
        uncertainty: Score per question (higher = more uncertain).
        quality: Quality per question (1 = correct; any real quality works).
        max_rejection: Part of the rejection curve used (``0.5``: PRR\\@50 %).

    Returns:
        The PRR, or ``None`` when the oracle is no better than random (all qualities equal).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> q = rng.integers(0, 2, 4000)
        >>> abs(prediction_rejection_ratio(rng.uniform(size=4000), q)) < 0.05
        True
    """
    u, q = _paired(uncertainty, quality)
    area = float(np.mean(rejection_curve(u, q, max_rejection=max_rejection)[1]))
    oracle = float(np.mean(rejection_curve(-q, q, max_rejection=max_rejection)[1]))
    random = float(np.mean(q))
    if oracle - random <= 1e-12:
        return None
    return (area - random) / (oracle - random)


def auroc_wrong(uncertainty: npt.ArrayLike, correct: npt.ArrayLike) -> float | None:
    """AUROC of the uncertainty for detecting wrong answers (``None`` if all right or all wrong).

    Example:
        >>> auroc_wrong([0.2, 0.8, 0.5], [1, 0, 1])
        1.0
    """
    from sklearn.metrics import roc_auc_score

    u, c = _paired(uncertainty, correct)
    wrong = (c < 0.5).astype(np.int64)
    if wrong.min() == wrong.max():
        return None
    return float(roc_auc_score(wrong, u))


def risk_coverage_curve(uncertainty: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Risk (error rate of the answered questions) versus coverage, answering the least uncertain first.

    Returns:
        ``(coverage, risk)`` at coverages :math:`1/n, \\dots, 1`; the AURC is ``risk.mean()``.

    Example:
        >>> risk_coverage_curve([0.1, 0.9], [1, 0])[1].tolist()
        [0.0, 0.5]
    """
    u, c = _paired(uncertainty, correct)
    errors = _tie_averaged(u, 1.0 - c)
    k = np.arange(1, u.size + 1)
    return k / u.size, np.cumsum(errors) / k


def confidence_calibration(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 10
) -> tuple[float, Any]:
    """ECE of confidences as :math:`P(\\text{correct})`, with the reliability curve.

    Uses :func:`aalearn.uncertainty.reliability_curve` with the confidence as the binary
    score and correctness as the label; the ECE is the population-weighted mean of
    :math:`|\\text{fraction correct} - \\text{mean confidence}|` over non-empty bins.

    Returns:
        ``(ece, curve)``.

    Example:
        >>> round(confidence_calibration([0.9, 0.9, 0.9, 0.9], [1, 1, 1, 0])[0], 6)
        0.15
    """
    from aalearn.uncertainty.calibration import reliability_curve

    conf, c = _paired(confidence, correct)
    if np.any((conf < 0) | (conf > 1)):
        raise ValueError("confidences must lie in [0, 1]")
    curve = reliability_curve(c.astype(np.int64), conf, n_bins=n_bins)
    counts = np.asarray(curve.prob_counts)
    used = counts > 0
    gaps = np.abs(np.asarray(curve.frac_positive)[used] - np.asarray(curve.prob_mean)[used])
    return float(np.sum(counts[used] / counts.sum() * gaps)), curve


def cohens_h(p_clean: float, p_perturbed: float) -> float:
    r"""Cohen's h of two accuracies, :math:`2\arcsin\sqrt{p_\text{clean}} - 2\arcsin\sqrt{p_\text{pert}}`.

    Positive for a drop; defined at zero accuracy (unlike the PDR); :math:`|h| \le \pi`.

    Example:
        >>> round(cohens_h(0.5, 0.5), 6), round(cohens_h(1.0, 0.0), 4)
        (0.0, 3.1416)
    """
    for name, p in (("p_clean", p_clean), ("p_perturbed", p_perturbed)):
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(2 * math.asin(math.sqrt(p_clean)) - 2 * math.asin(math.sqrt(p_perturbed)))


# --------------------------------------------------------------------------- running questions
@dataclass(frozen=True)
class _Task:
    index: int
    question: str
    model: Any  # Backend, or its specification string for Dask workers
    model_options: tuple[tuple[str, Any], ...]  # keyword arguments of load_backend
    entailment: Any  # EntailmentBackend, a specification string, or None
    methods: tuple[str, ...]
    config: SamplingConfig
    template: str
    decomposition: str | None
    variants: tuple[str, ...]


_WORKER_CACHE: dict[tuple[str, ...], Any] = {}


def _resolve(task: _Task) -> tuple[Backend, EntailmentBackend | None]:
    backend = task.model
    if not isinstance(backend, Backend):
        key = ("backend", str(backend), repr(task.model_options))
        if key not in _WORKER_CACHE:
            _WORKER_CACHE[key] = load_backend(backend, **dict(task.model_options))
        backend = _WORKER_CACHE[key]
    ent = task.entailment
    if isinstance(ent, str):
        key = ("entailment", ent, str(task.model))
        if key not in _WORKER_CACHE:
            _WORKER_CACHE[key] = load_entailment(ent, backend=backend)
        ent = _WORKER_CACHE[key]
    return backend, ent


def _run_task(task: _Task) -> ScoredAnswer:
    backend, ent = _resolve(task)
    config = SamplingConfig(**{**task.config.__dict__, "seed": task.config.seed + task.index})
    result = score_question(
        backend, task.question, methods=task.methods, entailment=ent, config=config, template=task.template
    )
    if task.decomposition is not None:
        if ent is None:
            raise ValueError("the decomposition needs an entailment backend")
        if task.decomposition == "iterative":
            d = iterative_prompting_decomposition(backend, task.question, entailment=ent, config=config)
        elif task.decomposition == "clarification" and not task.variants:
            result.notes.append("decomposition: the question has no clarifications")
            return result
        else:
            d = input_ensemble_decomposition(
                backend,
                task.question,
                entailment=ent,
                varied=task.decomposition,
                variants=task.variants or None,
                config=config,
                template=task.template,
            )
        result.decomposition = d.to_dict()
        result.decomposition.pop("details", None)
    return result


def score_many(
    model: Backend | str,
    questions: Sequence[str],
    *,
    methods: Sequence[str] | str | None = None,
    entailment: EntailmentBackend | str | None = "overlap",
    config: SamplingConfig | None = None,
    template: str = QUESTION_TEMPLATE,
    decomposition: str | None = None,
    variants: Sequence[Sequence[str]] | None = None,
    model_name: str | None = None,
    model_options: Mapping[str, Any] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    on_result: Callable[[int, ScoredAnswer], None] | None = None,
) -> list[ScoredAnswer]:
    """Answer and score many questions through :func:`aalearn.core.parallel.map_tasks`.

    With ``workers == 1`` and no scheduler the questions run in this process on the given
    backend. Otherwise each Dask worker loads the model once from its specification
    (``model`` must then be a string: ``"default"``, a path or a URL; ``entailment`` a name).

    Args:
        model: Backend or specification (see :func:`~aalearn.llm.backends.load_backend`).
        questions: The questions.
        methods: Score names (``None``: all).
        entailment: Entailment backend or name (``None`` only without clustering methods).
        config: Sampling settings; question ``i`` uses seed ``config.seed + i``.
        template: Prompt template.
        decomposition: ``None``, ``"paraphrase"``, ``"clarification"`` or ``"iterative"``.
        variants: Per question, the clarified questions (``"clarification"``).
        model_name: Model name on an OpenAI-compatible server.
        model_options: Further keyword arguments of :func:`~aalearn.llm.backends.load_backend`
            (``timeout``, ``chat``, ``api_key``) used wherever the model is loaded from its
            specification (Dask workers included).
        workers: Dask worker processes (1 = in this process).
        scheduler: Address of a Dask scheduler.
        on_result: Called as ``on_result(index, result)`` when a question is done.

    Returns:
        One :class:`~aalearn.llm.scores.ScoredAnswer` per question, in input order.

    Raises:
        ValueError: For bad arguments (a live backend with several workers, unknown methods, …).
    """
    names = check_methods(methods)
    if decomposition is not None and decomposition not in DECOMPOSITIONS:
        raise ValueError(f"unknown decomposition {decomposition!r}; choose {', '.join(DECOMPOSITIONS)}")
    qs = list(questions)
    for q in qs:
        if not isinstance(q, str) or not q.strip():
            raise ValueError("a question is empty; every question needs text")
    options = {**dict(model_options or {}), "model_name": model_name}
    parallel = workers != 1 or scheduler is not None
    if parallel and (isinstance(model, Backend) or isinstance(entailment, EntailmentBackend)):
        raise ValueError(
            "with several workers give the model and the entailment backend by name (e.g. 'default', a path "
            "or a URL; 'overlap'), so that each worker can load its own copy"
        )
    if not parallel:
        model = model if isinstance(model, Backend) else load_backend(model, **options)
        if isinstance(entailment, str):
            entailment = load_entailment(entailment, backend=model)
    config = config or SamplingConfig()
    vs = list(variants) if variants is not None else [() for _ in qs]
    if len(vs) != len(qs):
        raise ValueError(f"variants has {len(vs)} entries for {len(qs)} questions")
    tasks = [
        _Task(
            i,
            q,
            model,
            tuple(sorted(options.items())),
            entailment,
            names,
            config,
            template,
            decomposition,
            tuple(v),
        )
        for i, (q, v) in enumerate(zip(qs, vs, strict=True))
    ]
    out: list[ScoredAnswer | None] = [None] * len(tasks)
    for task, result in map_tasks(_run_task, tasks, workers=workers, scheduler=scheduler):
        out[task.index] = result
        if on_result is not None:
            on_result(task.index, result)
    return [r for r in out if r is not None]


# --------------------------------------------------------------------------- evaluation
def _method_values(records: Sequence[Mapping[str, Any]], method: str) -> tuple[FloatArray, FloatArray]:
    u, c = [], []
    for r in records:
        v = r["scores"].get(method)
        if v is not None and math.isfinite(v):
            u.append(float(v))
            c.append(1.0 if r["correct"] else 0.0)
    return np.asarray(u), np.asarray(c)


def _confidence_of(method: str, value: float) -> float:
    spec = SCORES.get(method)
    return spec.to_confidence(value) if spec is not None else float(math.exp(-max(value, 0.0)))


def _metrics(records: Sequence[Mapping[str, Any]], method: str, n_bins: int) -> dict[str, Any]:
    u, c = _method_values(records, method)
    out: dict[str, Any] = {
        "n": int(u.size),
        "auroc": None,
        "prr": None,
        "prr_50": None,
        "aurc": None,
        "ece": None,
    }
    if u.size == 0:
        return out
    out["mean"] = float(np.mean(u))
    out["auroc"] = auroc_wrong(u, c)
    out["prr"] = prediction_rejection_ratio(u, c)
    out["prr_50"] = prediction_rejection_ratio(u, c, max_rejection=0.5)
    out["aurc"] = float(np.mean(risk_coverage_curve(u, c)[1]))
    conf = np.array([_confidence_of(method, v) for v in u])
    out["ece"] = confidence_calibration(conf, c, n_bins=n_bins)[0]
    return out


@dataclass
class LLMEvaluation:
    """Result of :func:`evaluate_model`.

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


def _record(item: QAItem, res: ScoredAnswer) -> dict[str, Any]:
    scores = dict(res.scores)
    if res.decomposition is not None:
        varied = res.decomposition["varied"]
        scores[f"{varied}_epistemic"] = res.decomposition["epistemic"]
        scores[f"{varied}_aleatoric"] = res.decomposition["aleatoric"]
    return {
        "id": item.id,
        "category": item.category,
        "question": item.question,
        "gold": item.gold,
        "answer": res.answer,
        "correct": item.is_correct(res.answer),
        "scores": scores,
        "samples": res.samples,
        "cluster_ids": res.cluster_ids,
        "decomposition": res.decomposition,
        "notes": res.notes,
        "seconds_generation": res.seconds_generation,
        "seconds_scoring": res.seconds_scoring,
    }


def evaluate_model(
    model: Backend | str,
    dataset: str | Sequence[QAItem] = "physics-qa",
    *,
    methods: Sequence[str] | str | None = None,
    entailment: EntailmentBackend | str | None = "overlap",
    config: SamplingConfig | None = None,
    limit: int | None = 20,
    decomposition: str | None = None,
    model_name: str | None = None,
    model_options: Mapping[str, Any] | None = None,
    n_bins: int = 10,
    workers: int = 1,
    scheduler: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LLMEvaluation:
    """Answer a question set, score every answer, and measure how well each score detects wrong ones.

    Args:
        model: Backend or specification (``"default"``, a path, an http(s):// URL).
        dataset: ``"physics-qa"`` (or another built-in name), a JSONL path, or items.
        methods: Score names (``None``: all).
        entailment: Entailment backend or name for the clustering methods.
        config: Sampling settings.
        limit: Use the first ``limit`` questions (``None``: all).
        decomposition: Also compute the epistemic/aleatoric split (``"paraphrase"``,
            ``"clarification"``, ``"iterative"``); its parts are evaluated like scores.
        model_name: Model name on an OpenAI-compatible server.
        model_options: Further keyword arguments of :func:`~aalearn.llm.backends.load_backend`.
        n_bins: Bins of the ECE.
        workers: Dask worker processes.
        scheduler: Dask scheduler address.
        seed: Seed of the generated questions.
        progress: Called as ``progress(done, total)``.

    Returns:
        The :class:`LLMEvaluation`.

    Example:
        >>> ev = evaluate_model("default", limit=5, methods="msp,semantic_entropy")  # doctest: +SKIP
        >>> sorted(ev.to_dict())[:3]  # doctest: +SKIP
        ['accuracy', 'accuracy_by_category', 'approximate_entailment']
    """
    start = time.perf_counter()
    names = check_methods(methods)
    if isinstance(dataset, (str, Path)):
        items = load_dataset(dataset, limit=limit, seed=seed)
        dataset_name = str(dataset)
    else:
        items = list(dataset)[:limit] if limit is not None else list(dataset)
        dataset_name = "(items)"
        if not items or not all(isinstance(i, QAItem) for i in items):
            raise TypeError("dataset must be a name, a JSONL path or a non-empty sequence of QAItem")
    needs_entailment = bool(ENTAILMENT_METHODS.intersection(names)) or decomposition is not None
    if workers == 1 and scheduler is None:
        model = (
            model
            if isinstance(model, Backend)
            else load_backend(model, model_name=model_name, **dict(model_options or {}))
        )
        if isinstance(entailment, str) and needs_entailment:
            entailment = load_entailment(entailment, backend=model)
    done = [0]

    def _tick(_i: int, _r: ScoredAnswer) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(items))

    results = score_many(
        model,
        [i.question for i in items],
        methods=names,
        entailment=entailment if needs_entailment else None,
        config=config,
        decomposition=decomposition,
        variants=[i.clarifications for i in items],
        model_name=model_name,
        model_options=model_options,
        workers=workers,
        scheduler=scheduler,
        on_result=_tick,
    )
    records = [_record(i, r) for i, r in zip(items, results, strict=True)]
    all_methods = list(names)
    if decomposition is not None:
        all_methods += [f"{decomposition}_epistemic", f"{decomposition}_aleatoric"]
    metrics = {m: _metrics(records, m, n_bins) for m in all_methods}
    notes = sorted({n for r in records for n in r["notes"]})
    ent_desc: dict[str, Any] | None = None
    if needs_entailment:
        if isinstance(entailment, EntailmentBackend):
            ent_desc = entailment.describe()
        else:
            ent_desc = {
                "name": str(entailment),
                "approximate": str(entailment).split(":")[0] in ("overlap", "embedding"),
            }
        if ent_desc["approximate"]:
            notes.insert(
                0,
                f"meaning clusters use {ent_desc['name']}, an approximation of bidirectional entailment; "
                "give --entailment nli:PATH for an NLI model",
            )
    model_desc = model.describe() if isinstance(model, Backend) else {"name": str(model)}
    return LLMEvaluation(
        model=model_desc,
        dataset=dataset_name,
        records=records,
        methods=tuple(all_methods),
        metrics=metrics,
        entailment=ent_desc,
        config=dict((config or SamplingConfig()).__dict__),
        seconds=time.perf_counter() - start,
        notes=notes,
    )


# --------------------------------------------------------------------------- perturbations
@dataclass
class PerturbationStudy:
    """Result of :func:`perturbation_study`.

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


def perturbation_study(
    model: Backend | str,
    dataset: str | Sequence[QAItem] = "physics-qa",
    *,
    perturbations: Sequence[str] | str | None = None,
    strengths: Mapping[str, Sequence[float]] | None = None,
    methods: Sequence[str] | str | None = WHITE_BOX_METHODS,
    entailment: EntailmentBackend | str = "overlap",
    config: SamplingConfig | None = None,
    limit: int | None = 10,
    model_name: str | None = None,
    model_options: Mapping[str, Any] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    seed: int = 0,
) -> PerturbationStudy:
    """Robustness curves of a language model under prompt perturbations.

    For every perturbation and strength the questions are perturbed (digits and the
    item's unit protected), answered and scored. Per point: accuracy, **flip rate**
    (fraction of answers not equivalent to the clean answer, judged by ``entailment``),
    **PDR** :math:`1 - \\text{acc}_\\text{pert}/\\text{acc}_\\text{clean}` (``None`` at zero clean
    accuracy), **Cohen's h**, and per score its mean, its mean shift from the clean
    question and the AUROC of the perturbed score for detecting flipped answers.

    Args:
        model: Backend or specification.
        dataset: Dataset name, JSONL path or items.
        perturbations: Names (``None``: all of :data:`~aalearn.llm.perturb.PERTURBATIONS`).
        strengths: Perturbation → strengths (default :data:`~aalearn.llm.perturb.DEFAULT_STRENGTHS`).
        methods: Scores to follow (default: the white-box ones, which need no sampling).
        entailment: Judges answer flips (and clusters, for sampling-based methods).
        config: Sampling settings.
        limit: Number of questions.
        model_name: Model name on an OpenAI-compatible server.
        model_options: Further keyword arguments of :func:`~aalearn.llm.backends.load_backend`.
        workers: Dask worker processes.
        scheduler: Dask scheduler address.
        seed: Seed of the questions and the perturbations.

    Returns:
        The :class:`PerturbationStudy`.

    Example:
        >>> perturbation_study("default", perturbations="typo", limit=3)  # doctest: +SKIP
    """
    start = time.perf_counter()
    names = check_methods(methods)
    kinds = check_perturbations(perturbations)
    grid = {k: tuple((strengths or {}).get(k, DEFAULT_STRENGTHS[k])) for k in kinds}
    for k, values in grid.items():
        if not values:
            raise ValueError(f"no strengths given for perturbation {k!r}")
    if isinstance(dataset, (str, Path)):
        items = load_dataset(dataset, limit=limit, seed=seed)
    else:
        items = list(dataset)[:limit] if limit is not None else list(dataset)
    if not items:
        raise ValueError("no questions to perturb")
    if workers == 1 and scheduler is None:
        model = (
            model
            if isinstance(model, Backend)
            else load_backend(model, model_name=model_name, **dict(model_options or {}))
        )
        if isinstance(entailment, str):
            entailment = load_entailment(entailment, backend=model)
    questions = [i.question for i in items]
    points: list[tuple[str, float]] = [(k, float(s)) for k in kinds for s in grid[k]]
    for k, s in points:  # validate every strength before spending time on the model
        perturb(questions[0], k, s)
    all_q = list(questions)
    for k, s in points:
        all_q += [
            perturb(q, k, s, seed=seed, protect=[i.unit] if i.unit else ())
            for q, i in zip(questions, items, strict=True)
        ]
    results = score_many(
        model,
        all_q,
        methods=names,
        entailment=entailment,
        config=config,
        model_name=model_name,
        model_options=model_options,
        workers=workers,
        scheduler=scheduler,
    )
    judge = entailment if isinstance(entailment, EntailmentBackend) else load_entailment(entailment)
    n = len(items)
    clean = [_record(i, r) for i, r in zip(items, results[:n], strict=True)]
    acc_clean = float(np.mean([r["correct"] for r in clean]))
    rows = []
    for p, (k, s) in enumerate(points):
        chunk = results[n * (p + 1) : n * (p + 2)]
        recs = [_record(i, r) for i, r in zip(items, chunk, strict=True)]
        for rec, q in zip(recs, all_q[n * (p + 1) : n * (p + 2)], strict=True):
            rec["perturbed_question"] = q
        flips = []
        for c, r in zip(clean, recs, strict=True):
            _, eq = judge.relations(c["question"], [c["answer"] or "(empty)", r["answer"] or "(empty)"])
            flips.append(not bool(eq[0, 1]))
        acc = float(np.mean([r["correct"] for r in recs]))
        row: dict[str, Any] = {
            "perturbation": k,
            "strength": s,
            "accuracy": acc,
            "flip_rate": float(np.mean(flips)),
            "pdr": (1.0 - acc / acc_clean) if acc_clean > 0 else None,
            "cohens_h": cohens_h(acc_clean, acc),
            "mean_uncertainty": {},
            "uncertainty_shift": {},
            "flip_auroc": {},
            "examples": [r["perturbed_question"] for r in recs[:3]],
        }
        for m in names:
            pairs = [
                (c["scores"].get(m), r["scores"].get(m), f)
                for c, r, f in zip(clean, recs, flips, strict=True)
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
        rows.append(row)
    return PerturbationStudy(
        model=model.describe() if isinstance(model, Backend) else {"name": str(model)},
        clean=clean,
        rows=rows,
        methods=names,
        seconds=time.perf_counter() - start,
        entailment=judge.describe(),
        notes=(
            [f"answer flips are judged with {judge.name}, an approximation of equivalence"]
            if judge.approximate
            else []
        ),
    )


# --------------------------------------------------------------------------- report
def add_llm_sections(
    report: Any,
    evaluation: LLMEvaluation | None = None,
    perturbation: PerturbationStudy | None = None,
    *,
    max_rows: int = 40,
) -> None:
    """Add the LLM sections to an :class:`aalearn.report.Report`.

    Evaluation: a summary (model, accuracy, entailment backend, approximations), the
    metrics table per score, ROC curves for detecting wrong answers, risk–coverage curves,
    a reliability diagram of the normalised confidences and the per-question table.
    Perturbation: the robustness table and curves (accuracy, flip rate and mean
    uncertainty versus strength).

    Args:
        report: The report.
        evaluation: Result of :func:`evaluate_model`.
        perturbation: Result of :func:`perturbation_study`.
        max_rows: Questions shown in the per-question table.

    Raises:
        ValueError: If neither result is given.
    """
    from aalearn.llm import plots

    if evaluation is None and perturbation is None:
        raise ValueError("add_llm_sections needs an evaluation or a perturbation study")
    if evaluation is not None:
        d = evaluation.to_dict(per_question=False)
        ent = evaluation.entailment
        text = (
            f"Model {d['model']} answered {d['n_questions']} questions of {evaluation.dataset}; "
            f"accuracy {d['accuracy']:.3f}. Scores follow one contract: higher = more uncertain. "
            "AUROC: detection of wrong answers; PRR: prediction-rejection ratio (0 = random rejection, "
            "1 = oracle), PRR@50 % over the first half of the rejection curve; AURC: area under the "
            "risk–coverage curve (lower is better); ECE of the normalised confidences."
        )
        if ent is not None:
            text += f"\n\nMeaning clusters: {ent['name']}."
            if ent.get("approximate"):
                text += " This is an APPROXIMATION of bidirectional entailment (not an NLI model)."
        if evaluation.notes:
            text += "\n\nNotes: " + "; ".join(evaluation.notes[:8])
        table = [
            {
                "score": m,
                "AUROC": evaluation.metrics[m]["auroc"],
                "PRR": evaluation.metrics[m]["prr"],
                "PRR@50%": evaluation.metrics[m]["prr_50"],
                "AURC": evaluation.metrics[m]["aurc"],
                "ECE": evaluation.metrics[m]["ece"],
                "questions": evaluation.metrics[m]["n"],
            }
            for m in evaluation.methods
        ]
        figs = []
        if 0 < sum(r["correct"] for r in evaluation.records) < len(evaluation.records):
            figs += [plots.plot_detection_roc(evaluation), plots.plot_risk_coverage(evaluation)]
        rel = plots.plot_confidence_reliability(evaluation)
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
                **{m: r["scores"].get(m) for m in evaluation.methods[:4]},
            }
            for r in evaluation.records[:max_rows]
        ]
        report.add_section("LLM answers", table=rows)
    if perturbation is not None:
        rows = [
            {
                "perturbation": r["perturbation"],
                "strength": r["strength"],
                "accuracy": r["accuracy"],
                "flip rate": r["flip_rate"],
                "PDR": r["pdr"],
                "Cohen's h": r["cohens_h"],
                **{f"Δ {m}": r["uncertainty_shift"].get(m) for m in perturbation.methods[:3]},
            }
            for r in perturbation.rows
        ]
        text = (
            f"Clean accuracy {perturbation.clean_accuracy:.3f} on {len(perturbation.clean)} questions. "
            "Flip rate: fraction of answers that changed meaning; PDR = 1 − acc/acc_clean; Cohen's h = "
            "2 asin√acc_clean − 2 asin√acc; Δ: mean change of each uncertainty score."
        )
        if perturbation.notes:
            text += "\n\nNotes: " + "; ".join(perturbation.notes)
        report.add_section(
            "LLM robustness under prompt perturbations",
            text=text,
            table=rows,
            figures=[plots.plot_perturbation_curves(perturbation)],
        )


def write_llm_report(
    out: str | Path,
    evaluation: LLMEvaluation | None = None,
    perturbation: PerturbationStudy | None = None,
) -> Path:
    """Write ``report.html`` and ``results.json`` into the directory ``out``.

    Returns:
        The path of the report.
    """
    import json

    from aalearn.core.jsonutil import to_jsonable
    from aalearn.report import Report

    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    source = evaluation if evaluation is not None else perturbation
    model = source.model.get("name") if source is not None else "?"
    report = Report("aalearn: language-model uncertainty", subtitle=str(model))
    report.add_metadata("model", model)
    if evaluation is not None:
        report.add_metadata("dataset", evaluation.dataset)
        report.add_metadata("samples per question", evaluation.config.get("n_samples"))
    add_llm_sections(report, evaluation, perturbation)
    path = report.write(directory / "report.html")
    payload: dict[str, Any] = {}
    if evaluation is not None:
        payload["evaluation"] = evaluation.to_dict()
    if perturbation is not None:
        payload["perturbation"] = perturbation.to_dict()
    (directory / "results.json").write_text(json.dumps(to_jsonable(payload), indent=1), encoding="utf-8")
    return path
