"""Reference values: lm-polygraph's and jlko/semantic_uncertainty's formulas, written out here by hand,
and the bootstrap intervals of the evaluation metrics (issue 22, item 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aalearn.llm.backends import Generation
from aalearn.llm.metrics import (
    _auroc_fast,
    _ece_uniform,
    _prr_pair,
    bootstrap_intervals,
    confidence_calibration,
    prediction_rejection_ratio,
    score_metrics,
)
from aalearn.llm.scores import (
    maximum_sequence_probability,
    mean_token_entropy,
    perplexity,
    predictive_entropy,
)
from aalearn.llm.semantic import semantic_entropy


def _lmpolygraph_rejection_area(ue: np.ndarray, metric: np.ndarray, max_rejection: float = 1.0) -> float:
    """lm-polygraph ``PredictionRejectionArea.__call__`` (ue_metrics/pred_rej_area.py), transcribed."""
    num_obs = len(ue)
    num_rej = int(max_rejection * num_obs)
    ue_argsort = np.argsort(ue)
    sorted_metrics = metric[ue_argsort]
    cumsum = np.cumsum(sorted_metrics)[-num_rej:]
    scores = (cumsum / np.arange((num_obs - num_rej) + 1, num_obs + 1))[::-1]
    return float(np.sum(scores) / num_rej)


def _lmpolygraph_prr(
    ue: np.ndarray, metric: np.ndarray, max_rejection: float = 1.0, n_perm: int = 1000
) -> float:
    """Normalised PRR as lm-polygraph's benchmark reports it: random = mean over permutations (seed 42)."""
    area = _lmpolygraph_rejection_area(ue, metric, max_rejection)
    oracle = _lmpolygraph_rejection_area(-metric, metric, max_rejection)
    rng = np.random.default_rng(42)
    random = np.mean(
        [
            _lmpolygraph_rejection_area(rng.permutation(len(ue)).astype(float), metric, max_rejection)
            for _ in range(n_perm)
        ]
    )
    return float((area - random) / (oracle - random))


@pytest.mark.parametrize("max_rejection", [1.0, 0.5])
def test_prr_matches_lm_polygraph(max_rejection: float) -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(0, 2, 60).astype(float)
    u = rng.normal(size=60) - 0.8 * q  # distinct values: no ties
    ours = prediction_rejection_ratio(u, q, max_rejection=max_rejection)
    ref = _lmpolygraph_prr(u, q, max_rejection)
    # the only difference is the random baseline: exact expectation vs 1000 permutations (σ ≈ 0.01)
    assert ours is not None
    assert ours == pytest.approx(ref, abs=0.03)
    assert ours > 0.2


def test_white_box_scores_match_lm_polygraph() -> None:
    lp = np.log([0.5, 0.25, 0.8])
    ent = np.array([0.3, 1.1, 0.2])
    g = Generation("x y z", token_logprobs=lp, token_entropies=ent)
    assert maximum_sequence_probability(g) == pytest.approx(
        -lp.sum(), abs=1e-12
    )  # MaximumSequenceProbability
    assert perplexity(g) == pytest.approx(math.exp(-lp.mean()), abs=1e-12)  # Perplexity (exp of −mean)
    assert mean_token_entropy(g) == pytest.approx(ent.mean(), abs=1e-12)  # MeanTokenEntropy
    samples = [
        Generation("a", token_logprobs=np.log([0.5, 0.5])),
        Generation("b", token_logprobs=np.log([0.1])),
    ]
    # Farquhar et al.'s naive entropy: −(1/M) Σ mean token log p
    assert predictive_entropy(samples) == pytest.approx(-(math.log(0.5) + math.log(0.1)) / 2, abs=1e-12)


def test_semantic_entropy_matches_jlko_code() -> None:
    """jlko/semantic_uncertainty: logsumexp_by_id(agg='sum_normalized') then predictive_entropy_rao."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = int(rng.integers(2, 11))
        ll = rng.normal(-1.0, 0.7, m)
        ids = rng.integers(0, 4, m)
        ids = np.unique(ids, return_inverse=True)[1]
        log_norm = ll - np.log(np.sum(np.exp(ll)))
        per_id = [np.log(np.sum(np.exp(log_norm[ids == c]))) for c in range(ids.max() + 1)]
        ref = -np.sum(np.exp(per_id) * np.array(per_id))
        assert semantic_entropy(ll, ids, count_repeats=True) == pytest.approx(ref, abs=1e-10)


def test_fast_auroc_and_ece_equal_the_reference_implementations() -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        c = rng.integers(0, 2, 40).astype(float)
        u = np.round(rng.normal(size=40), 1)  # ties on purpose
        assert _auroc_fast(u, 1 - c) == pytest.approx(roc_auc_score(1 - c, u), abs=1e-12)
        prr, prr50 = _prr_pair(u, c)
        assert prr == pytest.approx(prediction_rejection_ratio(u, c), abs=1e-12)
        assert prr50 == pytest.approx(prediction_rejection_ratio(u, c, max_rejection=0.5), abs=1e-12)
        conf = rng.uniform(size=40)
        conf[:3] = [0.1, 0.2, 1.0]  # values on bin edges
        assert _ece_uniform(conf, c, 10) == pytest.approx(
            confidence_calibration(conf, c, n_bins=10)[0], abs=1e-12
        )


@pytest.mark.slow
def test_bootstrap_interval_covers_the_true_auroc() -> None:
    """u = N(0, 1) + 1·wrong: the true AUROC is Φ(1/√2) = 0.7602; 95 % intervals should cover it ~95 %."""
    true = 0.5 * (1 + math.erf(0.5))
    rng = np.random.default_rng(7)
    hits = 0
    reps = 40
    for r in range(reps):
        c = rng.integers(0, 2, 150).astype(float)
        u = rng.normal(size=150) + (1 - c)
        lo, hi = bootstrap_intervals(u, c, n_boot=200, seed=r)["auroc"]  # type: ignore[misc]
        hits += lo <= true <= hi
    # binomial(40, 0.95): P(hits < 34) < 1 %; a too-narrow interval (e.g. no resampling) fails
    assert hits >= 34


def test_score_metrics_carry_intervals_and_a_small_sample_warning() -> None:
    recs = [
        {"scores": {"msp": u}, "correct": c} for u, c in [(0.1, True), (0.2, True), (0.9, False), (0.3, True)]
    ]
    m = score_metrics(recs, "msp", n_boot=200)
    assert m["auroc"] == 1.0
    assert m["small_sample"] is True
    assert "small sample" in m["warning"]
    lo, hi = m["ci"]["auroc"]
    assert lo <= 1.0 <= hi
    assert m["ci"]["ece"] is not None
    rng = np.random.default_rng(0)
    big = [
        {"scores": {"msp": float(rng.normal() + (not c))}, "correct": bool(c)}
        for c in rng.integers(0, 2, 200)
    ]
    m = score_metrics(big, "msp", n_boot=200)
    assert m["small_sample"] is False
    assert m["warning"] is None
    lo, hi = m["ci"]["prr"]
    assert lo < m["prr"] < hi
    assert hi - lo < 0.5
