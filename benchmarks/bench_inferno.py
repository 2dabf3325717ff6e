"""Benchmark: aalearn's ``inferno`` strategy against pytorch-inferno 0.2.2 on the INFERNO paper's toy.

Same run, same data (:func:`aalearn.reproduce.inferno.make_inferno_toy`, the paper code's
definitions), same network (3 -> 100 ReLU -> 100 ReLU -> 10, softmax temperature 0.1),
same initial weights, optimiser (Adam), learning rate, batch size and number of epochs
(no early stopping), benchmark 2 by default (r and λ free) or ``--benchmark``:

* ``aalearn``: :func:`aalearn.training.train_classifier` with ``strategy="inferno"``
  (nuisances as differentiable transforms of the background rows);
* ``pytorch_inferno``: ``ModelWrapper.fit`` with the ``PaperInferno`` callback
  (GilesStrong/pytorch_inferno 0.2.2, PyPI), which does the same thing with its own data
  loader. Its λ transform scales :math:`x_2` by :math:`\\lambda/\\lambda_0` where the toy's
  definition is :math:`\\lambda_0/\\lambda`; for a free (or symmetric-Gaussian constrained)
  nuisance the sign of the derivative does not change the profiled variance, so the
  comparison is fair.

Both trained networks are evaluated identically: σ_s after profiling from the hard
(arg-max) histogram on ``--eval`` events per class
(:func:`aalearn.reproduce.inferno.binned_sigma`). Reported per library: median and
spread of σ_s over ``--seeds`` initialisations, CPU and wall seconds per epoch (the
``fit`` call divided by the epochs, validation included), and the ratios.

Install the peer library outside the project's environment (its pins are old)::

    pip install --no-deps --target /tmp/pi_site pytorch-inferno==0.2.2 fastcore fastprogress
    PYTHONPATH=/tmp/pi_site .venv/bin/python benchmarks/bench_inferno.py --epochs 10 --seeds 3

Without it the script prints a skip line and runs aalearn alone.

References:
    P. de Castro, T. Dorigo, arXiv:1806.04743; G. Strong, pytorch_inferno (2021).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from aalearn.reproduce.inferno import BENCHMARK_NUISANCES, binned_sigma, make_inferno_toy
from aalearn.training import train_classifier
from aalearn.training.inferno import SoftBinClassifier


def _body(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


def _data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.vstack([make_inferno_toy(n, rng, signal=True), make_inferno_toy(n, rng, signal=False)])
    y = np.concatenate([np.ones(n, np.int64), np.zeros(n, np.int64)])
    return x, y


def _run_aalearn(body: nn.Sequential, data: dict[str, Any], args: argparse.Namespace, seed: int) -> None:
    net = SoftBinClassifier(body, 10)
    train_classifier(
        net, data["x"], data["y"], data["xv"], data["yv"], strategy="inferno",
        strategy_options={"signal_expected": 50.0, "background_expected": 1000.0, "tau": 0.1,
                          "nuisances": list(BENCHMARK_NUISANCES[args.benchmark]), "signal_label": 1},
        epochs=args.epochs, batch_size=args.batch, lr=args.lr, patience=args.epochs, seed=seed,
        progress=False, monitor="val_sigma_mu",
    )  # fmt: skip


def _run_peer(body: nn.Sequential, data: dict[str, Any], args: argparse.Namespace, seed: int) -> None:
    from fastprogress import fastprogress  # type: ignore[import-not-found]  # optional peer library
    from pytorch_inferno.data import DataPair, DataSet, WeightedDataLoader  # type: ignore[import-not-found]
    from pytorch_inferno.inferno import PaperInferno, VariableSoftmax  # type: ignore[import-not-found]
    from pytorch_inferno.model_wrapper import ModelWrapper  # type: ignore[import-not-found]

    fastprogress.NO_BAR = True
    priors = BENCHMARK_NUISANCES[args.benchmark]
    if any(p.get("sigma") is not None for p in priors):
        raise SystemExit("the peer comparison is wired for the free-nuisance benchmarks 0-2")
    names = {p["name"] for p in priors}
    torch.manual_seed(seed)
    trn = WeightedDataLoader(
        DataSet(data["x"], data["y"][:, None].astype(np.float32)), batch_size=args.batch, shuffle=True
    )
    val = WeightedDataLoader(
        DataSet(data["xv"], data["yv"][:, None].astype(np.float32)), batch_size=2 * args.batch
    )
    model = nn.Sequential(body, VariableSoftmax(0.1))
    wrapper = ModelWrapper(model, device=torch.device("cpu"))
    cb = PaperInferno(
        float_r="r" in names, float_l="lambda" in names, l_init=3.0, b_true=1000.0, mu_true=50.0
    )
    wrapper.fit(args.epochs, DataPair(trn, val), partial(torch.optim.Adam, lr=args.lr), None, cbs=[cb])


def main(argv: list[str] | None = None) -> int:
    """Run the head-to-head and print the table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--train", type=int, default=25_000, help="training events per class")
    parser.add_argument("--val", type=int, default=5_000, help="validation events per class")
    parser.add_argument("--eval", type=int, default=300_000, help="evaluation events per class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, default=3, help="initialisations")
    parser.add_argument("--benchmark", type=int, default=2, choices=[0, 1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        import pytorch_inferno  # type: ignore[import-not-found]  # noqa: F401 (optional peer library)

        have_peer = True
    except ImportError as exc:
        print(
            f"SKIP pytorch_inferno: not importable ({exc}); "
            "install it with the command in this script's docstring"
        )
        have_peer = False
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rng = np.random.default_rng(12345)
    x, y = _data(args.train, rng)
    xv, yv = _data(args.val, rng)
    data = {"x": x, "y": y, "xv": xv, "yv": yv}
    x_sig = make_inferno_toy(args.eval, rng, signal=True)
    x_bkg = make_inferno_toy(args.eval, rng, signal=False)

    results: dict[str, dict[str, list[float]]] = {}
    runners = {"aalearn": _run_aalearn, **({"pytorch_inferno": _run_peer} if have_peer else {})}
    for seed in range(args.seeds):
        for name, runner in runners.items():
            body = _body(seed)  # the same initial weights for both libraries
            c0, w0 = time.process_time(), time.perf_counter()
            runner(body, data, args, seed)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0

            @torch.no_grad()
            def bins(a: np.ndarray, net: nn.Sequential = body) -> np.ndarray:
                return net(torch.from_numpy(a)).argmax(1).numpy()

            sigma = binned_sigma(bins, 10, args.benchmark, x_sig, x_bkg)
            r = results.setdefault(name, {"sigma_s": [], "cpu_per_epoch": [], "wall_per_epoch": []})
            r["sigma_s"].append(sigma)
            r["cpu_per_epoch"].append(cpu / args.epochs)
            r["wall_per_epoch"].append(wall / args.epochs)
            print(
                f"seed {seed} {name:16s} sigma_s={sigma:.3f} cpu/epoch={cpu / args.epochs:.3f}s", flush=True
            )

    def summary(v: list[float]) -> str:
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        return f"{statistics.median(v):.3f} (mean {statistics.mean(v):.3f} ± sd {sd:.3f}, n={len(v)})"

    print(
        f"\nbenchmark {args.benchmark}, {args.train} train events/class, "
        f"{args.epochs} epochs, batch {args.batch}"
    )
    for name, r in results.items():
        print(f"{name:16s} sigma_s {summary(r['sigma_s'])}; cpu s/epoch {summary(r['cpu_per_epoch'])}")
    out: dict[str, Any] = {"args": vars(args), "results": results}
    if "pytorch_inferno" in results:
        a, p = results["aalearn"], results["pytorch_inferno"]
        out["sigma_ratio_aalearn_over_peer"] = statistics.median(a["sigma_s"]) / statistics.median(
            p["sigma_s"]
        )
        out["cpu_ratio_aalearn_over_peer"] = statistics.median(a["cpu_per_epoch"]) / statistics.median(
            p["cpu_per_epoch"]
        )
        print(
            f"ratio aalearn/pytorch_inferno: sigma_s {out['sigma_ratio_aalearn_over_peer']:.3f}, "
            f"cpu per epoch {out['cpu_ratio_aalearn_over_peer']:.3f}"
        )
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
