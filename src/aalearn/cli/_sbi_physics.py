"""``aalearn sbi physics``: infer the top-quark mass (and optionally the FSR αs) from Pythia jets.

A thin wrapper over :func:`aalearn.inference.physics_sbi.infer_pythia_parameters`; the lead
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
        str, typer.Option(help="Per-jet estimator combining i.i.d. jets: bnre (balanced NRE), nle or nre.")
    ] = "bnre",
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
    from aalearn.inference.physics_sbi import infer_pythia_parameters, write_physics_outputs

    if method not in ("nle", "nre", "bnre"):
        raise ValueError(f"--method must be nle, nre or bnre, got {method!r}")
    if true_alpha_s is not None and not alpha_s:
        raise ValueError("--true-alpha-s needs --alpha-s (alpha_s is fixed at 0.1365 otherwise)")
    parameters = ("top_mass", "alpha_s_fsr") if alpha_s else ("top_mass",)
    truth = {"top_mass": true_mass}
    if alpha_s:
        truth["alpha_s_fsr"] = 0.1365 if true_alpha_s is None else true_alpha_s
    result = infer_pythia_parameters(
        parameters=parameters,
        simulations=simulations,
        observed_jets=observed_jets,
        true_value=truth,
        method="nle" if method == "nle" else ("nre" if method == "nre" else "bnre"),
        observables=observables,
        held_out_sets=held_out_sets,
        jets_per_simulation=jets_per_simulation,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        cache=None if no_cache else (cache if cache is not None else "default"),
        ensemble=ensemble,
        max_epochs=max_epochs,
        progress=progress,
    )
    data = result.to_dict()
    if out is not None:
        data.update(write_physics_outputs(result, out))
    cov = data["coverage"]
    rows = {
        "parameter": data["parameter"],
        "true value": data["true_value"],
        "posterior mean": data["posterior_mean"],
        "posterior std": data["posterior_std"],
        "68 % interval": "[{:.4g}, {:.4g}]".format(*data["interval_68"]),
        "95 % interval": "[{:.4g}, {:.4g}]".format(*data["interval_95"]),
        "covered (68 %)": data["covered_68"],
        "held-out sets": cov["n_sets"],
        "held-out coverage 68 %": cov.get("coverage_68", {}).get(data["parameter"]),
        "held-out coverage 95 %": cov.get("coverage_95", {}).get(data["parameter"]),
        "coverage verdict": cov.get("verdict"),
        "method": data["method"],
        "simulations": data["simulations"],
        "seconds": data["seconds"],
    }
    for name, v in data["per_parameter"].items():
        if name != data["parameter"]:
            rows[f"{name}: true / mean / std"] = (
                f"{v['true_value']:.4g} / {v['posterior_mean']:.4g} / {v['posterior_std']:.2g}"
            )
    for key in ("report", "results"):
        if key in data:
            rows[key] = data[key]
    emit(data, json_mode=json_out, title="sbi physics: Pythia parameters from top jets", rows=rows)
