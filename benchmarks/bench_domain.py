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
   held out) of the generated jets against the EVEN rows of the same class, before and
   after reweighting [≤ 0.85 top, ≤ 0.90 W].

No challenge jet is ever trained on: the even rows only shape the spectrum weights, the
odd rows only measure.

Usage::

    nice -n 5 .venv/bin/python benchmarks/bench_domain.py \\
        --top '/tmp/aalearn-domain/cms/top.h5.parts/chunk_*.h5' \\
        --w '/tmp/aalearn-domain/cms/w.h5.parts/chunk_*.h5' --seeds 0 1 2 --out /tmp/h9/bench_domain.json
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
from aalearn.data.io import load_dataset, load_datasets
from aalearn.data.reweight import reweight_to_reference
from aalearn.evaluation import evaluate_scores
from aalearn.models import predict_proba
from aalearn.surrogates.features import feature_matrix
from aalearn.surrogates.twosample import c2st


def _files(patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in patterns:
        out += [Path(f) for f in sorted(glob.glob(p))]
    if not out:
        raise SystemExit(f"no generated files match {patterns}")
    return out


def _plain(ds: JetDataset) -> JetDataset:
    return JetDataset(ds.features, ds.labels, ds.feature_names, source=ds.source)


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
    top = load_datasets(_files(args.top), require_labels=True, n_max=args.n_max)
    w = load_datasets(_files(args.w), require_labels=True, n_max=args.n_max)
    gen = _plain(JetDataset.concatenate([_plain(top), _plain(w)]))
    assert gen.labels is not None
    t0 = time.perf_counter()
    sw = reweight_to_reference(gen, clean, variable=args.variable, rows="even", n_bins=args.bins)
    out: dict[str, Any] = {
        "generated": {"top": len(top), "w": len(w), "files_top": args.top, "files_w": args.w},
        "reference": {"even_rows": len(even), "odd_rows": len(odd)},
        "reweighting": sw.to_dict(),
    }
    # 2. C2ST per class before / after reweighting, against the even rows of the class
    x_gen, names = feature_matrix(gen, kind="jet")
    x_ref, _ = feature_matrix(clean.subset(even), kind="jet")
    assert clean.labels is not None
    y_ref = clean.labels[even]
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
    # 1. transfer AUC over seeds, reweighted and (baseline) unweighted
    transfer: dict[str, dict[str, list[float]]] = {
        k: {"clean_odd": [], "rdsa_odd": []} for k in ("reweighted", "unweighted")
    }
    for seed in args.seeds:
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
            for name, ds in (("clean_odd", clean.subset(odd)), ("rdsa_odd", rdsa.subset(odd))):
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
    for kind, per in result["transfer"].items():
        if isinstance(per, dict):
            for name, s in per.items():
                print(f"{kind} {name}: AUC {s['mean']:.4f} ± {s['sd']:.4f} over {len(s['values'])} seeds")


if __name__ == "__main__":
    main()
