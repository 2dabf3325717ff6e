r"""Attack workflows behind the CLI: one attack on a file, the robustness audit, challenge Task 1.

* :func:`attack_file` — one attack on a data file, with the validation checks of
  :mod:`aalearn.validation` on the adversarial sample, summarised for the terminal/JSON.
* :func:`audit` — every attack over a grid of strengths (robustness curves: fooling ratio,
  accuracy and AUC versus ε or s), the validation checks per run, overlays of the
  strongest run per attack, an HTML report section and ``results.json``.
* :func:`challenge_task1` — the ECML-PKDD 2025 "Colliding with Adversaries" Task 1:
  attack the frozen reference model on the public clean file and write the submission
  (``clean``, ``adv``, ``labels`` arrays in ``submission.npz``, zipped as
  ``submission.zip``), with the score :math:`\mathrm{FR}\,e^{-20\,\mathrm{MAD}}` recomputed
  from the written float32 arrays.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from aalearn.attacks.base import Attack
from aalearn.attacks.registry import ATTACKS, get_attack
from aalearn.attacks.result import AttackResult, challenge_score, mean_absolute_deviation
from aalearn.data.dataset import JetDataset

__all__ = [
    "AttackRun",
    "attack_file",
    "attack_summary",
    "audit",
    "challenge_task1",
    "robustness_curve",
    "summary_rows",
]


@dataclass
class AttackRun:
    """One attack with its validation report."""

    result: AttackResult
    validation: Any  # aalearn.validation.ValidationReport

    def summary(self) -> dict[str, Any]:
        """The headline keys (see :func:`attack_summary`)."""
        return attack_summary(self.result, self.validation)


def attack_summary(result: AttackResult, validation: Any | None = None) -> dict[str, Any]:
    """Flat summary: ``fooling_ratio``, ``accuracy``, ``mad``, ``challenge_score``,
    ``unphysical_fraction``, ``passes_validation``, ``seconds`` and more."""
    out = result.metrics()
    out.pop("violations", None)
    if validation is not None:
        out["passes_validation"] = bool(validation.passed)
        out["validation_max_jsd"] = float(validation.max_jsd)
        out["validation_rel_corr_change"] = float(validation.correlation.rel_frobenius)
        out["validation_failures"] = len(validation.failures)
    else:
        out["passes_validation"] = None
    out["params"] = result.params
    return out


def _load(
    model: str | Path | nn.Module, data: str | Path | JetDataset, n_max: int | None
) -> tuple[nn.Module, JetDataset]:
    from aalearn.data.io import load_dataset
    from aalearn.models import load_model

    net = load_model(model) if isinstance(model, str | Path) else model
    ds = data if isinstance(data, JetDataset) else load_dataset(data)
    if n_max is not None:
        if n_max < 1:
            raise ValueError(f"n_max must be positive, got {n_max}")
        ds = ds.subset(np.arange(min(n_max, len(ds))))
    return net, ds


def _validate(result: AttackResult, names: Sequence[str], config: Any | None) -> Any:
    from aalearn.validation import validate_samples

    return validate_samples(result.x, result.x_adv, feature_names=list(names), config=config)


def attack_file(
    model: str | Path | nn.Module,
    data: str | Path | JetDataset,
    attack: str | Attack,
    *,
    eps: float | None = None,
    scale: float | None = None,
    constraints: Sequence[str] | str | None = None,
    n_max: int | None = None,
    seed: int = 0,
    batch_size: int = 4096,
    progress: bool = False,
    validation_config: Any | None = None,
    attack_kwargs: dict[str, Any] | None = None,
) -> AttackRun:
    """Run one attack on a data file and validate the adversarial sample.

    Args:
        model: Model file (``.safetensors``, Keras ``.hdf5``) or module.
        data: Data file (feather, parquet, ROOT, aalearn HDF5) or :class:`JetDataset`.
        attack: Registry name or an :class:`Attack`.
        eps: Budget in σ units (ε attacks).
        scale: Uncertainty scale (MiniFool).
        constraints: Constraint names (``None``: defaults).
        n_max: Use only the first ``n_max`` jets.
        seed: Seed.
        batch_size: Rows per model call.
        progress: Progress bar.
        validation_config: :class:`aalearn.validation.ValidationConfig` or ``None``.
        attack_kwargs: Further settings for the attack factory.

    Returns:
        The :class:`AttackRun`.
    """
    net, ds = _load(model, data, n_max)
    atk = (
        attack
        if isinstance(attack, Attack)
        else get_attack(attack, eps=eps, scale=scale, **(attack_kwargs or {}))
    )
    result = atk.run(
        net,
        ds.features,
        ds.labels,
        constraints=constraints,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    return AttackRun(result, _validate(result, ds.feature_names, validation_config))


def robustness_curve(
    model: nn.Module,
    ds: JetDataset,
    attack: str,
    grid: Sequence[float] | None = None,
    *,
    seed: int = 0,
    constraints: Sequence[str] | str | None = None,
    progress: bool = False,
) -> list[tuple[float | None, AttackRun]]:
    """Run ``attack`` at each strength of ``grid`` (default: the registry's grid)."""
    if attack not in ATTACKS:
        get_attack(attack)  # raises the error with a did-you-mean
    info = ATTACKS[attack]
    strengths: list[float | None] = list(grid if grid is not None else info.grid) or [None]
    runs: list[tuple[float | None, AttackRun]] = []
    for s in strengths:
        kw: dict[str, Any] = {}
        if s is not None:
            kw[info.strength or "eps"] = s
        atk = get_attack(attack, **kw)
        res = atk.run(model, ds.features, ds.labels, constraints=constraints, seed=seed, progress=progress)
        runs.append((s, AttackRun(res, _validate(res, ds.feature_names, None))))
    return runs


def summary_rows(attack: str, runs: list[tuple[float | None, AttackRun]]) -> list[dict[str, Any]]:
    """One table row per (strength, run) of ``attack``: fooling ratio, MAD, validity, validation."""
    info = ATTACKS[attack]
    rows = []
    for s, run in runs:
        m = run.summary()
        rows.append(
            {
                "attack": attack,
                "strength": f"{info.strength}={s:g}" if s is not None else "-",
                "fooling_ratio": m["fooling_ratio"],
                "accuracy": m["accuracy"],
                "auc": m["auc"],
                "mad": m["mad"],
                "challenge_score": m["challenge_score"],
                "unphysical_fraction": m["unphysical_fraction"],
                "passes_validation": m["passes_validation"],
                "max_jsd": m["validation_max_jsd"],
                "rel_corr_change": m["validation_rel_corr_change"],
                "seconds": m["seconds"],
            }
        )
    return rows


def audit(
    model: str | Path | nn.Module,
    data: str | Path | JetDataset,
    out_dir: str | Path | None = None,
    *,
    attacks: Sequence[str] | None = None,
    n_max: int | None = None,
    seed: int = 0,
    constraints: Sequence[str] | str | None = None,
    progress: bool = False,
    model_name: str | None = None,
    data_name: str | None = None,
) -> dict[str, Any]:
    """The robustness audit: every attack over its grid, validation checks, curves and overlays.

    Args:
        model: Model file or module.
        data: Data file or dataset (labelled data gives accuracy and AUC under attack).
        out_dir: Where to write ``report.html`` and ``results.json`` (``None``: nothing written).
        attacks: Attack names (default: all registered).
        n_max: Use only the first ``n_max`` jets.
        seed: Seed.
        constraints: Constraint names (defaults if ``None``).
        progress: Progress bars.
        model_name: Label of the model in the report.
        data_name: Label of the data in the report.

    Returns:
        ``{"rows": [...], "summary": {...}, "files": {...}}``.
    """
    t0 = time.perf_counter()
    net, ds = _load(model, data, n_max)
    names = list(attacks) if attacks is not None else list(ATTACKS)
    for a in names:
        if a not in ATTACKS:
            get_attack(a)  # raises with a did-you-mean
    all_rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[float | None, AttackRun]]] = {}
    for a in names:
        runs = robustness_curve(net, ds, a, seed=seed, constraints=constraints, progress=progress)
        curves[a] = runs
        all_rows.extend(summary_rows(a, runs))
    summary = _audit_summary(curves)
    result: dict[str, Any] = {
        "model": model_name or str(model if not isinstance(model, nn.Module) else type(model).__name__),
        "data": data_name or str(data if not isinstance(data, JetDataset) else "dataset"),
        "n_jets": len(ds),
        "rows": all_rows,
        "summary": summary,
        "seconds": time.perf_counter() - t0,
    }
    if out_dir is not None:
        result["files"] = _write_audit(result, curves, ds, Path(out_dir))
    return result


def _audit_summary(curves: dict[str, list[tuple[float | None, AttackRun]]]) -> dict[str, Any]:
    """Per attack: the strongest run that passes validation and the strongest run overall."""
    out: dict[str, Any] = {}
    for a, runs in curves.items():
        passing = [(s, r) for s, r in runs if r.validation.passed]
        best_pass = max(passing, key=lambda sr: sr[1].result.fooling_ratio) if passing else None
        strongest = max(runs, key=lambda sr: sr[1].result.fooling_ratio)
        out[a] = {
            "max_fooling_ratio": strongest[1].result.fooling_ratio,
            "max_fooling_ratio_passing_validation": best_pass[1].result.fooling_ratio if best_pass else None,
            "strength_passing_validation": best_pass[0] if best_pass else None,
        }
    return out


def _write_audit(
    result: dict[str, Any], curves: dict[str, list[tuple[float | None, AttackRun]]], ds: JetDataset, out: Path
) -> dict[str, str]:
    from aalearn.core.jsonutil import write_json
    from aalearn.report import Report
    from aalearn.report.plots import plot_robustness_curves
    from aalearn.validation import plot_correlation_change, plot_overlays

    out.mkdir(parents=True, exist_ok=True)
    report = Report(
        "aalearn robustness audit",
        subtitle=f"{result['model']} on {result['data']} ({result['n_jets']} jets)",
    )
    curve_data = {
        a: [(s, r.result.fooling_ratio, r.result.accuracy) for s, r in runs if s is not None]
        for a, runs in curves.items()
    }
    curve_data = {a: c for a, c in curve_data.items() if c}
    figures = (
        [plot_robustness_curves(curve_data, {a: ATTACKS[a].strength or "" for a in curve_data})]
        if curve_data
        else []
    )
    report.add_section(
        "Robustness audit",
        text=(
            "Every attack over its grid of strengths. ε is in units of each feature's experimental "
            "uncertainty σ (resolution model of the feature specification); s is MiniFool's uncertainty "
            "scale. Fooling ratio: fooled jets among correctly classified ones. MAD and challenge score "
            "as in the ECML-PKDD 2025 challenge. 'passes validation': the adversarial sample passes the "
            "per-feature KS, χ² and Jensen-Shannon checks and the correlation-matrix check against the "
            "clean sample (aalearn.validation defaults)."
        ),
        table=result["rows"],
        figures=figures,
    )
    report.add_section(
        "Summary per attack",
        text="Strongest fooling ratio overall and the strongest that still passes the validation checks.",
        table=[{"attack": a, **v} for a, v in result["summary"].items()],
    )
    for a, runs in curves.items():
        s, run = max(runs, key=lambda sr: sr[1].result.fooling_ratio)
        label = f"{a} ({ATTACKS[a].strength}={s:g})" if s is not None else a
        v = run.validation
        figs = [
            plot_overlays(
                run.result.x,
                run.result.x_adv,
                feature_names=ds.feature_names,
                report=v,
                labels=("clean", "adversarial"),
            ),
            plot_correlation_change(run.result.x, run.result.x_adv, feature_names=ds.feature_names),
        ]
        report.add_section(
            f"Validation: {label}",
            text=(
                f"Validation {'passed' if v.passed else 'failed'}: {len(v.failures)} failed checks; "
                f"max JSD {v.max_jsd:.4f}, relative correlation change {v.correlation.rel_frobenius:.4f}. "
                "Overlays show the features with the largest Jensen-Shannon distance."
            ),
            table=v.table(top=10),
            figures=figs,
        )
    payload = {
        **result,
        "validation": {a: [r.validation.to_dict() for _, r in runs] for a, runs in curves.items()},
    }
    results = write_json(payload, out / "results.json")
    html = report.write(out / "report.html")
    return {"report": str(html), "results": str(results)}


def challenge_task1(
    out: str | Path,
    *,
    attack: str = "sparse",
    model: str | Path | None = None,
    data: str | Path | None = None,
    n_max: int | None = None,
    seed: int = 0,
    progress: bool = False,
    attack_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Challenge Task 1: attack the frozen reference model on the public clean file.

    Args:
        out: Path of ``submission.npz`` (a ``.zip`` with the same stem is written beside it).
        attack: Registry name; ``sparse`` runs with ``distance="l1"`` (the challenge's MAD).
        model: Reference model (default: ``best_model.hdf5`` of the challenge files).
        data: Clean file (default: ``Clean_Test_Public.feather``).
        n_max: Attack only the first ``n_max`` jets (for quick checks).
        seed: Seed.
        progress: Progress bar.
        attack_kwargs: Further attack settings.

    Returns:
        Score, fooling ratio, MAD, unphysical fraction and file paths.
    """
    from aalearn.core.paths import CHALLENGE_FILES, require_challenge_data
    from aalearn.models import load_model, predict_proba

    model_path = Path(model) if model is not None else require_challenge_data() / CHALLENGE_FILES["model"]
    data_path = Path(data) if data is not None else require_challenge_data() / CHALLENGE_FILES["clean"]
    kwargs = dict(attack_kwargs or {})
    if attack == "sparse":
        kwargs.setdefault("distance", "l1")
    run = attack_file(
        model_path, data_path, attack, n_max=n_max, seed=seed, progress=progress, attack_kwargs=kwargs
    )
    res = run.result
    assert res.labels is not None  # the challenge file is labelled
    clean = res.x.astype(np.float32)
    adv = res.x_adv.astype(np.float32)
    labels = res.labels.astype(np.int64)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp.npz")
    np.savez(tmp, clean=clean, adv=adv, labels=labels)
    tmp.replace(out_path)
    zip_path = out_path.with_suffix(".zip")
    with zipfile.ZipFile(zip_path.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(out_path, arcname="submission.npz")
    zip_path.with_suffix(".tmp").replace(zip_path)
    # the score exactly as the challenge's scorer computes it, from the written arrays
    net = load_model(model_path)
    pred = (predict_proba(net, adv) >= 0.5).astype(np.int64)
    fr = float(1.0 - np.mean(pred == labels))
    mad = mean_absolute_deviation(clean, adv)
    summary = attack_summary(res, run.validation)
    return {
        "score": challenge_score(fr, mad),
        "fooling_ratio": fr,
        "mad": mad,
        "unphysical_fraction": res.unphysical_fraction,
        "passes_validation": summary["passes_validation"],
        "attack": attack,
        "n": len(labels),
        "seconds": res.seconds,
        "submission": str(out_path),
        "submission_zip": str(zip_path),
        "model": str(model_path),
        "data": str(data_path),
    }
