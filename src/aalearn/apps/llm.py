r"""The workflows behind ``aalearn llm``: answer question sets, score them, write the files.

* :func:`score_many` runs questions through :func:`aalearn.core.parallel.map_tasks`
  (``workers``/``scheduler``: on Dask, each worker loading its own copy of the model);
* :func:`evaluate_model` (``aalearn llm evaluate``): answer a question set, score every
  answer, and measure how well each score detects the wrong ones
  (:class:`~aalearn.llm.evaluate.LLMEvaluation`);
* :func:`perturbation_study` (``aalearn llm perturb``): flip rate, accuracy,
  performance-drop rate PDR and Cohen's h per perturbation strength, and how the scores move
  (:class:`~aalearn.llm.evaluate.PerturbationStudy`);
* :func:`write_llm_report` writes ``results.json`` and ``report.html`` through
  :func:`aalearn.report.write_run`;
* :func:`score_command`, :func:`evaluate_command`, :func:`perturb_command` and
  :func:`perturbation_preview` are what the command line calls (options in, result out).

The per-question scoring and the metrics are in the pillar (:mod:`aalearn.llm.evaluate`,
:mod:`aalearn.llm.metrics`).

Example:
    >>> ev = evaluate_model("default", limit=5, methods="msp,semantic_entropy")  # doctest: +SKIP
    >>> write_llm_report("out", evaluation=ev)  # doctest: +SKIP
    PosixPath('out/report.html')
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aalearn.core.optional import require
from aalearn.core.parallel import map_tasks
from aalearn.core.result import ReportBuilder
from aalearn.llm.attribution import SERVER_MODEL_ERROR, TokenAttribution, token_attributions
from aalearn.llm.backends import Backend, SamplingConfig, load_backend
from aalearn.llm.datasets import QAItem, load_dataset
from aalearn.llm.decomposition import DECOMPOSITIONS, decomposition_score_names
from aalearn.llm.evaluate import (
    LLMEvaluation,
    LLMRun,
    PerturbationStudy,
    answer_record,
    robustness_row,
    score_one,
)
from aalearn.llm.metrics import score_metrics
from aalearn.llm.perturb import DEFAULT_STRENGTHS, check_perturbations, perturb
from aalearn.llm.scores import (
    ENTAILMENT_METHODS,
    QUESTION_TEMPLATE,
    WHITE_BOX_METHODS,
    ScoredAnswer,
    check_methods,
)
from aalearn.llm.semantic import EntailmentBackend, load_entailment
from aalearn.report import write_run

__all__ = [
    "ScoreRun",
    "evaluate_command",
    "evaluate_model",
    "perturb_command",
    "perturbation_preview",
    "perturbation_study",
    "score_command",
    "score_many",
    "write_llm_report",
]


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
    tolerance: tuple[float, float, str | None] | None = None
    count_repeats: bool = False
    entailment_options: tuple[tuple[str, Any], ...] = ()
    retry_truncated: int = 0


_WORKER_CACHE: dict[tuple[str, ...], Any] = {}


def _resolve(task: _Task) -> tuple[Backend, EntailmentBackend | None]:
    backend = task.model
    if not isinstance(backend, Backend):
        key: tuple[str, ...] = ("backend", str(backend), repr(task.model_options))
        if key not in _WORKER_CACHE:
            _WORKER_CACHE[key] = load_backend(backend, **dict(task.model_options))
        backend = _WORKER_CACHE[key]
    ent = task.entailment
    if isinstance(ent, str):
        key = ("entailment", ent, str(task.model), repr(task.entailment_options))
        if key not in _WORKER_CACHE:
            _WORKER_CACHE[key] = load_entailment(ent, backend=backend, **dict(task.entailment_options))
        ent = _WORKER_CACHE[key]
    return backend, ent


def _run_task(task: _Task) -> ScoredAnswer:
    backend, ent = _resolve(task)
    config = SamplingConfig(**{**task.config.__dict__, "seed": task.config.seed + task.index})
    return score_one(
        backend,
        task.question,
        methods=task.methods,
        entailment=ent,
        config=config,
        template=task.template,
        decomposition=task.decomposition,
        variants=task.variants,
        tolerance=task.tolerance,
        count_repeats=task.count_repeats,
        retry_truncated=task.retry_truncated,
    )


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
    tolerances: Sequence[tuple[float, float, str | None] | None] | None = None,
    count_repeats: bool = False,
    entailment_options: Mapping[str, Any] | None = None,
    retry_truncated: int = 0,
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
            (``timeout``, ``chat``, ``api_key_file``) used wherever the model is loaded from its
            specification (Dask workers included). An ``api_key`` is refused here: the
            options travel inside the tasks, whose representation may be logged or hashed;
            workers read the key from the environment or ``api_key_file``.
        workers: Dask worker processes (1 = in this process).
        scheduler: Address of a Dask scheduler.
        on_result: Called as ``on_result(index, result)`` when a question is done.
        tolerances: Per question, ``(rel_tol, abs_tol, unit)`` for the quantity check of the
            clustering (:attr:`aalearn.llm.datasets.QAItem.tolerance`).
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).
        entailment_options: Keyword arguments of :func:`~aalearn.llm.semantic.load_entailment`
            (``strict``, ``numeric``) when ``entailment`` is a name.
        retry_truncated: Retries of a truncated greedy answer with a doubled token budget.

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
    if options.get("api_key") is not None:
        raise ValueError(
            "model_options must not carry an api_key (it would travel inside the task descriptions); "
            "set AALEARN_API_KEY or OPENAI_API_KEY, or give api_key_file"
        )
    options.pop("api_key", None)
    ent_opts = dict(entailment_options or {})
    parallel = workers != 1 or scheduler is not None
    if parallel and (isinstance(model, Backend) or isinstance(entailment, EntailmentBackend)):
        raise ValueError(
            "with several workers give the model and the entailment backend by name (e.g. 'default', a path "
            "or a URL; 'overlap'), so that each worker can load its own copy"
        )
    if not parallel:
        model = model if isinstance(model, Backend) else load_backend(model, **options)
        if isinstance(entailment, str):
            entailment = load_entailment(entailment, backend=model, **ent_opts)
    config = config or SamplingConfig()
    vs = list(variants) if variants is not None else [() for _ in qs]
    if len(vs) != len(qs):
        raise ValueError(f"variants has {len(vs)} entries for {len(qs)} questions")
    tols = list(tolerances) if tolerances is not None else [None for _ in qs]
    if len(tols) != len(qs):
        raise ValueError(f"tolerances has {len(tols)} entries for {len(qs)} questions")
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
            tols[i],
            bool(count_repeats),
            tuple(sorted(ent_opts.items())),
            int(retry_truncated),
        )
        for i, (q, v) in enumerate(zip(qs, vs, strict=True))
    ]
    out: list[ScoredAnswer | None] = [None] * len(tasks)
    for task, result in map_tasks(_run_task, tasks, workers=workers, scheduler=scheduler):
        out[task.index] = result
        if on_result is not None:
            on_result(task.index, result)
    return [r for r in out if r is not None]


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
    count_repeats: bool = False,
    entailment_options: Mapping[str, Any] | None = None,
    n_boot: int = 500,
    retry_truncated: int = 0,
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
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).
        entailment_options: ``strict`` / ``numeric`` for :func:`~aalearn.llm.semantic.load_entailment`.
        n_boot: Bootstrap resamples of the metric intervals.
        retry_truncated: Retries of a truncated greedy answer with a doubled token budget.

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
            entailment = load_entailment(entailment, backend=model, **dict(entailment_options or {}))
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
        tolerances=[i.tolerance for i in items],
        count_repeats=count_repeats,
        entailment_options=entailment_options,
        retry_truncated=retry_truncated,
    )
    records = [answer_record(i, r) for i, r in zip(items, results, strict=True)]
    all_methods = list(names)
    if decomposition is not None:
        all_methods += list(decomposition_score_names(decomposition))
    metrics = {m: score_metrics(records, m, n_bins, n_boot=n_boot, seed=seed) for m in all_methods}
    notes = sorted({n for r in records for n in r["notes"]})
    n_trunc = sum(bool(r["truncated"]) for r in records)
    if n_trunc:
        notes.insert(0, f"{n_trunc} of {len(records)} answers hit the token budget and are graded as wrong")
    small = [m for m in all_methods if metrics[m]["small_sample"]]
    if small:
        first = metrics[small[0]]
        notes.insert(
            0,
            f"small sample ({first['n']} questions, {first['n_wrong']} wrong): AUROC/PRR/ECE are indicative "
            "only; read their 95 % bootstrap intervals",
        )
    ent_desc: dict[str, Any] | None = None
    if needs_entailment:
        if isinstance(entailment, EntailmentBackend):
            ent_desc = entailment.describe()
        else:
            ent_desc = {
                "name": str(entailment),
                "approximate": str(entailment).split(":")[0] in ("overlap", "embedding"),
                **dict(entailment_options or {}),
            }
        if ent_desc.get("approximate"):
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
        config={**(config or SamplingConfig()).__dict__, "count_repeats": bool(count_repeats)},
        seconds=time.perf_counter() - start,
        notes=notes,
    )


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
        tolerances=[i.tolerance for i in items] * (1 + len(points)),
    )
    judge = entailment if isinstance(entailment, EntailmentBackend) else load_entailment(entailment)
    n = len(items)
    clean = [answer_record(i, r) for i, r in zip(items, results[:n], strict=True)]
    rows = []
    for p, (k, s) in enumerate(points):
        chunk = results[n * (p + 1) : n * (p + 2)]
        recs = [answer_record(i, r) for i, r in zip(items, chunk, strict=True)]
        for rec, q in zip(recs, all_q[n * (p + 1) : n * (p + 2)], strict=True):
            rec["perturbed_question"] = q
        flips = []
        for c, r, item in zip(clean, recs, items, strict=True):
            _, eq = judge.relations(
                c["question"],
                [c["answer"] or "(empty)", r["answer"] or "(empty)"],
                tolerance=item.tolerance,
            )
            flips.append(not bool(eq[0, 1]))
        rows.append(robustness_row(k, s, clean, recs, flips, names))
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


# --------------------------------------------------------------------------- files
def write_llm_report(
    out: str | Path,
    evaluation: LLMEvaluation | None = None,
    perturbation: PerturbationStudy | None = None,
) -> Path:
    """Write ``report.html`` and ``results.json`` into the directory ``out``.

    ``results.json`` holds ``{"evaluation": ..., "perturbation": ...}`` (the parts given).

    Args:
        out: Output directory (created when missing).
        evaluation: Result of :func:`evaluate_model`.
        perturbation: Result of :func:`perturbation_study`.

    Returns:
        The path of the report.

    Raises:
        ValueError: If neither result is given.

    Example:
        >>> write_llm_report("out", evaluation=evaluate_model("default", limit=3))  # doctest: +SKIP
        PosixPath('out/report.html')
    """
    run = LLMRun(evaluation, perturbation)
    run.to_dict()  # checks that a part is present before anything is written
    metadata: dict[str, Any] = {"model": run.model_name}
    if evaluation is not None:
        metadata["dataset"] = evaluation.dataset
        metadata["samples per question"] = evaluation.config.get("n_samples")
    paths = write_run(
        run,
        out,
        title="aalearn: language-model uncertainty",
        subtitle=run.model_name,
        metadata=metadata,
    )
    assert paths.report is not None  # report_name is the default
    return paths.report


# --------------------------------------------------------------------------- command line
@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count for the duration of a block (``None``: unchanged)."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"--threads must be ≥ 1, got {n}")
    torch = require("torch", purpose="running a local language model")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _decompose_opt(value: str) -> str | None:
    if value == "none":
        return None
    if value not in DECOMPOSITIONS:
        raise ValueError(f"--decompose must be none, {', '.join(DECOMPOSITIONS)}; got {value!r}")
    return value


@dataclass
class ScoreRun:
    """Result of :func:`score_command`: one question's answer and scores (a Result).

    Attributes:
        payload: The ``--json`` object: ``model``, the :class:`~aalearn.llm.scores.ScoredAnswer`
            fields and ``seconds``.
        rows: Terminal table (answer, scores, decomposition parts, seconds).
        model_name: Name of the model.
        notes: Remarks for the terminal (approximate meaning clusters).
    """

    payload: dict[str, Any]
    rows: dict[str, Any]
    model_name: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return self.payload

    def summary(self) -> list[dict[str, Any]]:
        """One row: answer, scores and seconds."""
        return [self.rows]

    def add_to(self, report: ReportBuilder) -> None:
        """One section with the answer and its scores."""
        report.add_section("LLM answer and uncertainty scores", table=self.rows)


def score_command(
    model: str,
    question: str,
    *,
    methods: str = "all",
    samples: int = 5,
    entailment: str = "overlap",
    decompose: str = "none",
    clarification: Sequence[str] | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    model_name: str | None = None,
    api_key_file: str | Path | None = None,
    timeout: float = 60.0,
    chat: bool = True,
    threads: int | None = None,
    strict: bool = True,
    numeric: bool = True,
    count_repeats: bool = False,
) -> ScoreRun:
    """``aalearn llm score``: answer one question and compute every uncertainty score.

    Args:
        model: ``"default"``, a model directory or ``.gguf`` file, or an http(s):// URL.
        question: The question.
        methods: Comma-separated scores, or ``"all"``.
        samples: Sampled answers for the sampling-based scores.
        entailment: Entailment backend name.
        decompose: ``"none"``, ``"paraphrase"``, ``"clarification"`` or ``"iterative"``.
        clarification: Clarified rewrites of the question.
        temperature: Sampling temperature of the samples.
        max_new_tokens: Longest answer in tokens.
        seed: Seed.
        model_name: Model name on an OpenAI-compatible server.
        api_key_file: File holding the server's API key (default: ``$AALEARN_API_KEY`` or
            ``$OPENAI_API_KEY``); the key is never written to results or task descriptions.
        timeout: HTTP timeout in seconds.
        chat: Chat formatting.
        threads: Torch threads for a local model (``None``: unchanged).
        strict: Bidirectional entailment for the ``nli`` and ``judge`` backends.
        numeric: Compare the answers' quantities before the entailment backend.
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).

    Returns:
        The :class:`ScoreRun`.

    Raises:
        ValueError: For an empty question or bad options.

    Example:
        >>> score_command("default", "What is 2 + 2?").payload["answer"]  # doctest: +SKIP
        '4'
    """
    if not question.strip():
        raise ValueError("--question is empty; give the question text, e.g. --question 'What is 2 + 2?'")
    start = time.perf_counter()
    backend = load_backend(
        model, model_name=model_name, api_key_file=api_key_file, timeout=timeout, chat=chat
    )
    config = SamplingConfig(
        n_samples=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    decomposition = _decompose_opt(decompose)
    with _threads(threads):
        result = score_many(
            backend,
            [question],
            methods=methods,
            entailment=entailment,
            config=config,
            decomposition=decomposition,
            variants=[tuple(clarification or ())],
            count_repeats=count_repeats,
            entailment_options={"strict": strict, "numeric": numeric},
        )[0]
    payload = {"model": backend.name, **result.to_dict(), "seconds": time.perf_counter() - start}
    rows: dict[str, Any] = {"answer": result.answer, **result.scores}
    if result.decomposition is not None:
        rows.update(
            {
                f"{k} ({result.decomposition['varied']})": result.decomposition[k]
                for k in ("epistemic", "aleatoric")
            }
        )
    rows["seconds"] = payload["seconds"]
    notes = [f"meaning clusters use {result.entailment}"] if result.approximate else []
    return ScoreRun(payload, rows, backend.name, notes)


def evaluate_command(
    model: str,
    dataset: str,
    *,
    methods: str = "all",
    limit: int = 20,
    samples: int = 5,
    entailment: str = "overlap",
    decompose: str = "none",
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    model_name: str | None = None,
    api_key_file: str | Path | None = None,
    timeout: float = 60.0,
    chat: bool = True,
    threads: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = True,
    numeric: bool = True,
    count_repeats: bool = False,
    n_boot: int = 500,
    retry_truncated: int = 0,
) -> tuple[LLMEvaluation, dict[str, Any]]:
    """``aalearn llm evaluate``: :func:`evaluate_model` with the command's options, files written to ``out``.

    Args:
        model: ``"default"``, a model directory or ``.gguf`` file, or an http(s):// URL
            (loaded here, or by each Dask worker with ``workers != 1`` or a ``scheduler``).
        dataset: Question-set name or JSONL file.
        methods: Comma-separated scores, or ``"all"``.
        limit: Number of questions (0 = all).
        samples: Sampled answers per question.
        entailment: Entailment backend name.
        decompose: ``"none"`` or a decomposition name.
        temperature: Sampling temperature of the samples.
        max_new_tokens: Longest answer in tokens.
        seed: Seed.
        workers: Dask worker processes.
        scheduler: Address of a Dask scheduler.
        model_name: Model name on an OpenAI-compatible server.
        api_key_file: File holding the server's API key (default: ``$AALEARN_API_KEY`` or
            ``$OPENAI_API_KEY``); the key is never written to results or task descriptions.
        timeout: HTTP timeout in seconds.
        chat: Chat formatting.
        threads: Torch threads for a local model.
        out: Directory for ``report.html`` and ``results.json`` (``None``: nothing written).
        progress: Called as ``progress(done, total)``.
        strict: Bidirectional entailment for the ``nli`` and ``judge`` backends.
        numeric: Compare the answers' quantities before the entailment backend.
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).
        n_boot: Bootstrap resamples of the metric intervals.
        retry_truncated: Retries of a truncated greedy answer with a doubled token budget.

    Returns:
        The evaluation and the ``--json`` object (with ``"report"`` when ``out`` is given).

    Example:
        >>> ev, payload = evaluate_command("default", "arithmetic", limit=3)  # doctest: +SKIP
    """
    parallel = workers != 1 or scheduler is not None
    model_arg: Backend | str = (
        model
        if parallel
        else load_backend(model, model_name=model_name, api_key_file=api_key_file, timeout=timeout, chat=chat)
    )
    config = SamplingConfig(
        n_samples=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    decomposition = _decompose_opt(decompose)
    with _threads(threads):
        result = evaluate_model(
            model_arg,
            dataset,
            methods=methods,
            entailment=entailment,
            config=config,
            limit=limit or None,
            decomposition=decomposition,
            model_name=model_name,
            model_options={
                "api_key_file": None if api_key_file is None else str(api_key_file),
                "timeout": timeout,
                "chat": chat,
            },
            workers=workers,
            scheduler=scheduler,
            seed=seed,
            progress=progress,
            count_repeats=count_repeats,
            entailment_options={"strict": strict, "numeric": numeric},
            n_boot=n_boot,
            retry_truncated=retry_truncated,
        )
    payload = result.to_dict(per_question=True)
    if out is not None:
        payload["report"] = str(write_llm_report(out, evaluation=result))
    return result, payload


def _strength_grid(
    perturbations: str, strengths: str | None
) -> tuple[tuple[str, ...], dict[str, tuple[float, ...]]]:
    kinds = check_perturbations(perturbations)
    grid: dict[str, tuple[float, ...]] = {k: DEFAULT_STRENGTHS[k] for k in kinds}
    if strengths:
        try:
            values = tuple(float(s) for s in strengths.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--strengths must be comma-separated numbers, got {strengths!r}") from None
        grid = dict.fromkeys(kinds, values)
    return kinds, grid


def perturbation_preview(
    question: str | None, *, perturbations: str = "all", strengths: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """``aalearn llm perturb --question Q`` without a model: the perturbed texts.

    Args:
        question: The question.
        perturbations: Comma-separated perturbation names, or ``"all"``.
        strengths: Comma-separated strengths for every perturbation (``None``: each one's grid).
        seed: Seed of the perturbations.

    Returns:
        ``{"question": ..., "perturbed": [{"perturbation", "strength", "text"}, ...]}``.

    Raises:
        ValueError: Without a question, or for bad names or strengths.

    Example:
        >>> perturbation_preview("What is 2 plus 2?", perturbations="typo")["perturbed"][0]["strength"]
        0.1
    """
    kinds, grid = _strength_grid(perturbations, strengths)
    if not question or not question.strip():
        raise ValueError("give --model to run the study, or --question to print the perturbed question")
    rows = [
        {"perturbation": k, "strength": s, "text": perturb(question, k, s, seed=seed)}
        for k in kinds
        for s in grid[k]
    ]
    return {"question": question, "perturbed": rows}


def perturb_command(
    model: str,
    dataset: str,
    *,
    perturbations: str = "all",
    strengths: str | None = None,
    methods: str = "msp,perplexity,mean_token_entropy",
    limit: int = 10,
    samples: int = 5,
    entailment: str = "overlap",
    max_new_tokens: int = 64,
    seed: int = 0,
    workers: int = 1,
    model_name: str | None = None,
    api_key_file: str | Path | None = None,
    timeout: float = 60.0,
    chat: bool = True,
    threads: int | None = None,
    out: str | Path | None = None,
) -> tuple[PerturbationStudy, dict[str, Any]]:
    """``aalearn llm perturb --model M``: :func:`perturbation_study` with the command's options.

    Args:
        model: ``"default"``, a model directory or ``.gguf`` file, or an http(s):// URL.
        dataset: Question-set name or JSONL file.
        perturbations: Comma-separated perturbation names, or ``"all"``.
        strengths: Comma-separated strengths for every perturbation (``None``: each one's grid).
        methods: Scores to follow.
        limit: Number of questions (0 = all).
        samples: Sampled answers per question.
        entailment: Judges answer flips.
        max_new_tokens: Longest answer in tokens.
        seed: Seed.
        workers: Dask worker processes.
        model_name: Model name on an OpenAI-compatible server.
        api_key_file: File holding the server's API key (default: ``$AALEARN_API_KEY`` or
            ``$OPENAI_API_KEY``); the key is never written to results or task descriptions.
        timeout: HTTP timeout in seconds.
        chat: Chat formatting.
        threads: Torch threads for a local model.
        out: Directory for ``report.html`` and ``results.json`` (``None``: nothing written).

    Returns:
        The study and the ``--json`` object (with ``"report"`` when ``out`` is given).

    Example:
        >>> study, payload = perturb_command("default", "arithmetic", perturbations="typo")  # doctest: +SKIP
    """
    kinds, grid = _strength_grid(perturbations, strengths)
    model_arg: Backend | str = (
        model
        if workers != 1
        else load_backend(model, model_name=model_name, api_key_file=api_key_file, timeout=timeout, chat=chat)
    )
    with _threads(threads):
        study = perturbation_study(
            model_arg,
            dataset,
            perturbations=kinds,
            strengths=grid,
            methods=methods,
            entailment=entailment,
            config=SamplingConfig(
                n_samples=samples, temperature=1.0, max_new_tokens=max_new_tokens, seed=seed
            ),
            limit=limit or None,
            model_name=model_name,
            model_options={
                "api_key_file": None if api_key_file is None else str(api_key_file),
                "timeout": timeout,
                "chat": chat,
            },
            workers=workers,
            seed=seed,
        )
    payload = study.to_dict()
    if out is not None:
        payload["report"] = str(write_llm_report(out, perturbation=study))
    return study, payload


def explain_command(
    model: str,
    question: str,
    *,
    answer: str | None = None,
    method: str = "gradient-x-input",
    steps: int = 32,
    max_new_tokens: int = 16,
    chat: bool = True,
    threads: int | None = None,
) -> TokenAttribution:
    """``aalearn llm explain``: which prompt tokens drive the confidence of the model's answer.

    Gradient × input (or integrated gradients) on the prompt's input embeddings for the
    log-probability of the answer (:func:`aalearn.llm.attribution.token_attributions`).

    Args:
        model: ``"default"``, a model directory or ``.gguf`` file (local weights).
        question: The question.
        answer: Answer to attribute (default: the greedy answer).
        method: ``gradient-x-input`` or ``integrated-gradients``.
        steps: Integrated-gradients path points.
        max_new_tokens: Longest greedy answer.
        chat: Chat formatting.
        threads: Torch threads (``None``: unchanged).

    Returns:
        The :class:`~aalearn.llm.attribution.TokenAttribution`.

    Raises:
        ValueError: For a server URL (:data:`~aalearn.llm.attribution.SERVER_MODEL_ERROR`),
            an empty question or bad options.

    Example:
        >>> explain_command("https://api.example.org/v1", "2 + 2?")
        Traceback (most recent call last):
        ...
        ValueError: not available for server models: token attributions need the model's weights
    """
    if str(model).strip().lower().startswith(("http://", "https://")):
        raise ValueError(SERVER_MODEL_ERROR)
    if not question.strip():
        raise ValueError("--question is empty; give the question text, e.g. --question 'What is 2 + 2?'")
    backend = load_backend(model, chat=chat)
    with _threads(threads):
        return token_attributions(
            backend, question, answer=answer, method=method, steps=steps, max_new_tokens=max_new_tokens
        )
