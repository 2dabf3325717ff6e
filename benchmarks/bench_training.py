"""Benchmark of training throughput: aalearn's training strategies against a bare PyTorch loop.

TopoDNN (87 -> 300 -> 102 -> 12 -> 6 -> 1, batch norm, input standardisation) is trained
on jets in the challenge's 87-column layout with :func:`aalearn.training.train_classifier`
and each strategy, and with a bare PyTorch loop over the same model (same initial
weights), the same jets, batch size, Adam learning rate and BCE loss, with no hooks, no
validation and no bookkeeping, all in the same run:

* ``bare``: ``for epoch: perm = randperm; for batch: loss = BCE(model(x), y); step``;
* ``nominal``: the aalearn loop with the nominal strategy;
* ``pgd-3``, ``pgd-7``: adversarial training, PGD L∞ with ε = 1σ (the jets' per-entry
  resolution), 3 and 7 steps, the attack framework's default physics constraints, clean
  and adversarial loss mixed 50/50;
* ``rdsa-epoch``: RDSA augmentation, every jet re-drawn (15 features) once per epoch,
  mixed 50/50; ``rdsa-pool``: a pool of 4 re-drawn versions per jet made up front;
  ``rdsa-successful``: RDSA search against the current model at every epoch start
  (5 tries), only fooling candidates used.

Reported per run: the wall time of the whole call (``train_classifier`` including its
set-up, the strategy's set-up such as the RDSA pool, and one validation pass per epoch
over ``--val`` jets), jets per second = jets x epochs / wall time, the training phase's
own jets/s (from :attr:`TrainingHistory.jets_per_second`, the batch loops only), each
relative to the bare loop, and the best validation accuracy (a sanity check, not a
robustness measure).

The jets are ``--data`` files (any format :func:`aalearn.data.io.load_dataset` reads,
for example the demo's cached Pythia jets ``~/.cache/aalearn/demo/*.h5``; concatenated
and shuffled) or, by default, synthetic challenge-like jets: pT falling along the
constituents in units of 1679 GeV, relative η and φ within the jet, φ₁ ≤ 0, a quarter
of the jets with zero-padded soft constituents; class 1 jets are narrower and have a
steeper pT fall-off than class 0 jets. Wall-clock times depend on other load on the
machine: the load average is printed before and after.

Usage::

    .venv/bin/python benchmarks/bench_training.py --jets 20000 --epochs 2 --json

``--json`` alone prints a JSON object (the table goes to stderr); ``--json PATH`` writes it.

References:
    TopoDNN: Pearkes et al., arXiv:1704.02124. PGD adversarial training: Madry et al.,
    arXiv:1706.06083. RDSA: arXiv:2501.05588.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aalearn.models import TopoDNN
from aalearn.physics.features import challenge_features
from aalearn.training import train_classifier

#: The strategies measured: name -> (strategy, options).
RUNS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "nominal": ("nominal", None),
    "pgd-3": ("adversarial", {"attack": "pgd", "eps": 1.0, "steps": 3, "mix": 0.5}),
    "pgd-7": ("adversarial", {"attack": "pgd", "eps": 1.0, "steps": 7, "mix": 0.5}),
    "rdsa-epoch": ("rdsa", {"mode": "epoch", "n_features": 15, "mix": 0.5}),
    "rdsa-pool": ("rdsa", {"mode": "pool", "pool_size": 4, "n_features": 15, "mix": 0.5}),
    "rdsa-successful": (
        "rdsa",
        {"mode": "epoch", "n_features": 15, "mix": 0.5, "only_successful": True, "max_tries": 5},
    ),
}


def synthetic_jets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Challenge-layout jets (float32) with labels; class 1 narrower and with a steeper pT fall-off."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    lead = rng.uniform(0.05, 0.1, n)
    slope = np.where(y == 1, 0.16, 0.14) * rng.uniform(0.8, 1.2, n)
    pts = lead[:, None] * np.exp(-slope[:, None] * np.arange(30)) * rng.uniform(0.7, 1.0, (n, 30))
    pts = -np.sort(-pts, axis=1)
    width = np.where(y == 1, 0.45, 0.5)[:, None] * rng.uniform(0.8, 1.2, (n, 1))
    eta = rng.uniform(-1, 1, (n, 30)) * width
    phi = rng.uniform(-1, 1, (n, 30)) * width
    phi[:, 1] = -np.abs(phi[:, 1])
    for i in range(0, n, 4):
        k = 30 - int(rng.integers(3, 9))
        pts[i, k:] = eta[i, k:] = phi[i, k:] = 0.0
    cols = {"pt": pts, "eta": eta, "phi": phi}
    x = np.stack([cols[s.kind][:, s.constituent] for s in challenge_features()], axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def load_jets(paths: list[Path], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labelled jets from files, concatenated and shuffled, at most ``n``."""
    from aalearn.data.io import load_dataset

    xs, ys = [], []
    for p in paths:
        ds = load_dataset(p, require_labels=True)
        assert ds.labels is not None  # require_labels
        xs.append(ds.features)
        ys.append(ds.labels)
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[order].astype(np.float32), y[order].astype(np.int64)


def bare_loop(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int
) -> float:
    """Plain PyTorch training (Adam, BCE with logits, shuffled mini-batches); returns the wall time."""
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device=device, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen).to(device)
        for start in range(0, len(xt), batch_size):
            idx = perm[start : start + batch_size]
            if idx.numel() < 2:
                continue
            loss = F.binary_cross_entropy_with_logits(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jets", type=int, default=20000, help="training jets (default 20000)")
    parser.add_argument("--val", type=int, default=2000, help="validation jets (default 2000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed runs per entry, interleaved (median kept)"
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=list(RUNS),
        default=list(RUNS),
        help="strategies to measure (default all)",
    )
    parser.add_argument("--data", type=Path, nargs="+", help="labelled jet files (default: synthetic jets)")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="print a JSON object (or write it to PATH)"
    )
    args = parser.parse_args(argv)
    if min(args.jets, args.val, args.epochs, args.batch_size, args.threads, args.repeats) < 1:
        parser.error("--jets, --val, --epochs, --batch-size, --threads and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.data:
        x, y = load_jets(args.data, args.jets + args.val, args.seed)
        source = ", ".join(str(p) for p in args.data)
    else:
        x, y = synthetic_jets(args.jets + args.val, args.seed)
        source = "synthetic challenge-like jets"
    if x.shape[1] != 87:
        parser.error(
            f"the jets have {x.shape[1]} features; the benchmark needs the 87-column challenge layout"
        )
    n_val = min(args.val, len(x) // 5)
    x_tr, y_tr, x_va, y_va = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    n = len(x_tr)

    torch.manual_seed(args.seed)
    initial = TopoDNN(batchnorm_momentum=0.1).fit_input_scaling(x_tr).to(device)
    common = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}

    def run_bare() -> dict[str, Any]:
        return {"seconds": bare_loop(copy.deepcopy(initial), x_tr, y_tr, **common)}

    def run_aalearn(name: str) -> dict[str, Any]:
        strategy, options = RUNS[name]
        model = copy.deepcopy(initial)
        t0 = time.perf_counter()
        h = train_classifier(
            model, x_tr, y_tr, x_va, y_va, strategy=strategy, strategy_options=options, patience=100,
            progress=False, **common,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        return {
            "seconds": seconds,
            "loop_jets_per_s": statistics.median(h.jets_per_second),
            "val_accuracy": h.val_accuracy[h.best_epoch],
            "extra": {k: v[-1] for k, v in h.extra.items()},
        }

    # warm-up: first-call costs (imports, allocator) are not part of any entry
    bare_loop(
        copy.deepcopy(initial), x_tr[:512], y_tr[:512], epochs=1, batch_size=args.batch_size, lr=1e-3, seed=0
    )
    for name in args.runs:
        strategy, options = RUNS[name]
        train_classifier(
            copy.deepcopy(initial), x_tr[:512], y_tr[:512], x_va[:64], y_va[:64], strategy=strategy,
            strategy_options=options, epochs=1, batch_size=args.batch_size, progress=False,
        )  # fmt: skip

    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {"bare": [], **{k: [] for k in args.runs}}
    for _ in range(args.repeats):
        results["bare"].append(run_bare())
        for name in args.runs:
            results[name].append(run_aalearn(name))
    load_after = os.getloadavg()

    rows: dict[str, dict[str, Any]] = {}
    jets = n * args.epochs
    for name, runs in results.items():
        med = statistics.median(r["seconds"] for r in runs)
        row: dict[str, Any] = {"seconds_median": med, "seconds_all": [r["seconds"] for r in runs]}
        row["jets_per_s"] = jets / med
        if name != "bare":
            row["loop_jets_per_s"] = statistics.median(r["loop_jets_per_s"] for r in runs)
            row["val_accuracy"] = runs[-1]["val_accuracy"]
            row["extra_last_epoch"] = runs[-1]["extra"]
            row["strategy"], row["options"] = RUNS[name]
        rows[name] = row
    bare = rows["bare"]["jets_per_s"]
    for row in rows.values():
        row["relative_to_bare"] = row["jets_per_s"] / bare
        if "loop_jets_per_s" in row:
            row["loop_relative_to_bare"] = row["loop_jets_per_s"] / bare

    out = sys.stderr if args.json == "-" else sys.stdout
    print(
        f"TopoDNN training throughput: {n} training jets x {args.epochs} epochs, {n_val} validation jets, "
        f"batch {args.batch_size}, {args.threads} torch thread(s), {device}, median of {args.repeats}; "
        f"data: {source}",
        file=out,
    )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)",
        file=out,
    )
    print(
        f"{'run':<17}{'wall s':>9}{'jets/s':>9}{'x bare':>8}{'loop jets/s':>13}{'x bare':>8}{'val acc':>9}",
        file=out,
    )
    for name, r in rows.items():
        loop = (
            f"{r['loop_jets_per_s']:13.0f}{r['loop_relative_to_bare']:8.3f}" if "loop_jets_per_s" in r else ""
        )
        acc = f"{r['val_accuracy']:9.3f}" if "val_accuracy" in r else ""
        loop = loop or f"{'':13}{'':8}"
        print(
            f"{name:<17}{r['seconds_median']:9.2f}{r['jets_per_s']:9.0f}{r['relative_to_bare']:8.3f}{loop}{acc}",
            file=out,
        )
    report = {
        "train_jets": n,
        "val_jets": n_val,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "device": str(device),
        "repeats": args.repeats,
        "data": source,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
        "load_average_before": load_before,
        "load_average_after": load_after,
        "runs": rows,
    }
    if args.json == "-":
        print(json.dumps(report, indent=2, default=float))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
        print(f"results written to {args.json}", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
