"""Tests that kill surviving mutants of ``aalearn.inference.measurement`` (issue 23, tools/mutation.py).

The references are closed forms of a one-bin counting experiment, where the maximum-likelihood
fit is exact: with signal s, background b and n observed events, μ̂ = (n − b)/s and the HESSE
error is √n/s. With a normsys factor b·k^α (lo = 1/k, so the interpolation is k^α on both sides)
the Fisher information on the Asimov data gives σ_tot = √(λ + c²)/s with c = b ln k, hence
σ_stat = √λ/s and σ_syst = c/s (λ = s + b); with α fixed at ±1 the fit gives μ̂ = (n − b k^{±1})/s.
Minuit's numerical HESSE and convergence agree with these to about 1e-4 with one parameter and
0.1 % with three; the tolerances (1e-3 to 3e-3 relative) are stated at each assertion.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pyhf = pytest.importorskip("pyhf")

import aalearn.inference.measurement as measurement_module  # noqa: E402
from aalearn.inference import Measurement, Templates  # noqa: E402
from aalearn.inference.measurement import FitResult, MeasurementResult  # noqa: E402

S, B = 40.0, 100.0


class _Recorder:
    """A ReportBuilder that records the sections added to it."""

    def __init__(self) -> None:
        self.sections: list[dict[str, Any]] = []

    def add_section(
        self,
        title: str,
        *,
        text: str | None = None,
        table: Any = None,
        figures: Any = (),
        anchor: str | None = None,
    ) -> None:
        self.sections.append({"title": title, "text": text, "table": table, "figures": list(figures)})

    def add_metadata(self, key: str, value: Any) -> None:  # pragma: no cover - not used here
        pass


def _one_bin(k: float | None = None, k2: float | None = None) -> Measurement:
    normsys: dict[str, dict[str, tuple[float, float]]] = {}
    if k is not None:
        normsys["x_bkg"] = {"background": (1 / k, k)}
    if k2 is not None:
        normsys["a_sig"] = {"signal": (1 / k2, k2)}
    return Measurement(
        Templates(edges=np.array([0.0, 1.0]), signal=np.array([S]), background=np.array([B]), normsys=normsys)
    )


def test_one_bin_fit_and_shift_match_closed_forms() -> None:
    m = _one_bin()
    res = m.fit([160.0])
    assert res.mu_hat == pytest.approx((160 - B) / S, rel=1e-3)
    assert res.mu_err == pytest.approx(math.sqrt(160) / S, rel=1e-3)
    assert res.mu_err_stat == res.mu_err
    assert res.mu_err_syst == 0.0
    assert res.labels == m.labels == ["mu"]
    assert res.parameters == {"mu": pytest.approx(1.5, rel=1e-3)}
    assert res.uncertainties == {"mu": pytest.approx(res.mu_err, rel=1e-12)}
    np.testing.assert_allclose(res.correlation, [[1.0]], atol=1e-9)
    # -2 ln L at the best fit = -2 ln Pois(n | n)
    assert res.twice_nll == pytest.approx(-2 * (160 * math.log(160) - 160 - math.lgamma(161)), rel=1e-6)
    sh = m.shift([120.0])
    sigma = math.sqrt(S + B) / S  # the Asimov reference fit
    assert sh == {
        "mu_hat": pytest.approx(0.5, rel=1e-3),
        "mu_hat_reference": pytest.approx(1.0, rel=1e-3),
        "delta_mu": pytest.approx(-0.5, rel=1e-3),
        "sigma_mu": pytest.approx(sigma, rel=1e-3),
        "delta_mu_over_sigma": pytest.approx(-0.5 / sigma, rel=2e-3),
        "converged": True,
    }
    np.testing.assert_allclose(m.expected_data(2.0), [2 * S + B], rtol=1e-12)
    full = m.workspace_json()
    assert json.loads(full) == m.workspace
    assert full.endswith("}\n")


def test_normsys_split_pulls_and_impacts_match_fisher_information(tmp_path: Path) -> None:
    k, k2 = 1.2, 1.05
    m = _one_bin(k, k2)
    res = m.fit()
    labels = m.labels

    def yields(mu: float, a_b: float, a_s: float) -> float:
        # pyhf's own model (its normsys interpolation is a polynomial for |alpha| < 1)
        pars = {"mu": mu, "x_bkg": a_b, "a_sig": a_s}
        return float(m.model.expected_actualdata([pars[lab] for lab in labels])[0])

    lam, h = S + B, 1e-6
    c = (yields(1, h, 0) - yields(1, -h, 0)) / (2 * h)
    c2 = (yields(1, 0, h) - yields(1, 0, -h)) / (2 * h)
    # Fisher information of (mu, a_b, a_s) on the Asimov data; its inverse gives the HESSE errors
    g = np.array([S, c, c2])
    cov = np.linalg.inv(np.outer(g, g) / lam + np.diag([0.0, 1.0, 1.0]))
    assert res.mu_hat == pytest.approx(1.0, abs=1e-4)
    # Minuit's HESSE of bounded parameters (a transformed scale) agrees with the Fisher matrix to ~0.1 %
    assert res.mu_err == pytest.approx(math.sqrt(cov[0, 0]), rel=3e-3)
    assert res.mu_err_stat == pytest.approx(math.sqrt(lam) / S, rel=1e-3)
    assert res.mu_err_syst == pytest.approx(math.sqrt(cov[0, 0] - lam / S**2), rel=3e-3)
    assert res.pulls == {"x_bkg": pytest.approx(0.0, abs=1e-3), "a_sig": pytest.approx(0.0, abs=1e-3)}
    assert set(res.parameters) == {"mu", "x_bkg", "a_sig"}
    # impacts: with alpha fixed the one-bin fit is exact, mu = (n - b(alpha)) / (s f(alpha))
    imp = m.impacts()
    assert list(imp) == ["x_bkg", "a_sig"]  # the larger impact first (not alphabetical)

    def mu_fixed(a_b: float, a_s: float) -> float:
        b_a = yields(0, a_b, a_s)
        return (lam - b_a) / (yields(1, a_b, a_s) - b_a)

    # abs 5e-4 = 0.1 % of sigma_mu: Migrad stops at its EDM goal, not at the exact minimum
    tol = 5e-4
    assert imp["x_bkg"]["prefit_up"] == pytest.approx((lam - B * k) / S - 1.0, abs=tol)
    assert imp["x_bkg"]["prefit_down"] == pytest.approx((lam - B / k) / S - 1.0, abs=tol)
    assert imp["a_sig"]["prefit_up"] == pytest.approx(1 / k2 - 1.0, abs=tol)
    assert imp["a_sig"]["prefit_down"] == pytest.approx(k2 - 1.0, abs=tol)
    for name, idx in (("x_bkg", 1), ("a_sig", 2)):
        sig_a = math.sqrt(cov[idx, idx])
        # 1 %: mu and the signal normsys are almost degenerate, which makes HESSE less precise
        assert res.uncertainties[name] == pytest.approx(sig_a, rel=1e-2)
        for key, sign in (("postfit_up", 1.0), ("postfit_down", -1.0)):
            a = sign * res.uncertainties[name]
            ref = mu_fixed(a, 0.0) if name == "x_bkg" else mu_fixed(0.0, a)
            assert imp[name][key] == pytest.approx(ref - 1.0, abs=tol), (name, key)
    # the workspace file is written where asked
    out = tmp_path / "sub" / "ws.json"
    text = m.workspace_json(out)
    assert out.read_text() == text


def test_coverage_of_a_one_bin_experiment_matches_the_analytic_pulls() -> None:
    m = _one_bin()
    n_toys, seed = 40, 3
    res = m.coverage(n_toys=n_toys, mu_true=1.0, seed=seed)
    # the same toys: Poisson(s + b) drawn first from the generator (no auxiliary data)
    n = np.random.default_rng(seed).poisson(S + B, size=(n_toys, 1))[:, 0].astype(float)
    pulls = ((n - B) / S - 1.0) / (np.sqrt(n) / S)
    cover = np.mean(np.abs(pulls) <= 1.0)
    assert res["coverage"] == pytest.approx(cover, abs=1e-12)
    assert res["coverage_converged"] == pytest.approx(cover, abs=1e-12)
    assert res["coverage_error"] == pytest.approx(math.sqrt(cover * (1 - cover) / n_toys), rel=1e-12)
    assert res["mean_pull"] == pytest.approx(pulls.mean(), abs=2e-3)
    assert res["pull_std"] == pytest.approx(pulls.std(ddof=1), rel=2e-3)
    assert res["mean_pull_error"] == pytest.approx(pulls.std(ddof=1) / math.sqrt(n_toys), rel=2e-3)
    assert (res["n_toys"], res["n_failed"], res["n_at_bound"], res["mu_true"]) == (40.0, 0.0, 0.0, 1.0)
    assert res["sigma_asimov"] == pytest.approx(math.sqrt(S + B) / S, rel=1e-3)
    assert res["warnings"] == []


def test_coverage_counts_fits_at_the_bound_and_warns() -> None:
    # mu_true = 0 with the lower bound at 0: about half of the toys end on the bound
    m = Measurement(
        Templates(edges=np.array([0.0, 1.0]), signal=np.array([S]), background=np.array([B])),
        poi_bounds=(0.0, 50.0),
    )
    with pytest.warns(UserWarning, match="true μ = 0 lies 0.00 σ_μ"):
        res = m.coverage(n_toys=30, mu_true=0.0, seed=1)
    n = np.random.default_rng(1).poisson(B, size=30)
    assert res["n_at_bound"] == float(np.sum(n <= B))  # n <= b: mu_hat = 0, the bound
    assert any("lower bound 0" in w for w in res["warnings"])
    assert res["n_failed"] == 0.0


def test_sample_toys_draws_main_and_auxiliary_data_in_pyhf_order() -> None:
    k = 1.2
    t = Templates(
        edges=np.array([0.0, 1.0, 2.0]),
        signal=np.array([10.0, 30.0]),
        background=np.array([100.0, 50.0]),
        signal_sumw2=np.array([4.0, 9.0]),
        background_sumw2=np.array([25.0, 16.0]),
        normsys={"x_bkg": {"background": (1 / k, k)}},
        background_abs_unc=np.array([10.0, 5.0]),
    )
    m = Measurement(t)
    toys = m._sample_toys(np.random.default_rng(0), 2.0, 5)
    rng = np.random.default_rng(0)
    main = rng.poisson([2 * 10.0 + 100.0, 2 * 30.0 + 50.0], size=(5, 2))
    np.testing.assert_array_equal(toys[:, :2], main)
    cfg = m.model.config
    col = 2
    for name in cfg.auxdata_order:
        if name == "x_bkg":
            ref = rng.normal([0.0], [1.0], size=(5, 1))
        elif name == "staterror_score":
            rel = np.sqrt([4.0 + 25.0, 9.0 + 16.0]) / np.array([110.0, 80.0])  # combined per bin
            ref = rng.normal([1.0, 1.0], rel, size=(5, 2))
        else:  # shapesys: Poisson(tau) with tau = (b / sigma)^2
            tau = (np.array([100.0, 50.0]) / np.array([10.0, 5.0])) ** 2
            ref = rng.poisson(tau, size=(5, 2)).astype(float)
        np.testing.assert_allclose(toys[:, col : col + ref.shape[1]], ref, rtol=1e-12)
        col += ref.shape[1]
    assert toys.shape == (5, col) == (5, 2 + int(cfg.nauxdata))


def test_fit_result_dict_summary_and_report() -> None:
    r = FitResult(
        1.1,
        0.3,
        0.2,
        0.22,
        {"mu": 1.1, "a": 0.1},
        {"mu": 0.3, "a": 0.9},
        {"a": 0.1},
        np.array([[1.0, 0.5], [0.5, 1.0]]),
        ["mu", "a"],
        12.5,
        ["w"],
    )
    assert r.to_dict() == {
        "mu_hat": 1.1,
        "mu_err": 0.3,
        "mu_err_stat": 0.2,
        "mu_err_syst": 0.22,
        "parameters": {"mu": 1.1, "a": 0.1},
        "uncertainties": {"mu": 0.3, "a": 0.9},
        "pulls": {"a": 0.1},
        "correlation": [[1.0, 0.5], [0.5, 1.0]],
        "labels": ["mu", "a"],
        "twice_nll": 12.5,
        "warnings": ["w"],
    }
    assert r.summary() == [{"mu_hat": 1.1, "mu_err": 0.3, "mu_err_stat": 0.2, "mu_err_syst": 0.22}]
    rep = _Recorder()
    r.add_to(rep)
    assert [s["title"] for s in rep.sections] == ["Fit", "Pulls"]
    assert rep.sections[0]["table"] == r.summary()[0]
    assert rep.sections[1]["table"] == [{"nuisance": "a", "pull": 0.1}]
    assert "Minuit" in rep.sections[0]["text"]
    assert "σ_prior" in rep.sections[1]["text"]


def test_measurement_result_report_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("plot_templates", "plot_impacts", "plot_shifts"):
        monkeypatch.setattr(measurement_module, name, lambda *a, _n=name: (_n, a))
    data = {
        "mu_hat": 1.0,
        "mu_err": 0.2,
        "mu_err_stat": 0.1,
        "mu_err_syst": 0.17,
        "z_asimov": 3.0,
        "pulls": {"a": 0.5},
        "histosys": {"v": {"kind": "two-sided", "warnings": ["x"], "method": "none"}},
        "warnings": ["careful"],
        "coverage": {"coverage": 0.7, "warnings": []},
        "impacts": {"a": {"postfit_up": 0.1}},
        "shifts": {"attacked": {"delta_mu": 0.3}},
        "seconds": 2.0,
    }
    r = MeasurementResult(data, templates="T")  # type: ignore[arg-type]
    assert r.to_dict() is data
    assert r.summary() == [
        {
            "mu_hat": 1.0,
            "mu_err": 0.2,
            "mu_err_stat": 0.1,
            "mu_err_syst": 0.17,
            "z_asimov": 3.0,
            "seconds": 2.0,
        }
    ]
    rep = _Recorder()
    r.add_to(rep)
    s = {x["title"]: x for x in rep.sections}
    assert list(s) == [
        "Fit",
        "Pulls",
        "Shape systematics",
        "Warnings",
        "Coverage of the μ interval",
        "Impacts",
        "Shifts of the measurement",
    ]
    assert s["Fit"]["table"] == {
        "mu_hat": 1.0,
        "mu_err": 0.2,
        "mu_err_stat": 0.1,
        "mu_err_syst": 0.17,
        "z_asimov": 3.0,
    }
    assert s["Fit"]["figures"] == [("plot_templates", ("T",))]
    assert s["Pulls"]["table"] == [{"nuisance": "a", "pull": 0.5}]
    assert s["Shape systematics"]["table"] == [{"variation": "v", "kind": "two-sided", "method": "none"}]
    assert s["Warnings"]["table"] == [{"warning": "careful"}]
    assert s["Coverage of the μ interval"]["table"] == {"coverage": 0.7}
    assert s["Impacts"]["table"] == [{"nuisance": "a", "postfit_up": 0.1}]
    assert s["Impacts"]["figures"] == [("plot_impacts", ({"a": {"postfit_up": 0.1}},))]
    assert s["Shifts of the measurement"]["table"] == [{"pseudo-data": "attacked", "delta_mu": 0.3}]
    assert s["Shifts of the measurement"]["figures"] == [("plot_shifts", ({"attacked": {"delta_mu": 0.3}},))]
    for title, words in (
        ("Fit", "σ_syst"),
        ("Pulls", "Asimov"),
        ("Shape systematics", "Each modelling variation: its kind"),
        ("Warnings", "Problems"),
        ("Coverage of the μ interval", "binomial"),
        ("Impacts", "θ̂ ± σ_θ̂"),
        ("Shifts of the measurement", "Δμ̂/σ_μ"),
    ):
        assert words in s[title]["text"], title
    bare = _Recorder()
    MeasurementResult(
        {k: data[k] for k in ("mu_hat", "mu_err", "mu_err_stat", "mu_err_syst", "z_asimov")}, templates=None
    ).add_to(bare)
    assert [x["title"] for x in bare.sections] == ["Fit"]
    assert bare.sections[0]["figures"] == []


def test_fit_at_the_poi_bound_reports_the_warning_in_the_result() -> None:
    m = Measurement(
        Templates(edges=np.array([0.0, 1.0]), signal=np.array([S]), background=np.array([B])),
        poi_bounds=(0.0, 50.0),
    )
    with pytest.warns(UserWarning, match="lies 0.00 σ_μ"):
        res = m.fit(np.array([B - 5.0]))  # mu_hat would be negative: it stops at the bound 0
    assert res.mu_hat == pytest.approx(0.0, abs=1e-3)
    assert len(res.warnings) == 1
    assert res.warnings[0].startswith("the fitted μ̂ = ")
    assert "POI lower bound 0" in res.warnings[0]
