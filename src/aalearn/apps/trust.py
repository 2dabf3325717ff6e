r"""The trust audit behind ``aalearn audit``: may this tagger be used in a measurement, within which limits?

One call runs, on the user's model and labelled data, the sections below and ends in a
verdict from the written decision rule of :mod:`aalearn.apps.trust_verdict`:

* **performance** — AUC, accuracy and background rejection at 30 % and 50 % signal
  efficiency with percentile-bootstrap intervals (:mod:`aalearn.evaluation.bootstrap`);
* **robustness** — the attacks over budgets in σ units of each feature's experimental
  uncertainty, with the physics constraints of the feature specification (jets: pT ≥ 0,
  φ wrap, preprocessing invariants, bounds and conservation of the scalar pT sum),
  validity and the validation checks of :mod:`aalearn.validation` per run, and the
  strongest attack whose sample still passes them;
* **uncertainty** — ECE and reliability of the scores; total/aleatoric/epistemic
  uncertainty from MC dropout (when the model has dropout layers) or a last-layer Laplace
  approximation (arXiv:2106.14806) fitted on the calibration jets; the AUROC with which
  the epistemic uncertainty flags successful adversaries and modelling-variation jets;
* **systematics** (with ``--variation``) — the shift of the score distribution between
  each modelling variation and the nominal jets;
* **measurement** — the pyhf fit of the signal strength μ (score templates, variations as
  ``histosys`` nuisances, normalisation and MC-statistics nuisances; see
  :mod:`aalearn.apps.measure`) and :math:`\Delta\hat\mu/\sigma_\mu` for every attack at
  every budget (attacked pseudo-data against the same jets clean) and every variation
  (variation pseudo-data against the Asimov data);
* **explanations** (unless ``explain=False``) — Integrated-Gradients attributions
  (arXiv:1703.01365) of :func:`aalearn.explain.explain_model` on a seeded subsample of the
  evaluated jets: top features (also in σ units), correlations of the output with jet
  observables, the sanity checks (completeness, model randomisation arXiv:1810.03292,
  stability) and which features the reference attack moves;
* **detection** — the adversarial-sample detector (:class:`aalearn.training.detector.AdversarialDetector`)
  trained on half of the attacked jets at the reference budget and tested on the other
  half: fooling ratio and corrected fooling ratio (fooled and not flagged).

Calibration and evaluation jets: without ``signal``/``background`` files, the data file's
even rows (0, 2, 4, ...) build the templates and fit the Laplace approximation and its
odd rows are evaluated and attacked (the challenge files are for measuring, never for
fitting and reporting on the same jets). With ``signal``/``background`` the templates come
from those files and every data row is evaluated.

Example:
    >>> DEFAULT_BUDGETS
    (0.25, 0.5, 1.0, 2.0, 4.0)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn
from tqdm import tqdm

from aalearn.apps.audit import AttackRun, AuditResult, summary_rows
from aalearn.apps.inputs import describe_model, load_data, load_model_arg
from aalearn.apps.measure import parse_variation
from aalearn.apps.trust_sections import (
    EXPLAIN_JETS,
    EXPLAIN_STEPS,
    detection_section,
    explanation_section,
    measurement_section,
    systematics_section,
    uncertainty_section,
)
from aalearn.apps.trust_verdict import DecisionRule, evaluate_checks, verdict
from aalearn.attacks import ATTACKS, get_attack
from aalearn.constraints import ConstraintSet
from aalearn.constraints.tabular import spec_constraints
from aalearn.core.plotting import new_figure, style
from aalearn.core.result import ReportBuilder
from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.evaluation.bootstrap import bootstrap_metrics
from aalearn.explain import ExplanationResult
from aalearn.models import model_n_features, predict_proba
from aalearn.physics.features import FeatureSet, challenge_features, is_challenge_layout
from aalearn.physics.spec import FeatureSpecification, generic_specification, load_feature_spec
from aalearn.report import write_run
from aalearn.validation import validate_samples

__all__ = ["DEFAULT_ATTACKS", "DEFAULT_BUDGETS", "JET_CONSTRAINTS", "TrustResult", "trust_audit"]

#: Attacks of the default grid (the challenge model: about 8 s per budget on 2500 jets, one core).
DEFAULT_ATTACKS: tuple[str, ...] = ("pgd",)
#: Budgets in σ units for ε attacks (the registry's L∞ grid).
DEFAULT_BUDGETS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Constraints for jet data: the defaults plus conservation of the scalar pT sum.
JET_CONSTRAINTS = "default,pt-sum"

FloatArray = npt.NDArray[np.float64]


@dataclass
class _Inputs:
    net: nn.Module
    ds: JetDataset
    calib: JetDataset
    evald: JetDataset
    split: str
    spec: FeatureSpecification | None
    features: FeatureSet | None
    constraints: ConstraintSet | Sequence[str] | str | None
    variations: dict[str, tuple[JetDataset, JetDataset]]
    attacks: list[str]


def _labelled(ds: JetDataset, what: str) -> JetDataset:
    if ds.labels is None:
        raise ValueError(f"{what} needs labels (0 = signal/top, 1 = background/W) for the trust audit")
    missing = {LABEL_TOP, LABEL_W} - set(np.unique(ds.labels).tolist())
    if missing:
        raise ValueError(f"{what} holds no jets of label {sorted(missing)}; the audit needs both classes")
    return ds


def _same_columns(other: JetDataset, ds: JetDataset, what: str) -> None:
    if list(other.feature_names) != list(ds.feature_names):
        extra = [n for n in other.feature_names if n not in ds.feature_names][:5]
        lack = [n for n in ds.feature_names if n not in other.feature_names][:5]
        raise ValueError(
            f"{what} has other columns than the data (extra: {extra}, missing: {lack}); "
            "give files with the same columns"
        )


def _check_model_width(net: nn.Module, ds: JetDataset, spec: FeatureSpecification | None) -> None:
    n = model_n_features(net)
    f = ds.features.shape[1]
    if n is not None and n != f:
        raise ValueError(f"the model expects {n} input features but the data have {f} columns")
    if spec is not None and len(spec) != f:
        raise ValueError(f"the feature specification describes {len(spec)} columns but the data have {f}")
    try:
        predict_proba(net, ds.features[:2])
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"the model cannot evaluate the data's {f} columns: {first}") from None


def _prepare(
    model: str | Path | nn.Module,
    data: str | Path | JetDataset,
    signal: str | Path | JetDataset | None,
    background: str | Path | JetDataset | None,
    variations: Sequence[str] | Mapping[str, tuple[str | Path, str | Path]],
    features: str | Path | FeatureSpecification | None,
    attacks: Sequence[str] | None,
    budgets: Sequence[float],
    constraints: Sequence[str] | str | None,
    n_max: int | None,
) -> _Inputs:
    """Every input check, before any long work."""
    names = list(attacks) if attacks is not None else list(DEFAULT_ATTACKS)
    for a in names:
        if a not in ATTACKS:
            get_attack(a)  # raises with a did-you-mean
    for b in budgets:
        if not (np.isfinite(b) and b > 0):
            raise ValueError(f"every --budget must be a positive number of σ, got {b}")
    var_specs = (
        {k: (Path(d), Path(u)) for k, (d, u) in variations.items()}
        if isinstance(variations, Mapping)
        else {n: (d, u) for n, d, u in (parse_variation(v) for v in variations)}
    )
    if (signal is None) != (background is None):
        raise ValueError("give both --signal and --background (template files), or neither")
    for path in [p for pair in var_specs.values() for p in pair] + [
        p for p in (signal, background, features) if isinstance(p, str | Path)
    ]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found")
    spec = (
        features
        if isinstance(features, FeatureSpecification)
        else load_feature_spec(features)
        if features is not None
        else None
    )
    ds = _labelled(load_data(data, n_max=n_max), "--data")
    if spec is not None:
        spec.check_columns(ds.feature_names)
    net = load_model_arg(model)
    _check_model_width(net, ds, spec)
    variation_ds: dict[str, tuple[JetDataset, JetDataset]] = {}
    for name, (d, u) in var_specs.items():
        pair = []
        for side, p in (("down", d), ("up", u)):
            v = _labelled(load_data(p, n_max=n_max), f"variation {name}-{side} ({p})")
            _same_columns(v, ds, f"variation file {p}")
            pair.append(v)
        variation_ds[name] = (pair[0], pair[1])
    if signal is not None and background is not None:
        sig, bkg = load_data(signal, n_max=n_max), load_data(background, n_max=n_max)
        for what, other in (("--signal", sig), ("--background", bkg)):
            _same_columns(other, ds, f"{what} file")
        parts = [
            sig if sig.labels is None else sig.subset(np.flatnonzero(sig.labels == LABEL_TOP)),
            bkg if bkg.labels is None else bkg.subset(np.flatnonzero(bkg.labels == LABEL_W)),
        ]
        labels = np.concatenate([np.full(len(parts[0]), LABEL_TOP), np.full(len(parts[1]), LABEL_W)])
        calib = JetDataset(
            np.concatenate([parts[0].features, parts[1].features]),
            labels,
            ds.feature_names,
            source="templates",
        )
        evald, split = ds, "templates from --signal/--background; every data row evaluated"
    else:
        calib = ds.subset(np.arange(0, len(ds), 2))
        evald = ds.subset(np.arange(1, len(ds), 2))
        split = "even rows: templates and Laplace fit; odd rows: evaluated and attacked"
    _labelled(calib, "the calibration (template) jets")
    _labelled(evald, "the evaluated jets")
    fs: FeatureSet | None
    cons: ConstraintSet | Sequence[str] | str | None
    if spec is not None:
        fs = spec.feature_set()
        cons = (constraints or JET_CONSTRAINTS) if fs is not None else spec_constraints(spec)
    elif is_challenge_layout(ds.features.shape[1], ds.feature_names):
        fs, cons = challenge_features(), constraints or JET_CONSTRAINTS
    else:
        spec = generic_specification(calib.features, ds.feature_names)
        fs, cons = None, spec_constraints(spec)
    if fs is None and constraints not in (None, "none"):
        raise ValueError(
            "physics constraints need jet columns; tabular data use the bounds of the specification"
        )
    return _Inputs(net, ds, calib, evald, split, spec, fs, cons, variation_ds, names)


@contextmanager
def _timed(times: dict[str, float], cpu: dict[str, float], name: str) -> Iterator[None]:
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        times[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0


def _bar(total: int, desc: str, progress: bool) -> Any:
    return tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)


def _scores(net: nn.Module, x: npt.ArrayLike) -> FloatArray:
    return np.asarray(predict_proba(net, x), dtype=np.float64)


_METRIC_LABELS = {"auc": "AUC", "accuracy": "accuracy"}


def _interval_row(name: str, iv: Mapping[str, Any]) -> dict[str, Any]:
    label = _METRIC_LABELS.get(name) or name.replace("rejection_at_", "background rejection at ε_S = ") + "%"
    return {
        "metric": label,
        "value": iv["value"],
        "68% interval low": iv["low"],
        "68% interval high": iv["high"],
        "bootstrap std": iv["std"],
        "jets": iv["n"],
    }


@dataclass
class TrustResult:
    """The trust audit (a :class:`~aalearn.core.result.Result`).

    Attributes:
        data: The JSON object (``verdict``, ``failing_checks``, the sections, the legacy
            ``rows``/``summary`` of the robustness audit, ``section_seconds``, ...).
        audit: The robustness part as an :class:`~aalearn.apps.audit.AuditResult`.
        figures: Extra report material (reliability curves).
        explanation: The explanation of the tagger (``None`` when skipped).
    """

    data: dict[str, Any]
    audit: AuditResult
    figures: dict[str, Any] = field(default_factory=dict)
    explanation: ExplanationResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``aalearn audit --json`` object."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """The terminal rows: one per check."""
        return [
            {
                "check": c["name"],
                "value": c["value"],
                "threshold": c["threshold"],
                "passed": c["passed"],
                "severity": c["severity"],
            }
            for c in self.data["checks"]
        ]

    def payload(self) -> dict[str, Any]:
        """``results.json``: :meth:`to_dict` plus the validation report of every attack run."""
        return {
            **{k: v for k, v in self.data.items() if k != "files"},
            "validation": self.audit.payload()["validation"],
        }

    def add_to(self, report: ReportBuilder) -> None:
        """Summary (verdict, deciding numbers, Δμ̂/σ_μ against budget, times), then every section."""
        d = self.data
        rule = d["decision_rule"]
        deciding = [
            {
                "check": c["name"],
                "section": c["section"],
                "value": c["value"],
                "threshold": c["threshold"],
                "result": "passed" if c["passed"] else ("FAILED" if c["severity"] == "fail" else "warning"),
            }
            for c in d["checks"]
        ]
        report.add_section(
            "Verdict",
            text=f"Verdict: {d['verdict']}.\n\nDecision rule: {rule['text']}\n\nJets: {d['split']}.",
            table=deciding,
            figures=[_plot_shift_vs_budget(d["measurement"], rule["max_budget"], rule["max_shift"])],
        )
        report.add_section(
            "Time per section",
            text="Wall-clock and CPU seconds per section of this audit.",
            table=[
                {"section": k, "wall time [s]": v, "CPU time [s]": d["section_cpu_seconds"].get(k)}
                for k, v in d["section_seconds"].items()
            ],
        )
        perf = d["performance"]
        report.add_section(
            "Performance",
            text=(
                f"On {perf['n']} evaluated jets; signal = label {LABEL_TOP}. "
                f"Intervals: 68% percentile bootstrap "
                f"({perf['n_boot']} resamples). Background rejection 1/ε_B at signal efficiency ε_S "
                "(— when no background jet passes the cut: infinite rejection, null in results.json)."
            ),
            table=[_interval_row(k, v) for k, v in perf["metrics"].items()],
        )
        self.audit.add_to(report)
        unc = d["uncertainty"]
        report.add_section(
            "Uncertainty",
            text=unc["note"],
            table={k: v for k, v in unc.items() if k not in ("note", "reliability", "flags")},
            figures=[self.figures["reliability"]] if "reliability" in self.figures else [],
        )
        if unc.get("flags"):
            report.add_section(
                "Uncertainty flags shifted jets",
                text="AUROC with which the epistemic uncertainty separates each shifted set from clean jets.",
                table=unc["flags"],
            )
        if "systematics" in d:
            report.add_section(
                "Systematics",
                text="Shift of the model output between each modelling variation and the evaluated jets.",
                table=d["systematics"]["rows"],
            )
        m = d["measurement"]
        report.add_section(
            "Measurement",
            text=(
                f"pyhf fit of μ: μ̂ = {m['mu_hat']:.3f} ± {m['sigma_mu']:.3f} on Asimov data "
                f"({m['bins']} score bins, {m['expected_signal']:g} signal and {m['expected_background']:g} "
                "background events expected). Attacks: Δμ̂ between the attacked and the clean evaluated jets; "
                "variations: against the Asimov data."
            ),
            table=[
                {
                    "pseudo-data": r["name"],
                    "budget ε [σ]": r.get("budget"),
                    "passes validation": r.get("passes_validation"),
                    "μ̂": r["mu_hat"],
                    "Δμ̂/σ_μ": r["delta_mu_over_sigma"],
                }
                for r in m["shifts"]
            ],
        )
        if "detection" in d:
            det = d["detection"]
            report.add_section(
                "Adversarial-sample detection",
                text=det.get("note", ""),
                table={k: v for k, v in det.items() if k != "note"},
            )
        if self.explanation is not None:
            report.add_section(
                "Explanations: subsample",
                text=(
                    f"Integrated Gradients on {d['explanations']['subsample']}, "
                    f"{d['explanations']['steps']} path points; the sections below."
                ),
            )
            self.explanation.add_to(report)
        if d.get("features"):
            report.add_section(
                "Feature specification",
                text=d["features"].get("note") or d["features"].get("source", ""),
                table=[
                    {
                        "column": c["name"],
                        "unit": c.get("unit"),
                        "σ": c.get("sigma"),
                        "lower": c.get("lower"),
                        "upper": c.get("upper"),
                        "period": c.get("period"),
                    }
                    for c in d["features"].get("columns", [])
                ][:100],
            )

    def write(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``report.html`` and ``results.json``; record them under ``files``."""
        self.data["files"] = {
            "report": str(Path(out_dir) / "report.html"),
            "results": str(Path(out_dir) / "results.json"),
        }
        paths = write_run(
            self,
            out_dir,
            title="aalearn trust audit",
            subtitle=(
                f"{self.data['model']} on {self.data['data']} ({self.data['n_jets']} jets evaluated, "
                f"{self.data['n_calibration_jets']} for the templates)"
            ),
            payload=self.payload(),
        )
        self.data["files"] = {"report": str(paths.report), "results": str(paths.results)}
        return dict(self.data["files"])


def _plot_shift_vs_budget(measurement: Mapping[str, Any], max_budget: float, max_shift: float) -> Any:
    with style():
        fig = new_figure(
            (7.0, 4.2), "Δμ̂/σ_μ against the attack budget; filled: the attacked sample passes validation"
        )
        ax = fig.add_subplot()
        by_attack: dict[str, list[dict[str, Any]]] = {}
        for r in measurement["shifts"]:
            if r.get("budget") is not None and r["delta_mu_over_sigma"] is not None:
                by_attack.setdefault(r["attack"], []).append(r)
        for a, rows in by_attack.items():
            b = [r["budget"] for r in rows]
            s = [r["delta_mu_over_sigma"] for r in rows]
            (line,) = ax.plot(b, s, "-", label=a)
            for r in rows:
                ax.plot(
                    r["budget"],
                    r["delta_mu_over_sigma"],
                    "o",
                    color=line.get_color(),
                    mfc=line.get_color() if r.get("passes_validation") else "white",
                )
        ax.axhspan(-max_shift, max_shift, color="0.85", zorder=0, label=f"|Δμ̂/σ_μ| ≤ {max_shift:g}")
        ax.axvline(max_budget, color="0.4", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("attack budget ε [σ]")
        ax.set_ylabel("Δμ̂ / σ_μ")
        ax.legend(loc="best", fontsize=8)
    return fig


def trust_audit(
    model: str | Path | nn.Module,
    data: str | Path | JetDataset,
    out_dir: str | Path | None = None,
    *,
    signal: str | Path | JetDataset | None = None,
    background: str | Path | JetDataset | None = None,
    variations: Sequence[str] | Mapping[str, tuple[str | Path, str | Path]] = (),
    features: str | Path | FeatureSpecification | None = None,
    attacks: Sequence[str] | None = None,
    budgets: Sequence[float] | None = None,
    constraints: Sequence[str] | str | None = None,
    n_max: int | None = None,
    rule: DecisionRule | None = None,
    bins: int = 10,
    expected_signal: float = 100.0,
    expected_background: float = 1000.0,
    n_boot: int = 200,
    detector: bool = True,
    explain: bool = True,
    explain_jets: int = EXPLAIN_JETS,
    explain_steps: int = EXPLAIN_STEPS,
    seed: int = 0,
    progress: bool = False,
    model_name: str | None = None,
    data_name: str | None = None,
) -> TrustResult:
    """Run the trust audit (see the module docstring) and return its verdict and sections.

    Args:
        model: Model file (aalearn checkpoint, Keras ``.hdf5``, ``.onnx``), ``aalearn:NAME`` or module.
        data: Labelled data (file or dataset).
        out_dir: Write ``report.html`` and ``results.json`` here.
        signal: Signal (top) template file; with ``background``, the templates come from these.
        background: Background (W) template file.
        variations: ``NAME=DOWN:UP`` labelled modelling-variation files (nuisances of the fit).
        features: Feature-specification TOML (or object) for data not in the challenge layout.
        attacks: Attack names (default :data:`DEFAULT_ATTACKS`).
        budgets: Budgets in σ for ε attacks (default :data:`DEFAULT_BUDGETS`); other
            attacks run on their registry grid.
        constraints: Constraint names for jet data (default :data:`JET_CONSTRAINTS`).
        n_max: Use only the first ``n_max`` rows of every file.
        rule: The :class:`DecisionRule` (default thresholds when ``None``).
        bins: Score bins of the measurement.
        expected_signal: Expected signal events (μ = 1).
        expected_background: Expected background events.
        n_boot: Bootstrap resamples of the performance intervals.
        detector: Train and test the adversarial-sample detector.
        explain: Run the explanations section (:func:`aalearn.explain.explain_model`).
        explain_jets: Jets of the seeded explanation subsample of the evaluated jets.
        explain_steps: Integrated-Gradients path points of the explanation.
        seed: Seed of attacks, bootstrap and detector.
        progress: Progress bars (one per section) on stderr.
        model_name: Label of the model.
        data_name: Label of the data.

    Returns:
        The :class:`TrustResult`.

    Example:
        >>> trust_audit  # doctest: +ELLIPSIS
        <function trust_audit at ...>

    Raises:
        ValueError: One line, before any long work, for a model whose input width does not
            match the data or the specification, a specification with unknown columns or
            σ ≤ 0, variation or template files with other columns, unlabelled data or a
            missing class, unknown attacks or non-positive budgets.
        FileNotFoundError: For a missing file.
    """
    t_start, c_start = time.perf_counter(), time.process_time()
    rule = rule or DecisionRule()
    grid = tuple(budgets) if budgets else DEFAULT_BUDGETS
    if explain and (int(explain_jets) < 1 or int(explain_steps) < 2):
        raise ValueError(
            f"explain_jets must be ≥ 1 and explain_steps ≥ 2, got {explain_jets} and {explain_steps}"
        )
    inp = _prepare(model, data, signal, background, variations, features, attacks, grid, constraints, n_max)
    net, ev, cal = inp.net, inp.evald, inp.calib
    assert ev.labels is not None
    assert cal.labels is not None
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    sigma = None if inp.features is not None else inp.spec.sigma(ev.features) if inp.spec else None
    with _timed(times, cpu, "performance"):
        s_ev = _scores(net, ev.features)
        metrics = bootstrap_metrics(ev.labels, s_ev, n_boot=n_boot, seed=seed)
        performance = {
            "n": len(ev),
            "n_boot": n_boot,
            "signal_label": LABEL_TOP,
            "metrics": {k: v.to_dict() for k, v in metrics.items()},
        }

    # ------------------------------------------------------------------ robustness
    curves: dict[str, list[tuple[float | None, AttackRun]]] = {}
    plan = [(a, s) for a in inp.attacks for s in _strengths(a, grid)]
    with _timed(times, cpu, "robustness"), _bar(len(plan), "robustness", progress) as bar:
        for a, s in plan:
            info = ATTACKS[a]
            atk = get_attack(a, **({info.strength or "eps": s} if s is not None else {}))
            res = atk.run(
                net,
                ev.features,
                ev.labels,
                features=inp.features,
                sigma=sigma,
                constraints=inp.constraints,
                seed=seed,
            )
            val = validate_samples(res.x, res.x_adv, feature_names=list(ev.feature_names))
            curves.setdefault(a, []).append((s, AttackRun(res, val)))
            bar.update(1)
    rows = [r for a, runs in curves.items() for r in summary_rows(a, runs)]
    legacy_summary = _legacy_summary(curves)
    audit = AuditResult(
        {
            "model": model_name or describe_model(model),
            "data": data_name or _name(data),
            "n_jets": len(ev),
            "rows": rows,
            "summary": legacy_summary,
            "seconds": times["robustness"],
        },
        curves,
        ev,
    )
    strongest = _strongest_passing(curves)
    robustness = {
        "attacks": inp.attacks,
        "budgets": list(grid),
        "constraints": list(inp.constraints.names)
        if isinstance(inp.constraints, ConstraintSet)
        else str(inp.constraints),
        "rows": rows,
        "summary": legacy_summary,
        "strongest_passing_validation": strongest,
    }
    ref_a, ref_s, ref_run = _reference_run(curves, rule.max_budget)

    # ------------------------------------------------------------------ measurement
    with (
        _timed(times, cpu, "measurement"),
        _bar(1 + sum(map(len, curves.values())) + 2 * len(inp.variations), "measurement", progress) as bar,
    ):
        measurement = measurement_section(
            net, cal, ev, s_ev, curves, inp.variations, bins, expected_signal, expected_background, bar
        )

    # ------------------------------------------------------------------ uncertainty, systematics
    with _timed(times, cpu, "uncertainty"), _bar(2 + len(inp.variations), "uncertainty", progress) as bar:
        uncertainty, rel_fig = uncertainty_section(
            net, cal, ev, s_ev, ref_run, ref_a, ref_s, inp.variations, seed, bar
        )
    systematics = None
    if inp.variations:
        with _timed(times, cpu, "systematics"):
            systematics = systematics_section(net, ev, s_ev, inp.variations)

    # ------------------------------------------------------------------ detection
    detection = None
    if detector and ref_run is not None:
        with _timed(times, cpu, "detection"), _bar(1, "detection", progress) as bar:
            detection = detection_section(net, ref_run, ref_a, ref_s, seed)
            bar.update(1)

    # ------------------------------------------------------------------ explanations
    explanations, explanation = None, None
    if explain:
        with _timed(times, cpu, "explanations"), _bar(1, "explanations", progress) as bar:
            ref_label = f"{ref_a}@{ref_s:g}σ" if ref_s is not None else ref_a
            explanations, explanation = explanation_section(
                net, ev, ref_run, ref_label, inp.features, n_jets=explain_jets, steps=explain_steps, seed=seed
            )
            bar.update(1)

    checks = evaluate_checks(rule, performance, measurement, uncertainty, detection)
    data_out: dict[str, Any] = {
        "verdict": verdict(checks, rule),
        "trustworthy": not any(not c.passed and c.severity == "fail" for c in checks),
        "failing_checks": [c.name for c in checks if not c.passed and c.severity == "fail"],
        "warnings": [c.name for c in checks if not c.passed and c.severity != "fail"],
        "checks": [c.to_dict() for c in checks],
        "decision_rule": rule.to_dict(),
        "model": audit.data["model"],
        "data": audit.data["data"],
        "n_jets": len(ev),
        "n_calibration_jets": len(cal),
        "split": inp.split,
        "performance": performance,
        "robustness": robustness,
        "uncertainty": uncertainty,
        "measurement": measurement,
        "features": inp.spec.to_dict()
        if inp.spec is not None
        else {"source": "challenge layout", "note": ""},
        "rows": rows,
        "summary": legacy_summary,
    }
    if systematics is not None:
        data_out["systematics"] = systematics
    if detection is not None:
        data_out["detection"] = detection
    if explanations is not None:
        data_out["explanations"] = explanations
    data_out["section_seconds"] = times
    data_out["section_cpu_seconds"] = cpu
    data_out["seconds"] = time.perf_counter() - t_start
    data_out["cpu_seconds"] = time.process_time() - c_start
    result = TrustResult(
        data_out, audit, {"reliability": rel_fig} if rel_fig is not None else {}, explanation
    )
    if out_dir is not None:
        result.write(out_dir)
    return result


def _name(data: Any) -> str:
    return str(data) if isinstance(data, str | Path) else "dataset"


def _strengths(attack: str, grid: Sequence[float]) -> list[float | None]:
    info = ATTACKS[attack]
    if info.strength == "eps":
        return list(grid)
    return list(info.grid) or [None]


def _legacy_summary(curves: Mapping[str, list[tuple[float | None, AttackRun]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a, runs in curves.items():
        passing = [(s, r) for s, r in runs if r.validation.passed]
        best = max(passing, key=lambda sr: sr[1].result.fooling_ratio) if passing else None
        out[a] = {
            "max_fooling_ratio": max(r.result.fooling_ratio for _, r in runs),
            "max_fooling_ratio_passing_validation": best[1].result.fooling_ratio if best else None,
            "strength_passing_validation": best[0] if best else None,
        }
    return out


def _strongest_passing(curves: Mapping[str, list[tuple[float | None, AttackRun]]]) -> dict[str, Any] | None:
    best: tuple[str, float | None, AttackRun] | None = None
    for a, runs in curves.items():
        for s, r in runs:
            if r.validation.passed and (
                best is None or r.result.fooling_ratio > best[2].result.fooling_ratio
            ):
                best = (a, s, r)
    if best is None:
        return None
    return {
        "attack": best[0],
        "budget": best[1],
        "fooling_ratio": best[2].result.fooling_ratio,
        "accuracy": best[2].result.accuracy,
    }


def _reference_run(
    curves: Mapping[str, list[tuple[float | None, AttackRun]]], max_budget: float
) -> tuple[str, float | None, AttackRun | None]:
    """The strongest ε attack run with budget ≤ max_budget (else the weakest run)."""
    cands: list[tuple[str, float | None, AttackRun]] = [
        (a, s, r)
        for a, runs in curves.items()
        for s, r in runs
        if s is not None and s <= max_budget + 1e-12 and ATTACKS[a].strength == "eps"
    ]
    if not cands:
        cands = [(a, s, r) for a, runs in curves.items() for s, r in runs]
    if not cands:
        return "", None, None
    a, s, r = max(cands, key=lambda c: (c[1] or 0.0, c[2].result.fooling_ratio))
    return a, s, r
