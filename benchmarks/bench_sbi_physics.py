"""Benchmark of the Pythia physics simulator of aalearn's SBI: simulated jets per second, 1 vs 2 workers.

One run, three measurements:

1. **Pythia initialisation**: CPU time of ``Pythia.init()`` with the top-jet settings and a
   changed top mass (``6:m0``), which every simulation block pays once (why blocks of
   tens of jets share one parameter value).
2. **1 worker**: :func:`aalearn.inference.sbi.simulate` of ``--blocks`` simulations of
   ``--jets-per-simulation`` jets each with :func:`aalearn.inference.sbi.physics.pythia_top_simulator`,
   in-process, no cache. Metric: jets per wall-clock second and per CPU-second.
3. **2 workers**: the same simulations through the Dask layer (a ``LocalCluster`` with two
   worker processes, start-up included); the numbers must be identical to the 1-worker run.

Usage::

    .venv/bin/python benchmarks/bench_sbi_physics.py --blocks 8 --jets-per-simulation 25 --json bench.json

Wall-clock figures depend on the other load of the machine: the load average is printed
before and after.

References:
    C. Bierlich et al., arXiv:2203.11601 (Pythia 8.3); J. Thaler, K. Van Tilburg,
    arXiv:1011.2268 (N-subjettiness); Dask, https://dask.org.
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


def _init_seconds(repeats: int) -> list[float]:
    """CPU seconds of a Pythia initialisation with the top-jet settings and another top mass."""
    from aalearn.data.generate import GeneratorConfig, _redirect_fd1, pythia_settings
    from aalearn.inference.sbi.physics import PARAMETERS

    pythia8mc = __import__("pythia8mc")
    out = []
    for i in range(repeats):
        cfg = GeneratorConfig(
            process="top", extra_settings=(PARAMETERS["top_mass"].setting_string(170.0 + i),)
        )
        t0 = time.process_time()
        with _redirect_fd1("devnull"):
            pythia = pythia8mc.Pythia("", False)
            for s in pythia_settings(cfg, 1 + i):
                pythia.readString(s)
            if not pythia.init():
                raise RuntimeError("Pythia failed to initialise")
        out.append(time.process_time() - t0)
        del pythia
    return out


def _run(blocks: int, jets: int, workers: int, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    from aalearn.inference.sbi import simulate
    from aalearn.inference.sbi.physics import pythia_top_simulator

    sim = pythia_top_simulator("top_mass", jets_per_simulation=jets, chunk_size=1)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    _, x = simulate(sim, blocks, seed=seed, cache=None, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    n_jets = blocks * jets
    row = {
        "workers": workers,
        "blocks": blocks,
        "jets": n_jets,
        "wall_s": round(wall, 2),
        "jets_per_s": round(n_jets / wall, 2),
        "blocks_per_s": round(blocks / wall, 3),
    }
    if workers == 1:  # in-process: this process's CPU time is the simulation's
        cpu = time.process_time() - cpu0
        row["cpu_s"] = round(cpu, 2)
        row["jets_per_cpu_s"] = round(n_jets / cpu, 2)
    return row, x


def main() -> None:
    """Run the benchmark and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=8, help="simulations (Pythia runs)")
    parser.add_argument("--jets-per-simulation", type=int, default=25, help="jets per Pythia run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    load_before = os.getloadavg()
    init = _init_seconds(args.init_repeats)
    one, x1 = _run(args.blocks, args.jets_per_simulation, 1, args.seed)
    two, x2 = _run(args.blocks, args.jets_per_simulation, 2, args.seed)
    result = {
        "pythia_init_cpu_s": [round(v, 3) for v in init],
        "pythia_init_cpu_s_mean": round(float(np.mean(init)), 3),
        "runs": [one, two],
        "speedup_2_workers": round(two["jets_per_s"] / one["jets_per_s"], 3),
        "identical_numbers": bool(np.array_equal(x1, x2)),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
