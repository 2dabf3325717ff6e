"""Benchmark: transfer of a tagger trained only on generated jets to the challenge's CMS jets (issue 15).

What it measures (goals of issue 15 in brackets):

1. TopoDNN trained ONLY on generated jets, per-class ΣpT-reweighted to the EVEN rows of
   ``Clean_Test_Public.feather`` (:func:`aalearn.data.reweight.reweight_to_reference`),
   evaluated on the ODD rows of the clean file and of the RDSA file
   (``Adversaries_Test_Public.feather``, row-paired with the clean file), over several
   seeds: mean ± sample standard deviation [AUC ≥ 0.90 on the odd clean rows]. The same
   training without reweighting is the baseline of the run (ratio printed).
2. Per class, the classifier two-sample test (:func:`aalearn.surrogates.twosample.c2st`,
   gradient boosting on the jet-level features of :mod:`aalearn.surrogates.features`, half
   held out) of the generated jets against the rows of the same class (``--c2st-rows``:
   EVEN rows while developing, ODD rows for the figures that are reported), before and
   after reweighting [≤ 0.85 top, ≤ 0.90 W].
3. Per class, the jet-shape diagnostics that say where the generated jets differ
   (:func:`shape_diagnostics`): medians of ΣpT, mass, girth, τ21 and the hardest
   constituent's pT fraction; the fraction of jets whose hardest constituent carries
   > 40 % of ΣpT; the pT of the 30th constituent; and the pT per unit area in the annulus
   0.3 < ΔR < 0.45 about the hardest constituent, in ΣpT bins (the challenge's is flat in
   ΣpT, about 135-160 GeV; a QCD jet's grows with its pT).

Optional detector-level variations, applied in memory to the files'
``constituents_unsmeared`` (no new Pythia run, :func:`aalearn.data.resmear.resmear_file`
does the same on disk): ``--resolution`` re-smears with another resolution,
``--pileup-density``/``--pileup-mean-excess`` first overlay soft particles
(:mod:`aalearn.data.pileup`, μ = 21).

No challenge jet is ever trained on: the even rows only shape the spectrum weights, the
odd rows only measure.

Training on every modelling variation (issue 15, stop 30; ``docs/guides/calibration.md``):
with the jets of ``aalearn generate --preset cms-challenge`` (the generator's overlay) plus
6000 jets per class of each ``--variation`` (fsr-up, fsr-down, isr-up, isr-down, tune-a14,
tune-cuetp8m1), ``--c2st-rows odd --epochs 60 --min-sum-pt 170 --seeds 0 1 2 3 4 5
--skip-baseline``, transfer AUC on the odd rows, mean ± sd over 6 seeds:
  - nominal only: 0.874 ± 0.014 (set 1) and 0.870 ± 0.008 (set 2);
  - with the variations: 0.902 ± 0.005 (set 1) and 0.887 ± 0.010 (set 2, independent
    variation samples);
  - everything together: 0.901 ± 0.011, C2ST AUC top 0.758 and W 0.814;
  - a third nominal set and a third, independent set of variations added (131,500 top and
    130,295 W jets): 0.905 ± 0.002 (every seed 0.902-0.908), C2ST AUC top 0.764 and W 0.797;
  - as many extra *nominal* jets instead: 0.875 ± 0.009 and 0.874 ± 0.008.

The same runs on the even rows (``clean_even``, the calibration rows, on which recipes may be
chosen): set 1 0.873 → 0.907 with its variations, control 0.871 → 0.902 with everything.

Usage (the issue-15 figures: jets of ``--preset cms-challenge`` generated with
``min_constituents=0``, then the preset's overlay and the 30-object requirement)::

    nice -n 5 .venv/bin/python benchmarks/bench_domain.py \\
        --top /tmp/domain/nomin_top12.h5 /tmp/domain/nomin_top14_pt450.h5 /tmp/domain/nomin_top16_pt300.h5 \\
        --w /tmp/domain/nomin_w11.h5 /tmp/domain/nomin_w15_pt350.h5 /tmp/domain/nomin_w18_pt170.h5 \\
        --pileup-density 1.5 --pileup-mean-excess 3.0 --min-objects 30 \\
        --c2st-rows odd --seeds 0 1 2 --epochs 40 --out /tmp/domain/bench_R5.json
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aalearn.apps.train import train_topodnn
from aalearn.core.paths import find_challenge_data
from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.io import load_dataset, load_datasets
from aalearn.data.pileup import PileupModel, overlay_pileup
from aalearn.data.reweight import reweight_to_reference
from aalearn.evaluation import evaluate_scores
from aalearn.models import predict_proba
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.preprocessing import features_to_constituents, topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel, load_resolution
from aalearn.surrogates.features import feature_matrix
from aalearn.surrogates.twosample import c2st

#: ΣpT bins (GeV) of the annulus density in :func:`shape_diagnostics`.
SUM_PT_BINS: tuple[tuple[float, float], ...] = ((150, 250), (250, 350), (350, 500), (500, 700), (700, 1000))


def _files(patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in patterns:
        out += [Path(f) for f in sorted(glob.glob(p))]
    if not out:
        raise SystemExit(f"no generated files match {patterns}")
    return out


def _plain(ds: JetDataset) -> JetDataset:
    return JetDataset(ds.features, ds.labels, ds.feature_names, source=ds.source)


def _varied(
    files: list[Path],
    resolution: ResolutionModel,
    pileup: PileupModel | None,
    seed: int,
    n_max: int | None,
    min_objects: int = 0,
    min_sum_pt: float = 0.0,
) -> JetDataset:
    """The files' jets re-smeared (after an optional pile-up overlay) from ``constituents_unsmeared``.

    Jets with fewer than ``min_objects`` objects after the overlay are dropped: with files
    generated with ``min_constituents=0`` this applies the requirement after the overlay, as a
    detector would (a lone lepton then gains the overlay's particles). Jets whose 30-object
    ΣpT after the overlay is below ``min_sum_pt`` GeV are dropped too: with files generated
    below the target pT this applies the jet-pT threshold at detector level, soft component
    included.
    """
    parts = []
    for i, f in enumerate(files):
        ds = read_jets_hdf5(f)
        if "constituents_unsmeared" not in ds.extras:
            raise SystemExit(f"{f} has no constituents_unsmeared: it cannot be re-smeared")
        u = np.asarray(ds.extras["constituents_unsmeared"], dtype=np.float64)[:n_max]
        rng = np.random.default_rng([seed, i])
        if pileup is not None:
            u = overlay_pileup(u, pileup, rng)
        keep = ((u[..., 0] > 0).sum(axis=1) >= min_objects) & (u[..., 0].sum(axis=1) >= min_sum_pt)
        x = topodnn_preprocess(resolution.smear(u[keep], rng), pt_scale=float(ds.metadata["pt_scale_gev"]))
        assert ds.labels is not None
        labels = np.asarray(ds.labels)[:n_max][keep]
        parts.append(JetDataset(x.astype(np.float32), labels, ds.feature_names, source=str(f)))
    return JetDataset.concatenate(parts)


def _wquantile(v: np.ndarray, w: np.ndarray | None, q: float) -> float:
    if len(v) == 0:
        return float("nan")
    w = np.ones_like(v) if w is None else w
    o = np.argsort(v, kind="stable")
    c = np.cumsum(w[o])
    return float(v[o][min(int(np.searchsorted(c, q * c[-1])), len(v) - 1)])


def shape_diagnostics(features: np.ndarray, weights: np.ndarray | None = None) -> dict[str, Any]:
    """Per-class jet-shape figures of the module docstring (weighted medians), from (N, 87) features."""
    c = features_to_constituents(np.asarray(features, dtype=np.float64), pt_scale=CHALLENGE_PT_SCALE_GEV)
    x, names = feature_matrix(np.asarray(features, dtype=np.float64), kind="jet")
    pt = c[..., 0]
    dr = np.hypot(c[..., 1], c[..., 2])  # from the hardest (first) constituent
    sum_pt = pt.sum(axis=1)
    lead = pt[:, 0] / sum_pt
    annulus = (pt * ((dr > 0.3) & (dr < 0.45))).sum(axis=1) / (np.pi * (0.45**2 - 0.3**2))
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    out: dict[str, Any] = {"n": len(pt)}
    for j, name in enumerate(names):
        if name in ("jet_mass", "width", "tau21", "lead_pt_frac"):
            out[f"median_{name}"] = _wquantile(x[:, j], w, 0.5)
    out["median_sum_pt_gev"] = _wquantile(sum_pt, w, 0.5)
    out["median_pt30_gev"] = _wquantile(pt[:, -1], w, 0.5)
    ww = np.ones(len(pt)) if w is None else w
    out["fraction_lead_above_0.4"] = float(np.sum(ww * (lead > 0.4)) / np.sum(ww))
    bins: dict[str, float | None] = {}
    for lo, hi in SUM_PT_BINS:
        k = (sum_pt >= lo) & (sum_pt < hi)
        bins[f"{lo:.0f}-{hi:.0f}"] = _wquantile(annulus[k], ww[k], 0.5) if k.sum() >= 20 else None
    out["annulus_gev_per_area"] = bins
    return out


def _rounded(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return round(obj, 3) if isinstance(obj, float) else obj


def _mean_sd(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else float("nan"),
        "values": values,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the JSON object it prints."""
    torch.set_num_threads(1)
    data_dir = find_challenge_data() if args.challenge is None else Path(args.challenge)
    if data_dir is None:
        raise SystemExit("the challenge's public files are not present")
    clean = load_dataset(data_dir / "Clean_Test_Public.feather", require_labels=True)
    rdsa = load_dataset(data_dir / "Adversaries_Test_Public.feather", require_labels=True)
    odd = np.arange(1, len(clean), 2)
    even = np.arange(0, len(clean), 2)
    pileup = (
        None
        if args.pileup_density is None
        else PileupModel(mu=21.0, density=args.pileup_density, mean_excess=args.pileup_mean_excess)
    )
    if args.resolution is None and pileup is None and not args.min_sum_pt:
        top = load_datasets(_files(args.top), require_labels=True, n_max=args.n_max)
        w = load_datasets(_files(args.w), require_labels=True, n_max=args.n_max)
    else:
        res = load_resolution(args.resolution or "cms-challenge")
        top = _varied(_files(args.top), res, pileup, 1000, args.n_max, args.min_objects, args.min_sum_pt)
        w = _varied(_files(args.w), res, pileup, 2000, args.n_max, args.min_objects, args.min_sum_pt)
    gen = _plain(JetDataset.concatenate([_plain(top), _plain(w)]))
    assert gen.labels is not None
    t0 = time.perf_counter()
    sw = reweight_to_reference(gen, clean, variable=args.variable, rows="even", n_bins=args.bins)
    out: dict[str, Any] = {
        "generated": {"top": len(top), "w": len(w), "files_top": args.top, "files_w": args.w},
        "reference": {"even_rows": len(even), "odd_rows": len(odd)},
        "reweighting": sw.to_dict(),
        "variation": {
            "resolution": None if args.resolution is None and pileup is None else res.to_dict(),
            "pileup": None if pileup is None else pileup.to_dict(),
            "min_objects_after_overlay": args.min_objects,
            "min_sum_pt_after_overlay": args.min_sum_pt,
        },
    }
    # 2. C2ST per class before / after reweighting, against the chosen rows of the class
    c2_rows = even if args.c2st_rows == "even" else odd
    x_gen, names = feature_matrix(gen, kind="jet")
    x_ref, _ = feature_matrix(clean.subset(c2_rows), kind="jet")
    assert clean.labels is not None
    y_ref = clean.labels[c2_rows]
    c2 = {}
    for label in (0, 1):
        g = gen.labels == label
        before = c2st(x_ref[y_ref == label], x_gen[g], feature_names=names, seed=0, n_threads=1)
        after = c2st(
            x_ref[y_ref == label],
            x_gen[g],
            feature_names=names,
            seed=0,
            n_threads=1,
            candidate_weights=sw.weights[g],
        )
        c2[LABEL_NAMES[label]] = {
            "n_reference": int(np.sum(y_ref == label)),
            "n_generated": int(g.sum()),
            "effective_n_generated": sw.effective_n[label],
            "before": {"auc": before.auc, "null_std": before.auc_null_std},
            "after": {"auc": after.auc, "null_std": after.auc_null_std},
        }
    out["c2st"] = c2
    out["c2st_rows"] = args.c2st_rows
    # 3. jet-shape diagnostics per class: reference rows (as the C2ST) and the reweighted generated jets
    x_ref_all = np.asarray(clean.features, dtype=np.float64)[c2_rows]
    out["shapes"] = {
        LABEL_NAMES[label]: {
            "reference": shape_diagnostics(x_ref_all[y_ref == label]),
            "generated": shape_diagnostics(
                gen.features[gen.labels == label], sw.weights[gen.labels == label]
            ),
        }
        for label in (0, 1)
    }
    # 1. transfer AUC over seeds, reweighted and (baseline) unweighted
    transfer: dict[str, dict[str, list[float]]] = {
        k: {"clean_odd": [], "rdsa_odd": [], "clean_even": []} for k in ("reweighted", "unweighted")
    }
    for seed in [] if args.c2st_only else args.seeds:
        for kind in ("reweighted", "unweighted") if not args.skip_baseline else ("reweighted",):
            run_ = train_topodnn(
                gen,
                fractions=(0.8, 0.2, 0.0),
                epochs=args.epochs,
                patience=args.patience,
                seed=int(seed),
                progress=False,
                sample_weight=sw.weights if kind == "reweighted" else None,
            )
            # clean_even: the calibration rows, for choosing among recipes without the odd rows
            sets = (
                ("clean_odd", clean.subset(odd)),
                ("rdsa_odd", rdsa.subset(odd)),
                ("clean_even", clean.subset(even)),
            )
            for name, ds in sets:
                p = predict_proba(run_.model, ds.features)
                auc = evaluate_scores(np.asarray(ds.labels), p).auc
                transfer[kind][name].append(float("nan") if auc is None else float(auc))
            print(
                f"seed {seed} {kind}: " + ", ".join(f"{k} AUC {v[-1]:.4f}" for k, v in transfer[kind].items())
            )
    out["transfer"] = {
        kind: {name: _mean_sd(vals) for name, vals in per.items() if vals} for kind, per in transfer.items()
    }
    base = out["transfer"].get("unweighted", {}).get("clean_odd")
    if base:
        out["transfer"]["ratio_reweighted_over_unweighted_clean_odd"] = (
            out["transfer"]["reweighted"]["clean_odd"]["mean"] / base["mean"]
        )
    out["seconds"] = time.perf_counter() - t0
    out["settings"] = {
        "epochs": args.epochs,
        "patience": args.patience,
        "seeds": list(args.seeds),
        "variable": args.variable,
        "bins": args.bins,
        "n_max": args.n_max,
        "c2st_rows": args.c2st_rows,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", nargs="+", required=True, help="generated top files (globs allowed)")
    parser.add_argument("--w", nargs="+", required=True, help="generated W files (globs allowed)")
    parser.add_argument("--challenge", default=None, help="directory of the challenge's public files")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--variable", default="sum-pt", choices=["sum-pt", "lead-pt"])
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--n-max", type=int, default=None, help="at most N jets per file")
    parser.add_argument(
        "--c2st-rows", default="even", choices=["even", "odd"], help="reference rows of the C2ST"
    )
    parser.add_argument(
        "--resolution", default=None, help="re-smear with this resolution (name or JSON file)"
    )
    parser.add_argument(
        "--pileup-density", type=float, default=None, help="overlay soft particles (per area per interaction)"
    )
    parser.add_argument("--pileup-mean-excess", type=float, default=0.45, help="their mean pT above 0.4 GeV")
    parser.add_argument(
        "--min-objects", type=int, default=0, help="drop jets with fewer objects after the overlay"
    )
    parser.add_argument(
        "--min-sum-pt",
        type=float,
        default=0.0,
        help="drop jets whose 30-object sum pT (GeV) after the overlay is below this (files without "
        "an overlay option are then re-smeared with the preset's resolution, the same model)",
    )
    parser.add_argument("--c2st-only", action="store_true", help="skip the training (C2ST and shapes only)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not train the unweighted baseline")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    for cls, v in result["c2st"].items():
        print(
            f"C2ST {cls}: before {v['before']['auc']:.3f} ± {v['before']['null_std']:.3f}, after "
            f"{v['after']['auc']:.3f} ± {v['after']['null_std']:.3f} (n_ref {v['n_reference']}, n_gen "
            f"{v['n_generated']}, n_eff {v['effective_n_generated']:.0f})"
        )
    for cls, v in result["shapes"].items():
        for sample, d in v.items():
            print(f"shapes {cls} {sample}: " + json.dumps(_rounded(d)))
    for kind, per in result["transfer"].items():
        if isinstance(per, dict):
            for name, s in per.items():
                print(f"{kind} {name}: AUC {s['mean']:.4f} ± {s['sd']:.4f} over {len(s['values'])} seeds")


if __name__ == "__main__":
    main()
