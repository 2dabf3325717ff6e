"""``aalearn uncertainty``: predictive uncertainty, calibration and shift detection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit, print_table

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
    json_out: JsonOpt = False,
) -> None:
    """Predictive uncertainty (epistemic/aleatoric), calibration and shift detection of a classifier."""
    from aalearn.apps.uncertainty import uncertainty_file

    shifted_map: dict[str, str] = {}
    for spec in shifted or []:
        if "=" not in spec:
            raise ValueError(f"--shifted takes NAME=FILE, got {spec!r}")
        name, path = spec.split("=", 1)
        shifted_map[name] = path
    result = uncertainty_file(
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
        shifted=shifted_map,
        n_max=n_max,
        seed=seed,
        out=out,
    )
    keys = (
        "method",
        "n_members",
        "accuracy",
        "ece",
        "brier",
        "nll",
        "temperature",
        "ece_temperature_scaled",
        "nll_temperature_scaled",
        "mean_total",
        "mean_aleatoric",
        "mean_epistemic",
        "seconds",
    )
    emit(
        result,
        json_mode=json_out,
        title=f"uncertainty ({method}) on {data.name}",
        rows={k: result.get(k) for k in keys},
    )
    if not json_out and result["shifts"]:
        print_table("uncertainty under shift", [{"set": k, **v} for k, v in result["shifts"].items()])
