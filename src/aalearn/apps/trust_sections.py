"""Sections of the trust audit (:mod:`aalearn.apps.trust`): measurement, uncertainty, systematics,
detection and explanations.

Each function takes the model, the calibration and evaluated jets (and the attack runs of
the robustness section) and returns the JSON-friendly section of ``results.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score
from torch import nn

from aalearn.apps.audit import AttackRun
from aalearn.apps.measure import pseudo_data, quantile_edges
from aalearn.attacks import ATTACKS
from aalearn.core.seeding import numpy_rng
from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.explain import ExplanationResult, explain_model
from aalearn.explain.attributions import DEFAULT_STEPS
from aalearn.inference.measurement import Measurement, templates_from_scores
from aalearn.models import predict_proba
from aalearn.physics.features import FeatureSet
from aalearn.training.detector import AdversarialDetector, detection_metrics
from aalearn.uncertainty.calibration import expected_calibration_error, reliability_curve
from aalearn.uncertainty.plots import plot_reliability
from aalearn.uncertainty.predictors import LastLayerLaplace, MCDropout

__all__ = [
    "EXPLAIN_JETS",
    "EXPLAIN_STEPS",
    "detection_section",
    "explain_subsample",
    "explanation_section",
    "measurement_section",
    "systematics_section",
    "uncertainty_section",
]

#: Jets of the explanation subsample (seeded; the audit's time stays small: on the challenge
#: model 1000 jets took 60 s of a 256 s audit on a loaded 2-core machine).
EXPLAIN_JETS = 500
#: Integrated-Gradients path points in the audit: the default of :func:`explain_model`; on the
#: challenge model 64 points leave a 2.8 % and 128 a 1.4 % completeness error (1000 jets).
EXPLAIN_STEPS = DEFAULT_STEPS
#: Jets of the randomisation and stability checks in the audit.
EXPLAIN_SANITY_JETS = 200

FloatArray = npt.NDArray[np.float64]


def _scores(net: nn.Module, x: npt.ArrayLike) -> FloatArray:
    return np.asarray(predict_proba(net, x), dtype=np.float64)


def measurement_section(
    net: nn.Module,
    cal: JetDataset,
    ev: JetDataset,
    s_ev: FloatArray,
    curves: Mapping[str, list[tuple[float | None, AttackRun]]],
    variations: Mapping[str, tuple[JetDataset, JetDataset]],
    bins: int,
    es: float,
    eb: float,
    bar: Any,
) -> dict[str, Any]:
    """The pyhf fit of μ on templates of the calibration jets and Δμ̂/σ_μ of every attack run and variation.

    Attack runs: pseudo-data of the attacked evaluated jets against the same jets clean;
    variations: pseudo-data of each variation file against the Asimov data. σ_μ is the
    total uncertainty of the nominal (Asimov) fit.
    """
    assert cal.labels is not None
    assert ev.labels is not None
    s_cal = _scores(net, cal.features)
    s_sig, s_bkg = s_cal[cal.labels == LABEL_TOP], s_cal[cal.labels == LABEL_W]
    edges = quantile_edges(s_sig, s_bkg, bins, expected_signal=es, expected_background=eb)
    var_scores = {}
    for name, (down, up) in variations.items():
        pair = []
        for v in (down, up):
            assert v.labels is not None
            sv = _scores(net, v.features)
            pair.append((sv[v.labels == LABEL_TOP], sv[v.labels == LABEL_W]))
        var_scores[name] = (pair[0], pair[1])
    normsys = {"signal_norm": {"signal": (0.95, 1.05)}, "background_norm": {"background": (0.9, 1.1)}}
    templates = templates_from_scores(
        s_sig,
        s_bkg,
        bins=edges,
        expected_signal=es,
        expected_background=eb,
        variations=var_scores or None,
        normsys=normsys,
        staterror=True,
    )
    meas = Measurement(templates)
    nominal = meas.fit()
    sigma_mu = nominal.mu_err
    clean_counts = pseudo_data(s_ev, ev.labels, templates.edges, expected_signal=es, expected_background=eb)
    clean = meas.fit(clean_counts)
    bar.update(1)
    shifts: list[dict[str, Any]] = [
        {
            "name": "clean evaluated jets",
            "attack": None,
            "budget": None,
            "passes_validation": None,
            "mu_hat": clean.mu_hat,
            "delta_mu_over_sigma": (clean.mu_hat - nominal.mu_hat) / sigma_mu,
        }
    ]
    for a, runs in curves.items():
        for s, run in runs:
            res = run.result
            s_adv = res.score_adv if res.score_adv is not None else _scores(net, res.x_adv)
            counts = pseudo_data(
                s_adv, ev.labels, templates.edges, expected_signal=es, expected_background=eb
            )
            fit = meas.fit(counts)
            shifts.append(
                {
                    "name": f"attack {a}"
                    + (
                        f" ε={s:g}σ"
                        if s is not None and ATTACKS[a].strength == "eps"
                        else f" {ATTACKS[a].strength}={s:g}"
                        if s is not None
                        else ""
                    ),
                    "attack": a,
                    "budget": s if ATTACKS[a].strength == "eps" else None,
                    "strength": s,
                    "passes_validation": bool(run.validation.passed),
                    "fooling_ratio": res.fooling_ratio,
                    "mu_hat": fit.mu_hat,
                    "delta_mu_over_sigma": (fit.mu_hat - clean.mu_hat) / sigma_mu,
                }
            )
            bar.update(1)
    for name, (down, up) in variations.items():
        for side, v in (("down", down), ("up", up)):
            assert v.labels is not None
            counts = pseudo_data(
                _scores(net, v.features),
                v.labels,
                templates.edges,
                expected_signal=es,
                expected_background=eb,
            )
            fit = meas.fit(counts)
            shifts.append(
                {
                    "name": f"variation {name}-{side}",
                    "variation": name,
                    "attack": None,
                    "budget": None,
                    "passes_validation": None,
                    "mu_hat": fit.mu_hat,
                    "delta_mu_over_sigma": (fit.mu_hat - nominal.mu_hat) / sigma_mu,
                }
            )
            bar.update(1)
    return {
        "mu_hat": nominal.mu_hat,
        "sigma_mu": sigma_mu,
        "sigma_mu_stat": nominal.mu_err_stat,
        "sigma_mu_syst": nominal.mu_err_syst,
        "bins": len(templates.edges) - 1,
        "edges": templates.edges.tolist(),
        "expected_signal": es,
        "expected_background": eb,
        "variations": sorted(variations),
        "shifts": shifts,
    }


def uncertainty_section(
    net: nn.Module,
    cal: JetDataset,
    ev: JetDataset,
    s_ev: FloatArray,
    ref_run: AttackRun | None,
    ref_a: str,
    ref_s: float | None,
    variations: Mapping[str, tuple[JetDataset, JetDataset]],
    seed: int,
    bar: Any,
) -> tuple[dict[str, Any], Any]:
    """ECE and reliability of the scores; epistemic/aleatoric split (MC dropout or last-layer Laplace,
    arXiv:2106.14806); AUROC of the epistemic uncertainty for fooled and variation jets.

    Returns:
        ``(section, reliability figure)``; ``method`` is ``"none"`` with a note when the
        model allows no epistemic estimate.
    """
    assert ev.labels is not None
    assert cal.labels is not None
    out: dict[str, Any] = {
        "ece": expected_calibration_error(ev.labels, s_ev, n_bins=15),
        "ece_bins": 15,
        "n": len(ev),
    }
    curve = reliability_curve(ev.labels, s_ev, n_bins=15)
    out["reliability"] = curve.to_dict()
    fig = plot_reliability({"model": curve})
    bar.update(1)
    predictor: Any = None
    reason = ""
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in net.modules()):
        predictor, method = MCDropout(net, n_samples=30, seed=seed), "mc-dropout"
    else:
        try:
            predictor, method = LastLayerLaplace(net).fit(cal.features, cal.labels), "laplace"
        except (ValueError, RuntimeError, TypeError) as exc:
            method, reason = "none", str(exc).splitlines()[0]
    if predictor is None:
        out.update(
            {"method": "none", "note": f"no epistemic uncertainty available for this model ({reason})"}
        )
        bar.update(1 + len(variations))
        return out, fig
    dec = predictor.predict(ev.features)
    out.update({"method": method, **dec.summary()})
    out["note"] = (
        f"ECE (15 equal-width bins, top-label) on {len(ev)} evaluated jets. Epistemic/aleatoric split from "
        + (
            "MC dropout (30 passes)."
            if method == "mc-dropout"
            else "a last-layer Laplace approximation (arXiv:2106.14806) fitted on the calibration jets."
        )
        + " Flags: AUROC of the epistemic uncertainty, shifted versus clean jets (0.5 = blind)."
    )
    flags = []
    if ref_run is not None and ref_run.result.success.any():
        adv = predictor.predict(ref_run.result.x_adv[ref_run.result.success])
        flags.append(
            _flag_row(
                f"attack {ref_a} ε={ref_s:g}σ (fooled jets)" if ref_s is not None else ref_a,
                dec.epistemic,
                adv.epistemic,
            )
        )
    bar.update(1)
    for name, (down, up) in variations.items():
        for side, v in (("down", down), ("up", up)):
            flags.append(
                _flag_row(f"variation {name}-{side}", dec.epistemic, predictor.predict(v.features).epistemic)
            )
        bar.update(1)
    out["flags"] = flags
    out["attack_flag_auroc"] = (
        flags[0]["AUROC"]
        if flags and ref_run is not None and flags[0]["shifted set"].startswith("attack")
        else None
    )
    return out, fig


def _flag_row(name: str, clean: FloatArray, shifted: FloatArray) -> dict[str, Any]:
    y = np.r_[np.zeros(len(clean)), np.ones(len(shifted))]
    score = np.r_[clean, shifted]
    auc = float(roc_auc_score(y, score)) if len(shifted) and np.ptp(score) > 0 else 0.5
    return {"shifted set": name, "AUROC": auc, "shifted jets": len(shifted), "clean jets": len(clean)}


def systematics_section(
    net: nn.Module, ev: JetDataset, s_ev: FloatArray, variations: Mapping[str, tuple[JetDataset, JetDataset]]
) -> dict[str, Any]:
    """Mean score shift per class between each variation file and the nominal evaluated jets."""
    assert ev.labels is not None
    rows = []
    nominal = {lab: s_ev[ev.labels == lab] for lab in (LABEL_TOP, LABEL_W)}
    for name, (down, up) in variations.items():
        for side, v in (("down", down), ("up", up)):
            assert v.labels is not None
            sv = _scores(net, v.features)
            row: dict[str, Any] = {"variation": f"{name}-{side}", "jets": len(v)}
            for lab, cls in ((LABEL_TOP, "signal"), (LABEL_W, "background")):
                shifted = sv[v.labels == lab]
                row[f"mean score shift, {cls}"] = float(shifted.mean() - nominal[lab].mean())
            rows.append(row)
    return {"rows": rows}


def detection_section(
    net: nn.Module, run: AttackRun, attack: str, budget: float | None, seed: int
) -> dict[str, Any] | None:
    """Adversarial-sample detector trained on one half of the attacked jets, tested on the other half.

    Returns the :class:`~aalearn.training.detector.DetectionResult` fields (fooling ratio,
    corrected fooling ratio, detection and false-positive rates, detector AUC) and a note.
    """
    res = run.result
    assert res.labels is not None
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(res.x))
    train, test = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    fooled_train = train[res.success[train]]
    name = f"{attack} ε={budget:g}σ" if budget is not None else attack
    if len(fooled_train) < 8:
        return {"attack": name, "note": f"too few fooled jets ({len(fooled_train)}) to train the detector"}
    det = AdversarialDetector(hidden=(64, 32), epochs=30, patience=5).fit(
        res.x[train], res.x_adv[fooled_train], seed=seed
    )
    m = detection_metrics(net, det, res.x[test], res.x_adv[test], res.labels[test])
    return {
        "attack": name,
        **m.to_dict(),
        "note": (
            f"Detector (MLP 64-32, threshold at 5% false positives on clean validation jets) trained on half "
            f"of the evaluated jets and their {attack} adversaries, tested on the other half. Corrected "
            "fooling ratio: fooled and not flagged, over correctly classified jets."
        ),
    }


def explain_subsample(n: int, size: int, seed: int) -> npt.NDArray[np.int64]:
    """Sorted row indices of the seeded explanation subsample (all rows when ``n <= size``).

    Example:
        >>> explain_subsample(5, 10, 0).tolist()
        [0, 1, 2, 3, 4]
    """
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.sort(numpy_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def explanation_section(
    net: nn.Module,
    ev: JetDataset,
    ref_run: AttackRun | None,
    ref_name: str,
    features: FeatureSet | None,
    *,
    n_jets: int = EXPLAIN_JETS,
    steps: int = EXPLAIN_STEPS,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> tuple[dict[str, Any], ExplanationResult]:
    """Integrated-Gradients explanation of the tagger on a seeded subsample of the evaluated jets.

    Runs :func:`aalearn.explain.explain_model` (Sundararajan et al., arXiv:1703.01365) with
    the reference attack run's adversarial jets of the same rows as the attack explanation.

    Args:
        net: The model.
        ev: The evaluated jets (labelled).
        ref_run: The reference attack run (its ``x_adv`` is row-paired with ``ev``), or ``None``.
        ref_name: Name of the reference attack in the output (e.g. ``"pgd@1σ"``).
        features: Feature set defining σ (``None``: no σ-unit importance).
        n_jets: Size of the subsample.
        steps: Integrated-Gradients path points.
        seed: Seed of the subsample and of the explanation.
        feature_names: Column names (default: the data's).

    Returns:
        ``(section, result)``: the JSON section (``feature_importance`` top 10, ``sanity``,
        ``observable_correlations``, ``attacks``, ``n_jets``, ``steps``, ``rows``) and the
        full :class:`~aalearn.explain.ExplanationResult` for the report.
    """
    idx = explain_subsample(len(ev), n_jets, seed)
    adversarial = None
    if ref_run is not None and ref_run.result.x_adv.shape == ev.features.shape:
        adversarial = {ref_name: ref_run.result.x_adv[idx]}
    res = explain_model(
        net,
        ev.features[idx],
        None if ev.labels is None else ev.labels[idx],
        feature_names=list(feature_names or ev.feature_names),
        features=features,
        steps=steps,
        seed=seed,
        n_sanity=min(EXPLAIN_SANITY_JETS, len(idx)),
        adversarial=adversarial,
    )
    full = res.to_dict()
    section = {
        "n_jets": len(idx),
        "n_evaluated_jets": len(ev),
        "subsample": f"{len(idx)} of {len(ev)} evaluated jets, seed {seed}",
        "method": full["method"],
        "baseline": full["baseline"],
        "steps": steps,
        "feature_importance": full["feature_importance"][:10],
        "groups": full["groups"],
        "sanity": full["sanity"],
        "observable_correlations": full["observable_correlations"],
        "observable_interpretation": full["observable_interpretation"],
        "attacks": full["attacks"],
        "seconds": full["seconds"],
    }
    return section, res
