"""Histosys hygiene (one-sided/asymmetric variations, template statistics), POI bounds and failed toy fits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pyhf = pytest.importorskip("pyhf")

from aalearn.inference import Measurement, Templates, templates_from_scores  # noqa: E402
from aalearn.inference.systematics import (  # noqa: E402
    classify_histosys,
    treat_histosys,
    variation_significance,
)

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")

N_MC = 20_000


def _scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.beta(5.0, 2.0, N_MC), rng.beta(2.0, 5.0, N_MC)


def _templates(kind: str) -> Templates:
    """Five bins, a 10 % background normsys and optionally a pT-scale-like background shape variation.

    ``one-sided``: the background scores × 1.06 as both up and down (the same events
    re-processed, as the constituent-pT × 1.03 variation of issue 17); ``two-sided``:
    × 0.94 down and × 1.06 up.
    """
    sig, bkg = _scores()
    up = np.clip(bkg * 1.06, 0.0, 1.0)
    down = np.clip(bkg * 0.94, 0.0, 1.0)
    variations = {
        "none": None,
        "one-sided": {"ptscale": ((sig, up), (sig, up))},
        "two-sided": {"ptscale": ((sig, down), (sig, up))},
    }[kind]
    return templates_from_scores(
        sig, bkg, bins=5, variations=variations, staterror=False, normsys={"bn": {"background": (0.9, 1.1)}}
    )


def _quiet(templates: Templates, **kw: str) -> Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Measurement(templates, **kw)


# ------------------------------------------------------------------------------ detection
def test_classification_mirror_and_symmetrisation_values() -> None:
    nom = np.array([50.0, 30.0, 20.0])
    shift = np.array([5.0, -2.0, -3.0])
    t = Templates(
        edges=[0.0, 1.0, 2.0, 3.0],
        signal=[1.0, 2.0, 3.0],
        background=nom,
        histosys={
            "same": {"background": (nom + shift, nom + shift)},  # one-sided: up = down
            "nodown": {"background": (nom, nom + shift)},  # one-sided: down = nominal
            "sym": {"background": (nom - shift, nom + shift)},  # two-sided
            "asym": {"background": (nom - 0.2 * shift, nom + shift)},  # strongly asymmetric
            # equal sizes, far from mirror images (pT × 0.97 / × 1.03 on the challenge set-up)
            "skew": {"background": (nom + np.array([-3.0, -4.0, 2.0]), nom + shift)},
        },
    )
    kinds = classify_histosys(t)
    assert {k: v["kind"] for k, v in kinds.items()} == {
        "same": "one-sided",
        "nodown": "one-sided",
        "sym": "two-sided",
        "asym": "asymmetric",
        "skew": "asymmetric",
    }
    # independent computation of the even/odd ratio in σ = √(s + b) units
    sigma = np.sqrt(nom + np.array([1.0, 2.0, 3.0]))
    u, d = shift / sigma, np.array([-3.0, -4.0, 2.0]) / sigma
    assert kinds["skew"]["even_odd_ratio"] == pytest.approx(np.linalg.norm(u + d) / np.linalg.norm(u - d))
    assert kinds["skew"]["cosine"] == pytest.approx(u @ d / np.linalg.norm(u) / np.linalg.norm(d))
    assert kinds["same"]["cosine"] == pytest.approx(1.0)
    assert kinds["sym"]["cosine"] == pytest.approx(-1.0)
    with pytest.warns(UserWarning, match="'same' is one-sided"):
        fixed, info = treat_histosys(t)
    # mirroring: down = 2·nominal − up
    np.testing.assert_allclose(fixed.histosys["same"]["background"][0], 2 * nom - (nom + shift))
    np.testing.assert_allclose(fixed.histosys["same"]["background"][1], nom + shift)
    np.testing.assert_allclose(fixed.histosys["nodown"]["background"][0], nom - shift)
    # symmetrisation: δ = (up − down)/2 = 0.6·shift
    np.testing.assert_allclose(fixed.histosys["asym"]["background"][1], nom + 0.6 * shift)
    np.testing.assert_allclose(fixed.histosys["asym"]["background"][0], nom - 0.6 * shift)
    # two-sided variations are untouched
    np.testing.assert_array_equal(fixed.histosys["sym"]["background"][0], nom - shift)
    assert {k: v["method"] for k, v in info.items()} == {
        "same": "mirror",
        "nodown": "mirror",
        "sym": "none",
        "asym": "symmetrize",
        "skew": "symmetrize",
    }
    assert info["sym"]["warnings"] == []
    unchanged, info_none = treat_histosys(t, "none", warn=False)
    np.testing.assert_array_equal(unchanged.histosys["same"]["background"][0], nom + shift)
    assert info_none["same"]["method"] == "none"
    assert info_none["same"]["warnings"]
    with pytest.raises(ValueError, match="histosys method"):
        treat_histosys(t, "smooth")


def test_mirrored_yields_stay_non_negative() -> None:
    t = Templates(
        edges=[0.0, 1.0, 2.0],
        signal=[1.0, 1.0],
        background=[1.0, 9.0],
        histosys={"big": {"background": ([3.0, 7.0], [3.0, 7.0])}},
    )
    fixed, _ = treat_histosys(t, warn=False)
    np.testing.assert_allclose(fixed.histosys["big"]["background"][0], [0.0, 11.0])


def test_significance_test_against_template_statistics() -> None:
    """χ² of a pure-noise variation follows its ndf; a real shift is highly significant."""
    rng = np.random.default_rng(5)
    sig, bkg = _scores()
    noise = rng.beta(2.0, 5.0, N_MC)  # an independent sample of the same distribution
    pvals = []
    for seed in range(40):
        r = np.random.default_rng(seed)
        a, b = r.beta(2.0, 5.0, 4000), r.beta(2.0, 5.0, 4000)
        t = templates_from_scores(sig, a, bins=6, variations={"v": ((sig, b), (sig, b))})
        pvals.append(variation_significance(t)["v"]["p_up"])
    # p-values of a true null are uniform: mean 0.5 ± 0.29/√40 (5 standard errors: ±0.23)
    assert abs(np.mean(pvals) - 0.5) < 0.23
    t = templates_from_scores(
        sig, bkg, bins=6, variations={"v": ((sig, noise), (sig, np.clip(bkg * 1.06, 0, 1)))}
    )
    s = variation_significance(t)["v"]
    assert s["ndf_up"] == 5  # the signal is not varied: only the background's 6 − 1
    assert s["ndf_down"] == 5
    assert s["p_up"] < 1e-6
    assert s["p_down"] > 1e-3  # pure noise
    # the noise-only variation warns that it is compatible with noise
    t_noise = templates_from_scores(sig, bkg, bins=6, variations={"n": ((sig, noise), (sig, noise))})
    with pytest.warns(UserWarning, match="compatible with statistical noise"):
        treat_histosys(t_noise)


# --------------------------------------------------------------------------- fit effects
def test_one_sided_variation_widens_sigma_mu() -> None:
    """The old treatment (as given, code4p) leaves σ_μ at the no-variation value; mirroring widens it."""
    sigma_none = _quiet(_templates("none")).fit().mu_err
    sigma_old = _quiet(_templates("one-sided"), histosys="none").fit().mu_err
    sigma_new = _quiet(_templates("one-sided")).fit().mu_err
    sigma_two = _quiet(_templates("two-sided")).fit().mu_err
    assert sigma_old == pytest.approx(sigma_none, rel=1e-3)
    assert sigma_new > 1.05 * sigma_none
    # the mirrored one-sided shift is the up side of the two-sided variation: similar σ_μ
    assert sigma_new == pytest.approx(sigma_two, rel=0.1)


def test_same_sign_prefit_impacts_warn_with_the_name() -> None:
    m = _quiet(_templates("one-sided"), histosys="none")
    with pytest.warns(UserWarning, match="histosys 'ptscale': pre-fit impacts"):
        imp = m.impacts()
    assert imp["ptscale"]["prefit_up"] * imp["ptscale"]["prefit_down"] > 0
    m_new = _quiet(_templates("one-sided"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        imp_new = m_new.impacts()
    assert imp_new["ptscale"]["prefit_up"] * imp_new["ptscale"]["prefit_down"] < 0


@pytest.mark.slow
def test_one_sided_variation_does_not_bias_mu() -> None:
    """Mean pull with a one-sided variation equals the no-variation one (same toy seed).

    Measured with 300 toys: no variation −0.11, one-sided as given −0.48, mirrored −0.14
    (standard error 0.06 each; the shared toy seed makes the difference less noisy).
    """
    n = 150
    base = _quiet(_templates("none")).coverage(n_toys=n, seed=1)
    new = _quiet(_templates("one-sided")).coverage(n_toys=n, seed=1)
    print("pulls", base["mean_pull"], new["mean_pull"], new["coverage"])
    assert abs(new["mean_pull"] - base["mean_pull"]) < 0.15
    assert new["n_failed"] == 0
    assert abs(new["coverage"] - 0.683) < 3 * math.sqrt(0.683 * 0.317 / n)


# ------------------------------------------------------------------- bounds and failures
def test_failed_fits_count_as_not_covering(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _quiet(_templates("none"))
    ref = m.coverage(n_toys=40, seed=2)
    assert ref["n_failed"] == 0
    original = m._minimize
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > 1 and calls["n"] % 2 == 0:  # the Asimov fit (call 1) succeeds; every other toy fails
            raise pyhf.exceptions.FailedMinimization(type("R", (), {"message": "forced", "success": False})())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(m, "_minimize", flaky)
    with pytest.warns(UserWarning, match="fits failed; they count as not covering"):
        out = m.coverage(n_toys=40, seed=2)
    assert out["n_failed"] == 20
    n_cover_ok = round(out["coverage_converged"] * 20)
    assert out["coverage"] == pytest.approx(n_cover_ok / 40)
    assert out["coverage"] < ref["coverage"]
    assert any("count as not covering" in w for w in out["warnings"])


def test_true_mu_near_the_poi_bound_warns_and_counts_fits_at_the_bound() -> None:
    m = _quiet(_templates("none"))
    lo, _ = m.poi_bounds
    assert lo > -1.0  # the default bound keeps every bin's expectation positive
    with pytest.warns(UserWarning, match="POI lower bound"):
        out = m.coverage(n_toys=40, mu_true=0.0, seed=4)
    assert out["n_at_bound"] > 0
    assert any("lower bound" in w for w in out["warnings"])
    # far from the bound: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        far = m.coverage(n_toys=5, mu_true=1.0, seed=4)
    assert far["warnings"] == []
    assert far["n_at_bound"] == 0


def test_fit_near_the_bound_reports_a_warning() -> None:
    m = _quiet(_templates("none"))
    with pytest.warns(UserWarning, match="fitted μ̂"):
        res = m.fit(m.templates.total(0.0))
    assert res.warnings
    assert "lower bound" in res.warnings[0]
    assert res.to_dict()["warnings"] == res.warnings
