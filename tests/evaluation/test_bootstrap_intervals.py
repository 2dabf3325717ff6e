"""Intervals of every reported figure (issue 17 item 5): values, coverage on toys with known truth, pairing.

Coverage tolerances: over ``T`` independent toys the observed coverage of a level-``L``
interval has binomial standard error ``sqrt(L (1 - L) / T)``; the tests allow 3 of them.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import binom, norm
from sklearn.metrics import roc_auc_score, roc_curve

from aalearn.attacks.result import AttackResult
from aalearn.evaluation import background_rejection, evaluate_scores
from aalearn.evaluation.bootstrap import (
    _auc_from_groups,
    _Ranked,
    _rejection_from_groups,
    attack_intervals,
    bootstrap_aucs,
    bootstrap_means,
    bootstrap_metrics,
    challenge_score_intervals,
    mixed_accuracy_intervals,
    proportion_interval,
    resample_counts,
)


def _coverage_tolerance(level: float, toys: int) -> float:
    return 3 * math.sqrt(level * (1 - level) / toys)


def _toy_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + rng.standard_normal(n))))
    return y, np.round(s, 2)  # rounding makes ties, which the AUC counts as 1/2


# --------------------------------------------------------------------------- vectorised replicas
@pytest.mark.parametrize("signal_label", [0, 1])
def test_every_replica_equals_sklearn_with_multiplicities_as_weights(signal_label: int) -> None:
    """A replica is the full-sample figure with the bootstrap counts as sample weights (exact to 1e-12)."""
    rng = np.random.default_rng(3)
    y, s = _toy_scores(rng, 300)
    pos = y == signal_label
    disc = s if signal_label == 1 else -s
    (counts,) = list(resample_counts(len(y), strata=y, n_boot=5, seed=1))
    assert np.all(counts[:, pos].sum(axis=1) == pos.sum())  # strata keep their sizes
    p, q = _Ranked(pos, disc).groups(counts)
    aucs = _auc_from_groups(p, q)
    rej = _rejection_from_groups(p, q, 0.5)
    for b in range(5):
        assert aucs[b] == pytest.approx(roc_auc_score(pos, disc, sample_weight=counts[b]), abs=1e-12)
        fpr, tpr, _ = roc_curve(pos, disc, sample_weight=counts[b])
        assert rej[b] == pytest.approx(background_rejection(fpr, tpr, 0.5), rel=1e-12)


def test_full_sample_values_equal_evaluate_scores_also_weighted() -> None:
    rng = np.random.default_rng(4)
    y, s = _toy_scores(rng, 2000)
    w = rng.uniform(0.5, 2.0, len(y))
    for weights in (None, w):
        ev = evaluate_scores(y, s, sample_weight=weights)
        r = bootstrap_metrics(y, s, sample_weight=weights, n_boot=20, seed=0)
        assert ev.auc is not None
        assert r["auc"].value == pytest.approx(ev.auc, abs=1e-12)
        assert r["accuracy"].value == pytest.approx(ev.accuracy, abs=1e-12)
        assert r["rejection_at_30"].value == pytest.approx(ev.background_rejection[0.3], rel=1e-10)
        assert r["rejection_at_50"].value == pytest.approx(ev.background_rejection[0.5], rel=1e-10)
    assert r["accuracy"].method == "bootstrap"  # weighted accuracy: bootstrap, not binomial


def test_deterministic_given_seed_and_fast() -> None:
    """B = 1000 replicas of 5000 jets (AUC and two rejections) in under 2 s of CPU (measured about 0.35 s)."""
    rng = np.random.default_rng(5)
    y, s = _toy_scores(rng, 5000)
    t0 = time.process_time()
    a = bootstrap_metrics(y, s, n_boot=1000, seed=7)
    cpu = time.process_time() - t0
    b = bootstrap_metrics(y, s, n_boot=1000, seed=7)
    c = bootstrap_metrics(y, s, n_boot=1000, seed=8)
    assert a == b
    assert a["auc"].low != c["auc"].low
    assert a["auc"].n_boot == 1000
    assert cpu < 2.0


# --------------------------------------------------------------------------- binomial proportions
def test_clopper_pearson_closed_forms_tail_equations_and_exact_coverage() -> None:
    """k = 0 and k = n have closed forms; each end solves its binomial tail equation P = α/2;
    the exact coverage (sum over the binomial distribution) is at least nominal for every p."""
    for level in (0.68, 0.95):
        alpha = 1 - level
        zero = proportion_interval(0, 20, level=level)
        assert (zero.low, zero.value) == (0.0, 0.0)
        assert zero.high == pytest.approx(1 - (alpha / 2) ** (1 / 20), rel=1e-9)
        full = proportion_interval(20, 20, level=level)
        assert full.low == pytest.approx((alpha / 2) ** (1 / 20), rel=1e-9)
        iv = proportion_interval(7, 20, level=level)
        assert binom.sf(6, 20, iv.low) == pytest.approx(alpha / 2, rel=1e-6)  # P(X >= 7 | low)
        assert binom.cdf(7, 20, iv.high) == pytest.approx(alpha / 2, rel=1e-6)  # P(X <= 7 | high)
        n = 60
        ivs = [proportion_interval(k, n, level=level) for k in range(n + 1)]
        for p in (0.1, 0.3, 0.5, 0.93):
            pmf = binom.pmf(np.arange(n + 1), n, p)
            cover = sum(pmf[k] for k, iv in enumerate(ivs) if iv.low <= p <= iv.high)
            assert cover >= level, (level, p, cover)
    iv = proportion_interval(30, 100)
    assert (iv.n, iv.n_boot, iv.method) == (100, 0, "clopper-pearson")
    assert iv.std == pytest.approx(math.sqrt(0.3 * 0.7 / 100))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        proportion_interval(5, 3)
    with pytest.raises(ValueError, match="level"):
        proportion_interval(1, 3, level=1.0)


# --------------------------------------------------------------------------- coverage on toys
@pytest.mark.slow
def test_auc_interval_covers_the_analytic_auc_of_two_gaussians() -> None:
    """Signal N(Δ, 1), background N(0, 1): AUC = Φ(Δ/√2). 300 toys of 150 + 150 jets, B = 300."""
    delta, toys, n = 1.0, 300, 150
    truth = norm.cdf(delta / math.sqrt(2))
    rng = np.random.default_rng(11)
    hits = {0.68: 0, 0.95: 0}
    y = np.r_[np.zeros(n, int), np.ones(n, int)]  # signal = label 0
    for t in range(toys):
        score = np.r_[-rng.normal(delta, 1, n), -rng.normal(0, 1, n)]  # P(label=1) grows with -x
        for level in hits:
            iv = bootstrap_aucs(y, {"auc": score}, n_boot=300, level=level, seed=t)["auc"]
            hits[level] += iv.low <= truth <= iv.high
    for level, h in hits.items():
        assert abs(h / toys - level) < _coverage_tolerance(level, toys), (level, h / toys)


@pytest.mark.slow
def test_task1_score_interval_covers_the_true_score() -> None:
    """FR ~ Bernoulli(0.8), per-jet deviation ~ Exp(0.01): score FR·exp(−20 MAD) = 0.8 e^{-0.2}. 300 toys."""
    toys, n = 300, 300
    truth = 0.8 * math.exp(-0.2)
    rng = np.random.default_rng(12)
    hits = {0.68: 0, 0.95: 0}
    for t in range(toys):
        fooled = rng.random(n) < 0.8
        dev = rng.exponential(0.01, n)
        for level in hits:
            iv = challenge_score_intervals(fooled, dev, n_boot=300, level=level, seed=t)["score"]
            hits[level] += iv.low <= truth <= iv.high
    for level, h in hits.items():
        assert abs(h / toys - level) < _coverage_tolerance(level, toys), (level, h / toys)


# --------------------------------------------------------------------------- paired differences
def test_paired_auc_difference_is_narrower_and_matches_the_true_spread() -> None:
    """Two taggers whose scores are strongly correlated row by row (B scores = A + small noise).

    Truth: the spread of AUC_A − AUC_B over 200 fresh samples of 1000 jets. The paired
    bootstrap standard error must agree with it within 25 % (the spread estimated from 200
    samples has a 5 % standard error, the bootstrap's own about as much), and be less than
    half the unpaired one sqrt(σ_A² + σ_B²).
    """
    rng = np.random.default_rng(13)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        a = (2 * y - 1) * 1.0 + rng.standard_normal(n)
        return y, a, a + 0.3 * rng.standard_normal(n)

    diffs = []
    for _ in range(200):
        y, a, b = sample(1000)
        diffs.append(roc_auc_score(y, a) - roc_auc_score(y, b))
    y, a, b = sample(1000)
    r = bootstrap_aucs(y, {"a": a, "b": b}, differences=[("a", "b")], signal_label=1, n_boot=1000, seed=0)
    d = r["a-b"]
    assert d.method == "paired bootstrap"
    assert d.value == pytest.approx(r["a"].value - r["b"].value, abs=1e-15)
    assert d.std == pytest.approx(float(np.std(diffs, ddof=1)), rel=0.25)
    assert d.std < 0.5 * math.hypot(r["a"].std, r["b"].std)


# --------------------------------------------------------------------------- challenge scores
def test_challenge_scores_on_a_hand_computable_case() -> None:
    """Four jets: the bootstrap distribution is binomial, so the 68 % percentile ends are known exactly.

    Task 1: fooled = (1, 1, 1, 0), deviation 0.01 each. The number of fooled jets in a
    replica is Binomial(4, 3/4): P(k ≤ 1) = 0.051, P(k ≤ 2) = 0.262, P(k ≤ 3) = 0.684, so
    the 16 % quantile is k = 2 and the 84 % quantile k = 4: score ∈ [0.5, 1]·e^{-0.2}.
    Task 2: hit_clean = (1, 1, 1, 1), hit_adv = (1, 0, 0, 0): per-jet mean (1, ½, ½, ½),
    mixed accuracy 0.5 + j/8 with j ~ Binomial(4, 1/4): P(j = 0) = 0.316, P(j ≤ 2) = 0.949,
    so [0.5, 0.75].
    """
    r1 = challenge_score_intervals([1, 1, 1, 0], [0.01] * 4, n_boot=4000, seed=0)
    e = math.exp(-0.2)
    assert r1["score"].value == pytest.approx(0.75 * e, abs=1e-15)
    assert (r1["score"].low, r1["score"].high) == (pytest.approx(0.5 * e), pytest.approx(e))
    assert (r1["mad"].low, r1["mad"].high) == (pytest.approx(0.01), pytest.approx(0.01))
    assert r1["fooling_ratio"].method == "clopper-pearson"
    assert r1["fooling_ratio"].n == 4

    r2 = mixed_accuracy_intervals([1, 1, 1, 1], [1, 0, 0, 0], n_boot=4000, seed=0)
    assert r2["mixed_accuracy"].value == 0.625
    assert (r2["mixed_accuracy"].low, r2["mixed_accuracy"].high) == (0.5, 0.75)
    assert (r2["accuracy_drop"].low, r2["accuracy_drop"].high) == (0.5, 1.0)
    # pairing: every jet right when clean and wrong when attacked gives exactly ½, no spread
    r3 = mixed_accuracy_intervals([1] * 50, [0] * 50, n_boot=100)
    assert (r3["mixed_accuracy"].low, r3["mixed_accuracy"].high, r3["mixed_accuracy"].std) == (0.5, 0.5, 0.0)


def test_task1_score_standard_error_matches_the_delta_method() -> None:
    """σ² ≈ e^{-40 M} [p(1-p) + 400 p² σ_d²] / n for independent fooled and deviation; B = 1000 (10 %)."""
    rng = np.random.default_rng(14)
    n = 2000
    fooled = rng.random(n) < 0.7
    dev = rng.exponential(0.01, n)
    iv = challenge_score_intervals(fooled, dev, n_boot=1000, seed=0)["score"]
    p, m = fooled.mean(), dev.mean()
    delta = math.exp(-20 * m) * math.sqrt((p * (1 - p) + 400 * p * p * dev.var()) / n)
    assert iv.std == pytest.approx(delta, rel=0.10)


def test_stratified_bootstrap_of_a_mean_has_the_within_stratum_variance() -> None:
    """Stratified resampling: Var = Σ_c (n_c/n)² σ_c²/n_c with population σ_c (B = 2000; 8 %)."""
    rng = np.random.default_rng(15)
    y = np.r_[np.zeros(300, int), np.ones(100, int)]
    v = np.where(y == 1, rng.normal(5, 2, 400), rng.normal(0, 1, 400))
    iv = bootstrap_means({"v": v}, lambda m: m["v"], strata=y, n_boot=2000, seed=0)
    expect = math.sqrt(sum((c.size / 400) ** 2 * c.var() / c.size for c in (v[y == 0], v[y == 1])))
    assert iv.value == pytest.approx(v.mean())
    assert iv.std == pytest.approx(expect, rel=0.08)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_means({"a": [1.0, 2.0], "b": [1.0]}, lambda m: m["a"])
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_means({"a": [1.0, 2.0]}, lambda m: m["a"], n_boot=5)


# --------------------------------------------------------------------------- attack results
def test_attack_intervals_use_the_attack_results_definitions() -> None:
    rng = np.random.default_rng(16)
    n, f = 400, 5
    x = rng.normal(size=(n, f))
    labels = rng.integers(0, 2, n)
    s_clean = np.clip(0.5 + 0.4 * (2 * labels - 1) + 0.2 * rng.standard_normal(n), 0, 1)
    s_adv = np.clip(s_clean - 0.5 * (2 * labels - 1) * (rng.random(n) < 0.4), 0, 1)
    dec_clean, dec_adv = (s_clean >= 0.5).astype(np.int64), (s_adv >= 0.5).astype(np.int64)
    attacked = dec_clean == labels
    success = attacked & (dec_adv != dec_clean)
    x_adv = x + np.where(success[:, None], rng.normal(0, 0.01, (n, f)), 0.0)
    result = AttackResult(
        attack="toy",
        params={},
        x=x,
        x_adv=x_adv,
        target=labels,
        labels=labels,
        decision_clean=dec_clean,
        decision_adv=dec_adv,
        score_clean=s_clean,
        score_adv=s_adv,
        attacked=attacked,
        success=success,
        feasible=np.ones(n, bool),
        violations={},
        physical_violations={"pt": np.arange(n) < 7},
        distance={},
        seconds=0.0,
    )
    ivs = attack_intervals(result, n_boot=200, seed=0)
    acc, acc_clean = result.accuracy, result.accuracy_clean
    assert acc is not None
    assert acc_clean is not None
    assert ivs["fooling_ratio"].value == pytest.approx(result.fooling_ratio)
    assert ivs["fooling_ratio"].n == int(attacked.sum())
    assert ivs["accuracy"].value == pytest.approx(acc)
    assert ivs["accuracy_clean"].value == pytest.approx(acc_clean)
    assert ivs["accuracy_drop"].value == pytest.approx(acc_clean - acc)
    assert ivs["unphysical_fraction"].value == pytest.approx(7 / n)
    assert ivs["mad"].value == pytest.approx(result.mad, rel=1e-12)
    assert ivs["challenge_score"].value == pytest.approx(result.challenge_score, rel=1e-12)
    assert ivs["auc"].value == pytest.approx(result.auc(), abs=1e-12)
    assert ivs["auc_drop"].value == pytest.approx(ivs["auc_clean"].value - ivs["auc"].value, abs=1e-12)
    for k, iv in ivs.items():
        assert iv.low <= iv.value <= iv.high, k
