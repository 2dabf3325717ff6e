"""Where the CPU goes when aalearn's Dask layer runs CPU-bound tasks (a stand-in for Pythia).

Pythia is not needed: each task burns a fixed amount of pure-Python CPU work (the same
for every run). For a local cluster of ``--workers`` worker processes the benchmark
measures, in CPU seconds (robust against other load, unlike wall-clock times):

* ``task_cpu``: CPU spent inside the tasks (``time.process_time`` around the work);
* ``worker_overhead_cpu``: CPU of the worker processes minus ``task_cpu`` (Dask's threads
  in the workers: heartbeats, profiler, system monitor, communication);
* ``parent_cpu``: CPU of this process while the tasks run (scheduler + client, which a
  LocalCluster keeps in the calling process);
* ``wall``: wall-clock seconds of the map (start-up excluded), meaningful only on an idle
  machine; the load average is printed.

Two configurations are compared in the same run: Dask's defaults and aalearn's
:data:`aalearn.core.parallel.LOCAL_CLUSTER_CONFIG` (profiler off, slow system monitor).
Then 1 worker (in-process, no Dask) against ``--workers`` workers for the wall-clock
speed-up.

Usage::

    .venv/bin/python benchmarks/bench_dask_overhead.py --tasks 8 --work 3e7 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import dask
import distributed  # noqa: F401 - registers the distributed.* defaults in dask.config

from aalearn.core import parallel
from aalearn.core.parallel import dask_client, map_tasks


def burn(n: int) -> float:
    """Pure-Python CPU work; returns the CPU seconds it took."""
    c = time.process_time()
    acc = 0
    for i in range(n):
        acc += i * i % 7
    return time.process_time() - c + 0.0 * acc


def _cpu() -> float:
    return time.process_time()


def run_cluster(workers: int, tasks: int, work: int, config: dict[str, Any]) -> dict[str, float]:
    """Run the tasks on a fresh local cluster with ``config``; CPU accounting as documented."""
    old = dict(parallel.LOCAL_CLUSTER_CONFIG)
    parallel.LOCAL_CLUSTER_CONFIG.clear()
    parallel.LOCAL_CLUSTER_CONFIG.update(config)
    try:
        with dask_client(workers=workers) as client:
            client.run(burn, 1000)  # imports done
            before = client.run(_cpu)
            p0, t0 = time.process_time(), time.perf_counter()
            futures = client.map(burn, [work] * tasks, pure=False)
            task_cpu = float(sum(client.gather(futures)))
            wall = time.perf_counter() - t0
            parent = time.process_time() - p0
            after = client.run(_cpu)
    finally:
        parallel.LOCAL_CLUSTER_CONFIG.clear()
        parallel.LOCAL_CLUSTER_CONFIG.update(old)
    worker_cpu = sum(after[k] - before[k] for k in after)
    return {
        "wall": wall,
        "task_cpu": task_cpu,
        "worker_overhead_cpu": worker_cpu - task_cpu,
        "parent_cpu": parent,
        "overhead_fraction": (worker_cpu - task_cpu + parent) / max(task_cpu, 1e-9),
    }


def main() -> None:
    """Print the table and a JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--work", type=float, default=3e7, help="loop iterations per task")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    work = int(a.work)
    load0 = os.getloadavg()
    defaults = {
        "distributed.worker.profile.enabled": dask.config.get("distributed.worker.profile.enabled"),
        "distributed.admin.system-monitor.interval": dask.config.get(
            "distributed.admin.system-monitor.interval"
        ),
        "distributed.admin.system-monitor.gil.enabled": dask.config.get(
            "distributed.admin.system-monitor.gil.enabled"
        ),
    }
    out: dict[str, Any] = {"tasks": a.tasks, "work": work, "workers": a.workers}
    out["dask_defaults"] = run_cluster(a.workers, a.tasks, work, defaults)
    out["aalearn_config"] = run_cluster(a.workers, a.tasks, work, dict(parallel.LOCAL_CLUSTER_CONFIG))
    t0 = time.perf_counter()
    list(map_tasks(burn, [work] * a.tasks, workers=1))
    out["one_worker_wall"] = time.perf_counter() - t0
    out["speedup_aalearn_config"] = out["one_worker_wall"] / out["aalearn_config"]["wall"]
    out["load_average_before"], out["load_average_after"] = load0, os.getloadavg()
    for k in ("dask_defaults", "aalearn_config"):
        r = out[k]
        print(
            f"{k:<15} wall {r['wall']:.2f} s  task CPU {r['task_cpu']:.2f} s  worker overhead "
            f"{r['worker_overhead_cpu']:.3f} s  parent {r['parent_cpu']:.3f} s  "
            f"overhead {r['overhead_fraction']:.2%}"
        )
    print(
        f"1 worker (in-process) wall {out['one_worker_wall']:.2f} s; {a.workers} workers speed-up "
        f"{out['speedup_aalearn_config']:.2f}x; "
        f"load average {load0[0]:.2f} -> {out['load_average_after'][0]:.2f}"
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
