"""Downstream closure: surrogate templates fitted to real pseudo-data (pyhf measurement)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("pyhf")

from aalearn.surrogates.closure import NOMINAL_COVERAGE, ClosureResult, closure_test

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")


def _signal(n: int, rng: np.random.Generator, a: float = 5.0) -> np.ndarray:
    return rng.beta(a, 2.0, n)


def _background(n: int, rng: np.random.Generator, a: float = 2.0) -> np.ndarray:
    return rng.beta(a, 5.0, n)


@pytest.mark.slow
def test_perfect_surrogate_closes() -> None:
    """Templates from the true generator: pulls N(0, 1), coverage 68 %, no bias (within toy statistics)."""
    rng = np.random.default_rng(0)
    res = closure_test(
        _signal(300_000, rng),
        _background(300_000, rng),
        _signal(1_000_000, rng),
        _background(1_000_000, rng),
        n_toys=200,
        model_nuisance=False,
        pool_bootstraps=5,
        seed=1,
    )
    (v,) = res.variants
    assert (v.n_failed, v.n_ok) == (0, 200)
    # 200 toys: σ(pull mean) ≈ 0.07, σ(width) ≈ 0.05, σ(coverage) ≈ 0.033
    assert abs(v.pull_mean) < 0.21
    assert abs(v.pull_std - 1.0) < 0.15
    assert abs(v.coverage - NOMINAL_COVERAGE) < 0.1
    assert abs(v.bias) < 3 * v.bias_error
    # the finite template sample alone moves the Asimov fit by ~ sqrt(E/N_template) ≈ 0.06 σ
    assert abs(v.asimov_bias) < 0.2
    assert v.pool_sigma < 0.2 * v.sigma_stat
    checks = {c.name: c for c in res.checks()}
    assert set(checks) == {"closure:bias", "closure:coverage", "closure:pull_width"}
    assert all(c.passed for c in checks.values()), [c.detail for c in checks.values()]


def test_biased_surrogate_fails_closure() -> None:
    """A surrogate whose background template is shifted biases μ̂ by more than 1σ: the checks fail."""
    rng = np.random.default_rng(2)
    res = closure_test(
        _signal(100_000, rng),
        _background(100_000, rng, a=2.4),
        _signal(500_000, rng),
        _background(500_000, rng),
        n_toys=60,
        model_nuisance=False,
        pool_bootstraps=0,
        seed=3,
    )
    (v,) = res.variants
    assert v.bias < -1.0
    assert v.asimov_bias < -1.0
    assert v.coverage < 0.5
    checks = {c.name: c for c in res.checks(bias_tolerance=0.2)}
    assert not checks["closure:bias"].passed
    assert not checks["closure:coverage"].passed
    assert checks["closure:bias"].value == pytest.approx(v.bias)
    assert "μ0 = 1" in checks["closure:bias"].detail
    # the coverage threshold: nominal minus 3 binomial σ of the toys' coverage (at least 0.03)
    tol = max(0.03, 3 * v.coverage_error)
    assert checks["closure:coverage"].threshold == pytest.approx(NOMINAL_COVERAGE - tol, abs=1e-12)


@pytest.mark.slow
def test_model_variance_nuisance_restores_coverage() -> None:
    """Ensemble members with a large spread whose pooled template is off by about the spread.

    The plain fit under-covers; the fit with the between-member variance as a nuisance has
    wider errors and better coverage.
    """
    rng = np.random.default_rng(4)
    shifts = [2.35, 2.45, 2.15, 2.55]  # background shape per member: mean 2.375, truth 2.0
    members_b = [_background(40_000, rng, a=a) for a in shifts]
    members_s = [_signal(40_000, rng, a=a) for a in (5.0, 5.2, 4.8, 5.1)]
    res = closure_test(
        members_s,
        members_b,
        _signal(500_000, rng),
        _background(500_000, rng),
        n_toys=30,
        model_nuisance=True,
        pool_bootstraps=0,
        seed=5,
        expected_signal=100.0,
        expected_background=1000.0,
    )
    plain, nuis = res.variant("plain"), res.variant("model_nuisance")
    np.testing.assert_array_equal(res.model_var_background > 0, True)
    assert np.mean(nuis.mu_err) > 1.1 * np.mean(plain.mu_err)
    assert nuis.coverage > plain.coverage
    names = [c.name for c in res.checks()]
    assert {"closure:bias:model_nuisance", "closure:coverage:model_nuisance"} <= set(names)
    d = res.to_dict()
    json.dumps(d)
    assert [v["name"] for v in d["variants"]] == ["plain", "model_nuisance"]


def test_several_mu_values_and_result_api() -> None:
    rng = np.random.default_rng(6)
    res = closure_test(
        [_signal(20_000, rng), _signal(20_000, rng)],
        [_background(20_000, rng), _background(20_000, rng)],
        _signal(200_000, rng),
        _background(200_000, rng),
        mu_true=[0.5, 2.0],
        n_toys=8,
        model_nuisance=False,
        pool_bootstraps=2,
        bins=6,
        binning="uniform",
        observable="mass",
    )
    assert isinstance(res, ClosureResult)
    assert [v.mu_true for v in res.variants] == [0.5, 2.0]
    assert res.edges.shape == (7,)
    assert res.variant("plain", 2.0).mu_true == 2.0
    assert res.n_members == 2
    with pytest.raises(KeyError):
        res.variant("model_nuisance")
    assert len(res.checks()) == 3


def test_plot() -> None:
    pytest.importorskip("matplotlib")
    from aalearn.surrogates.closure import plot_closure

    rng = np.random.default_rng(7)
    res = closure_test(
        [_signal(5000, rng), _signal(5000, rng)],
        [_background(5000, rng), _background(5000, rng)],
        _signal(50_000, rng),
        _background(50_000, rng),
        n_toys=4,
        pool_bootstraps=0,
    )
    fig = plot_closure(res)
    assert len(fig.axes) == 3


def test_bad_input() -> None:
    rng = np.random.default_rng(8)
    s, b = _signal(1000, rng), _background(1000, rng)
    with pytest.raises(ValueError, match="two ensemble members"):
        closure_test(s, b, s, b, n_toys=2)
    with pytest.raises(ValueError, match="NaN"):
        closure_test(np.full(10, np.nan), b, s, b, model_nuisance=False, n_toys=2)
    with pytest.raises(ValueError, match="n_toys"):
        closure_test(s, b, s, b, model_nuisance=False, n_toys=1)
    with pytest.raises(ValueError, match="expected_signal"):
        closure_test(s, b, s, b, model_nuisance=False, expected_signal=0.0)
    with pytest.raises(ValueError, match="mu_true"):
        closure_test(s, b, s, b, model_nuisance=False, mu_true=-1.0)
    with pytest.raises(ValueError, match="binning"):
        closure_test(s, b, s, b, model_nuisance=False, binning="log")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no generated events"):
        closure_test(s, b, s, b, model_nuisance=False, bins=[0.0, 0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="pool"):
        closure_test(s, b, s[:1], b, model_nuisance=False)
    res = closure_test(s, b, s, b, model_nuisance=False, n_toys=2, pool_bootstraps=0)
    with pytest.raises(ValueError, match="bias_tolerance"):
        res.checks(bias_tolerance=0.0)


def test_real_template_baseline() -> None:
    """The closure null: templates from independent real events; no check of its own, quoted in details."""
    rng = np.random.default_rng(9)
    res = closure_test(
        _signal(50_000, rng),
        _background(50_000, rng, a=2.4),
        _signal(200_000, rng),
        _background(200_000, rng),
        n_toys=10,
        model_nuisance=False,
        pool_bootstraps=0,
        baseline_signal=_signal(50_000, rng),
        baseline_background=_background(50_000, rng),
    )
    assert [v.name for v in res.variants] == ["plain", "real_templates"]
    base = res.variant("real_templates")
    assert abs(base.asimov_bias) < 0.3 < abs(res.variant("plain").asimov_bias)
    checks = res.checks()
    assert len(checks) == 3
    assert "with real templates instead" in checks[0].detail
    with pytest.raises(ValueError, match="both"):
        closure_test(
            _signal(100, rng),
            _background(100, rng),
            _signal(100, rng),
            _background(100, rng),
            model_nuisance=False,
            baseline_signal=_signal(100, rng),
        )


@pytest.mark.slow
@pytest.mark.usefixtures("single_torch_thread")
def test_surrogate_study_on_jets(tmp_path: Path, challenge_jets: Callable[..., np.ndarray]) -> None:
    """Ensemble, amplification per class and closure on labelled challenge-layout jets, end to end."""
    pytest.importorskip("zuko")
    pytest.importorskip("matplotlib")
    from aalearn.apps.surrogate import surrogate_study
    from aalearn.data.dataset import JetDataset
    from aalearn.physics import challenge_feature_names

    x = np.concatenate([challenge_jets(300, seed=1), 0.6 * challenge_jets(300, seed=2)])
    ds = JetDataset(x.astype(np.float32), np.repeat([0, 1], 300), tuple(challenge_feature_names()))
    res = surrogate_study(
        ds,
        kind="flow",
        members=2,
        epochs=1,
        n_gen=2000,
        bins=5,
        closure_bins=4,
        closure_toys=5,
        closure_pool_bootstraps=2,
        out=tmp_path,
    ).to_dict()
    assert set(res["amplification"]) == {"top", "w"}
    assert [v["name"] for v in res["closure"]["variants"]] == ["plain", "model_nuisance", "real_templates"]
    names = {c["name"] for c in res["checks"]}
    assert {"amplification:n_equiv:top", "amplification:n_equiv:w", "closure:bias"} <= names
    assert len(res["fit_seconds"]) == 2
    assert Path(res["report"]).is_file()
    assert json.loads(Path(res["study"]).read_text())["members"] == 2
    with pytest.raises(ValueError, match="both classes"):
        surrogate_study(JetDataset(ds.features[:300], ds.labels[:300], ds.feature_names), members=2)
    with pytest.raises(ValueError, match="unknown observable"):
        surrogate_study(ds, members=2, observable="tau21")


@pytest.mark.slow
@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_bias_error_includes_template_statistics(binning: Literal["uniform", "quantile"]) -> None:
    """The reported error of the closure bias matches its spread over independent template samples.

    Perfect but small templates (1,000 events per class for 100 + 1,000 expected events):
    their fluctuation, shared by every toy, dominates the spread of the bias (rms terms in
    σ_stat, quantile bins: template 0.71, toys 0.20, pool 0.05; uniform: 0.46, 0.20, 0.04).
    With toy statistics only (the old error) the ratio spread / reported error is 1.9
    (uniform) and 3.4 (quantile); with the template term doubled, 0.52 and 0.55: both fail.
    Quantile edges are derived from the template sample and re-derived in every template
    bootstrap; that is not conservative: an edge shift moves the templates and the pool's
    histogram alike, and over 100 draws the ratio is 1.02 ± 0.07 (uniform) and
    1.00 ± 0.07 (quantile); the template term alone (Asimov fits, pool fixed) 0.95 ± 0.07
    and 0.99 ± 0.07, as the delta method gives (issue 17; an earlier 0.53 for quantile bins
    from the first 8 draws is not reproduced: they give 0.76, p = 0.23). Here, 20 draws:
    measured 0.94 (uniform) and 1.05 (quantile). The ratio is chi-distributed with 19
    degrees of freedom (the pool is shared, its share of the error, below 0.3 %, is
    neglected); the central 99 % band, 0.60-1.43, fails an error twice too large with
    probability about 0.9. The rms of the reported errors scatters by about 7 %, which
    widens the band by about 8 %.
    """
    pool = np.random.default_rng(100)
    real_s, real_b = _signal(200_000, pool), _background(200_000, pool)
    n_draws = 20
    biases, errors, template_sigmas = [], [], []
    for k in range(n_draws):
        rng = np.random.default_rng(200 + k)
        res = closure_test(
            _signal(1_000, rng),
            _background(1_000, rng),
            real_s,
            real_b,
            bins=5,
            binning=binning,
            n_toys=25,
            model_nuisance=False,
            pool_bootstraps=8,
            seed=k,
        )
        v = res.variant("plain")
        biases.append(v.bias)
        errors.append(v.bias_error)
        template_sigmas.append(v.template_sigma)
        assert v.to_dict()["bias_significance"] == pytest.approx(v.bias / v.bias_error)
    ratio = float(np.std(biases, ddof=1) / np.sqrt(np.mean(np.square(errors))))
    print("spread / reported error", binning, ratio, biases, errors)
    assert min(template_sigmas) > 0
    lo, hi = np.sqrt(stats.chi2.ppf([0.005, 0.995], n_draws - 1) / (n_draws - 1))
    assert lo < ratio < hi


def test_real_template_baseline_has_staterror() -> None:
    rng = np.random.default_rng(3)
    res = closure_test(
        _signal(20_000, rng),
        _background(20_000, rng),
        _signal(50_000, rng),
        _background(50_000, rng),
        n_toys=4,
        model_nuisance=False,
        pool_bootstraps=0,
        baseline_signal=_signal(2_000, rng),
        baseline_background=_background(2_000, rng),
    )
    base, plain = res.variant("real_templates"), res.variant("plain")
    # staterror of 2,000-event templates widens the total error beyond the statistical one
    assert np.mean(base.mu_err) > 1.05 * np.mean(base.mu_err_stat)
    assert np.mean(plain.mu_err) == pytest.approx(np.mean(plain.mu_err_stat), rel=1e-3)
