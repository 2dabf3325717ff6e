"""Statistical amplification (Butter et al., arXiv:2008.06545): exact, biased and noisy ensembles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from aalearn.surrogates.amplification import (
    AmplificationResult,
    amplification_from_samples,
    amplification_study,
    bootstrap_indices,
    train_ensemble,
)

EDGES = np.concatenate([[-np.inf], np.linspace(-2.5, 2.5, 19), [np.inf]])
P_TRUE = np.diff(stats.norm.cdf(EDGES))


def _perfect(k: int, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n) for _ in range(k)]


def test_perfect_model_of_a_known_density() -> None:
    """Members sample the true density: no bias, no model variance, n_equiv = n_gen at every size."""
    res = amplification_from_samples(
        _perfect(8, 100_000, 0), truth_probabilities=P_TRUE, bins=EDGES, n_train=1000, observable="x"
    )
    assert res.n_truth is None
    ratio = res.n_equiv_direct / res.n_gen_grid
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio
    assert res.n_equiv_direct[-1] > 30 * res.n_equiv_direct[0]  # grows with the generated sample
    # bias² and model variance are compatible with zero: the saturation lies far beyond n_gen
    assert res.n_equiv_limit > 5 * res.n_gen
    assert res.n_equiv == pytest.approx(res.n_gen, rel=0.3)
    assert np.all(np.abs(res.bias) < 5 * np.sqrt(P_TRUE / (8 * 100_000)))


def test_biased_model_caps_n_equiv() -> None:
    """A shifted model: n_equiv saturates at p(1-p)/b² whatever the sample size."""
    shift = 0.05
    rng = np.random.default_rng(1)
    members = [rng.normal(loc=shift, size=200_000) for _ in range(6)]
    res = amplification_from_samples(members, truth_probabilities=P_TRUE, bins=EDGES, n_train=1000)
    q = np.diff(stats.norm.cdf(EDGES - shift))
    expected_limit = np.sum(P_TRUE * (1 - P_TRUE)) / np.sum((q - P_TRUE) ** 2)
    assert res.n_equiv_limit == pytest.approx(expected_limit, rel=0.2)
    assert res.n_gen_saturation == pytest.approx(expected_limit, rel=0.2)
    # the direct curve flattens: 20x more events buy < 2x more equivalent events
    assert res.n_equiv_direct[-1] < 1.3 * expected_limit
    assert res.n_equiv_direct[-1] / res.n_equiv_direct[-3] < 2.0
    assert res.amplification == pytest.approx(expected_limit / 1000, rel=0.2)


def test_model_variance_is_measured() -> None:
    """Members with random shifts of known spread: the model variance per bin is recovered."""
    rng = np.random.default_rng(2)
    sd = 0.04
    shifts = rng.normal(scale=sd, size=40)
    members = [rng.normal(loc=s, size=100_000) for s in shifts]
    res = amplification_from_samples(members, truth_probabilities=P_TRUE, bins=EDGES, n_train=500)
    dens = np.diff(stats.norm.pdf(EDGES)) * -1.0  # dq/dshift = pdf(lo) - pdf(hi) per bin
    expected = dens**2 * np.var(shifts, ddof=1)  # linear response to the realised shifts
    assert res.model_var_total == pytest.approx(expected.sum(), rel=0.2)


def _stratified_member(shift: float, n: int) -> np.ndarray:
    """n quantiles of N(shift, 1): its bin fractions equal the exact probabilities up to 1/n."""
    return stats.norm.ppf((np.arange(n) + 0.5) / n) + shift


@pytest.mark.parametrize("shifts", [(0.1, -0.05, 0.02, 0.06), (0.03, -0.04, 0.05)])
def test_model_variance_and_bias_of_few_members_exactly(shifts: tuple[float, ...]) -> None:
    """Model variance and bias² of 3-4 members against their exact bin probabilities.

    Stratified members (no sampling noise) with known shifts: each member's bin probabilities
    :math:`q_{k,i}` follow from the normal CDF. Butter et al.'s estimators are then
    :math:`s_i^2 - \\bar q_i(1-\\bar q_i)/n` (model variance, :math:`s^2` with ddof=1) and
    :math:`(\\bar q_i - p_i)^2 - s_i^2/K` (bias²). Measured agreement 0.3 % per bin (1/n
    discretisation); tolerance 1 % per bin. ddof=0 would be 25 % (K = 4) or 33 % (K = 3) off.
    """
    n = 400_000
    k = len(shifts)
    q = np.stack([np.diff(stats.norm.cdf(EDGES - s)) for s in shifts])
    q_mean = q.mean(axis=0)
    s2 = q.var(axis=0, ddof=1)
    model_var = s2 - q_mean * (1 - q_mean) / n
    bias2 = (q_mean - P_TRUE) ** 2 - s2 / k
    res = amplification_from_samples(
        [_stratified_member(s, n) for s in shifts], truth_probabilities=P_TRUE, bins=EDGES, n_train=500
    )
    assert res.n_members == k
    np.testing.assert_allclose(res.q_mean, q_mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.model_var, np.clip(model_var, 0, None), rtol=0.01)
    assert res.model_var_total == pytest.approx(model_var.sum(), rel=0.01)
    np.testing.assert_allclose(res.bias2, np.clip(bias2, 0, None), rtol=0.01, atol=2e-9)
    num = np.sum(P_TRUE * (1 - P_TRUE))
    expected_limit = num / (max(bias2.sum(), 0.0) + model_var.sum())
    assert res.n_equiv_limit == pytest.approx(expected_limit, rel=0.01)


def test_truth_sample_and_quantile_bins() -> None:
    rng = np.random.default_rng(3)
    res = amplification_from_samples(
        _perfect(5, 50_000, 4), truth=rng.normal(size=400_000), bins=10, n_train=2000, observable="mass"
    )
    assert res.edges[0] == -np.inf
    assert res.edges[-1] == np.inf
    np.testing.assert_allclose(res.p_true, 0.1, atol=0.002)
    ratio = res.n_equiv_direct / res.n_gen_grid
    assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio
    d = res.to_dict()
    json.dumps(d)
    assert d["n_train"] == 2000
    assert len(d["bins"]["p_true"]) == 10
    assert d["truth_limited"] == res.truth_limited


def test_checks_name_regions() -> None:
    from aalearn.surrogates.verdict import Check

    rng = np.random.default_rng(5)
    members = [rng.normal(loc=0.1, size=50_000) for _ in range(4)]
    res = amplification_from_samples(
        members, truth_probabilities=P_TRUE, bins=EDGES, n_train=1000, observable="m"
    )
    (check,) = res.checks()
    assert isinstance(check, Check)
    assert check.name == "amplification:n_equiv"
    assert check.threshold == 1000
    assert check.passed == (res.n_equiv_limit >= 1000)
    (strict,) = res.checks(needed_events=1e9)
    assert not strict.passed
    assert "m in [" in strict.detail
    with pytest.raises(ValueError, match="needed_events"):
        res.checks(needed_events=-1)


def test_bad_input() -> None:
    good = _perfect(3, 1000, 0)
    with pytest.raises(ValueError, match="at least 2"):
        amplification_from_samples(good[:1], truth_probabilities=P_TRUE, bins=EDGES, n_train=10)
    with pytest.raises(ValueError, match="sequence of K"):
        amplification_from_samples(good[0], truth_probabilities=P_TRUE, bins=EDGES, n_train=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same number"):
        amplification_from_samples(
            [good[0], good[1][:500]], truth_probabilities=P_TRUE, bins=EDGES, n_train=10
        )
    with pytest.raises(ValueError, match="exactly one"):
        amplification_from_samples(good, bins=EDGES, n_train=10)
    with pytest.raises(ValueError, match="quantile bins need"):
        amplification_from_samples(good, truth_probabilities=P_TRUE, bins=10, n_train=10)
    with pytest.raises(ValueError, match="entries"):
        amplification_from_samples(good, truth_probabilities=P_TRUE[:-1], bins=EDGES, n_train=10)
    with pytest.raises(ValueError, match="NaN"):
        amplification_from_samples(
            [good[0], np.full(1000, np.nan)], truth_probabilities=P_TRUE, bins=EDGES, n_train=10
        )
    with pytest.raises(ValueError, match="n_train"):
        amplification_from_samples(good, truth_probabilities=P_TRUE, bins=EDGES, n_train=0)
    with pytest.raises(ValueError, match="n_gen_grid"):
        amplification_from_samples(
            good, truth_probabilities=P_TRUE, bins=EDGES, n_train=10, n_gen_grid=[5000]
        )


def test_bootstrap_is_stratified() -> None:
    y = np.array([0] * 30 + [1] * 70)
    idx = bootstrap_indices(100, labels=y, seed=1)
    assert np.sum(y[idx] == 0) == 30
    assert len(np.unique(idx)) < 100
    with pytest.raises(ValueError, match="shape"):
        bootstrap_indices(10, labels=y)


@pytest.mark.usefixtures("single_torch_thread")
def test_ensemble_of_surrogates_end_to_end() -> None:
    pytest.importorskip("zuko")
    from aalearn.surrogates.models import FlowSurrogate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    members = train_ensemble(
        lambda: FlowSurrogate(transforms=1, hidden=(8,)), x, n_members=2, seed=0, fit_kwargs={"epochs": 2}
    )
    assert len(members) == 2
    assert not np.array_equal(members[0].sample(5, seed=0), members[1].sample(5, seed=0))
    res = amplification_study(members, rng.normal(size=(5000, 2)), n_train=600, n_gen=2000, bins=8)
    assert isinstance(res, AmplificationResult)
    assert (res.n_members, res.n_gen, len(res.fit_seconds)) == (2, 2000, 2)
    assert math.isfinite(res.n_equiv)
    assert res.n_equiv > 0
    with pytest.raises(ValueError, match="n_members"):
        train_ensemble(lambda: FlowSurrogate(), x, n_members=1)
    with pytest.raises(ValueError, match="seed"):
        train_ensemble(lambda: FlowSurrogate(), x, fit_kwargs={"seed": 1})


def test_plot(tmp_path: object) -> None:
    pytest.importorskip("matplotlib")
    from aalearn.surrogates.amplification import plot_amplification

    res = amplification_from_samples(
        _perfect(3, 5000, 0), truth_probabilities=P_TRUE, bins=EDGES, n_train=100
    )
    fig = plot_amplification(res)
    assert len(fig.axes) == 2
