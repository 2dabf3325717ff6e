"""``aalearn`` command line (typer). Each command prints a table, or one JSON object with ``--json``.

Commands are thin: they parse options, call one app function (:mod:`aalearn.apps`) and
print. Errors in the user's input are reported as one line on stderr with exit code 2,
without a traceback.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from aalearn import __version__
from aalearn.apps.audit import attack_catalogue, run_attack
from aalearn.apps.audit import challenge_task1 as run_task1
from aalearn.apps.challenge import challenge_task2 as run_task2
from aalearn.apps.challenge import compare_files, parse_attacks
from aalearn.apps.demo import DemoConfig, run_demo
from aalearn.apps.evaluate import evaluate_file
from aalearn.apps.inputs import parse_options
from aalearn.apps.train import train_files
from aalearn.apps.trust import trust_audit
from aalearn.cli import calibrate, datasim, explain, llm, measure, sbi, surrogate, uncertainty
from aalearn.cli._common import BootstrapOpt, JsonOpt, LevelOpt, user_errors
from aalearn.cli._output import emit, print_table
from aalearn.data.generate import VARIATION_DESCRIPTIONS, VARIATIONS, GeneratorConfig
from aalearn.data.generate import generate as run_generate
from aalearn.data.presets import load_pileup, preset_config
from aalearn.evaluation.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT
from aalearn.physics.resolution import load_resolution
from aalearn.reproduce import REGISTRY, run

app = typer.Typer(
    name="aalearn",
    help="aalearn: adversarial and uncertainty-aware learning for physics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_user_errors = user_errors


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aalearn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """aalearn: how far to trust a machine-learning model trained on simulation."""


def _list_variations(value: bool) -> None:
    if value:
        for name, text in VARIATION_DESCRIPTIONS.items():
            typer.echo(f"{name}: {text}")
        raise typer.Exit()


@app.command()
@_user_errors
def generate(
    process: Annotated[str, typer.Option(help="Jet class: 'top' (t t̄) or 'w' (W W).")],
    n: Annotated[int, typer.Option("--n", help="Number of jets to generate.")],
    out: Annotated[Path, typer.Option(help="Output file, aalearn HDF5 (name ending in .h5 or .hdf5).")],
    preset: Annotated[
        str | None,
        typer.Option(help="Bundle of settings, e.g. 'cms-challenge' (explicit options override it)."),
    ] = None,
    variation: Annotated[
        str, typer.Option(help=f"Modelling variation: {', '.join(VARIATIONS)} (see --list-variations).")
    ] = "nominal",
    list_variations: Annotated[
        bool,
        typer.Option(
            "--list-variations",
            callback=_list_variations,
            is_eager=True,
            help="Describe the variations and exit.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Base seed; chunk seeds derive from (seed, chunk).")] = 1,
    workers: Annotated[int, typer.Option(help="Local Dask workers (1 = in-process).")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786 (overrides --workers).")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(help="Jets per chunk (unit of resumption and parallelism).")
    ] = 1000,
    pt_min: Annotated[
        float | None, typer.Option(help="Leading-jet pT lower edge in GeV (default 400, or the preset's).")
    ] = None,
    pt_max: Annotated[float | None, typer.Option(help="Leading-jet pT upper edge in GeV.")] = None,
    pthat_min: Annotated[
        float | None,
        typer.Option(
            help="PhaseSpace:pTHatMin in GeV (default: the preset's, else 350, or pt-min − 30 below 380)."
        ),
    ] = None,
    eta_max: Annotated[float | None, typer.Option(help="Leading-jet |η| cut (default 2).")] = None,
    jet_radius: Annotated[float | None, typer.Option(help="Anti-kt radius R (default 0.8).")] = None,
    ecm: Annotated[float | None, typer.Option(help="Centre-of-mass energy √s, GeV (default 13000).")] = None,
    w_decays: Annotated[
        str | None, typer.Option(help="W decays: 'hadronic' (default), 'inclusive' or 'leptonic' (W → ℓν).")
    ] = None,
    jets_per_event: Annotated[
        str | None,
        typer.Option(help="'leading' (default): the event's leading jet only; 'all': every jet that passes."),
    ] = None,
    pileup: Annotated[
        str | None,
        typer.Option(
            help="Soft-particle overlay before the smearing and --min-constituents: 'none' (default), "
            "'cms-challenge' or a JSON file of PileupModel fields."
        ),
    ] = None,
    massless_clustering: Annotated[
        bool | None, typer.Option(help="Cluster massless particles (distance in η, not rapidity).")
    ] = None,
    constituent_pt_min: Annotated[
        float | None, typer.Option(help="Drop detector-level objects below this pT in GeV (default 0).")
    ] = None,
    min_constituents: Annotated[
        int | None, typer.Option(help="Reject jets with fewer objects after the pT threshold (default 0).")
    ] = None,
    resort: Annotated[
        bool | None, typer.Option(help="Re-sort constituents by smeared pT (default: particle-level order).")
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(help="Resolution: 'default', 'cms-challenge' or a JSON file from 'aalearn calibrate'."),
    ] = None,
    truth_match: Annotated[
        bool | None, typer.Option(help="Require ΔR < 0.6 to the hard-process top/W (default off).")
    ] = None,
    mpi: Annotated[bool | None, typer.Option(help="Multi-parton interactions (default on).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Discard an existing output or partial run.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Generate top or W jets with Pythia 8 into a chunked, resumable HDF5 file."""
    del list_variations  # handled by its callback
    options = {
        "variation": variation,
        "pt_min": pt_min,
        "pt_max": pt_max,
        "eta_max": eta_max,
        "jet_radius": jet_radius,
        "ecm": ecm,
        "w_decays": w_decays,
        "jets_per_event": jets_per_event,
        "massless_clustering": massless_clustering,
        "constituent_pt_min": constituent_pt_min,
        "min_constituents": min_constituents,
        "resort": resort,
        "resolution": load_resolution(resolution) if resolution is not None else None,
        "truth_match": truth_match,
        "mpi": mpi,
        "pthat_min": pthat_min,
    }
    if preset is not None:
        if pthat_min is None and pt_min is not None:
            preset_pthat = preset_config(preset, process).pthat_min
            options["pthat_min"] = min(preset_pthat, pt_min - 30.0)
        config = preset_config(preset, process, **options)
    else:
        if pthat_min is None:
            options["pthat_min"] = min(350.0, (pt_min if pt_min is not None else 400.0) - 30.0)
        config = GeneratorConfig.from_dict(
            {"process": process, **{k: v for k, v in options.items() if v is not None}}
        )
    if pileup is not None:  # 'none' must be able to switch off a preset's overlay
        config = dataclasses.replace(config, pileup=load_pileup(pileup))
    summary = run_generate(
        config,
        n,
        out,
        seed=seed,
        chunk_size=chunk_size,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        overwrite=overwrite,
    )
    emit(summary.to_dict(), json_mode=json_out, title=f"generated {process} jets → {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
@_user_errors
def train(
    ctx: typer.Context,
    data: Annotated[
        list[Path], typer.Option(help="Labelled data files (several allowed: --data a.h5 b.h5).")
    ],
    out: Annotated[Path, typer.Option(help="Output checkpoint (.safetensors).")],
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on validation loss).")] = 60,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 256,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs).")] = 8,
    val_fraction: Annotated[float, typer.Option(help="Validation fraction of the data.")] = 0.2,
    l1: Annotated[float, typer.Option(help="L1 penalty on dense weights.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of split, initialisation and batch order.")] = 0,
    architecture: Annotated[str, typer.Option(help="Model architecture: topodnn or robust.")] = "topodnn",
    strategy: Annotated[
        str, typer.Option(help="Training strategy: nominal, adversarial, rdsa, pivot, disco.")
    ] = "nominal",
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Strategy setting KEY=VALUE (several allowed), e.g. -o eps=1."),
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option(
            "--model-option",
            "-m",
            help="Architecture setting KEY=VALUE (several allowed), e.g. -m pt_inputs=1 (robust: read the "
            "leading constituent's pT only).",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Per-epoch checkpoints here; a killed run resumes from them.")
    ] = None,
    nuisance_file: Annotated[
        list[str] | None,
        typer.Option(
            help="Labelled jets of a modelling variation as Z=FILE (e.g. -1=fsr_down.h5); --data jets get "
            "Z=0. Z is the nuisance that --strategy pivot (or disco -o aux_key=z) decorrelates from."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    reweight_to: Annotated[
        Path | None,
        typer.Option(
            help="Labelled reference file (e.g. Clean_Test_Public.feather): reweight each class of the "
            "training jets to that class's spectrum in it (sample weights in loss and validation)."
        ),
    ] = None,
    reweight_var: Annotated[
        str, typer.Option(help="Spectrum variable of --reweight-to: sum-pt (constituent ΣpT) or lead-pt.")
    ] = "sum-pt",
    reweight_bins: Annotated[int, typer.Option(help="Quantile bins of the reference per class.")] = 10,
    reference_rows: Annotated[
        str,
        typer.Option(
            help="Rows of --reweight-to that inform the spectrum: even (0, 2, 4, ...; keeps the odd rows "
            "of the challenge's clean file held out) or all."
        ),
    ] = "even",
    json_out: JsonOpt = False,
) -> None:
    """Train a tagger (TopoDNN or the robust network) with a training strategy; save a checkpoint."""
    run = train_files(
        list(data) + [Path(a) for a in ctx.args],
        out,
        val_fraction=val_fraction,
        nuisance_files=nuisance_file,
        architecture=architecture,
        strategy=strategy,
        strategy_options=parse_options(option),
        model_options=parse_options(model_option, option="--model-option"),
        checkpoint_dir=checkpoint_dir,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        l1=l1,
        seed=seed,
        progress=progress,
        reweight_to=reweight_to,
        reweight_var=reweight_var,
        reweight_bins=reweight_bins,
        reference_rows=reference_rows,
    )
    emit(run.to_dict(), json_mode=json_out, title=f"trained {architecture} ({strategy}) → {out}")


@app.command()
@_user_errors
def evaluate(
    model: Annotated[
        str, typer.Option(help="aalearn checkpoint (.safetensors) or the challenge's best_model.hdf5.")
    ],
    data: Annotated[Path, typer.Option(help="Labelled data file (feather, aalearn HDF5, Parquet, ROOT).")],
    columns: Annotated[
        Path | None, typer.Option(help="JSON column mapping {aalearn name: file column} for Parquet/ROOT.")
    ] = None,
    tree: Annotated[str | None, typer.Option(help="TTree name for ROOT files.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write report.html (ROC, score plots) and results.json here.")
    ] = None,
    bootstrap: BootstrapOpt = DEFAULT_N_BOOT,
    level: LevelOpt = DEFAULT_LEVEL,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy, ROC AUC and background rejection of a model on a data file, with intervals."""
    result = evaluate_file(
        model, data, columns=columns, tree=tree, out=out, n_boot=bootstrap, level=level, seed=seed
    )
    emit(
        result.to_dict(),
        json_mode=json_out,
        title=f"{Path(model).name} on {data.name}",
        rows=result.summary()[0],
    )


@app.command()
@_user_errors
def reproduce(
    name: Annotated[str | None, typer.Argument(help="Reproduction to run (see --list).")] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the reproductions with source and tolerance.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Re-run a check of a published number or a peer library's output."""
    if list_ or name is None:
        if json_out:
            emit({"reproductions": [r.summary() for r in REGISTRY.values()]}, json_mode=True, title="")
        else:
            print_table("aalearn reproductions", [r.table_row() for r in REGISTRY.values()])
        return
    result = run(name)
    emit(
        result.to_dict(),
        json_mode=json_out,
        title=f"reproduce {name}: {'PASS' if result.passed else 'FAIL'}",
        rows=result.summary(),
    )
    if not result.passed:
        raise typer.Exit(code=1)


@app.command()
@_user_errors
def demo(
    out: Annotated[
        Path, typer.Option(help="Output directory for report.html, results.json, the model.")
    ] = Path("aalearn-demo"),
    n_per_class: Annotated[int, typer.Option(help="Jets generated per class.")] = 3000,
    workers: Annotated[int, typer.Option(help="Local Dask workers for generation.")] = 2,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://...).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of generation and training.")] = 1,
    epochs: Annotated[int, typer.Option(help="Maximum training epochs.")] = 60,
    preset: Annotated[
        str, typer.Option(help="Generator preset (cms-challenge), or 'none' for the generator's defaults.")
    ] = "cms-challenge",
    reweight: Annotated[
        bool,
        typer.Option(
            help="Reweight each class to its ΣpT spectrum in the even rows of the challenge's clean file."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars on stderr.")] = True,
    audit: Annotated[
        bool, typer.Option(help="End with the trust audits (demo tagger; challenge model when found).")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """The main job: generate jets, train TopoDNN, evaluate, and write an HTML report."""
    config = DemoConfig(
        n_per_class=n_per_class,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        epochs=epochs,
        preset=None if preset == "none" else preset,
        reweight=reweight,
        audit=audit,
    )
    results = run_demo(out, config, progress=progress)
    if json_out:
        emit(results, json_mode=True, title="")
        return
    rows = [
        {
            "dataset": name,
            "n": ev["n"],
            "accuracy": ev["accuracy"],
            "auc": ev["auc"],
            **{f"rejection@{k}": v for k, v in ev["background_rejection"].items()},
        }
        for name, ev in results["evaluation"].items()
    ]
    print_table("aalearn demo: TopoDNN performance", rows)
    typer.echo(results["challenge_data"])
    for name, entry in results.get("audit", {}).items():
        typer.echo(f"trust audit ({name}): {entry['verdict'] or entry.get('error')}")
    typer.echo(f"report: {results['report']}\nresults: {out / 'results.json'}\nmodel: {results['model']}")


@app.command()
@_user_errors
def attack(
    attack_name: Annotated[str, typer.Option("--attack", help="Attack name (see --list).")] = "pgd",
    model: Annotated[
        str | None, typer.Option(help="Model: aalearn checkpoint (.safetensors) or Keras best_model.hdf5.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data file (feather, aalearn HDF5, Parquet, ROOT).")
    ] = None,
    eps: Annotated[
        float | None, typer.Option(help="Budget in units of each feature's σ (ε attacks).")
    ] = None,
    scale: Annotated[float | None, typer.Option(help="Uncertainty scale s (minifool).")] = None,
    constraints: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated constraints ('default', 'pt-sum', 'energy', 'pt-ordering', ...); "
            "'none' alone for no constraints."
        ),
    ] = None,
    n_max: Annotated[int | None, typer.Option(help="Attack only the first N jets.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the adversarial jets (.feather or .parquet) or a .npz here."),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the attacks and constraints.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Attack a model on a data file; fooling ratio, MAD, validity and validation checks."""
    if list_:
        catalogue = attack_catalogue()
        if json_out:
            emit(catalogue, json_mode=True, title="")
        else:
            attacks = [{k: v for k, v in a.items() if k != "grid"} for a in catalogue["attacks"]]
            print_table("attacks", attacks)
            print_table("constraints", catalogue["constraints"])
        return
    if model is None or data is None:
        raise ValueError("--model and --data are required (or use --list)")
    result = run_attack(
        model,
        data,
        attack_name,
        eps=eps,
        scale=scale,
        constraints=constraints,
        n_max=n_max,
        seed=seed,
        progress=progress,
        out=out,
    )
    emit(
        result.to_dict(),
        json_mode=json_out,
        title=f"{attack_name} on {Path(model).name} / {data.name}",
        rows=result.summary()[0],
    )


@app.command()
@_user_errors
def audit(
    model: Annotated[
        str,
        typer.Option(help="Model: aalearn checkpoint (.safetensors), Keras .hdf5, .onnx or aalearn:NAME."),
    ],
    data: Annotated[Path, typer.Option(help="Labelled data file (0 = signal/top, 1 = background/W).")],
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    signal: Annotated[
        Path | None, typer.Option(help="Signal template file (with --background; default: even data rows).")
    ] = None,
    background: Annotated[Path | None, typer.Option(help="Background template file.")] = None,
    variation: Annotated[
        list[str] | None,
        typer.Option(help="Modelling variation NAME=DOWN_FILE:UP_FILE (a fit nuisance); repeatable."),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(help="Feature-specification TOML (name, unit, sigma, bounds, period per column)."),
    ] = None,
    budget: Annotated[
        list[float] | None,
        typer.Option(help="Attack budget in σ units; repeatable (default 0.25 0.5 1 2 4)."),
    ] = None,
    attacks: Annotated[str | None, typer.Option(help="Comma-separated attack names (default: pgd).")] = None,
    constraints: Annotated[
        str | None, typer.Option(help="Comma-separated constraints for jet data (default: default,pt-sum).")
    ] = None,
    n_max: Annotated[int | None, typer.Option(help="Use only the first N rows of every file.")] = None,
    no_detector: Annotated[
        bool, typer.Option("--no-detector", help="Skip the adversarial-sample detector.")
    ] = False,
    no_explain: Annotated[
        bool, typer.Option("--no-explain", help="Skip the explanations section (Integrated Gradients).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per section on stderr.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Trust audit: performance, robustness, uncertainty, systematics, measurement, detection; a verdict."""
    result = trust_audit(
        model,
        data,
        out,
        signal=signal,
        background=background,
        variations=variation or [],
        features=features,
        attacks=[a.strip() for a in attacks.split(",")] if attacks else None,
        budgets=budget or None,
        constraints=constraints,
        n_max=n_max,
        detector=not no_detector,
        explain=not no_explain,
        seed=seed,
        progress=progress,
        model_name=model,
        data_name=str(data),
    )
    payload = result.to_dict()
    if json_out:
        emit(payload, json_mode=True, title="")
        return
    print_table(f"trust audit of {Path(model).name} on {data.name}: {payload['verdict']}", result.summary())
    if out is not None:
        typer.echo(f"report: {payload['files']['report']}\nresults: {payload['files']['results']}")


challenge_app = typer.Typer(
    help="The ECML-PKDD 2025 'Colliding with Adversaries' challenge tasks.", no_args_is_help=True
)
app.add_typer(challenge_app, name="challenge")


@challenge_app.command("task1")
@_user_errors
def challenge_task1(
    out: Annotated[
        Path, typer.Option(help="Submission file (submission.npz; a .zip is written beside it).")
    ] = Path("submission.npz"),
    attack_name: Annotated[str, typer.Option("--attack", help="Attack name.")] = "minimal",
    model: Annotated[
        Path | None, typer.Option(help="Reference model (default: the challenge's best_model.hdf5).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Clean file (default: Clean_Test_Public.feather).")
    ] = None,
    n_max: Annotated[int | None, typer.Option(help="Attack only the first N jets.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Task 1: attack the frozen reference model on the public clean file; write and score the submission."""
    result = run_task1(
        out, attack=attack_name, model=model, data=data, n_max=n_max, seed=seed, progress=progress
    ).to_dict()
    emit(result, json_mode=json_out, title=f"challenge task 1 ({attack_name}): score {result['score']:.4f}")


@challenge_app.command("task2")
@_user_errors
def challenge_task2(
    model: Annotated[
        str, typer.Option(help="Model: aalearn:robust (shipped), a .safetensors checkpoint or a Keras .hdf5.")
    ] = "aalearn:robust",
    clean: Annotated[
        Path | None, typer.Option(help="Clean file (default: Clean_Test_Public.feather).")
    ] = None,
    adversarial: Annotated[
        Path | None,
        typer.Option(help="Row-paired adversarial file (default: the public RDSA file)."),
    ] = None,
    adaptive: Annotated[
        str | None,
        typer.Option(help="Adaptive attacks against the model, e.g. 'pgd:1,rdsa' ('none' to skip)."),
    ] = None,
    n_adaptive: Annotated[int, typer.Option(help="Jets attacked adaptively.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the adaptive attacks and of the bootstrap.")] = 0,
    bootstrap: BootstrapOpt = DEFAULT_N_BOOT,
    level: LevelOpt = DEFAULT_LEVEL,
    json_out: JsonOpt = False,
) -> None:
    """Task 2: mixed accuracy (clean + RDSA)/2 on the public pair, plus attacks run against the model."""
    result = run_task2(
        model,
        clean=clean,
        adversarial=adversarial,
        adaptive=parse_attacks(adaptive),
        n_adaptive=n_adaptive,
        seed=seed,
        n_boot=bootstrap,
        level=level,
    ).to_dict()
    title = f"challenge task 2 ({model}): mixed accuracy {result['mixed_accuracy']:.4f}"
    if json_out:
        emit(result, json_mode=True, title=title)
        return
    emit(result, json_mode=False, title=title)
    if result["adaptive"]:
        print_table(
            "adaptive attacks against the model",
            [
                {
                    k: r[k]
                    for k in ("attack", "strength", "accuracy", "fooling_ratio", "mad", "passes_validation")
                }
                for r in result["adaptive"]
            ],
        )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
@_user_errors
def compare(
    ctx: typer.Context,
    models: Annotated[
        list[str], typer.Option(help="Models to compare: --models a.safetensors b.safetensors")
    ],
    data: Annotated[Path, typer.Option(help="Labelled test file.")],
    attacks: Annotated[
        str | None, typer.Option(help="Attacks at fixed strength, e.g. 'pgd:1,rdsa' ('none' to skip).")
    ] = None,
    variation: Annotated[
        list[str] | None, typer.Option(help="Modelling variation as NAME=FILE (several allowed).")
    ] = None,
    n_attack: Annotated[int, typer.Option(help="Jets attacked per model.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the attacks and of the bootstrap.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write results.json and report.html here.")] = None,
    bootstrap: BootstrapOpt = DEFAULT_N_BOOT,
    level: LevelOpt = DEFAULT_LEVEL,
    json_out: JsonOpt = False,
) -> None:
    """Compare trained models: clean AUC/accuracy, rejection, accuracy under attack, variation shift, cost."""
    result = compare_files(
        list(models) + list(ctx.args),
        data,
        attacks=attacks,
        variations=variation,
        n_attack=n_attack,
        seed=seed,
        out=out,
        n_boot=bootstrap,
        level=level,
    )
    if json_out:
        emit(result.to_dict(), json_mode=True, title="")
    else:
        print_table(f"model comparison on {data}", result.summary())


def _register_subcommands() -> None:
    # Sub-apps of larger command groups live in their own modules.
    app.command(name="uncertainty")(uncertainty.uncertainty)
    app.command(name="measure")(measure.measure)
    app.command(name="explain")(explain.explain)
    app.command(name="datasim")(datasim.datasim)
    app.command(name="calibrate")(calibrate.calibrate)
    app.add_typer(sbi.app, name="sbi")
    app.add_typer(surrogate.app, name="surrogate")
    app.add_typer(llm.app, name="llm")


_register_subcommands()


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
