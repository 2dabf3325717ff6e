"""Benchmark: aalearn's sbi layer against calling sbi directly (overhead of training and sampling).

Both paths train the same estimator (NPE with a MAF, sbi's defaults, ``--epochs`` epochs
at most) on the same simulations of sbibm's two_moons task with the same seed, then draw
``--samples`` posterior samples for observation 1 with the same seed:

* **aalearn**: :func:`aalearn.inference.sbi.train_posterior` and
  :meth:`aalearn.inference.sbi.Posterior.sample` (input validation, prior-support check,
  seeding with restored random state, NumPy conversion);
* **sbi**: ``NPE(prior, density_estimator="maf").append_simulations(θ, x).train(...)``,
  ``build_posterior()``, ``posterior.sample((n,), x=x_o)`` under ``torch.manual_seed``.

Because the seeds agree, both runs train identical networks (checked: identical
posterior samples), so the difference in time is aalearn's overhead. The two paths are
run alternately ``--repeats`` times; the report gives the median CPU time
(``time.process_time``, robust against other load on the machine) and wall-clock time of
each and the ratio aalearn / sbi (goal: ≤ 1.05 for training, negligible overall).

Usage::

    .venv/bin/python benchmarks/bench_sbi.py --simulations 2000 --epochs 30 --repeats 3 --json bench_sbi.json

References:
    Tejero-Cantero et al., "sbi: A toolkit for simulation-based inference", JOSS 5 (2020) 2505;
    Papamakarios & Murray, arXiv:1605.06376; Greenberg, Nonnenmacher, Macke, arXiv:1905.07488 (NPE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def _direct(
    theta: np.ndarray, x: np.ndarray, prior: Any, x_o: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    from sbi.inference import NPE  # type: ignore[import-untyped]

    state = np.random.get_state()  # noqa: NPY002 - restored below

    def train() -> Any:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)  # as aalearn does without progress output
            torch.manual_seed(args.seed)
            np.random.seed(args.seed)  # noqa: NPY002 - same seeding as aalearn
            inference = NPE(prior=prior, density_estimator="maf", show_progress_bars=False)
            inference.append_simulations(
                torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
            ).train(max_num_epochs=args.epochs, show_train_summary=False)
            return inference.build_posterior()

    def sample(post: Any) -> np.ndarray:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed + 1)
            np.random.seed(args.seed + 1)  # noqa: NPY002
            s = post.sample(
                (args.samples,), x=torch.as_tensor(x_o, dtype=torch.float32), show_progress_bars=False
            )
        return np.asarray(s.numpy(), dtype=np.float64)

    post, c_train, w_train = _timed(train)
    samples, c_sample, w_sample = _timed(lambda: sample(post))
    np.random.set_state(state)  # noqa: NPY002
    return {
        "cpu_train": c_train,
        "wall_train": w_train,
        "cpu_sample": c_sample,
        "wall_sample": w_sample,
        "samples": samples,
    }


def _aalearn(
    theta: np.ndarray, x: np.ndarray, prior: Any, x_o: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    from aalearn.inference.sbi import train_posterior

    post, c_train, w_train = _timed(
        lambda: train_posterior(theta, x, method="npe", prior=prior, seed=args.seed, max_epochs=args.epochs)
    )
    samples, c_sample, w_sample = _timed(lambda: post.sample(args.samples, x_o, seed=args.seed + 1))
    return {
        "cpu_train": c_train,
        "wall_train": w_train,
        "cpu_sample": c_sample,
        "wall_sample": w_sample,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print a table (and optionally write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="Write the results to this JSON file.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aalearn.inference.sbi import sbibm_task, simulate

    task = sbibm_task("two_moons")
    theta, x = simulate(task.simulator, args.simulations, seed=args.seed, progress=False)
    x_o = task.observation(1)
    prior = task.simulator.prior
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"aalearn": [], "sbi": []}
    identical = True
    for r in range(args.repeats):
        order = (
            (("aalearn", _aalearn), ("sbi", _direct))
            if r % 2 == 0
            else (("sbi", _direct), ("aalearn", _aalearn))
        )
        out = {name: fn(theta, x, prior, x_o, args) for name, fn in order}
        identical &= bool(np.array_equal(out["aalearn"]["samples"], out["sbi"]["samples"]))
        for name in runs:
            runs[name].append({k: v for k, v in out[name].items() if k != "samples"})
    med = {name: {k: statistics.median(run[k] for run in runs[name]) for k in runs[name][0]} for name in runs}
    result: dict[str, Any] = {
        "task": "two_moons",
        "method": "npe (maf)",
        "simulations": args.simulations,
        "max_epochs": args.epochs,
        "posterior_samples": args.samples,
        "repeats": args.repeats,
        "torch_threads": args.threads,
        "identical_samples": identical,
        "median": med,
        "ratio_cpu_train": med["aalearn"]["cpu_train"] / med["sbi"]["cpu_train"],
        "ratio_cpu_sample": med["aalearn"]["cpu_sample"] / med["sbi"]["cpu_sample"],
        "ratio_cpu_total": (med["aalearn"]["cpu_train"] + med["aalearn"]["cpu_sample"])
        / (med["sbi"]["cpu_train"] + med["sbi"]["cpu_sample"]),
        "ratio_wall_total": (med["aalearn"]["wall_train"] + med["aalearn"]["wall_sample"])
        / (med["sbi"]["wall_train"] + med["sbi"]["wall_sample"]),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    import sbi  # type: ignore[import-untyped]

    result["sbi"] = sbi.__version__
    print(f"{'path':8s} {'cpu train':>10s} {'cpu sample':>11s} {'wall train':>11s} {'wall sample':>12s}")
    for name in ("aalearn", "sbi"):
        m = med[name]
        print(
            f"{name:8s} {m['cpu_train']:10.2f} {m['cpu_sample']:11.3f} "
            f"{m['wall_train']:11.2f} {m['wall_sample']:12.3f}"
        )
    print(
        f"overhead (CPU, aalearn/sbi): train {result['ratio_cpu_train']:.3f}, "
        f"sample {result['ratio_cpu_sample']:.3f}, "
        f"total {result['ratio_cpu_total']:.3f}; identical samples: {identical}; load {load_before[0]:.1f}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
