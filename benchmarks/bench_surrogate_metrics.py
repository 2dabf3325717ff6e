"""Benchmark of aalearn's FPD/KPD against jetnet 0.2.5's on 50,000 jets: same run, same inputs, same seeds.

Kansal et al. (arXiv:2211.10295) publish the Fréchet and kernel physics distances as
``jetnet.evaluation.fpd``/``kpd``; :mod:`aalearn.surrogates.metrics` re-implements them
(batched bootstrap moments for FPD, a monomial expansion of the degree-4 kernel for KPD
on few features, kernel blocks otherwise). This script times both on the same inputs
with jetnet's defaults and checks that the values agree.

Protocol
--------
* **Inputs**: 50,000 reference and 50,000 candidate jets (``--jets``), features either
  the 8 aalearn jet features (``--features jet``, default; d = 8) or 36 skewed synthetic
  columns (``--features wide``, d = 36, the size of jetnet's EFP set), from the demo jets of
  ``aalearn demo`` when they are cached (``~/.cache/aalearn/demo``; resampled with a small
  smearing to reach 50,000), else from the synthetic generator of the jetnet reproduction.
  The candidate is the reference's generator with every feature stretched by 2 %.
* **Same settings**: jetnet's defaults for both (FPD 20,000-50,000 at 10 points x 20 batches;
  KPD 10 batches of 5,000; ``normalise=True``, ``seed=42``); jetnet's KPD with
  ``num_threads=None`` (its default, single-threaded numba), the path whose random stream
  aalearn reproduces.
* **Threads**: BLAS/OpenMP limited to ``--threads`` (default 1) for both through
  threadpoolctl, in the same process; on a shared 2-core machine oversubscribed BLAS
  threads made single calls 10-100x slower.
* **Timing**: each implementation is warmed up once (jetnet's numba kernels compile on
  first use), then timed over ``--repeats`` (3) interleaved rounds with ``time.perf_counter``;
  the median and the fastest are reported, with the load average.
* **Agreement**: relative difference ``|a - b| / max(|b|, error_b)`` per value and error.

Run: ``python benchmarks/bench_surrogate_metrics.py [--jets 50000] [--features jet|wide] [--json]``.
Needs jetnet (see the Makefile's ``bench-deps``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _inputs(n: int, kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    from aalearn.reproduce.jetnet import jetnet_inputs

    rng = np.random.default_rng(seed)
    if kind == "wide":
        real, gen = jetnet_inputs(n, 36, seed=seed)["distorted"]
        return real, gen, "synthetic log-normal, d = 36"
    demo = sorted(
        Path(os.environ.get("AALEARN_DEMO_CACHE", Path.home() / ".cache/aalearn/demo")).glob("*.h5")
    )
    if demo:
        from aalearn.data.io import load_dataset
        from aalearn.surrogates.features import jet_features

        feats = np.concatenate([jet_features(load_dataset(p).features) for p in demo[:2]])
        source = f"aalearn demo jets ({len(feats)} top + W), resampled with 1 % smearing, d = 8"

        def draw() -> np.ndarray:
            x = feats[rng.integers(0, len(feats), size=n)]
            out: np.ndarray = x * (1.0 + 0.01 * rng.normal(size=x.shape))
            return out

        return draw(), draw() * 1.02, source
    real, gen = jetnet_inputs(n, 8, seed=seed)["distorted"]
    return real, gen, "synthetic log-normal, d = 8 (no cached demo jets)"


def _time(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def main() -> None:
    """Run the benchmark and print a table (or one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=50_000)
    parser.add_argument("--features", choices=("jet", "wide"), default="jet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from aalearn.reproduce.jetnet import load_jetnet_metrics
    from aalearn.surrogates.metrics import fpd, kpd

    jet_fpd, jet_kpd = load_jetnet_metrics()
    real, gen, source = _inputs(args.jets, args.features)
    impls = {
        ("fpd", "aalearn"): lambda: fpd(real, gen),
        ("fpd", "jetnet"): lambda: jet_fpd(real, gen),
        ("kpd", "aalearn"): lambda: kpd(real, gen),
        ("kpd", "jetnet"): lambda: jet_kpd(real, gen),
    }
    times: dict[tuple[str, str], list[float]] = {k: [] for k in impls}
    results: dict[tuple[str, str], Any] = {}
    with threadpool_limits(limits=args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for fn in impls.values():  # warm-up (numba compilation, caches)
            fn()
        for _ in range(args.repeats):  # interleaved rounds
            for key, fn in impls.items():
                t, results[key] = _time(fn, 1)
                times[key] += t
    rows = []
    for metric in ("fpd", "kpd"):
        ours, theirs = results[(metric, "aalearn")], results[(metric, "jetnet")]
        scale = max(abs(float(theirs[0])), abs(float(theirs[1])))
        t_ours = statistics.median(times[(metric, "aalearn")])
        t_theirs = statistics.median(times[(metric, "jetnet")])
        rows.append(
            {
                "metric": metric,
                "aalearn": [float(ours[0]), float(ours[1])],
                "jetnet": [float(theirs[0]), float(theirs[1])],
                "rel_diff_value": abs(float(ours[0]) - float(theirs[0])) / scale,
                "rel_diff_error": abs(float(ours[1]) - float(theirs[1])) / abs(float(theirs[1])),
                "seconds_aalearn_median": round(t_ours, 3),
                "seconds_aalearn_min": round(min(times[(metric, "aalearn")]), 3),
                "seconds_jetnet_median": round(t_theirs, 3),
                "seconds_jetnet_min": round(min(times[(metric, "jetnet")]), 3),
                "speedup": round(t_theirs / t_ours, 2),
            }
        )
    payload = {
        "jets": args.jets,
        "features": source,
        "dims": int(real.shape[1]),
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "results": rows,
    }
    if args.json:
        print(json.dumps(payload))
        return
    print(f"{args.jets} jets, {source}; {args.threads} thread(s); load average {payload['load_average']}")
    for r in rows:
        print(
            f"{r['metric']}: aalearn {r['aalearn'][0]:.6g} ± {r['aalearn'][1]:.3g} "
            f"in {r['seconds_aalearn_median']} s | "
            f"jetnet {r['jetnet'][0]:.6g} ± {r['jetnet'][1]:.3g} in {r['seconds_jetnet_median']} s | "
            f"speed-up {r['speedup']}x | rel. diff value {r['rel_diff_value']:.1e}, "
            f"error {r['rel_diff_error']:.1e}"
        )


if __name__ == "__main__":
    main()
