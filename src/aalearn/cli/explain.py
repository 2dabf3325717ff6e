"""``aalearn explain``: which features and physics drive a tagger, and can the explanation be trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aalearn.apps.explain import explain_file
from aalearn.cli._common import JsonOpt, user_errors
from aalearn.cli._output import emit, print_table
from aalearn.explain.attributions import DEFAULT_STEPS

__all__ = ["explain"]


@user_errors
def explain(
    model: Annotated[str, typer.Option(help="Classifier: .safetensors, Keras .hdf5 or aalearn:NAME.")],
    data: Annotated[Path, typer.Option(help="Jets to explain (labels used for the per-class split).")],
    method: Annotated[
        str, typer.Option(help="integrated-gradients, gradient-shap, deeplift or saliency.")
    ] = "integrated-gradients",
    baseline: Annotated[
        str, typer.Option(help="zeros, mean (the mean jet) or a data file of baseline jets.")
    ] = "zeros",
    steps: Annotated[int, typer.Option(help="Integrated-Gradients path points.")] = DEFAULT_STEPS,
    adversarial: Annotated[
        Path | None, typer.Option(help="Adversarial jets row-paired with --data (attack explanation).")
    ] = None,
    n_max: Annotated[int | None, typer.Option(help="Use at most N jets.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Directory for report.html and results.json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Attributions per feature (also in σ units), physics observables, sanity checks, attack explanations."""
    result = explain_file(
        model,
        data,
        method=method,
        baseline=baseline,
        n_max=n_max,
        steps=steps,
        seed=seed,
        adversarial=adversarial,
        out=out,
    )
    payload = result.to_dict()
    emit(payload, json_mode=json_out, title=f"most important features ({method})", rows=result.summary())
    if not json_out:
        print_table("explanation sanity checks", result.sanity_rows())
        if result.observable_correlations:
            print_table("model output versus jet observables", result.observable_rows())
        for attack in result.attacks:
            print_table(
                f"attack explanation: {attack.name}",
                {
                    "successful jets": attack.n_successful,
                    **{f"mean |δ|/σ ({k})": v for k, v in attack.per_kind.items()},
                    "most-attacked features": ", ".join(attack.top_attacked[:5]),
                    f"top-{attack.top_k} overlap with attributions": attack.overlap,
                },
            )
