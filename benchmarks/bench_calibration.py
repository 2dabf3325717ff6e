"""Benchmark of the simulation calibrated to the challenge's CMS jets (issue 15, simulation side).

What it measures, on jets generated with ``aalearn generate --preset cms-challenge`` (their
unsmeared detector-level objects are re-smeared here, so that every resolution is compared
on the same Pythia jets):

1. ``aalearn calibrate`` on the EVEN rows of ``Clean_Test_Public.feather``: fitted
   resolution parameters with bootstrap uncertainties;
2. per class, a classifier two-sample test (C2ST, :func:`aalearn.surrogates.c2st`,
   gradient boosting on the 87 features, half held out) of the generated jets against the
   ODD rows of the same class, for three resolutions: the default :class:`ResolutionModel`
   (baseline of this run), the one the files were generated with, and the fitted one;
   without reweighting and with H9's per-class ΣpT reweighting to the even rows
   (:func:`aalearn.data.reweight.spectrum_weights`);
3. optionally the same C2ST for jets of the original generator settings (R = 0.8, 13 TeV,
   ``--legacy-top/--legacy-w``), the "before" of the issue (0.98 / 0.99 there);
4. the jet-shape figures of issue 15 (fraction of adjacent constituents out of pT order, of
   jets with the hardest constituent first, of leading pairs within ΔR < 0.02; median ΔR
   of the leading pair and of the farthest constituent) for the generated jets and the odd rows.

Every AUC is printed with its null standard deviation and the sample sizes; ratios are
against the default resolution measured in the same run.

Usage (the figures of the report were produced with)::

    nice -n 5 .venv/bin/python benchmarks/bench_calibration.py \\
        --top '/tmp/aalearn-domain/cms/top.h5*' --w '/tmp/aalearn-domain/cms/w.h5*' \\
        --legacy-top /tmp/aalearn-domain/legacy/top.h5 --legacy-w /tmp/aalearn-domain/legacy/w.h5 \\
        --out /tmp/aalearn-domain/bench_calibration.json
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from aalearn.apps.calibrate import calibrate
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.io import load_dataset
from aalearn.data.reweight import spectrum_weights
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.preprocessing import features_to_constituents, topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel
from aalearn.surrogates.twosample import c2st

DEFAULT_REFERENCE = (
    Path(__file__).resolve().parents[2] / "shared/data/colliding-adversaries/Clean_Test_Public.feather"
)


def _files(pattern: str) -> list[str]:
    paths = sorted(p for p in glob.glob(pattern) if p.endswith(".h5"))
    paths += sorted(glob.glob(pattern.rstrip("*") + ".parts/chunk_*.h5")) if not paths else []
    if not paths:
        raise SystemExit(f"no generated files match {pattern!r}")
    return paths


def _load(pattern: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Unsmeared objects, smeared features, labels and the config of the first file."""
    ds = [read_jets_hdf5(p) for p in _files(pattern)]
    uns = np.concatenate([d.extras["constituents_unsmeared"] for d in ds]).astype(np.float64)
    x = np.concatenate([d.features for d in ds]).astype(np.float64)
    y = np.concatenate([np.asarray(d.labels) for d in ds])
    return uns, x, y, ds[0].metadata["config"]


def sum_pt(x: np.ndarray) -> np.ndarray:
    return features_to_constituents(x)[..., 0].sum(axis=1)


def shapes(x: np.ndarray) -> dict[str, float]:
    """Issue 15's jet-shape figures of (N, 87) features."""
    c = features_to_constituents(x, pt_scale=CHALLENGE_PT_SCALE_GEV)
    pt = c[..., 0]
    dr = np.hypot(c[..., 1], c[..., 2])  # distance to the leading constituent (at the origin)
    return {
        "out_of_order": float((np.diff(pt, axis=1) > 0).mean()),
        "hardest_first": float((pt.argmax(axis=1) == 0).mean()),
        "pair_within_0.02": float((dr[:, 1] < 0.02).mean()),
        "median_dr01": float(np.median(dr[:, 1])),
        "median_max_dr": float(np.median(dr.max(axis=1))),
        "median_sum_pt_gev": float(np.median(pt.sum(axis=1))),
    }


def c2st_row(ref: np.ndarray, cand: np.ndarray, weights: np.ndarray | None, seed: int) -> dict[str, Any]:
    r = c2st(ref, cand, classifier="hgb", seed=seed, n_threads=1, candidate_weights=weights)
    return {"auc": r.auc, "auc_null_std": r.auc_null_std, "n_reference": len(ref), "n_candidate": len(cand)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", required=True, help="glob of the preset's top files (or OUT.h5* for parts)")
    ap.add_argument("--w", required=True, help="glob of the preset's W files")
    ap.add_argument("--reference", default=str(DEFAULT_REFERENCE))
    ap.add_argument("--legacy-top", default=None)
    ap.add_argument("--legacy-w", default=None)
    ap.add_argument("--bootstrap", type=int, default=10)
    ap.add_argument("--max-evaluations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-max", type=int, default=None, help="use at most N generated jets per class")
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args()
    t0 = time.perf_counter()

    ref = load_dataset(args.reference, require_labels=True)
    xr, yr = np.asarray(ref.features, dtype=np.float64), np.asarray(ref.labels)
    even, odd = (xr[::2], yr[::2]), (xr[1::2], yr[1::2])
    u_top, _, y_top, cfg = _load(args.top)
    u_w, _, y_w, _ = _load(args.w)
    if args.n_max:
        n = args.n_max
        u_top, y_top, u_w, y_w = u_top[:n], y_top[:n], u_w[:n], y_w[:n]
    uns, labels = np.concatenate([u_top, u_w]), np.concatenate([y_top, y_w])
    file_res = ResolutionModel.from_dict(cfg["resolution"])
    resort = bool(cfg.get("resort", False))
    print(f"generated: {len(u_top)} top, {len(u_w)} W jets; reference even {len(even[0])}, odd {len(odd[0])}")

    cal = calibrate(
        even[0], even[1], uns, labels, start=file_res, resort=resort,
        n_bootstrap=args.bootstrap, max_evaluations=args.max_evaluations, seed=args.seed, rows="even",
    )  # fmt: skip
    print(f"calibration ({cal.seconds:.0f} s, objective {cal.objective_start:.3f} -> {cal.objective:.3f}):")
    for row in cal.summary():
        fit, unc = row["fit"], row["uncertainty"]
        print(f"  {row['parameter']:18s} start {row['start']:.4g}  fit {fit:.4g} ± {unc:.2g}")

    resolutions = {"default": ResolutionModel(), "file": file_res, "calibrated": cal.resolution}
    results: dict[str, Any] = {
        "calibration": cal.to_dict(),
        "n_generated": {"top": len(u_top), "w": len(u_w)},
        "c2st": {},
        "shapes": {"reference_odd": {}, "generated": {}},
    }
    for label, name in ((0, "top"), (1, "w")):
        results["shapes"]["reference_odd"][name] = shapes(odd[0][odd[1] == label])
    rng_seed = 12345
    for rname, res in resolutions.items():
        x = topodnn_preprocess(res.smear(uns, np.random.default_rng(rng_seed)))
        if resort:
            raise SystemExit("resort=True files: re-sort after smearing is not implemented in the benchmark")
        sw = spectrum_weights(sum_pt(x), labels, sum_pt(even[0]), even[1], variable="sum-pt")
        for label, name in ((0, "top"), (1, "w")):
            m = labels == label
            ref_c = odd[0][odd[1] == label]
            results["shapes"]["generated"][f"{rname}:{name}"] = shapes(x[m])
            for weighted in (False, True):
                key = f"{rname}:{name}:{'reweighted' if weighted else 'unweighted'}"
                results["c2st"][key] = c2st_row(ref_c, x[m], sw.weights[m] if weighted else None, args.seed)
    for name, path in (("top", args.legacy_top), ("w", args.legacy_w)):
        if path:
            d = read_jets_hdf5(path)
            label = 0 if name == "top" else 1
            results["c2st"][f"legacy:{name}:unweighted"] = c2st_row(
                odd[0][odd[1] == label], np.asarray(d.features, dtype=np.float64), None, args.seed
            )
            results["shapes"]["generated"][f"legacy:{name}"] = shapes(
                np.asarray(d.features, dtype=np.float64)
            )

    print("\nC2ST AUC vs the odd rows (candidate = generated; null σ; ratio of |AUC-0.5| to the default's):")
    for key, row in results["c2st"].items():
        rname, name, mode = key.split(":")
        base = results["c2st"].get(f"default:{name}:{mode}")
        ratio = (row["auc"] - 0.5) / (base["auc"] - 0.5) if base and base["auc"] != 0.5 else float("nan")
        print(
            f"  {key:32s} AUC {row['auc']:.3f} ± {row['auc_null_std']:.3f}  "
            f"(n_ref {row['n_reference']}, n_gen {row['n_candidate']})  excess ratio {ratio:.2f}"
        )
    print("\njet shapes (issue 15 table):")
    for group, table in results["shapes"].items():
        for key, row in table.items():
            print(f"  {group:13s} {key:18s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    results["seconds"] = time.perf_counter() - t0
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))
        print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
