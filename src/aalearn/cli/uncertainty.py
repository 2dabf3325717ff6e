"""``aalearn uncertainty``: predictive uncertainty, calibration and shift detection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.uncertainty import uncertainty_file
from aalearn.cli._common import JsonOpt, LevelOpt, user_errors
from aalearn.cli._output import emit, print_table
from aalearn.evaluation.bootstrap import DEFAULT_LEVEL

__all__ = ["uncertainty"]


@user_errors
def uncertainty(
    model: Annotated[
        list[str], typer.Option(help="Model file(s); several checkpoints form a deep ensemble.")
    ],
    data: Annotated[
        Path, typer.Option(help="Labelled data file (split into calibration and evaluation halves).")
    ],
    method: Annotated[str, typer.Option(help="ensemble, mc-dropout or laplace.")] = "ensemble",
    train_data: Annotated[
        list[Path] | None, typer.Option(help="Labelled training files: train an ensemble of --members here.")
    ] = None,
    members: Annotated[int, typer.Option(help="Ensemble members to train with --train-data.")] = 5,
    dropout: Annotated[
        float | None, typer.Option(help="MC dropout: insert dropout with this p if the model has none.")
    ] = None,
    samples: Annotated[int, typer.Option(help="MC dropout forward passes.")] = 30,
    bins: Annotated[int, typer.Option(help="ECE bins (equal width).")] = 15,
    norm: Annotated[str, typer.Option(help="ECE norm: l1 (ECE), l2 (RMS) or max (MCE).")] = "l1",
    attacks: Annotated[str | None, typer.Option(help="Comma-separated attacks for the shift study.")] = None,
    shifted: Annotated[
        list[str] | None,
        typer.Option(help="NAME=FILE of shifted jets (e.g. a modelling variation); repeatable."),
    ] = None,
    n_max: Annotated[int | None, typer.Option(help="Use only the first N jets.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicas of the ECE intervals (0: no intervals).")
    ] = 200,
    level: LevelOpt = DEFAULT_LEVEL,
    json_out: JsonOpt = False,
) -> None:
    """Predictive uncertainty (epistemic/aleatoric), calibration and shift detection of a classifier."""
    run = uncertainty_file(
        model,
        data,
        method=method,
        train_data=train_data or [],
        members=members,
        dropout=dropout,
        samples=samples,
        n_bins=bins,
        norm=norm,
        attacks=[a.strip() for a in attacks.split(",")] if attacks else [],
        shifted=shifted or [],
        n_max=n_max,
        seed=seed,
        out=out,
        n_boot=bootstrap,
        level=level,
    )
    title = f"uncertainty ({method}) on {data.name}"
    emit(run.to_dict(), json_mode=json_out, title=title, rows=run.summary()[0])
    if not json_out and run.shift_rows():
        print_table("uncertainty under shift", run.shift_rows())
