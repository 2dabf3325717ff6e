"""Benchmark of ``aalearn explain`` (:func:`aalearn.apps.explain.explain_file`) on the public challenge jets.

Explains the frozen challenge TopoDNN on the 5000 public clean jets with the default
settings (Integrated Gradients, zeros baseline, 256 midpoint steps; randomisation and
stability checks on 500 jets; σ-unit importance; observable correlations and mutual
information). Reported: wall-clock time, the completeness error, the randomisation rank
correlation, the five most important features and the dominant observable.

Goal: ≤ 60 s on 2 CPU cores. Wall-clock times depend on other load on the machine: the
load average is printed before and after.

Usage::

    .venv/bin/python benchmarks/bench_explain.py [--n-max 5000] [--method integrated-gradients]

References:
    Sundararajan et al., arXiv:1703.01365 (Integrated Gradients); Adebayo et al.,
    arXiv:1810.03292 (randomisation test); the ECML-PKDD 2025 challenge "Colliding with
    Adversaries" (data and frozen TopoDNN).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from _challenge import add_challenge_args  # benchmarks/ is on sys.path when run as a script
from aalearn.apps.explain import explain_file


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_challenge_args(parser)
    parser.add_argument("--n-max", type=int, default=None, help="jets (default: all 5000)")
    parser.add_argument("--method", default="integrated-gradients")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}")
    t0 = time.perf_counter()
    res = explain_file(args.model, args.data, method=args.method, n_max=args.n_max)
    wall = time.perf_counter() - t0
    out = res.to_dict()
    figures = {
        "jets": out["n_jets"],
        "method": out["method"],
        "wall_s": round(wall, 2),
        "threads": args.threads,
        "completeness_error": out["sanity"]["completeness_error"],
        "randomization_rank_correlation": out["sanity"]["randomization_rank_correlation"],
        "stability": out["sanity"]["stability"],
        "top5": [r["feature"] for r in out["feature_importance"][:5]],
        "observables": out["observable_interpretation"],
        "goal_s": 60.0,
    }
    print(json.dumps(figures, indent=2))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
