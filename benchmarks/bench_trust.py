"""Benchmark of the trust audit (issue 16): the full ``aalearn audit`` of the 5000 public jets.

What it measures, on the challenge's ``best_model.hdf5`` and ``Clean_Test_Public.feather``:

1. baseline of this run: the robustness audit as it was before issue 16
   (:func:`aalearn.apps.audit.audit`, PGD over its registry grid, default constraints), on
   the same 2500 odd rows the trust audit attacks;
2. the trust audit with its default grid (:func:`aalearn.apps.trust.trust_audit`: PGD at
   0.25, 0.5, 1, 2, 4 σ with pT-sum conservation, performance with bootstrap intervals,
   uncertainty with a last-layer Laplace fit, the pyhf measurement, the detector).

Wall-clock and CPU seconds (``time.process_time``, this process and its threads) of each,
per section for the trust audit, and the ratio trust/baseline. The target of the issue is a
wall time ≤ 120 s on the 2-core machine; on a shared machine the CPU time is the figure
that does not depend on the other users' load.

Usage::

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/bench_trust.py --out /tmp/bench_trust.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from aalearn.apps.audit import audit
from aalearn.apps.trust import trust_audit
from aalearn.core.paths import CHALLENGE_FILES, require_challenge_data
from aalearn.data.io import load_dataset


def main() -> None:
    """Run the benchmark and print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--skip-baseline", action="store_true", help="time the trust audit only")
    args = parser.parse_args()
    shared = require_challenge_data()
    model = shared / CHALLENGE_FILES["model"]
    data = shared / CHALLENGE_FILES["clean"]
    ds = load_dataset(data)
    odd = ds.subset(list(range(1, len(ds), 2)))
    out: dict[str, Any] = {"n_jets": len(ds), "n_attacked": len(odd), "cpus": os.cpu_count()}
    if not args.skip_baseline:
        t, c = time.perf_counter(), time.process_time()
        audit(model, odd, attacks=["pgd"])
        out["baseline_pgd_audit"] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        res = trust_audit(model, data, tmp)
        d = res.to_dict()
        out["trust_audit"] = {
            "wall_s": time.perf_counter() - t,
            "cpu_s": time.process_time() - c,
            "section_wall_s": d["section_seconds"],
            "section_cpu_s": d["section_cpu_seconds"],
            "verdict": d["verdict"],
            "failing_checks": d["failing_checks"],
            "warnings": d["warnings"],
        }
    if "baseline_pgd_audit" in out:
        base = out["baseline_pgd_audit"]
        out["ratio_wall"] = out["trust_audit"]["wall_s"] / base["wall_s"]
        out["ratio_cpu"] = out["trust_audit"]["cpu_s"] / base["cpu_s"]
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
