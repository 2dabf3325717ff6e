"""``aalearn measure``: the profile-likelihood fit of μ and its shifts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.measure import measure_files
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit, print_table
from aalearn.inference.breakdown import breakdown_rows

__all__ = ["measure"]


@user_errors
def measure(
    model: Annotated[str, typer.Option(help="Classifier (score = P(W)).")],
    signal: Annotated[Path, typer.Option(help="Signal (top) jets; with labels only label 0 is used.")],
    background: Annotated[Path, typer.Option(help="Background (W) jets; with labels only label 1 is used.")],
    data: Annotated[
        Path | None, typer.Option(help="Labelled jets used as pseudo-data (gives Δμ̂/σ_μ).")
    ] = None,
    variation: Annotated[
        list[str] | None,
        typer.Option(help="Modelling variation NAME=DOWN_FILE:UP_FILE (histosys); repeatable."),
    ] = None,
    attacks: Annotated[
        str | None, typer.Option(help="Comma-separated attacks whose jets become pseudo-data.")
    ] = None,
    eps: Annotated[float | None, typer.Option(help="Budget (σ units) for the ε attacks.")] = None,
    bins: Annotated[int, typer.Option(help="Score bins in [0, 1].")] = 10,
    expected_signal: Annotated[float, typer.Option(help="Expected signal yield.")] = 100.0,
    expected_background: Annotated[float, typer.Option(help="Expected background yield.")] = 1000.0,
    signal_norm: Annotated[float, typer.Option(help="Relative signal normalisation uncertainty.")] = 0.05,
    background_norm: Annotated[
        float, typer.Option(help="Relative background normalisation uncertainty.")
    ] = 0.10,
    histosys: Annotated[
        str,
        typer.Option(
            help="Variations: auto (mirror one-sided, symmetrise asymmetric), mirror, symmetrize, none."
        ),
    ] = "auto",
    toys: Annotated[int, typer.Option(help="Pseudo-experiments for the coverage of the μ interval.")] = 0,
    n_max: Annotated[int | None, typer.Option(help="Use at most N jets per sample.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Directory for report.html, results.json, workspace.json.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Profile-likelihood fit of the signal strength μ (pyhf) and its shift under attacks and variations."""
    result = measure_files(
        model,
        signal,
        background,
        data=data,
        variations=variation or [],
        attacks=[a.strip() for a in attacks.split(",")] if attacks else [],
        attack_eps=eps,
        bins=bins,
        expected_signal=expected_signal,
        expected_background=expected_background,
        signal_norm=signal_norm,
        background_norm=background_norm,
        histosys=histosys,
        coverage_toys=toys,
        n_max=n_max,
        seed=seed,
        out=out,
    )
    keys = ("mu_hat", "mu_err", "mu_err_stat", "mu_err_syst", "z_asimov", "delta_mu_over_sigma", "seconds")
    emit(
        result,
        json_mode=json_out,
        title="measurement (pyhf)",
        rows={k: result.get(k) for k in keys if k in result},
    )
    if not json_out and result.get("breakdown"):
        print_table(
            "uncertainty breakdown of σ_μ (contribution = √(σ_μ² − σ_μ,fixed²))",
            breakdown_rows(result["breakdown"]),
        )
    if not json_out and result["shifts"]:
        print_table(
            "shifts of μ̂",
            [
                {
                    "pseudo-data": k,
                    "mu_hat": v["mu_hat"],
                    "delta_mu_over_sigma": v["delta_mu_over_sigma"],
                    "fit": "Migrad" if v.get("converged", True) else "SLSQP (Migrad failed)",
                }
                for k, v in result["shifts"].items()
            ],
        )
