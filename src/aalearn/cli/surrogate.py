"""``aalearn surrogate``: train small flows on jets, validate a candidate sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.surrogate import validate_files
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit
from aalearn.cli.surrogate_train import amplification, closure, train

__all__ = ["app"]

app = typer.Typer(
    name="surrogate",
    help="Train small flows on jets, validate a candidate sample.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
@user_errors
def validate(
    reference: Annotated[
        Path, typer.Option(help="Reference jet file (full simulation): .h5, .feather, .parquet, .root.")
    ],
    candidate: Annotated[Path, typer.Option(help="The surrogate's jet file, same columns as the reference.")],
    features: Annotated[
        str,
        typer.Option(
            help="jet (physics features from the 87 challenge columns), efp (energyflow) "
            "or all (columns as given)."
        ),
    ] = "jet",
    n_null: Annotated[
        int, typer.Option(help="Reference-versus-reference resamples per null distribution.")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the resampling and of the classifier.")] = 0,
    alpha: Annotated[float, typer.Option(help="Level of the corrected statistical checks.")] = 0.05,
    correction: Annotated[str, typer.Option(help="Multiple-testing correction: holm or by.")] = "holm",
    classifier: Annotated[str, typer.Option(help="C2ST classifier: hgb, mlp or none.")] = "hgb",
    threads: Annotated[
        int | None, typer.Option(help="Limit BLAS/OpenMP threads (1 is fastest on a busy shared machine).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for results.json and report.html.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Is the candidate compatible with the reference? FPD, KPD, W1/KS, correlations, C2ST, tails, verdict."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    result, paths = validate_files(
        reference,
        candidate,
        out=out,
        features=features,
        n_null=n_null,
        seed=seed,
        alpha=alpha,
        correction=correction,
        c2st_classifier=None if classifier == "none" else classifier,
        n_threads=threads,
    )
    payload = result.to_dict()
    payload.update(paths)
    rows = {**result.summary()[0], **paths}
    emit(
        payload,
        json_mode=json_out,
        title=f"surrogate validate: {candidate.name} vs {reference.name}",
        rows=rows,
    )
    if not json_out:
        typer.echo(str(result.verdict))
    for warning in result.warnings:  # also under --json: stderr keeps stdout one JSON object
        typer.echo(f"warning: {warning}", err=True)


# The surrogate-training commands live in their own module (surrogate_train.py).
app.command("train")(train)
app.command("amplification")(amplification)
app.command("closure")(closure)
