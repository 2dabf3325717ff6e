"""``aalearn calibrate``: fit the detector resolution of generated jets to a labelled reference file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.calibrate import calibrate_files
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit

__all__ = ["calibrate"]


@user_errors
def calibrate(
    reference: Annotated[
        Path, typer.Option(help="Labelled reference jets in the challenge layout (Feather, ...).")
    ],
    generated: Annotated[
        list[Path],
        typer.Option(help="aalearn HDF5 file(s) from 'aalearn generate' (top and/or W); repeatable."),
    ],
    rows: Annotated[
        str, typer.Option(help="Reference rows to fit: 'even' (0, 2, 4, ...) or 'all'.")
    ] = "even",
    n_max: Annotated[int | None, typer.Option(help="Use at most N generated jets per file.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicas for the uncertainties.")] = 10,
    max_evaluations: Annotated[int, typer.Option(help="Objective evaluations of the fit.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed (common random numbers, bootstrap).")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for resolution.json (for generate --resolution) and report.html."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit the angular and pT resolution of generated jets to a reference (writes a resolution file)."""
    result = calibrate_files(
        reference,
        generated,
        rows=rows,
        n_max=n_max,
        n_bootstrap=bootstrap,
        max_evaluations=max_evaluations,
        seed=seed,
        out=out,
    )
    note = "" if result.converged else " (NOT converged: raise --max-evaluations)"
    title = "calibrated resolution" + note
    emit(result.to_dict(), json_mode=json_out, title=title, rows=result.summary())
