"""``aalearn surrogate train | amplification | closure``: generative surrogates of jets.

Command functions (registered on the ``surrogate`` Typer app by :mod:`aalearn.cli.surrogate`),
thin wrappers over :func:`aalearn.apps.surrogate.train_surrogate_file` and
:func:`aalearn.apps.surrogate.surrogate_study`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aalearn.apps.surrogate import surrogate_study, train_surrogate_file
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit

__all__ = ["amplification", "closure", "train"]

DataOpt = Annotated[
    list[Path],
    typer.Option(
        "--data", help="Labelled jet file (.h5, .feather, .parquet, .root); repeat for several files."
    ),
]
KindOpt = Annotated[str, typer.Option(help="Surrogate: flow (zuko NSF/MAF) or flow-matching.")]
RepresentationOpt = Annotated[
    str, typer.Option(help="jet (five jet observables, fast) or features (the 87 challenge features).")
]
EpochsOpt = Annotated[int, typer.Option(help="Training epochs (per ensemble member).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the split, the training and the sampling.")]
FlowOpt = Annotated[str, typer.Option(help="Flow family for --kind flow: nsf or maf.")]
ProgressOpt = Annotated[bool, typer.Option(help="Progress bars on stderr.")]


def _choice(value: str, options: tuple[str, ...], option: str) -> Any:
    """``value`` if it is one of ``options`` (typed for the library's ``Literal`` parameters)."""
    if value not in options:
        raise ValueError(f"{option} must be one of {', '.join(options)}, got {value!r}")
    return value


def _kind(kind: str) -> Any:
    return _choice(kind, ("flow", "flow-matching"), "--kind")


@user_errors
def train(
    data: DataOpt,
    out: Annotated[
        Path, typer.Option(help="Directory for surrogate.safetensors, candidate/reference.feather.")
    ],
    kind: KindOpt = "flow",
    epochs: EpochsOpt = 50,
    samples: Annotated[
        int | None, typer.Option(help="Jets to generate (default: as many as the held-out reference).")
    ] = None,
    seed: SeedOpt = 0,
    representation: RepresentationOpt = "jet",
    holdout: Annotated[
        float, typer.Option(help="Fraction of the jets kept out of training as reference.")
    ] = 0.3,
    flow: FlowOpt = "nsf",
    progress: ProgressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a surrogate on jets; write it, a candidate sample and the held-out reference."""
    result = train_surrogate_file(
        data,
        kind=_kind(kind),
        out=out,
        epochs=epochs,
        seed=seed,
        representation=_choice(representation, ("jet", "features"), "--representation"),
        samples=samples,
        holdout=holdout,
        flow=_choice(flow, ("nsf", "maf"), "--flow"),
        progress=progress,
    )
    rows = {
        k: result[k]
        for k in (
            "kind",
            "representation",
            "n_train",
            "n_reference",
            "n_samples",
            "fit_seconds",
            "sample_seconds",
            "epochs_run",
            "val_loss",
            "reference_log_prob",
            "model",
            "candidate",
            "reference",
        )
    }
    emit(result, json_mode=json_out, title="surrogate train", rows=rows)
    if not json_out:
        typer.echo(
            f"validate with: aalearn surrogate validate --reference {result['reference']} "
            f"--candidate {result['candidate']}"
        )


def _study(
    *,
    data: list[Path],
    kind: str,
    members: int,
    epochs: int,
    observable: str,
    seed: int,
    out: Path | None,
    representation: str,
    flow: str,
    progress: bool,
    json_out: bool,
    amplification: bool,
    closure: bool,
    **options: Any,
) -> None:
    result = surrogate_study(
        data,
        kind=_kind(kind),
        representation=_choice(representation, ("jet", "features"), "--representation"),
        members=members,
        epochs=epochs,
        observable=observable,
        seed=seed,
        out=out,
        flow=_choice(flow, ("nsf", "maf"), "--flow"),
        progress=progress,
        amplification=amplification,
        closure=closure,
        **options,
    )
    title = "surrogate amplification" if amplification and not closure else "surrogate closure"
    emit(result.to_dict(), json_mode=json_out, title=title, rows=result.summary()[0])


MembersOpt = Annotated[int, typer.Option(help="Ensemble size (surrogates on bootstrap resamples).")]
ObservableOpt = Annotated[
    str,
    typer.Option(help="Binned observable: a column (jet_mass, jet_pt, width, e2, d2) or score (--model)."),
]
OutOpt = Annotated[Path | None, typer.Option(help="Directory for study.json and report.html.")]
HoldoutOpt = Annotated[float, typer.Option(help="Held-out fraction per class (truth / pseudo-data pool).")]


@user_errors
def amplification(
    data: DataOpt,
    kind: KindOpt = "flow",
    members: MembersOpt = 5,
    epochs: EpochsOpt = 30,
    observable: ObservableOpt = "jet_mass",
    n_gen: Annotated[int, typer.Option(help="Generated jets per member and class.")] = 50_000,
    bins: Annotated[int, typer.Option(help="Equal-probability bins of the observable.")] = 20,
    needed_events: Annotated[
        float | None, typer.Option(help="Equivalent events the analysis needs (default: the training size).")
    ] = None,
    holdout: HoldoutOpt = 0.5,
    seed: SeedOpt = 0,
    representation: RepresentationOpt = "jet",
    flow: FlowOpt = "nsf",
    out: OutOpt = None,
    progress: ProgressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """How many real jets is the surrogate worth? n_equiv and amplification from an ensemble."""
    _study(
        data=data,
        kind=kind,
        members=members,
        epochs=epochs,
        observable=observable,
        seed=seed,
        out=out,
        representation=representation,
        flow=flow,
        progress=progress,
        json_out=json_out,
        amplification=True,
        closure=False,
        n_gen=n_gen,
        bins=bins,
        needed_events=needed_events,
        holdout=holdout,
    )


@user_errors
def closure(
    data: DataOpt,
    kind: KindOpt = "flow",
    members: MembersOpt = 5,
    epochs: EpochsOpt = 30,
    observable: ObservableOpt = "jet_mass",
    model: Annotated[Path | None, typer.Option(help="Classifier for --observable score.")] = None,
    toys: Annotated[int, typer.Option(help="Pseudo-experiments per variant.")] = 200,
    bins: Annotated[int, typer.Option(help="Bins of the fit (equal expected yield).")] = 10,
    bias_tolerance: Annotated[
        float, typer.Option(help="Largest acceptable |bias| in units of σ_stat.")
    ] = 0.2,
    n_gen: Annotated[int, typer.Option(help="Generated jets per member and class (templates).")] = 50_000,
    holdout: HoldoutOpt = 0.5,
    seed: SeedOpt = 0,
    representation: RepresentationOpt = "jet",
    flow: FlowOpt = "nsf",
    out: OutOpt = None,
    progress: ProgressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fit real pseudo-data with surrogate templates: bias, pulls, coverage, with/without model nuisance."""
    _study(
        data=data,
        kind=kind,
        members=members,
        epochs=epochs,
        observable=observable,
        seed=seed,
        out=out,
        representation=representation,
        flow=flow,
        progress=progress,
        json_out=json_out,
        amplification=False,
        closure=True,
        model=model,
        closure_toys=toys,
        closure_bins=bins,
        bias_tolerance=bias_tolerance,
        n_gen=n_gen,
        holdout=holdout,
    )
