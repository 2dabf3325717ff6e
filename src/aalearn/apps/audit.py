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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from aalearn.apps.inputs import describe_model, load_data, load_model_arg
from aalearn.attacks.base import Attack
from aalearn.attacks.registry import ATTACKS, get_attack
from aalearn.attacks.result import AttackResult, challenge_score, mean_absolute_deviation
from aalearn.constraints import CONSTRAINTS, DEFAULT_CONSTRAINTS, resolve_constraint_names
from aalearn.core.io import atomic_path
from aalearn.core.paths import CHALLENGE_FILES, require_challenge_data
from aalearn.core.result import DictResult, ReportBuilder
from aalearn.core.validation import check_output_path
from aalearn.data.dataset import JetDataset
from aalearn.data.io import save_dataset
from aalearn.evaluation.bootstrap import Interval, attack_intervals, challenge_score_intervals
from aalearn.models import predict_proba
from aalearn.physics.features import challenge_feature_names, is_challenge_layout
from aalearn.report import write_run
from aalearn.report.plots import plot_robustness_curves
from aalearn.validation import plot_correlation_change, plot_overlays, validate_samples

__all__ = [
    "SUMMARY_KEYS",
    "AttackRun",
    "AuditResult",
    "attack_catalogue",
    "attack_file",
    "attack_summary",
    "audit",
    "challenge_task1",
    "robustness_curve",
    "run_attack",
    "summary_rows",
    "write_adversarial",
]

#: The keys of ``aalearn attack``'s terminal table.
SUMMARY_KEYS = (
    "fooling_ratio",
    "accuracy",
    "auc",
    "mad",
    "challenge_score",
    "unphysical_fraction",
    "passes_validation",
    "validation_max_jsd",
    "validation_rel_corr_change",
    "median_linf_sigma_fooled",
    "median_changed_features_fooled",
    "seconds",
)


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


#: Figures of ``aalearn attack``'s table that get a ``"<figure> 68% CI"`` column.
INTERVAL_KEYS = ("fooling_ratio", "accuracy", "auc", "mad", "challenge_score", "unphysical_fraction")


def _with_intervals(row: dict[str, Any], intervals: dict[str, Interval]) -> dict[str, Any]:
    """``row`` with a ``"<figure> 68% CI"`` entry ``"[low, high]"`` after each figure that has one."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = v
        if k in INTERVAL_KEYS and k in intervals:
            out[f"{k} {100 * intervals[k].level:g}% CI"] = intervals[k].bracket()
    return out


def _load(
    model: str | Path | nn.Module, data: str | Path | JetDataset, n_max: int | None
) -> tuple[nn.Module, JetDataset]:
    return load_model_arg(model), load_data(data, n_max=n_max)


def _validate(result: AttackResult, names: Sequence[str], config: Any | None) -> Any:
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


@dataclass
class AuditResult:
    """The robustness audit (a :class:`~aalearn.core.result.Result`).

    Attributes:
        data: The JSON object: ``model``, ``data``, ``n_jets``, ``rows`` (one per attack and
            strength), ``summary`` (per attack), ``seconds`` and, once written, ``files``.
        curves: Attack name → ``(strength, run)`` pairs.
        dataset: The attacked jets.
    """

    data: dict[str, Any]
    curves: dict[str, list[tuple[float | None, AttackRun]]] = field(default_factory=dict)
    dataset: JetDataset | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``aalearn audit --json`` object."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """The terminal rows: attack, strength, FR, acc, MAD, score, unphys, valid."""
        short = {
            "attack": "attack",
            "strength": "strength",
            "fooling_ratio": "FR",
            "accuracy": "acc",
            "mad": "MAD",
            "challenge_score": "score",
            "unphysical_fraction": "unphys",
            "passes_validation": "valid",
        }
        return [{v: r.get(k) for k, v in short.items()} for r in self.data["rows"]]

    def payload(self) -> dict[str, Any]:
        """The ``results.json`` object: :meth:`to_dict` plus the validation report of every run."""
        return {
            **{k: v for k, v in self.data.items() if k != "files"},
            "validation": {a: [r.validation.to_dict() for _, r in runs] for a, runs in self.curves.items()},
        }

    def add_to(self, report: ReportBuilder) -> None:
        """Robustness curves and table, the summary per attack, and validation overlays per attack."""
        result = self.data
        curve_data = {
            a: [(s, r.result.fooling_ratio, r.result.accuracy) for s, r in runs if s is not None]
            for a, runs in self.curves.items()
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
        names = self.dataset.feature_names if self.dataset is not None else None
        for a, runs in self.curves.items():
            s, run = max(runs, key=lambda sr: sr[1].result.fooling_ratio)
            label = f"{a} ({ATTACKS[a].strength}={s:g})" if s is not None else a
            v = run.validation
            rel = v.correlation.rel_frobenius
            figs = [
                plot_overlays(
                    run.result.x,
                    run.result.x_adv,
                    feature_names=names,
                    report=v,
                    labels=("clean", "adversarial"),
                ),
                plot_correlation_change(run.result.x, run.result.x_adv, feature_names=names),
            ]
            report.add_section(
                f"Validation: {label}",
                text=(
                    f"Validation {'passed' if v.passed else 'failed'}: {len(v.failures)} failed checks; "
                    f"max JSD {v.max_jsd:.4f}, relative correlation change {rel:.4f}. "
                    "Overlays show the features with the largest Jensen-Shannon distance."
                ),
                table=v.table(top=10),
                figures=figs,
            )

    def write(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``report.html`` and ``results.json`` into ``out_dir``; record them under ``files``."""
        paths = write_run(
            self,
            out_dir,
            title="aalearn robustness audit",
            subtitle=f"{self.data['model']} on {self.data['data']} ({self.data['n_jets']} jets)",
            payload=self.payload(),
        )
        self.data["files"] = {"report": str(paths.report), "results": str(paths.results)}
        return dict(self.data["files"])


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
) -> AuditResult:
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
        The :class:`AuditResult`; its ``to_dict()`` is ``{"rows": [...], "summary": {...},
        "files": {...}, ...}``.

    Example:
        >>> audit  # doctest: +ELLIPSIS
        <function audit at ...>
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
    result = AuditResult(
        {
            "model": model_name or describe_model(model),
            "data": data_name or str(data if not isinstance(data, JetDataset) else "dataset"),
            "n_jets": len(ds),
            "rows": all_rows,
            "summary": summary,
            "seconds": time.perf_counter() - t0,
        },
        curves,
        ds,
    )
    if out_dir is not None:
        result.write(out_dir)
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


def attack_catalogue() -> dict[str, list[dict[str, Any]]]:
    """The registered attacks and constraints (``aalearn attack --list``).

    Example:
        >>> "pgd" in [a["name"] for a in attack_catalogue()["attacks"]]
        True
    """
    return {
        "attacks": [a.to_dict() for a in ATTACKS.values()],
        "constraints": [
            {"name": n, "default": n in DEFAULT_CONSTRAINTS, "description": c.description}
            for n, c in CONSTRAINTS.items()
        ],
    }


#: Suffixes :func:`write_adversarial` writes.
ADVERSARIAL_SUFFIXES: tuple[str, ...] = (".npz", ".feather", ".parquet", ".pq")


def parse_constraint_option(constraints: Sequence[str] | str | None) -> tuple[str, ...]:
    """The constraint names a ``--constraints`` value enables; ``none`` alone means no constraints.

    Raises:
        ValueError: For ``none`` combined with other names, or an unknown name.

    Example:
        >>> parse_constraint_option("none"), parse_constraint_option("pt-sum,energy")
        ((), ('pt-sum', 'energy'))
    """
    names = constraints.split(",") if isinstance(constraints, str) else constraints
    if names is not None:
        names = [n.strip() for n in names]
        if "none" in (n.lower() for n in names) and len(names) > 1:
            raise ValueError(
                f"--constraints: 'none' means no constraints and cannot be combined with others, "
                f"got {','.join(names)!r}"
            )
    return resolve_constraint_names(constraints)


def write_adversarial(result: AttackResult, out: str | Path) -> Path:
    """Write the adversarial jets of ``result``: a ``.npz`` of the arrays or a Feather/Parquet data file.

    The ``.npz`` holds ``clean``, ``adv`` (float32), ``labels`` (or the attack's targets) and
    ``success``; Feather/Parquet hold the adversarial jets as a data set (challenge feature
    names for 87 columns, else ``f0``, ``f1``, ...).

    Raises:
        ValueError: For another suffix.

    Example:
        >>> write_adversarial  # doctest: +ELLIPSIS
        <function write_adversarial at ...>
    """
    out = check_output_path(out, suffixes=ADVERSARIAL_SUFFIXES, what="--out")
    if out.suffix == ".npz":
        with atomic_path(out, suffix=".npz") as tmp:
            np.savez(
                tmp,
                clean=result.x.astype(np.float32),
                adv=result.x_adv.astype(np.float32),
                labels=result.labels if result.labels is not None else result.target,
                success=result.success,
            )
        return out
    n_features = result.x.shape[1]
    names = (
        challenge_feature_names() if is_challenge_layout(n_features) else [f"f{i}" for i in range(n_features)]
    )
    ds = JetDataset(result.x_adv.astype(np.float32), result.labels, tuple(names), source="aalearn attack")
    save_dataset(ds, out)
    return out


def run_attack(
    model: str,
    data: str | Path,
    attack: str,
    *,
    eps: float | None = None,
    scale: float | None = None,
    constraints: Sequence[str] | str | None = None,
    n_max: int | None = None,
    seed: int = 0,
    progress: bool = False,
    out: str | Path | None = None,
) -> DictResult:
    """The ``aalearn attack`` command: one attack on a file, its summary, optionally the adversarial jets.

    Args:
        model: Model file (``.safetensors``, Keras ``.hdf5``) or ``aalearn:NAME``.
        data: Data file.
        attack: Registry name.
        eps: Budget in σ units (ε attacks).
        scale: Uncertainty scale (MiniFool).
        constraints: Constraint names (``None``: defaults).
        n_max: Attack only the first ``n_max`` jets.
        seed: Seed.
        progress: Progress bar.
        out: Write the adversarial jets here (:func:`write_adversarial`).

    Returns:
        A :class:`~aalearn.core.result.DictResult`: :func:`attack_summary` with ``attack``,
        ``model``, ``data`` (and ``out``) and ``intervals`` (68 % intervals of
        :func:`aalearn.evaluation.bootstrap.attack_intervals`); one terminal row of
        :data:`SUMMARY_KEYS` with a ``"<figure> 68% CI"`` column after each figure that has one.

    Example:
        >>> run_attack  # doctest: +ELLIPSIS
        <function run_attack at ...>
    """
    parse_constraint_option(constraints)
    if out is not None:
        check_output_path(out, suffixes=ADVERSARIAL_SUFFIXES, what="--out")
    run = attack_file(
        model,
        data,
        attack,
        eps=eps,
        scale=scale,
        constraints=constraints,
        n_max=n_max,
        seed=seed,
        progress=progress,
    )
    summary = run.summary()
    intervals = attack_intervals(run.result, seed=seed)
    summary["intervals"] = {k: v.to_dict() for k, v in intervals.items()}
    summary.update(
        {
            "attack": attack,
            "model": model,
            "data": str(data),
            "constraints_applied": [k for k in run.result.violations if k in CONSTRAINTS],
        }
    )
    if out is not None:
        summary["out"] = str(write_adversarial(run.result, out))
    row = _with_intervals({k: summary.get(k) for k in SUMMARY_KEYS}, intervals)
    return DictResult(summary, title="Attack", rows=[row])


def challenge_task1(
    out: str | Path,
    *,
    attack: str = "minimal",
    model: str | Path | None = None,
    data: str | Path | None = None,
    n_max: int | None = None,
    seed: int = 0,
    progress: bool = False,
    attack_kwargs: dict[str, Any] | None = None,
) -> DictResult:
    """Challenge Task 1: attack the frozen reference model on the public clean file.

    Args:
        out: Path of ``submission.npz`` (a ``.zip`` with the same stem is written beside it).
        attack: Registry name; ``minimal`` (default: per jet the smallest success of the
            sparse attack and FAB-L1 warm-started from it), ``sparse`` and ``fab-l1`` run
            with ``distance="l1"`` (the challenge's MAD).
        model: Reference model (default: ``best_model.hdf5`` of the challenge files).
        data: Clean file (default: ``Clean_Test_Public.feather``).
        n_max: Attack only the first ``n_max`` jets (for quick checks).
        seed: Seed.
        progress: Progress bar.
        attack_kwargs: Further attack settings.

    Returns:
        A :class:`~aalearn.core.result.DictResult` of the score, fooling ratio, MAD,
        unphysical fraction and file paths; ``intervals`` holds the 68 % intervals of score
        (label-stratified bootstrap, FR and MAD resampled together), fooling ratio
        (Clopper–Pearson) and MAD, with ``score_low``/``_high`` and ``fooling_ratio_low``/``_high``.

    Example:
        >>> challenge_task1  # doctest: +ELLIPSIS
        <function challenge_task1 at ...>
    """
    model_path = Path(model) if model is not None else require_challenge_data() / CHALLENGE_FILES["model"]
    data_path = Path(data) if data is not None else require_challenge_data() / CHALLENGE_FILES["clean"]
    kwargs = dict(attack_kwargs or {})
    if attack in ("sparse", "fab-l1", "minimal"):
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
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(tmp, clean=clean, adv=adv, labels=labels)
    zip_path = out_path.with_suffix(".zip")
    with atomic_path(zip_path, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(out_path, arcname="submission.npz")
    # the score exactly as the challenge's scorer computes it, from the written arrays
    net = load_model_arg(model_path)
    pred = (predict_proba(net, adv) >= 0.5).astype(np.int64)
    fr = float(1.0 - np.mean(pred == labels))
    mad = mean_absolute_deviation(clean, adv)
    summary = attack_summary(res, run.validation)
    deviation = np.abs(adv.astype(np.float64) - clean.astype(np.float64)).mean(axis=1)
    ivs = challenge_score_intervals(pred != labels, deviation, strata=labels, seed=seed)
    return DictResult(
        {
            "score": challenge_score(fr, mad),
            "score_low": ivs["score"].low,
            "score_high": ivs["score"].high,
            "fooling_ratio": fr,
            "fooling_ratio_low": ivs["fooling_ratio"].low,
            "fooling_ratio_high": ivs["fooling_ratio"].high,
            "mad": mad,
            "interval_level": ivs["score"].level,
            "intervals": {k: v.to_dict() for k, v in ivs.items()},
            "unphysical_fraction": res.unphysical_fraction,
            "passes_validation": summary["passes_validation"],
            "attack": attack,
            "n": len(labels),
            "seconds": res.seconds,
            "submission": str(out_path),
            "submission_zip": str(zip_path),
            "model": str(model_path),
            "data": str(data_path),
        },
        title="Challenge task 1",
    )
