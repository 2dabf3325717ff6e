"""Demo app: generate jets, train TopoDNN, evaluate, attack it, audit it and write the report.

Example:
    >>> DemoConfig().n_per_class
    3000
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aalearn import __version__
from aalearn.apps.audit import attack_file, summary_rows
from aalearn.apps.evaluate import labels_scores, metric_row
from aalearn.apps.train import TrainRun, train_topodnn
from aalearn.apps.trust import trust_audit
from aalearn.attacks import ATTACKS
from aalearn.core.paths import CHALLENGE_FILES, cache_dir, find_challenge_data
from aalearn.core.result import ReportBuilder
from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.data.generate import GeneratorConfig, generate
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.io import load_dataset
from aalearn.data.presets import PRESETS, preset_config
from aalearn.data.reweight import reweight_to_reference
from aalearn.evaluation import evaluate_scores
from aalearn.models import predict_proba
from aalearn.physics import CHALLENGE_PT_SCALE_GEV
from aalearn.report import (
    dataset_summary_table,
    plot_feature_grid,
    plot_jet_mass,
    plot_multiplicity,
    plot_roc,
    plot_scores,
    plot_training_curves,
    write_run,
)

__all__ = ["DemoConfig", "DemoResult", "demo_audits", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo` (defaults: a few minutes on 2 cores).

    Attributes:
        n_per_class: Jets generated per class (top, W).
        seed: Generator and training seed.
        workers: Local Dask workers for generation.
        scheduler: Optional Dask scheduler address (``tcp://...``).
        epochs: Maximum training epochs.
        chunk_size: Generator chunk size (jets).
        preset: Generator preset (:data:`aalearn.data.presets.PRESETS`, default
            ``"cms-challenge"``: jets like the challenge's CMS jets) or ``None`` for the
            generator's defaults (13 TeV, R = 0.8, pT > 400 GeV).
        reweight: Reweight each class of the generated jets to that class's ΣpT spectrum in
            the EVEN rows of the challenge's clean file (when the file is found); the
            transfer is then measured on the ODD rows of the clean and RDSA files.
        audit: End with the trust audit (:func:`aalearn.apps.trust.trust_audit`) of the
            demo tagger on its test split (``OUT/audit``) and, when the challenge's files
            are found, of the challenge's reference model on its clean public file
            (``OUT/audit-challenge``).
    """

    n_per_class: int = 3000
    seed: int = 1
    workers: int = 2
    scheduler: str | None = None
    epochs: int = 60
    chunk_size: int = 500
    preset: str | None = "cms-challenge"
    reweight: bool = True
    audit: bool = True

    def __post_init__(self) -> None:
        if self.n_per_class < 50:
            raise ValueError(f"n_per_class must be at least 50 for a meaningful demo, got {self.n_per_class}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known presets: {', '.join(PRESETS)}")


def _demo_datasets(config: DemoConfig, progress: bool) -> tuple[dict[str, JetDataset], dict[str, Any]]:
    data_dir = cache_dir() / "demo"
    out: dict[str, JetDataset] = {}
    summaries: dict[str, Any] = {}
    for process in ("top", "w"):
        gen_config = (
            GeneratorConfig(process=process)
            if config.preset is None
            else preset_config(config.preset, process)
        )
        # the settings hash in the name: a changed generator never collides with an old cache
        key = json.dumps({**gen_config.to_dict(), "chunk_size": config.chunk_size}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        path = data_dir / f"{process}-n{config.n_per_class}-seed{config.seed}-{digest}.h5"
        summary = generate(
            gen_config,
            config.n_per_class,
            path,
            seed=config.seed + (0 if process == "top" else 1000),
            chunk_size=config.chunk_size,
            workers=config.workers,
            scheduler=config.scheduler,
            progress=progress,
        )
        summaries[process] = summary.to_dict()
        out[process] = read_jets_hdf5(path)
    return out, summaries


def run_demo(
    out_dir: str | Path, config: DemoConfig | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """The main job: generate jets, train TopoDNN, evaluate, attack it, write the report.

    1. Generate (and cache under ``$AALEARN_CACHE/demo``) ``n_per_class`` top and W jets
       with Pythia 8 (resumable; a second run reuses them).
    2. Train TopoDNN on 60 % of them (20 % validation for early stopping).
    3. Evaluate on the remaining 20 % and, when the challenge's public files are found,
       on the public clean and adversarial files (a domain-shift test: CMS full
       simulation at 8 TeV versus aalearn's Pythia 8 + parametric smearing at 13 TeV).
    4. Attack the tagger on the test split (PGD at 0.5, 1, 2 σ, MiniFool at s = 2, RDSA,
       the sparse minimal attack) with the validation checks of each adversarial sample.
    5. With ``config.audit``: the trust audit of the tagger on the test split and, when the
       challenge's files are found, of the challenge's reference model on its clean file
       (:func:`demo_audits`; verdicts under ``audit`` in the results).
    6. Write ``out_dir/report.html``, ``out_dir/results.json`` and ``out_dir/model.safetensors``.

    Returns:
        The results dictionary written to ``results.json``.
    """
    cfg = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    classes, gen_summaries = _demo_datasets(cfg, progress)
    data = JetDataset.concatenate([classes["top"], classes["w"]])
    data.source = "aalearn Pythia 8 demo sample" + (f" (preset {cfg.preset})" if cfg.preset else "")
    t_gen = time.perf_counter() - t0

    root = find_challenge_data()
    challenge_note = (
        f"challenge public files found in {root}"
        if root is not None
        else "the challenge's public files were not found (set AALEARN_CHALLENGE_DATA): evaluation skipped"
    )
    files: dict[str, JetDataset] = {}
    if root is not None:
        for key in ("clean", "adversarial"):
            files[key] = load_dataset(root / CHALLENGE_FILES[key], require_labels=True)
    weights, reweighting = None, None
    if cfg.reweight and "clean" in files:
        weights, reweighting = _demo_weights(data, files["clean"])
    run = train_topodnn(
        data,
        out=out / "model.safetensors",
        fractions=(0.6, 0.2, 0.2),
        epochs=cfg.epochs,
        seed=cfg.seed,
        progress=progress,
        sample_weight=weights,
        reweighting=reweighting if weights is not None else None,
    )
    assert data.labels is not None  # generated data are labelled
    test = run.split["test"]
    evaluations: dict[str, Any] = {
        "aalearn test split": evaluate_scores(
            data.labels[test], predict_proba(run.model, data.features[test])
        )
    }
    challenge: dict[str, JetDataset] = {}
    odd = {k: np.arange(1, len(ds), 2) for k, ds in files.items()}
    for key, label in (("clean", "challenge public clean"), ("adversarial", "challenge public RDSA")):
        if key not in files:
            continue
        ds = files[key]
        assert ds.labels is not None
        challenge[label] = ds
        # the odd rows: held out from the reweighting (the even rows shaped the spectra)
        rows = odd[key] if weights is not None else np.arange(len(ds))
        name = f"{label} (odd rows)" if weights is not None else label
        evaluations[name] = evaluate_scores(ds.labels[rows], predict_proba(run.model, ds.features[rows]))

    results: dict[str, Any] = {
        "aalearn_version": __version__,
        "config": cfg.__dict__,
        "generation": gen_summaries,
        "n_jets": len(data),
        "split": {k: len(v) for k, v in run.split.items()},
        "training": run.history.to_dict(),
        "training_seconds": run.seconds,
        "generation_seconds": t_gen,
        "evaluation": {k: v.to_dict() for k, v in evaluations.items()},
        "challenge_data": challenge_note,
        "preset": cfg.preset,
        "reweighting": reweighting,
        "model": str(run.checkpoint),
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
    }
    results["robustness"] = _demo_robustness(run.model, data.subset(test), seed=cfg.seed)
    if cfg.audit:
        results["audit"] = demo_audits(
            run.checkpoint or out / "model.safetensors",
            data.subset(test),
            out,
            challenge_model=root / CHALLENGE_FILES["model"] if root is not None else None,
            challenge_data=root / CHALLENGE_FILES["clean"] if root is not None else None,
            seed=cfg.seed,
            progress=progress,
        )
    results["seconds"] = time.perf_counter() - t0
    results["report"] = str(out / "report.html")
    demo = DemoResult(results, data, run, evaluations, challenge)
    write_run(
        demo, out, title="aalearn demo: top versus W tagging with TopoDNN", subtitle=results["challenge_data"]
    )
    return results


def _audit_entry(
    model: str | Path,
    data: str | Path | JetDataset,
    out: Path,
    name: str,
    *,
    seed: int,
    progress: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    """One trust audit; a ValueError (e.g. a class missing in a tiny test split) is recorded, not raised."""
    try:
        res = trust_audit(
            model,
            data,
            out,
            seed=seed,
            progress=progress,
            model_name=str(model),
            data_name=name,
            **options,
        )
    except ValueError as exc:
        return {"model": str(model), "data": name, "verdict": None, "error": str(exc)}
    d = res.to_dict()
    return {
        "model": str(model),
        "data": name,
        "verdict": d["verdict"],
        "trustworthy": d["trustworthy"],
        "failing_checks": d["failing_checks"],
        "warnings": d["warnings"],
        "n_jets": d["n_jets"],
        "seconds": d["seconds"],
        "report": str(out / "report.html"),
        "results": str(out / "results.json"),
        "link": f"{out.name}/report.html",
    }


def demo_audits(
    model: str | Path,
    test: JetDataset,
    out_dir: str | Path,
    *,
    challenge_model: str | Path | None = None,
    challenge_data: str | Path | None = None,
    seed: int = 1,
    progress: bool = False,
    **audit_options: Any,
) -> dict[str, Any]:
    """The demo's closing trust audits: the tagger on its test split, the challenge's model on its file.

    Args:
        model: The demo tagger's checkpoint.
        test: The demo's labelled test split.
        out_dir: The demo's output directory; the audits write ``audit/`` and ``audit-challenge/``.
        challenge_model: The challenge's reference model (``best_model.hdf5``), when found.
        challenge_data: The challenge's ``Clean_Test_Public.feather``, when found.
        seed: Seed of the audits.
        progress: Progress bars on stderr.
        **audit_options: Passed to :func:`aalearn.apps.trust.trust_audit` (e.g. ``budgets``,
            ``n_boot``, ``explain_steps``; the demo uses the audit's defaults).

    Returns:
        ``{"tagger": entry, "challenge_model": entry}`` (the second only with both challenge
        files); each entry holds ``verdict``, ``failing_checks``, ``report`` and ``link``
        (relative to ``out_dir``), or ``error`` when the audit could not run.

    Example:
        >>> demo_audits  # doctest: +ELLIPSIS
        <function demo_audits at ...>
    """
    out = Path(out_dir)
    audits = {
        "tagger": _audit_entry(
            model, test, out / "audit", "demo test split", seed=seed, progress=progress, options=audit_options
        )
    }
    if challenge_model is not None and challenge_data is not None:
        audits["challenge_model"] = _audit_entry(
            challenge_model,
            challenge_data,
            out / "audit-challenge",
            Path(challenge_data).name,
            seed=seed,
            progress=progress,
            options=audit_options,
        )
    return audits


def _demo_weights(data: JetDataset, clean: JetDataset) -> tuple[Any, dict[str, Any]]:
    """Per-class ΣpT weights to the EVEN rows of the clean file; fewer bins for a small sample.

    A small demo sample can leave some of the reference's 10 quantile bins empty; the bins
    are halved until every bin is populated (the number used is in the results). When even
    one bin fails the demo trains unweighted and says so.
    """
    for n_bins in (10, 5, 2, 1):
        try:
            sw = reweight_to_reference(data, clean, variable="sum-pt", rows="even", n_bins=n_bins)
        except ValueError as exc:
            error = str(exc)
            continue
        return sw.weights, {"reference": "Clean_Test_Public.feather", "n_bins": n_bins, **sw.to_dict()}
    return None, {"reference": "Clean_Test_Public.feather", "error": error}


def _sum_pt_medians(ds: JetDataset) -> dict[int, float]:
    """Median scalar pT sum (GeV) of the kept constituents per label."""
    cols = [i for i, n in enumerate(ds.feature_names) if n.startswith("ConstPT_")]
    sum_pt = ds.features[:, cols].sum(axis=1) * CHALLENGE_PT_SCALE_GEV
    if ds.labels is None:
        return {}
    return {int(c): float(np.median(sum_pt[ds.labels == c])) for c in np.unique(ds.labels)}


#: Attacks (and strengths) of the demo's robustness section: a few seconds on 2 cores.
_DEMO_ATTACKS: tuple[tuple[str, float | None], ...] = (
    ("pgd", 0.5),
    ("pgd", 1.0),
    ("pgd", 2.0),
    ("minifool", 2.0),
    ("rdsa", None),
    ("sparse", None),
)


def _demo_robustness(model: Any, test: JetDataset, *, seed: int) -> list[dict[str, Any]]:
    """Attack the trained tagger on its test split; one row per attack with the validation verdict."""
    rows = []
    for name, strength in _DEMO_ATTACKS:
        kind = ATTACKS[name].strength
        kw: dict[str, Any] = {kind: strength} if kind and strength is not None else {}
        rows += summary_rows(name, [(strength, attack_file(model, test, name, seed=seed, **kw))])
    return rows


@dataclass
class DemoResult:
    """The demo's results with its inputs (a :class:`~aalearn.core.result.Result`).

    Attributes:
        results: The JSON object written to ``results.json``.
        data: The generated jets.
        run: The training run.
        evaluations: Name → evaluation of the trained tagger.
        challenge: The challenge's public files, when found.
    """

    results: dict[str, Any]
    data: JetDataset
    run: TrainRun
    evaluations: dict[str, Any]
    challenge: dict[str, JetDataset]

    def to_dict(self) -> dict[str, Any]:
        """The results dictionary."""
        return self.results

    def summary(self) -> list[dict[str, Any]]:
        """One row per evaluated data set (:func:`~aalearn.apps.evaluate.metric_row`)."""
        return [{"dataset": name, **metric_row(ev)} for name, ev in self.evaluations.items()]

    def add_to(self, report: ReportBuilder) -> None:
        """Dataset, training, performance and robustness sections."""
        _demo_report(report, self.data, self.run, self.evaluations, self.challenge, self.results)


def _demo_report(
    report: ReportBuilder,
    data: JetDataset,
    run: TrainRun,
    evaluations: dict[str, Any],
    challenge: dict[str, JetDataset],
    results: dict[str, Any],
) -> None:

    datasets: dict[str, JetDataset] = {"aalearn (Pythia 8)": data}
    if "challenge public clean" in challenge:
        datasets["challenge public clean"] = challenge["challenge public clean"]
    report.add_section(
        "Dataset",
        text=(
            (
                f"Jets of the t t̄ and W W samples generated with Pythia 8 and the generator preset "
                f"'{results['preset']}' (aalearn.data.presets: settings chosen to match the challenge's CMS "
                "jets, which are jets of the t t̄ and W W samples rather than merged tops and Ws: all jets "
                "of the event, a soft-particle overlay, 30 objects above 0.4 GeV)"
                if results.get("preset")
                else "Boosted top (all-hadronic t t̄) and W (hadronic W W) jets generated with Pythia 8 at 13 "
                "TeV, anti-kt R = 0.8, leading jet pT > 400 GeV, |η| < 2"
            )
            + ", 30 leading constituents smeared with aalearn's documented resolution model and "
            "preprocessed into the challenge's 87-feature layout (pT in units of 1679.16 GeV). The "
            "challenge's public clean file (CMS simulation) is overlaid when present."
        ),
        table=dataset_summary_table(datasets),
        figures=[plot_jet_mass(datasets), plot_multiplicity(datasets), plot_feature_grid(datasets)],
    )
    rew = results.get("reweighting")
    rew_text = ""
    if rew and "error" in rew:
        rew_text = f" Spectrum reweighting failed ({rew['error']}); the tagger was trained unweighted."
    elif rew:
        rew_text = (
            " The training jets carry per-class ΣpT spectrum weights (sample weights in the loss and the "
            "validation loss) that match each class to its spectrum in the EVEN rows of the "
            "challenge's clean "
            "file (aalearn train --reweight-to); effective sizes "
            + ", ".join(f"{c} {v['effective_n']:.0f} of {v['n_train']}" for c, v in rew["classes"].items())
            + ". The transfer below is measured on the ODD rows only."
        )
    report.add_section(
        "Training",
        text=f"TopoDNN (87 → 300 → 102 → 12 → 6 → 1), Adam, early stopping; {run.seconds:.1f} s.{rew_text}",
        table=[{"split": k, "jets": len(v)} for k, v in run.split.items()],
        figures=[plot_training_curves(run.history.to_dict())],
    )
    rows = []
    curves = {}
    for name, ev in evaluations.items():
        rows.append({"dataset": name, **metric_row(ev)})
        if ev.auc is not None:
            curves[name] = (ev.fpr, ev.tpr, ev.auc)
    labels, scores = labels_scores(next(iter(evaluations.values())))
    spectra = "; ".join(
        f"{name}: median Σ pT of the 30 constituents "
        + ", ".join(f"{LABEL_NAMES[c]} {v:.0f} GeV" for c, v in _sum_pt_medians(ds).items())
        for name, ds in datasets.items()
    )
    report.add_section(
        "Performance",
        text=(
            "Accuracy at threshold 0.5; ROC AUC; background (W) rejection 1/ε_B at top-tagging efficiency "
            "0.3 and 0.5. Evaluating on the challenge files tests transfer from aalearn's generator to the "
            "CMS simulation behind the challenge: its label 0 is the t t̄ sample and label 1 the W W sample "
            "(jets of those events with QCD-like substructure, not merged tops and Ws). "
            f"The classes' pT spectra differ between the samples ({spectra}); a tagger that reads "
            "absolute constituent pT, as TopoDNN does, transfers only when the training spectra match, "
            "which the generator preset and the per-class ΣpT reweighting to the clean file's even rows "
            "address. With reweighting, the challenge rows are the ODD rows only (held out from the "
            "spectra); the RDSA file's adversaries additionally move the W jets' ΣpT towards the tops'."
        ),
        table=rows,
        figures=[plot_roc(curves), plot_scores(labels, scores)],
    )
    report.add_section(
        "Robustness",
        text=(
            "The trained tagger attacked on its test split. ε is in units of each feature's experimental "
            "uncertainty σ; s is MiniFool's uncertainty scale. Every adversarial jet satisfies pT ≥ 0, the "
            "φ range, the preprocessing invariants and the physical bounds (unphysical fraction 0). "
            "'passes validation': the adversarial sample passes per-feature KS, χ² and Jensen-Shannon checks "
            "and the correlation check against the clean one. `aalearn audit` runs every attack over a grid."
        ),
        table=results["robustness"],
    )
    _audit_section(report, results.get("audit"))


def _audit_section(report: ReportBuilder, audits: dict[str, Any] | None) -> None:
    """The "Trust audit" section: one row per audit with its verdict and its report's relative path."""
    if not audits:
        return
    report.add_section(
        "Trust audit",
        text=(
            "The trust audit (aalearn audit: performance, robustness over budgets in σ units, "
            "uncertainty, the measurement of μ, detection, explanations and a verdict from the written "
            "decision rule) of the demo tagger on its test split and, when the challenge's files are "
            "present, of the challenge's reference model on Clean_Test_Public.feather. Each has its own "
            "report; the paths are relative to this report."
        ),
        table=[
            {
                "audit": {"tagger": "demo tagger", "challenge_model": "challenge reference model"}.get(k, k),
                "data": a.get("data"),
                "verdict": a.get("verdict") or f"not run: {a.get('error')}",
                "failing checks": ", ".join(a.get("failing_checks") or []) or "—",
                "report": a.get("link", "—"),
            }
            for k, a in audits.items()
        ],
    )
