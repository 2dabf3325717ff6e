"""Profile-likelihood measurement from classifier scores (pyhf): fits, splits, impacts, shifts, coverage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pyhf = pytest.importorskip("pyhf")

from aalearn.inference import (  # noqa: E402
    FitResult,
    Measurement,
    Templates,
    build_workspace,
    histogram_data,
    templates_from_scores,
)
from aalearn.inference.workspace import _numpy_backend as pyhf_backend  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")

N_MC = 20_000


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.beta(5.0, 2.0, N_MC), rng.beta(2.0, 5.0, N_MC)


@pytest.fixture(scope="module")
def plain() -> Templates:
    """Six bins, no nuisance at all."""
    sig, bkg = _scores()
    return templates_from_scores(sig, bkg, bins=6, staterror=False)


@pytest.fixture(scope="module")
def plain_measurement(plain: Templates) -> Measurement:
    return Measurement(plain)


# ------------------------------------------------------------------------------ templates
def test_templates_are_normalised_with_mc_variance() -> None:
    sig, bkg = _scores()
    t = templates_from_scores(sig, bkg, bins=5, expected_signal=50.0, expected_background=500.0)
    assert t.signal.sum() == pytest.approx(50.0)
    assert t.background.sum() == pytest.approx(500.0)
    counts, _ = np.histogram(sig, bins=np.linspace(0, 1, 6))
    assert t.signal_sumw2 is not None
    np.testing.assert_allclose(t.signal_sumw2, counts * (50.0 / N_MC) ** 2)
    np.testing.assert_allclose(t.edges, np.linspace(0, 1, 6))
    assert templates_from_scores(sig, bkg, staterror=False).background_sumw2 is None


def test_variations_are_shape_only_histosys_on_both_samples(full: Templates) -> None:
    down_s, up_s = full.histosys["det"]["signal"]
    down_b, up_b = full.histosys["det"]["background"]
    assert down_s.sum() == pytest.approx(100.0)
    assert up_s.sum() == pytest.approx(100.0)
    assert down_b.sum() == pytest.approx(1000.0)
    assert up_b.sum() == pytest.approx(1000.0)
    assert not np.allclose(up_b, full.background)
    assert full.normsys == {"xsec": {"signal": (0.95, 1.05)}}


def test_histogram_data_scales_to_total(plain: Templates) -> None:
    sig, bkg = _scores(seed=5)
    mix = np.concatenate([sig[:1000], bkg[:10_000]])
    data = histogram_data(mix, plain)
    assert data.sum() == pytest.approx(1100.0)
    assert histogram_data(mix, plain, expected_total=55.0).sum() == pytest.approx(55.0)


# ------------------------------------------------------------------------------ workspace
def test_workspace_validates_and_round_trips(full: Templates, full_measurement: Measurement) -> None:
    spec = build_workspace(full)
    pyhf.schema.validate(spec, "workspace.json")
    assert spec["version"] == "1.0.0"
    (channel,) = spec["channels"]
    assert channel["name"] == "score"
    assert [s["name"] for s in channel["samples"]] == ["signal", "background"]
    types = {(m["name"], m["type"]) for s in channel["samples"] for m in s["modifiers"]}
    assert {
        ("mu", "normfactor"),
        ("staterror_score", "staterror"),
        ("det", "histosys"),
        ("xsec", "normsys"),
    } <= types
    np.testing.assert_allclose(spec["observations"][0]["data"], full.signal + full.background)

    model = pyhf.Workspace(spec).model()
    assert model.config.poi_name == "mu"
    assert model.config.par_names == full_measurement.labels
    pars = model.config.suggested_init()
    np.testing.assert_allclose(model.expected_data(pars), full_measurement.expected_data(1.0))

    data = np.arange(10, dtype=float) + 1.0
    assert build_workspace(full, data, poi="mu_sig")["observations"][0]["data"] == data.tolist()


def test_shapesys_from_absolute_background_uncertainty() -> None:
    t = Templates(
        edges=[0, 0.5, 1], signal=[1.0, 5.0], background=[50.0, 10.0], background_abs_unc=[5.0, 0.0]
    )
    spec = build_workspace(t)
    (mod,) = [m for m in spec["channels"][0]["samples"][1]["modifiers"] if m["type"] == "shapesys"]
    assert mod["data"] == [5.0, 0.0]
    override = build_workspace(t, background_shapesys=[0.0, 0.0])
    assert all(m["type"] != "shapesys" for s in override["channels"][0]["samples"] for m in s["modifiers"])


def test_workspace_json_atomic_write(tmp_path: Path, plain_measurement: Measurement) -> None:
    target = tmp_path / "sub" / "ws.json"
    text = plain_measurement.workspace_json(target)
    assert json.loads(target.read_text()) == json.loads(text) == plain_measurement.workspace
    assert [p.name for p in target.parent.iterdir()] == ["ws.json"]
    ws = plain_measurement.workspace
    ws["version"] = "mutated"
    assert plain_measurement.workspace["version"] == "1.0.0"


# ------------------------------------------------------------------------------ fits
def test_asimov_fit_returns_mu_one(full_measurement: Measurement) -> None:
    res = full_measurement.fit()
    assert isinstance(res, FitResult)
    assert res.mu_hat == pytest.approx(1.0, abs=1e-3)
    assert res.mu_err > res.mu_err_stat > 0
    assert res.mu_err_syst > 0
    assert res.mu_err**2 == pytest.approx(res.mu_err_stat**2 + res.mu_err_syst**2, rel=1e-9)
    assert set(res.pulls) == {"det", "xsec", *(f"staterror_score[{i}]" for i in range(10))}
    assert all(abs(p) < 1e-3 for p in res.pulls.values())  # Asimov: nothing pulled
    n = len(res.labels)
    assert res.correlation.shape == (n, n)
    np.testing.assert_allclose(np.diag(res.correlation), 1.0, atol=1e-6)
    assert res.parameters["mu"] == res.mu_hat
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["labels"] == res.labels
    assert len(d["correlation"]) == n


def test_injected_mu_is_recovered(full_measurement: Measurement, full: Templates) -> None:
    data = np.round(full_measurement.expected_data(1.5)[: full.n_bins])
    res = full_measurement.fit(data)
    assert abs(res.mu_hat - 1.5) < res.mu_err
    assert res.mu_hat == pytest.approx(1.5, abs=0.05)


def test_stat_syst_split(plain: Templates, plain_measurement: Measurement) -> None:
    bare = plain_measurement.fit()
    assert bare.mu_err_syst == pytest.approx(0.0, abs=1e-3)
    assert bare.mu_err_stat == pytest.approx(bare.mu_err, rel=1e-6)
    assert bare.pulls == {}

    # a background shape variation that mimics the signal: degenerate with mu up to its constraint
    shape = {
        "big": {
            "background": (
                np.maximum(plain.background - 0.5 * plain.signal, 0.0),
                plain.background + 0.5 * plain.signal,
            )
        }
    }
    with_sys = Measurement(
        Templates(edges=plain.edges, signal=plain.signal, background=plain.background, histosys=shape)
    ).fit()
    assert with_sys.mu_err > bare.mu_err * 1.5
    assert with_sys.mu_err_syst > 0.2
    assert with_sys.mu_err_stat == pytest.approx(bare.mu_err, rel=1e-3)


def test_impacts_rank_the_bigger_variation_first(plain: Templates) -> None:
    ramp = np.linspace(-1.0, 1.0, plain.n_bins)
    b = plain.background
    histosys = {
        "small": {"background": (b * (1 - 0.03 * ramp), b * (1 + 0.03 * ramp))},
        "big": {"background": (b * (1 + 0.2 * ramp), b * (1 - 0.2 * ramp))},
    }
    m = Measurement(Templates(edges=plain.edges, signal=plain.signal, background=b, histosys=histosys))
    impacts = m.impacts()
    assert list(impacts) == ["big", "small"]
    big, small = impacts["big"], impacts["small"]
    assert set(big) == {"postfit_up", "postfit_down", "prefit_up", "prefit_down"}
    assert abs(big["postfit_up"]) > abs(small["postfit_up"]) > 0
    assert abs(big["prefit_up"]) > abs(small["prefit_up"]) > 0
    assert np.sign(big["postfit_up"]) == -np.sign(big["postfit_down"])


def test_shift_survives_a_migrad_failure(full: Templates, full_measurement: Measurement, monkeypatch) -> None:
    """Pseudo-data Migrad cannot fit (a fault run's attacked jets: nuisances at their bounds) used
    to abort the whole measurement; the shift now takes scipy's SLSQP best fit, with a warning.
    Reference: Migrad's own μ̂ on the same data (two independent minimisers, 2e-3)."""
    data = full.total() * np.linspace(0.7, 1.6, full.n_bins)
    good = full_measurement.shift(data)
    assert good["converged"] is True
    real = Measurement._minimize
    target = full_measurement._full_data(data)

    def failing(self, d, *, init=None, fixed=None):  # type: ignore[no-untyped-def]
        if np.array_equal(d, target) and fixed is None:
            raise pyhf.exceptions.FailedMinimization(None)
        return real(self, d, init=init, fixed=fixed)

    monkeypatch.setattr(Measurement, "_minimize", failing)
    with pytest.warns(UserWarning, match="did not converge in Migrad"):
        out = full_measurement.shift(data)
    assert out["converged"] is False
    assert out["mu_hat"] == pytest.approx(good["mu_hat"], abs=2e-3)
    tol = 2e-3 / good["sigma_mu"]
    assert out["delta_mu_over_sigma"] == pytest.approx(good["delta_mu_over_sigma"], abs=tol)
    assert abs(good["delta_mu_over_sigma"]) > 1  # a real shift, not the reference


def _hard_fit() -> tuple[Templates, np.ndarray]:
    spec = json.loads((Path(__file__).parent / "data" / "hard_fit.json").read_text())
    arr = {
        k: np.asarray(spec[k]) for k in ("edges", "signal", "background", "signal_sumw2", "background_sumw2")
    }
    histosys = {
        n: {smp: (np.asarray(d), np.asarray(u)) for smp, (d, u) in v.items()}
        for n, v in spec["histosys"].items()
    }
    normsys = {n: {smp: (lo, hi) for smp, (lo, hi) in v.items()} for n, v in spec["normsys"].items()}
    return Templates(**arr, histosys=histosys, normsys=normsys), np.asarray(spec["data"])


def test_fit_of_pseudo_data_at_the_nuisance_bounds_converges(monkeypatch) -> None:
    """A real case (PGD-attacked jets): Migrad from the nominal start failed after 400 000 calls
    (130 s) and retried the same start; the ladder now caps the cold start at Minuit's default
    call limit and restarts Migrad at scipy's SLSQP best fit, which converges.
    Reference: pyhf's scipy fit on the same data (an independent minimiser, 1e-3)."""
    templates, data = _hard_fit()
    m = Measurement(templates)
    full = m._full_data(data)
    config = m.model.config
    with pyhf_backend("scipy") as ph:
        ref = np.asarray(
            ph.infer.mle.fit(
                full,
                m.model,
                init_pars=config.suggested_init(),
                par_bounds=config.suggested_bounds(),
                fixed_params=config.suggested_fixed(),
            )
        )
    labels = m.labels
    assert ref[labels.index("jes")] == pytest.approx(5.0)  # a nuisance at its bound: the hard case
    starts: list[list[float]] = []
    real = Measurement._slsqp

    def counting(self, d, init, fixed):  # type: ignore[no-untyped-def]
        starts.append(real(self, d, init, fixed))
        return starts[-1]

    monkeypatch.setattr(Measurement, "_slsqp", counting)
    values, errors, _, _ = m._minimize(full)
    assert len(starts) == 1  # the capped cold start failed, the SLSQP start converged
    assert values[labels.index("mu")] == pytest.approx(ref[labels.index("mu")], abs=1e-3)
    assert np.isfinite(errors).all()
    assert errors[labels.index("mu")] > 0


def test_shift_with_extra_signal(plain: Templates, plain_measurement: Measurement) -> None:
    reference = plain.total()
    same = plain_measurement.shift(reference)
    assert same["delta_mu"] == 0.0
    assert same["delta_mu_over_sigma"] == 0.0
    assert plain_measurement.shift(reference, reference=reference)["delta_mu"] == 0.0

    attacked = reference + 0.5 * plain.signal  # extra signal-like counts
    out = plain_measurement.shift(attacked)
    keys = {"mu_hat", "mu_hat_reference", "delta_mu", "sigma_mu", "delta_mu_over_sigma", "converged"}
    assert set(out) == keys
    assert out["converged"] is True
    assert out["delta_mu"] == pytest.approx(0.5, abs=0.01)
    assert out["delta_mu_over_sigma"] > 0
    assert out["delta_mu_over_sigma"] == pytest.approx(out["delta_mu"] / out["sigma_mu"])


def test_poi_bounds_allow_negative_mu_while_expectations_stay_positive(plain: Templates) -> None:
    m = Measurement(plain)
    lo, hi = m.model.config.suggested_bounds()[m.model.config.poi_index]
    has_sig = plain.signal > 0
    assert lo == pytest.approx(max(-10.0, -0.9 * np.min(plain.background[has_sig] / plain.signal[has_sig])))
    assert lo < 0
    assert hi == 20.0
    assert m.fit(plain.background).mu_hat == pytest.approx(0.0, abs=1e-3)
    wide = Templates(edges=[0, 0.5, 1], signal=[5.0, 10.0], background=[500.0, 100.0])
    res = Measurement(wide).fit([500.0, 90.0])
    assert res.mu_hat == pytest.approx(-1.0, abs=0.05)
    with pytest.raises(ValueError, match="poi_bounds"):
        Measurement(wide, poi_bounds=(2.0, 5.0))


def test_coverage_fast_output(plain_measurement: Measurement) -> None:
    out = plain_measurement.coverage(n_toys=30, seed=3)
    assert set(out) == {
        "coverage",
        "coverage_error",
        "coverage_converged",
        "mean_pull",
        "mean_pull_error",
        "pull_std",
        "n_toys",
        "n_failed",
        "n_at_bound",
        "mu_true",
        "sigma_asimov",
        "warnings",
    }
    assert out["coverage_error"] == pytest.approx(math.sqrt(out["coverage"] * (1 - out["coverage"]) / 30))
    assert 0.0 <= out["coverage"] <= 1.0
    assert out["n_toys"] == 30
    assert 0 <= out["n_failed"] <= 30
    assert math.isfinite(out["mean_pull"])
    assert out["pull_std"] > 0
    assert plain_measurement.coverage(n_toys=30, seed=3) == out  # seeded


def test_toy_aux_data_layout(full_measurement: Measurement) -> None:
    toys = full_measurement._sample_toys(np.random.default_rng(0), 1.0, 2000)
    n = full_measurement.n_bins
    expected = full_measurement.expected_data(1.0)
    assert toys.shape == (2000, expected.shape[0])
    # means within 5 standard errors (Poisson main counts; aux widths below 1)
    tol = 5.0 * np.sqrt(np.maximum(expected, 1.0) / 2000)
    assert np.all(np.abs(toys.mean(axis=0) - expected) < tol)
    assert np.all(toys[:, :n] == np.round(toys[:, :n]))


def test_toy_data_spread(full_measurement: Measurement, full: Templates) -> None:
    """The spread of the simulated main and auxiliary data, from the templates (not from pyhf).

    Main counts are Poisson (standard deviation √ν); the histosys and normsys auxiliary data
    are unit Gaussians around 0; each staterror γ is Gaussian around 1 with the relative
    Monte-Carlo error √(Σw²_s + Σw²_b) / (s + b) of its bin. 20 000 toys: the standard
    error of a standard deviation is 0.5 %, tolerance 3 %.
    """
    n_toys = 20_000
    toys = full_measurement._sample_toys(np.random.default_rng(1), 1.0, n_toys)
    n = full.n_bins
    assert full.signal_sumw2 is not None
    assert full.background_sumw2 is not None
    nu = full.signal + full.background  # μ = 1, nominal nuisances
    np.testing.assert_allclose(toys[:, :n].mean(axis=0), nu, rtol=0.03)
    np.testing.assert_allclose(toys[:, :n].std(axis=0), np.sqrt(nu), rtol=0.03)
    gamma_width = np.sqrt(full.signal_sumw2 + full.background_sumw2) / nu
    assert full_measurement._model.config.auxdata_order == ["det", "xsec", "staterror_score"]
    expected_mean = np.r_[0.0, 0.0, np.ones(n)]
    expected_std = np.r_[1.0, 1.0, gamma_width]
    aux = toys[:, n:]
    assert np.all(np.abs(aux.mean(axis=0) - expected_mean) < 5 * expected_std / np.sqrt(n_toys))
    np.testing.assert_allclose(aux.std(axis=0), expected_std, rtol=0.03)
    # the auxiliary measurements are independent of each other and of the main counts
    corr = np.asarray(np.corrcoef(toys, rowvar=False))
    assert np.abs(corr - np.eye(len(corr))).max() < 0.04  # 5.7 standard errors of a correlation


def test_shapesys_toy_aux_data_is_poisson_with_tau() -> None:
    """shapesys auxiliary data are Poisson(τ) counts with τ = (b/σ)² (pyhf's Barlow-Beeston-lite)."""
    t = Templates(
        edges=[0, 0.5, 1], signal=[1.0, 5.0], background=[50.0, 10.0], background_abs_unc=[5.0, 2.0]
    )
    toys = Measurement(t)._sample_toys(np.random.default_rng(2), 1.0, 20_000)
    tau = (np.array([50.0, 10.0]) / np.array([5.0, 2.0])) ** 2  # 100, 25
    aux = toys[:, 2:]
    assert aux.shape[1] == 2
    assert np.all(aux == np.round(aux))
    np.testing.assert_allclose(aux.mean(axis=0), tau, rtol=0.01)  # standard error 0.1 % and 0.2 %
    np.testing.assert_allclose(aux.var(axis=0), tau, rtol=0.05)  # standard error 1 %


@pytest.mark.slow
def test_coverage_is_68_percent(full_measurement: Measurement) -> None:
    """Smoke test of the full 10-bin model (staterror, histosys): 120 toys.

    The powerful coverage check is test_coverage_with_systematic_comparable_to_statistics
    (1000 toys); this one only guards the full model's toy loop (binomial standard error
    0.043 at 120 toys, tolerance 0.12 ≈ 2.8σ).
    """
    out = full_measurement.coverage(n_toys=120, seed=11)
    assert out["n_failed"] <= 2
    assert out["coverage"] == pytest.approx(0.683, abs=0.12)
    # HESSE errors grow with mu_hat (Poisson), so the mean pull is slightly negative
    # (-0.12 ± 0.03 measured with 1000 toys); 120 toys give a standard error of 0.09.
    assert abs(out["mean_pull"]) < 0.4
    assert out["pull_std"] == pytest.approx(1.0, abs=0.2)


@pytest.mark.slow
def test_coverage_with_systematic_comparable_to_statistics() -> None:
    """1000 toys of a 2-bin fit whose rate systematic (σ_syst 0.150) exceeds σ_stat (0.129).

    The interval μ̂ ± σ covers μ = 1 in 68.3 % of the toys only when the auxiliary data of
    the nuisance are fluctuated with the right width: unfluctuated aux data would give
    P(|Z| < σ_tot/σ_stat) ≈ 0.88, an aux width of 0.5 gives ≈ 0.82. Measured with four seeds
    of 1000 toys: 0.682, 0.673, 0.691, 0.669 (mean 0.679 ± 0.007, 4000 toys); pull width
    1.02-1.03; mean pull -0.06 … -0.16 (HESSE errors grow with μ̂). 1000 toys: standard
    error 0.015, tolerance 0.04, so that a 0.03 over- or under-coverage is a 2σ effect and 0.05
    fails. About 13 s of CPU (12.5 ms per pyhf fit).
    """
    sig, bkg = _scores()
    t = templates_from_scores(
        sig,
        bkg,
        bins=2,
        expected_signal=100.0,
        expected_background=400.0,
        staterror=False,
        normsys={"xsec": {"signal": (0.85, 1.15)}},
    )
    m = Measurement(t)
    fit = m.fit(m.expected_data(1.0))
    assert fit.mu_err_stat == pytest.approx(0.129, abs=0.002)
    assert fit.mu_err_syst == pytest.approx(0.150, abs=0.002)
    out = m.coverage(n_toys=1000, seed=1)
    assert out["n_failed"] == 0
    assert out["coverage"] == pytest.approx(0.6827, abs=0.04)
    assert out["pull_std"] == pytest.approx(1.0, abs=0.07)  # standard error 0.022
    assert -0.25 < out["mean_pull"] < 0.05


def test_pyhf_backend_is_restored(plain_measurement: Measurement) -> None:
    pyhf.set_backend("numpy", "scipy")
    before = pyhf.get_backend()
    plain_measurement.fit()
    after = pyhf.get_backend()
    assert after[0].name == before[0].name
    assert after[1].name == "scipy"
    pyhf.set_backend("numpy")


# ------------------------------------------------------------------------------ bad input
def test_bad_templates() -> None:
    with pytest.raises(ValueError, match="negative"):
        Templates(edges=[0, 1], signal=[-1.0], background=[10.0])
    with pytest.raises(ValueError, match="NaN"):
        Templates(edges=[0, 1], signal=[np.nan], background=[10.0])
    with pytest.raises(ValueError, match="2 bins but the templates have 1"):
        Templates(edges=[0, 1], signal=[1.0, 2.0], background=[10.0])
    with pytest.raises(ValueError, match="increasing"):
        Templates(edges=[1, 0], signal=[1.0], background=[10.0])
    with pytest.raises(ValueError, match="neither signal nor background"):
        Templates(edges=[0, 0.5, 1], signal=[1.0, 0.0], background=[10.0, 0.0])
    with pytest.raises(ValueError, match="histosys 'x'/background up has 3 bins"):
        Templates(
            edges=[0, 0.5, 1],
            signal=[1.0, 2.0],
            background=[5.0, 6.0],
            histosys={"x": {"background": ([5.0, 6.0], [5.0, 6.0, 7.0])}},
        )
    with pytest.raises(ValueError, match="unknown sample"):
        Templates(edges=[0, 1], signal=[1.0], background=[5.0], normsys={"n": {"data": (0.9, 1.1)}})
    with pytest.raises(ValueError, match="> 0"):
        Templates(edges=[0, 1], signal=[1.0], background=[5.0], normsys={"n": {"signal": (0.0, 1.1)}})
    with pytest.raises(ValueError, match="reserved"):
        Templates(
            edges=[0, 1], signal=[1.0], background=[5.0], normsys={"staterror_score": {"signal": (0.9, 1.1)}}
        )
    with pytest.raises(ValueError, match="background_abs_unc"):
        Templates(edges=[0, 1], signal=[1.0], background=[5.0], background_abs_unc=[-1.0])


def test_bad_scores() -> None:
    sig, bkg = _scores()
    with pytest.raises(ValueError, match="scores_signal is empty"):
        templates_from_scores([], bkg)
    with pytest.raises(ValueError, match="NaN"):
        templates_from_scores(np.r_[sig[:10], np.nan], bkg)
    with pytest.raises(ValueError, match="outside the binning range"):
        templates_from_scores(sig - 0.5, bkg)
    with pytest.raises(ValueError, match="expected_signal"):
        templates_from_scores(sig, bkg, expected_signal=-1.0)
    with pytest.raises(ValueError, match="variation 'v'"):
        templates_from_scores(sig, bkg, variations={"v": (sig, bkg)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="v background up is empty"):
        templates_from_scores(sig, bkg, variations={"v": ((sig, bkg), (sig, []))})


def test_bad_data(plain: Templates, plain_measurement: Measurement) -> None:
    with pytest.raises(ValueError, match="6 bins"):
        plain_measurement.fit([1.0, 2.0])
    with pytest.raises(ValueError, match="negative counts"):
        plain_measurement.fit(-plain.total())
    with pytest.raises(ValueError, match="NaN"):
        plain_measurement.shift(np.full(plain.n_bins, np.nan))
    with pytest.raises(ValueError, match="6 bins"):
        build_workspace(plain, [1.0])
    with pytest.raises(ValueError, match="empty"):
        histogram_data([], plain)
    with pytest.raises(ValueError, match="clashes"):
        build_workspace(plain, poi="staterror_score")
    with pytest.raises(ValueError, match="n_toys"):
        plain_measurement.coverage(n_toys=0)
