"""Benchmark of aalearn's RDSA core search against the frozen challenge TopoDNN.

:func:`aalearn.attacks.rdsa.rdsa_search` attacks the challenge's public clean jets (5000
jets x 87 features) with the frozen reference classifier as ``is_success``
(``(logit >= 0) != label``, a ``torch.no_grad`` forward pass per batch). Reported:

* wall-clock and CPU time of the search, jets per second;
* fooling ratio (successes among the attacked rows), MAD = mean over rows and features of
  ``|x_adv - x|`` (the challenge's MAD) and the challenge score ``FR * exp(-20 MAD)``;
* two baselines measured in the same run, bare model forward passes on the same batch size:
  (a) for ``jets x tries`` rows (every row using every try, the search's worst case) and
  (b) for the rows the search actually evaluated (the sum of the tries used); the ratio of
  the search's time to (b) is the overhead of RDSA's NumPy work (sampling, bookkeeping).

Goal: 5000 jets, 25 tries, 15 features in < 10 s on 2 CPU cores.

Usage::

    .venv/bin/python benchmarks/bench_rdsa.py --jets 5000 --tries 25 --features 15 --json bench.json

The data and model default to ``../shared/data/colliding-adversaries/`` relative to the
repository root. Wall-clock times depend on other load on the machine: the load average is
printed before and after.

References:
    AI Safety Project Group, arXiv:2501.05588 (RDSA); the ECML-PKDD 2025 challenge
    "Colliding with Adversaries" (data and frozen TopoDNN).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _challenge import add_challenge_args  # benchmarks/ is on sys.path when run as a script
from aalearn.attacks.rdsa import rdsa_search
from aalearn.data.io import load_dataset
from aalearn.models import load_model


def bare_forward(model: torch.nn.Module, x: np.ndarray, n_rows: int, batch_size: int) -> float:
    """Wall time of forward passes over ``n_rows`` rows (cycling through ``x``) in batches."""
    x_t = torch.from_numpy(np.ascontiguousarray(x))
    n = len(x_t)
    t0 = time.perf_counter()
    with torch.no_grad():
        done = 0
        while done < n_rows:
            start = done % n
            size = min(batch_size, n_rows - done, n - start)
            (model(x_t[start : start + size]) >= 0).numpy()
            done += size
    return time.perf_counter() - t0


def run_rdsa(
    model: torch.nn.Module, x: np.ndarray, labels: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """One RDSA search; returns times, counts and the attack's metrics."""
    calls = 0

    def is_success(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        with torch.no_grad():
            logits = model(torch.from_numpy(candidates))
        return (logits >= 0).numpy() != (labels[rows] == 1)

    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    out = rdsa_search(
        x,
        is_success,
        n_features=args.features,
        max_tries=args.tries,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    fr = float(out.success.mean())
    mad = float(np.abs(out.x_adv.astype(np.float64) - x).mean())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "jets_per_s": len(x) / wall,
        "fooling_ratio": fr,
        "mad": mad,
        "score": fr * float(np.exp(-20.0 * mad)),
        "rows_evaluated": int(out.tries.sum()),
        "is_success_calls": calls,
        "mean_tries_successes": float(out.tries[out.success].mean()) if out.success.any() else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=5000, help="jets attacked (default 5000, the whole file)")
    parser.add_argument("--tries", type=int, default=25, help="RDSA tries per jet (default 25)")
    parser.add_argument("--features", type=int, default=15, help="features re-drawn per try (default 15)")
    parser.add_argument("--batch-size", type=int, default=4096, help="rows per model call (default 4096)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timing (min is kept)")
    add_challenge_args(parser)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.jets < 1 or args.tries < 1 or args.features < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--jets, --tries, --features, --repeats and --threads must be >= 1")
    for path in (args.data, args.model):
        if not path.exists():
            parser.error(
                f"{path} not found (the challenge files live in ../shared/data/colliding-adversaries)"
            )

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.data)
    model = load_model(args.model).eval()
    if dataset.labels is None:
        parser.error(f"{args.data} has no labels; the benchmark needs them to tell a fooled model")
    x = np.ascontiguousarray(dataset.features[: args.jets], dtype=np.float32)
    labels = np.asarray(dataset.labels[: args.jets])
    with torch.no_grad():
        correct = (model(torch.from_numpy(x)) >= 0).numpy() == (labels == 1)
    x, labels = x[correct], labels[correct]  # attack only the jets the model gets right
    n = len(x)

    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    bare_forward(model, x, min(n, args.batch_size), args.batch_size)  # warm-up
    runs = [run_rdsa(model, x, labels, args) for _ in range(args.repeats)]
    rdsa = min(runs, key=lambda d: d["wall_s"])
    if any(r["fooling_ratio"] != rdsa["fooling_ratio"] or r["mad"] != rdsa["mad"] for r in runs):
        raise RuntimeError("RDSA is not reproducible across repeats with the same seed")
    worst_rows = n * args.tries
    bare_worst = min(bare_forward(model, x, worst_rows, args.batch_size) for _ in range(args.repeats))
    bare_used = min(
        bare_forward(model, x, rdsa["rows_evaluated"], args.batch_size) for _ in range(args.repeats)
    )
    load_after = os.getloadavg()

    results: dict[str, Any] = {
        "jets": n,
        "jets_misclassified_skipped": int((~correct).sum()),
        "tries": args.tries,
        "features": args.features,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "versions": {"numpy": np.__version__, "torch": torch.__version__},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rdsa": rdsa,
        "rdsa_wall_s_all": [r["wall_s"] for r in runs],
        "bare_forward_worst_case": {"rows": worst_rows, "wall_s": bare_worst},
        "bare_forward_evaluated": {"rows": rdsa["rows_evaluated"], "wall_s": bare_used},
        "overhead_ratio": rdsa["wall_s"] / bare_used,
        "goal_wall_s": 10.0,
    }

    print()
    print(
        f"aalearn RDSA benchmark: {n} jets x {x.shape[1]} features, {args.tries} tries, "
        f"{args.features} features per try, batch {args.batch_size}, {args.threads} torch threads"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{'run':<44}{'rows':>10}{'wall s':>9}{'jets/s':>10}")
    name = f"rdsa_search (min of {args.repeats})"
    print(f"{name:<44}{n:>10}{rdsa['wall_s']:9.3f}{rdsa['jets_per_s']:10.0f}")
    print(f"{'bare forward, jets x tries':<44}{worst_rows:>10}{bare_worst:9.3f}")
    print(f"{'bare forward, rows RDSA evaluated':<44}{rdsa['rows_evaluated']:>10}{bare_used:9.3f}")
    print(
        f"RDSA / bare forward on the evaluated rows: {results['overhead_ratio']:.2f}x; "
        f"CPU {rdsa['cpu_s']:.2f} s; {rdsa['is_success_calls']} is_success calls; "
        f"goal < 10 s: {'met' if rdsa['wall_s'] < 10 else 'MISSED'}"
    )
    print(
        f"fooling ratio {rdsa['fooling_ratio']:.4f}, MAD {rdsa['mad']:.5f}, "
        f"score FR*exp(-20 MAD) {rdsa['score']:.4f}, "
        f"mean tries of successes {rdsa['mean_tries_successes']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
