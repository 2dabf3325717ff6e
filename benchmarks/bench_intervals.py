"""Coverage of the intervals of aalearn.evaluation.bootstrap on toys with known truth (issue 17 item 5)."""

import math
import sys
import time

import numpy as np
from scipy.stats import norm

from aalearn.evaluation.bootstrap import bootstrap_aucs, bootstrap_metrics, challenge_score_intervals

toys = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = np.random.default_rng(2026)


def report(name, hits, toys):
    for level, h in hits.items():
        c = h / toys
        print(
            f"{name}: level {level:.2f}: coverage {c:.3f} "
            f"± {math.sqrt(level * (1 - level) / toys):.3f} (binomial, {toys} toys)"
        )


# AUC: signal N(1,1) vs background N(0,1), analytic AUC Phi(1/sqrt2); 150+150 jets, B=1000
truth = norm.cdf(1 / math.sqrt(2))
n = 150
y = np.r_[np.zeros(n, int), np.ones(n, int)]
hits = {0.68: 0, 0.95: 0}
for t in range(toys):
    score = np.r_[-rng.normal(1, 1, n), -rng.normal(0, 1, n)]
    for level in hits:
        iv = bootstrap_aucs(y, {"auc": score}, n_boot=1000, level=level, seed=t)["auc"]
        hits[level] += iv.low <= truth <= iv.high
report("AUC 2 Gaussians n=300", hits, toys)

# Task-1 score FR*exp(-20 MAD): fooled ~ Bernoulli(0.8), deviation ~ Exp(0.01); n=300, B=1000
truth = 0.8 * math.exp(-0.2)
n = 300
hits = {0.68: 0, 0.95: 0}
for t in range(toys):
    fooled = rng.random(n) < 0.8
    dev = rng.exponential(0.01, n)
    for level in hits:
        iv = challenge_score_intervals(fooled, dev, n_boot=1000, level=level, seed=t)["score"]
        hits[level] += iv.low <= truth <= iv.high
report("Task-1 score n=300", hits, toys)

# speed: B=1000 replicas of 5000 jets, AUC + rejection at 0.3 and 0.5 (+ CP accuracy)
yy = rng.integers(0, 2, 5000)
s = 1 / (1 + np.exp(-(1.2 * (2 * yy - 1) + rng.standard_normal(5000))))
ts = []
for _ in range(5):
    t0 = time.process_time()
    bootstrap_metrics(yy, s, n_boot=1000, seed=0)
    ts.append(time.process_time() - t0)
print(f"bootstrap_metrics B=1000 n=5000: CPU {min(ts):.3f} s (min of 5), median {np.median(ts):.3f} s")
