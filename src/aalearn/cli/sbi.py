"""``aalearn sbi``: validate on sbibm tasks, coverage diagnostics, physics inference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aalearn.apps.sbi import coverage_task, validate_task
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit
from aalearn.cli._sbi_physics import physics
from aalearn.inference.sbi.results import coverage_row, validation_row
from aalearn.inference.sbi.tasks import SBIBM_SETTINGS

__all__ = ["app"]

app = typer.Typer(
    name="sbi",
    help="Validate on sbibm tasks, coverage diagnostics, physics inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TaskOpt = Annotated[str, typer.Option(help="sbibm task: two_moons, slcp or gaussian_linear.")]
MethodOpt = Annotated[str, typer.Option(help="Estimator: npe, nle, nre or bnre (through sbi).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of simulations, training and posterior draws.")]
OutOpt = Annotated[Path | None, typer.Option(help="Directory for report.html and result.json.")]
CacheOpt = Annotated[Path | None, typer.Option(help="Simulation cache directory (resumable chunks).")]
WorkersOpt = Annotated[int, typer.Option(help="Local Dask workers for the simulations (1 = in-process).")]
ThreadsOpt = Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")]
ProgressOpt = Annotated[bool, typer.Option(help="Show progress output on stderr.")]
EstimatorOpt = Annotated[
    str | None,
    typer.Option(
        help="Flow (npe/nle: maf, nsf, mdn, ...) or classifier (nre/bnre: resnet, mlp, linear). "
        "Default: sbibm's choice for the method (npe nsf, nle maf, nre/bnre resnet)."
    ),
]
BatchOpt = Annotated[
    int | None, typer.Option(help="Training batch size (default: sbibm's 10000, capped at the training set).")
]


def _sbibm_defaults(
    method: str, density_estimator: str | None, training_batch_size: int | None
) -> dict[str, Any]:
    """sbibm's settings for ``method``, overridden by the options the user gave."""
    out: dict[str, Any] = dict(SBIBM_SETTINGS.get(method, {}))
    if density_estimator is not None:
        out["density_estimator"] = density_estimator
    if training_batch_size is not None:
        out["training_batch_size"] = training_batch_size
    return out


MaxEpochsOpt = Annotated[
    int | None, typer.Option(help="Upper limit on training epochs (default: sbi's early stopping only).")
]


@app.command()
@user_errors
def validate(
    task: TaskOpt,
    method: MethodOpt = "npe",
    simulations: Annotated[
        int, typer.Option(help="Training simulations (sbibm budgets: 1000, 10000, 100000).")
    ] = 10_000,
    seed: SeedOpt = 0,
    observations: Annotated[int, typer.Option(help="Evaluate sbibm observations 1..N (at most 10).")] = 10,
    posterior_samples: Annotated[int, typer.Option(help="Posterior samples per observation.")] = 10_000,
    out: OutOpt = None,
    cache: CacheOpt = None,
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    density_estimator: EstimatorOpt = None,
    training_batch_size: BatchOpt = None,
    max_epochs: MaxEpochsOpt = None,
    progress: ProgressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """C2ST of aalearn's posterior against sbibm's reference posteriors (0.5 is perfect)."""
    if not 1 <= observations <= 10:
        raise ValueError(f"--observations must lie in 1..10, got {observations}")
    result = validate_task(
        task,
        method=method,
        simulations=simulations,
        seed=seed,
        observations=range(1, observations + 1),
        n_posterior_samples=posterior_samples,
        cache=cache,
        workers=workers,
        progress=progress,
        threads=threads,
        out=out,
        max_epochs=max_epochs,
        **_sbibm_defaults(method, density_estimator, training_batch_size),
    )
    rows = validation_row(result)
    if "report" in result:
        rows["report"] = result["report"]
    emit(result, json_mode=json_out, title=f"sbi validate: {task}", rows=rows)


@app.command()
@user_errors
def coverage(
    task: TaskOpt,
    method: MethodOpt = "npe",
    simulations: Annotated[int, typer.Option(help="Training simulations.")] = 10_000,
    test_simulations: Annotated[int, typer.Option(help="Fresh test pairs for the diagnostics.")] = 300,
    posterior_samples: Annotated[int, typer.Option(help="Posterior samples per test pair.")] = 1000,
    ensemble: Annotated[int, typer.Option(help="Ensemble members (different seeds).")] = 1,
    significance: Annotated[float, typer.Option(help="p-value threshold of the verdict.")] = 0.01,
    calibration_simulations: Annotated[
        int | None,
        typer.Option(
            help="Fresh pairs for the conformal recalibration of the HPD levels (0: none; default: "
            "as many as --test-simulations for npe, 0 otherwise)."
        ),
    ] = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    cache: CacheOpt = None,
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    density_estimator: EstimatorOpt = None,
    training_batch_size: BatchOpt = None,
    max_epochs: MaxEpochsOpt = None,
    progress: ProgressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """SBC ranks, expected HPD coverage and TARP of a posterior: calibrated, overconfident or conservative."""
    result = coverage_task(
        task,
        method=method,
        simulations=simulations,
        test_simulations=test_simulations,
        seed=seed,
        n_samples=posterior_samples,
        significance=significance,
        calibration_simulations=calibration_simulations,
        ensemble=ensemble,
        cache=cache,
        workers=workers,
        progress=progress,
        threads=threads,
        out=out,
        max_epochs=max_epochs,
        **_sbibm_defaults(method, density_estimator, training_batch_size),
    )
    emit(
        result,
        json_mode=json_out,
        title=f"sbi coverage: {task}",
        rows=coverage_row(result),
    )


# ---------------------------------------------------------------------------------------
# `aalearn sbi physics` (the Pythia physics task) is added below this line.
# ---------------------------------------------------------------------------------------


app.command("physics")(physics)
