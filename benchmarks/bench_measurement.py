"""Benchmark of the profile-likelihood measurement under one-sided and two-sided shape systematics (issue 17).

Protocol
--------
* **Model and jets**: the challenge's frozen classifier (``best_model.hdf5``) and public clean
  file (``Clean_Test_Public.feather``): label-0 jets are the signal (top), label-1 jets the
  background (W), as ``aalearn measure --signal F --background F`` does.
* **Variation files**: this script writes the constituent-pT-scaled copies of the clean file
  (every ``ConstPT_*`` column × 1.03 and × 0.97) to a temporary directory and scores them.
* **Templates**: exactly those of ``aalearn measure`` (:func:`aalearn.apps.measure.measurement_templates`:
  10 quantile bins, 100 signal / 1000 background events expected, 5 %/10 % normsys,
  staterror).
* **Configurations** (same nominal templates, same toy seed):
  ``none`` (no variation, the baseline), ``one-sided/as-given`` (pT × 1.03 as both up
  and down, ``histosys="none"``: the old behaviour), ``one-sided/auto`` (same files,
  ``histosys="auto"``: mirrored), ``two-sided/auto`` (down = pT × 0.97, up = pT × 1.03).
* **Figures**: σ_μ of the Asimov fit and its ratio to the ``none`` baseline of the same run;
  coverage of μ̂ ± σ_μ at μ = 1 over ``--toys`` pseudo-experiments (failed fits count as
  not covering) with its binomial standard error; mean pull with its standard error;
  pull standard deviation.
* **Goals** (issue 17): one-sided: |mean pull| < 0.2 (300 toys) and σ_μ ≥ 1.05 × σ_μ(none);
  coverage within 2 standard errors of 0.683 (1000 toys) for none, two-sided, one-sided.

* ``two-sided/symmetrize``: the two-sided files with ``histosys="symmetrize"`` forced.

Run: ``python benchmarks/bench_measurement.py [--toys 1000] [--configs a,b] [--json OUT]``
(about 0.2 CPU-s per toy with a variation; run configurations in separate processes).

Measured (2026-12-07, shared 2-core CPU, seed 0; σ_μ(none) = 0.1195):

======================  ======  ======  ===============  ================  =====
configuration           toys    σ ratio coverage         mean pull         failed
======================  ======  ======  ===============  ================  =====
none                    1000    1.000   0.704 ± 0.014    −0.052 ± 0.032    0
one-sided/as-given      300     1.000   0.683 ± 0.027    −0.446 ± 0.053    0
one-sided/auto          1000    1.226   0.690 ± 0.015    −0.093 ± 0.031    0
two-sided/auto          1000    1.122   0.703 ± 0.014    −0.032 ± 0.031    0
two-sided, as given(*)  1000    1.130   0.712 ± 0.014    −0.223 ± 0.031    0
two-sided/symmetrize    300     1.122   0.703 ± 0.026    −0.065 ± 0.059    0
======================  ======  ======  ===============  ================  =====

(*) measured before "auto" symmetrised variations with a large even part (the same as
``histosys="none"`` for this variation): pT × 0.97 / × 1.03 has cosine −0.14 between its
up and down shifts (equal sizes, 2.7 σ), so ``code4p``'s quadratic term biased μ̂;
"auto" now classifies it as asymmetric and symmetrises it.

Closure with real templates (``--closure --toys 300``: even rows of the clean file as
templates, odd rows as the pool, 5 bins): bias +0.75 ± 1.02 σ_stat (pool σ 0.094,
template σ 0.122 of σ_stat ≈ 0.15), coverage 0.687 ± 0.027; the plain variant (same
templates without staterror) covers 0.560 ± 0.027.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _challenge import add_challenge_args
from aalearn.apps.inputs import load_data, load_model_arg
from aalearn.apps.measure import _variation_scores, class_scores, measurement_templates
from aalearn.data.dataset import LABEL_TOP, LABEL_W
from aalearn.inference import Measurement
from aalearn.models import predict_proba
from aalearn.surrogates.closure import closure_test

NOMINAL_COVERAGE = 0.6827


def scaled_copy(src: Path, factor: float, out: Path) -> Path:
    """Copy of a challenge Feather file with every ``ConstPT_*`` column multiplied by ``factor``."""
    df = pd.read_feather(src)
    cols = [c for c in df.columns if c.startswith("ConstPT_")]
    if not cols:
        raise ValueError(f"{src} has no ConstPT_* columns")
    df[cols] = (df[cols] * factor).astype(df[cols].dtypes)
    df.to_feather(out)
    return out


CONFIGS = ("none", "one-sided/as-given", "one-sided/auto", "two-sided/auto", "two-sided/symmetrize")


def run(model: Path, data: Path, toys: int, seed: int, only: tuple[str, ...] = CONFIGS) -> dict[str, Any]:
    net = load_model_arg(str(model))
    ds = load_data(data)
    s_sig, s_bkg = class_scores(net, ds, LABEL_TOP), class_scores(net, ds, LABEL_W)
    with tempfile.TemporaryDirectory() as tmp:
        up = _variation_scores(net, scaled_copy(data, 1.03, Path(tmp) / "up.feather"), (s_sig, s_bkg))
        down = _variation_scores(net, scaled_copy(data, 0.97, Path(tmp) / "down.feather"), (s_sig, s_bkg))
    configs: dict[str, tuple[dict[str, Any], str]] = {
        "none": ({}, "auto"),
        "one-sided/as-given": ({"ptscale": (up, up)}, "none"),
        "one-sided/auto": ({"ptscale": (up, up)}, "auto"),
        "two-sided/auto": ({"ptscale": (down, up)}, "auto"),
        "two-sided/symmetrize": ({"ptscale": (down, up)}, "symmetrize"),
    }
    rows: dict[str, Any] = {}
    for name in ("none", *(c for c in only if c != "none")):
        variations, method = configs[name]
        n_toys = toys if name in only else 0
        t0 = time.perf_counter()
        templates = measurement_templates(s_sig, s_bkg, variations)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            m = Measurement(templates, histosys=method)
            fit = m.fit()
            cov = m.coverage(n_toys=n_toys, seed=seed) if n_toys else {}
        rows[name] = {
            "sigma_mu": fit.mu_err,
            "histosys": {
                k: {f: v[f] for f in ("kind", "method", "cosine", "size_up", "size_down")}
                for k, v in m.histosys_info.items()
            },
            **{k: v for k, v in cov.items() if k != "warnings"},
            "seconds": time.perf_counter() - t0,
        }
        print(name, rows[name], flush=True)
    base = rows["none"]["sigma_mu"]
    for r in rows.values():
        r["sigma_ratio"] = r["sigma_mu"] / base
        if "coverage" in r:
            r["coverage_within_2se"] = abs(r["coverage"] - NOMINAL_COVERAGE) <= 2 * r["coverage_error"]
    goals: dict[str, Any] = {
        "coverage_within_2se": {
            k: rows[k]["coverage_within_2se"]
            for k in ("none", "two-sided/auto", "one-sided/auto")
            if "coverage_within_2se" in rows.get(k, {})
        }
    }
    if "one-sided/auto" in rows:
        one = rows["one-sided/auto"]
        goals["one_sided_sigma_ratio_ge_1.05"] = one["sigma_ratio"] >= 1.05
        if "mean_pull" in one:
            goals["one_sided_abs_mean_pull_lt_0.2"] = abs(one["mean_pull"]) < 0.2
    return {"toys": toys, "seed": seed, "n_jets": len(ds), "configs": rows, "goals": goals}


def run_closure(model: Path, data: Path, toys: int, seed: int) -> dict[str, Any]:
    """Closure with real templates: even rows of the clean file as templates, odd rows as the pool.

    The "surrogate" is the even rows too (a perfect one), so ``plain`` and ``real_templates``
    differ only by the staterror of the latter.
    """
    net = load_model_arg(str(model))
    ds = load_data(data)
    assert ds.labels is not None
    all_scores = np.asarray(predict_proba(net, ds.features), dtype=np.float64)
    even = np.arange(len(ds)) % 2 == 0
    top, w = ds.labels == LABEL_TOP, ds.labels == LABEL_W
    res = closure_test(
        all_scores[even & top],
        all_scores[even & w],
        all_scores[~even & top],
        all_scores[~even & w],
        bins=5,
        n_toys=toys,
        model_nuisance=False,
        pool_bootstraps=20,
        seed=seed,
        baseline_signal=all_scores[even & top],
        baseline_background=all_scores[even & w],
    )
    return {v.name: v.to_dict() for v in res.variants}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_challenge_args(parser)
    parser.add_argument("--toys", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--closure", action="store_true", help="run the real-template closure (issue 17 item 2) instead"
    )
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma-separated configurations with toys (σ_μ of 'none' is always measured); "
        "run them in separate processes to use several cores",
    )
    args = parser.parse_args()
    if args.closure:
        closure = run_closure(args.model, args.data, args.toys, args.seed)
        for name, v in closure.items():
            print(
                f"{name:16s} bias {v['bias']:+.3f} ± {v['bias_error']:.3f} σ_stat "
                f"(significance {v['bias_significance']:+.2f}; pool σ {v['pool_sigma']:.4f}, "
                f"template σ {v['template_sigma']:.4f}); "
                f"coverage {v['coverage']:.3f} ± {v['coverage_error']:.3f}"
            )
        if args.json is not None:
            args.json.write_text(json.dumps(closure, indent=2))
        return
    only = tuple(c.strip() for c in args.configs.split(","))
    if unknown := set(only) - set(CONFIGS):
        parser.error(f"unknown configurations {sorted(unknown)}; choose from {CONFIGS}")
    out = run(args.model, args.data, args.toys, args.seed, only)
    print(
        f"\n{'configuration':22s} {'σ_μ':>7s} {'ratio':>6s} {'coverage':>15s} "
        f"{'mean pull':>15s} {'pull sd':>7s} fail"
    )
    for name, r in out["configs"].items():
        if "coverage" not in r:
            print(f"{name:22s} {r['sigma_mu']:7.4f} {r['sigma_ratio']:6.3f}  (no toys)")
            continue
        print(
            f"{name:22s} {r['sigma_mu']:7.4f} {r['sigma_ratio']:6.3f} "
            f"{r['coverage']:7.3f} ± {r['coverage_error']:.3f} "
            f"{r['mean_pull']:+7.3f} ± {r['mean_pull_error']:.3f} {r['pull_std']:7.3f} {int(r['n_failed'])}"
        )
    print("goals:", json.dumps(out["goals"]))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=lambda x: None if not math.isfinite(x) else x))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
