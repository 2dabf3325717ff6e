"""Set posteriors of K i.i.d. jets on a toy with an exact likelihood: per-jet estimators vs summaries.

The physics SBI problem (``aalearn sbi physics --alpha-s``) combines K jets as
``sum_j log q(x_j | theta)``; an error of the per-jet estimator is then multiplied by K.
This benchmark isolates that effect on a toy "jet" simulator with the physics problem's
parameters (top mass on [165, 180] GeV, FSR alpha_s on [0.10, 0.14]) and five observables
(pT above the 400 GeV cut, mass, multiplicity, two ratios) whose per-jet likelihood is
known in closed form, so the exact set posterior is available as the reference:

* ``exact``: the true per-jet likelihood summed over the K jets, on the same grid;
* ``summary``: :class:`aalearn.inference.sbi.physics.SummaryLikelihood` (Gaussian
  synthetic likelihood of the summary means, polynomial emulator);
* ``bnre`` / ``nre`` / ``nle``: sbi per-jet estimators via
  :func:`aalearn.inference.sbi.train_posterior`, as ``infer_pythia_parameters`` trains them.

For each it reports, over ``--sets`` held-out sets of ``--jets`` jets at parameters drawn
from the prior: 68 %/95 % central-interval coverage per parameter with binomial standard
errors, mean pull and pull standard deviation, and the mean posterior standard deviation
relative to the exact one (width ratio).

The toy's multiplicity moves by 300 * 0.04 = 12 over the alpha_s prior against a per-jet
spread of 18, as measured in Pythia (``simulate_jets`` at m_t = 172.5 GeV: 62.0 +- 0.9,
66.6 +- 0.9, 74.0 +- 1.0 at alpha_s = 0.10, 0.12, 0.14, 400 jets each).

Usage::

    .venv/bin/python benchmarks/bench_sbi_iid.py --methods exact,summary,bnre --train-jets 10000 \
        --sets 100 --jets 100 --json iid.json

References: Hermans et al., arXiv:2110.06581 (expected coverage); Delaunoy et al.,
arXiv:2208.13624 (BNRE); Wood, Nature 466 (2010) 1102 and Price et al., arXiv:1511.06323
(synthetic likelihood).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from aalearn.inference.sbi import train_posterior
from aalearn.inference.sbi.physics import PARAMETERS, GridPosterior, SummaryLikelihood
from aalearn.inference.sbi.physics.grid import _features

NAMES = ("top_mass", "alpha_s_fsr")
PT_MIN = 400.0
F_CONTAINED = 0.55


def _means(theta: np.ndarray) -> dict[str, np.ndarray]:
    m, a = theta[:, 0], theta[:, 1]
    return {
        "peak": m - 4.0,
        "n": 30.0 + 300.0 * a + 0.1 * (m - 172.5),
        "t21": 0.40 + 0.8 * (a - 0.12),
        "t32": 0.58 + 1.0 * (a - 0.12) - 0.002 * (m - 172.5),
    }


def simulate_toy(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Toy jets ``(n, 5)`` (pT, mass, multiplicity, tau21, tau32), one per row of ``theta``."""
    n = len(theta)
    mu = _means(theta)
    contained = rng.random(n) < F_CONTAINED
    mass = np.where(contained, rng.normal(mu["peak"], 7.0), rng.normal(110.0, 35.0, n))
    return np.column_stack(
        [
            PT_MIN + rng.exponential(120.0, n),
            mass,
            rng.normal(mu["n"], 18.0),
            rng.normal(mu["t21"], 0.15),
            rng.normal(mu["t32"], 0.2),
        ]
    )


class ExactToy:
    """The toy's exact per-jet log-likelihood summed over a set (``log_prob(theta, feats)``)."""

    ensemble = 1

    def log_prob(self, theta: np.ndarray, feats: np.ndarray) -> np.ndarray:
        th = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        mu = _means(th)
        x = feats[None, :, :]  # (1, K, 5); column 0 (pT) does not depend on theta
        mass = x[..., 1]
        lp_mass = np.logaddexp(
            math.log(F_CONTAINED) + stats.norm.logpdf(mass, mu["peak"][:, None], 7.0),
            math.log(1 - F_CONTAINED) + stats.norm.logpdf(mass, 110.0, 35.0),
        )
        lp = (
            lp_mass
            + stats.norm.logpdf(x[..., 2], mu["n"][:, None], 18.0)
            + stats.norm.logpdf(x[..., 3], mu["t21"][:, None], 0.15)
            + stats.norm.logpdf(x[..., 4], mu["t32"][:, None], 0.2)
        )
        return np.asarray(lp.sum(axis=1), dtype=np.float64)


def _prior_draws(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.column_stack([rng.uniform(PARAMETERS[p].low, PARAMETERS[p].high, n) for p in NAMES])


def _evaluate(grid: GridPosterior, theta_s: np.ndarray, x_s: list[np.ndarray]) -> dict[str, Any]:
    summ = [grid.summary(x) for x in x_s]
    lo68 = np.array([s.interval_68[:, 0] for s in summ])
    hi68 = np.array([s.interval_68[:, 1] for s in summ])
    lo95 = np.array([s.interval_95[:, 0] for s in summ])
    hi95 = np.array([s.interval_95[:, 1] for s in summ])
    mean = np.array([s.mean for s in summ])
    std = np.array([s.std for s in summ])
    in68 = (lo68 <= theta_s) & (theta_s <= hi68)
    in95 = (lo95 <= theta_s) & (theta_s <= hi95)
    pulls = (mean - theta_s) / std
    n = len(theta_s)
    out: dict[str, Any] = {}
    for d, name in enumerate(NAMES):
        c68, c95 = float(in68[:, d].mean()), float(in95[:, d].mean())
        out[name] = {
            "coverage_68": [round(c68, 3), round(math.sqrt(c68 * (1 - c68) / n), 3)],
            "coverage_95": [round(c95, 3), round(math.sqrt(c95 * (1 - c95) / n), 3)],
            "mean_pull": round(float(pulls[:, d].mean()), 3),
            "pull_std": round(float(pulls[:, d].std(ddof=1)), 3),
            "mean_std": float(std[:, d].mean()),
        }
    out["_std"] = std
    return out


def main() -> None:
    """Run the benchmark and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="exact,summary,bnre")
    parser.add_argument("--train-jets", type=int, default=10_000)
    parser.add_argument(
        "--jets-per-theta", type=int, default=10, help="jets sharing one theta (Pythia blocks)"
    )
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--jets", type=int, default=100, help="jets per held-out set (K)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    blocks = -(-args.train_jets // args.jets_per_theta)
    theta_j = np.repeat(_prior_draws(blocks, rng), args.jets_per_theta, axis=0)
    x_j = simulate_toy(theta_j, rng)
    feats_j = _features(x_j, PT_MIN)
    test_rng = np.random.default_rng(args.seed + 1)
    theta_s = _prior_draws(args.sets, test_rng)
    x_s = [simulate_toy(np.repeat(t[None], args.jets, axis=0), test_rng) for t in theta_s]

    import torch

    prior = torch.distributions.Independent(
        torch.distributions.Uniform(
            torch.tensor([PARAMETERS[p].low for p in NAMES]),
            torch.tensor([PARAMETERS[p].high for p in NAMES]),
        ),
        1,
    )
    results: dict[str, Any] = {}
    exact_std = None
    for method in args.methods.split(","):
        c0 = time.process_time()
        est: Any
        if method == "exact":
            est = ExactToy()
        elif method == "summary":
            est = SummaryLikelihood(theta_j, feats_j, parameters=NAMES)
        else:
            kw: dict[str, Any] = {"training_batch_size": 1000, "learning_rate": 1e-3}
            if method in ("nre", "bnre"):
                kw["density_estimator"] = "resnet"
            est = train_posterior(
                theta_j,
                feats_j,
                method=method,
                prior=prior,
                seed=args.seed,
                **kw,
            )
        c1 = time.process_time()
        res = _evaluate(GridPosterior(est, NAMES, pt_min=PT_MIN), theta_s, x_s)
        std = res.pop("_std")
        if method == "exact":
            exact_std = std
        if exact_std is not None:
            for d, name in enumerate(NAMES):
                res[name]["width_ratio_to_exact"] = round(float(np.mean(std[:, d] / exact_std[:, d])), 3)
        res["cpu_s_train"] = round(c1 - c0, 1)
        res["cpu_s_eval"] = round(time.process_time() - c1, 1)
        results[method] = res
        print(method, json.dumps(res), flush=True)
    meta = {
        "train_jets": len(theta_j),
        "jets_per_theta": args.jets_per_theta,
        "sets": args.sets,
        "jets": args.jets,
        "seed": args.seed,
    }
    if args.json is not None:
        args.json.write_text(json.dumps({"settings": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
