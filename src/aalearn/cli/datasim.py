"""``aalearn datasim``: generated jets versus a labelled reference sample, per class."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.datasim import compare_data_sim
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit, print_table

__all__ = ["datasim"]


@user_errors
def datasim(
    generated: Annotated[
        list[Path],
        typer.Option(help="Labelled generated jets (.h5/.feather; several: --generated a --generated b)."),
    ],
    reference: Annotated[Path, typer.Option(help="Labelled reference jets, e.g. Clean_Test_Public.feather.")],
    reweight: Annotated[
        bool, typer.Option(help="Spectrum-reweight each generated class to the reference (per-class ΣpT).")
    ] = False,
    reweight_var: Annotated[str, typer.Option(help="Spectrum variable: sum-pt or lead-pt.")] = "sum-pt",
    reweight_bins: Annotated[int, typer.Option(help="Quantile bins of the reference per class.")] = 10,
    reference_rows: Annotated[
        str,
        typer.Option(help="Reference rows used: even (0, 2, 4, ...; odd rows stay held out) or all."),
    ] = "even",
    n_null: Annotated[int, typer.Option(help="Null resamples (>= 41 enables the tail fit).")] = 50,
    n_max: Annotated[int | None, typer.Option(help="At most N jets per generated file.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of resampling and classifier.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Per class: C2ST AUC, per-feature KS/W1 with nulls, the substructure table, where they differ."""
    result = compare_data_sim(
        generated,
        reference,
        reweight=reweight,
        reweight_var=reweight_var,
        reweight_bins=reweight_bins,
        rows=reference_rows,
        n_null=n_null,
        n_max=n_max,
        seed=seed,
        out=out,
    )
    emit(result.to_dict(), json_mode=json_out, title="data versus simulation", rows=result.summary())
    if not json_out:
        print_table("substructure (medians)", result.substructure)
        for label, items in sorted(result.differences.items()):
            for line in items:
                typer.echo(f"[{label}] {line}")
