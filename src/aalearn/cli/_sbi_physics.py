"""``aalearn sbi physics``: infer the top-quark mass (and optionally the FSR αs) from Pythia jets.

A thin wrapper over :func:`aalearn.apps.sbi_physics.physics_inference`; the lead
registers :func:`physics` on the ``aalearn sbi`` sub-app.

Example:
    >>> from aalearn.cli._sbi_physics import physics
    >>> callable(physics)
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.sbi_physics import physics_inference
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit

__all__ = ["physics"]


@user_errors
def physics(
    simulations: Annotated[
        int,
        typer.Option(help="Training jets simulated with Pythia over the prior (rounded up to whole runs)."),
    ] = 10_000,
    observed_jets: Annotated[
        int, typer.Option(help="i.i.d. jets in the observed set (and in each held-out set).")
    ] = 100,
    true_mass: Annotated[
        float, typer.Option(help="True top mass of the observed set, GeV (prior: uniform 165-180 GeV).")
    ] = 172.5,
    alpha_s: Annotated[
        bool,
        typer.Option("--alpha-s/--no-alpha-s", help="Also infer the FSR alpha_s (prior: uniform 0.10-0.14)."),
    ] = False,
    true_alpha_s: Annotated[
        float | None,
        typer.Option(help="True FSR alpha_s of the observed set (needs --alpha-s; default 0.1365)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="summary (calibrated Gaussian likelihood of observable means; the default with "
            "--alpha-s), or a per-jet network summed over the i.i.d. jets: bnre (the default for the "
            "mass alone), nle or nre."
        ),
    ] = None,
    observables: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of jet_pt,jet_mass,n_constituents,tau21,tau32 (default: all)."
        ),
    ] = None,
    held_out_sets: Annotated[
        int,
        typer.Option(help="Held-out sets at parameters drawn from the prior, for the coverage (0: skip)."),
    ] = 30,
    jets_per_simulation: Annotated[
        int, typer.Option(help="Jets per Pythia run (one parameter value each).")
    ] = 50,
    workers: Annotated[
        int, typer.Option(help="Local Dask workers for the simulations (1 = in-process).")
    ] = 1,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of simulations, training and posterior draws.")] = 0,
    ensemble: Annotated[int, typer.Option(help="Independently trained estimators (> 1: an ensemble).")] = 1,
    max_epochs: Annotated[
        int | None, typer.Option(help="Limit on training epochs (default: early stopping).")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Simulation cache directory (default: ~/.cache/aalearn/sbi-physics).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the simulation cache.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and result.json.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars on stderr.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Simulation-based inference of the top mass (and FSR αs) from top jets, with Pythia as the simulator."""
    result, data = physics_inference(
        simulations=simulations,
        observed_jets=observed_jets,
        true_mass=true_mass,
        alpha_s=alpha_s,
        true_alpha_s=true_alpha_s,
        method=method,
        observables=observables,
        held_out_sets=held_out_sets,
        jets_per_simulation=jets_per_simulation,
        workers=workers,
        scheduler=scheduler,
        seed=seed,
        ensemble=ensemble,
        max_epochs=max_epochs,
        cache=cache,
        no_cache=no_cache,
        out=out,
        progress=progress,
    )
    rows = result.summary()[0]
    for key in ("report", "results"):
        if key in data:
            rows[key] = data[key]
    emit(data, json_mode=json_out, title="sbi physics: Pythia parameters from top jets", rows=rows)
