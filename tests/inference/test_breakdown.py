"""Uncertainty breakdown of σ_μ (``Measurement.breakdown``), ``measure_files`` and ``aalearn measure``.

References, independent of the breakdown's fits: the closed-form σ_μ of a one-bin counting
experiment with a background normsys, whose slope at α = 0 is solved here from the boundary
conditions that define pyhf's ``code4`` interpolation; and the inverse of the Asimov Fisher
matrix built in NumPy from finite differences of the model's expected counts
(σ_μ² = [I⁻¹]_μμ; a group fixed = the submatrix without its parameters).

Minuit reports the error of a bounded parameter through its sin transform,
(x(θ+σ_θ) − x(θ−σ_θ))/2, which is smaller than the HESSE error by about σ_θ²/6: 5·10⁻⁴ for
σ_μ ≈ 0.5 with μ ∈ [−4.5, 20]. The precision tests therefore give the POI a wide upper bound,
which makes that effect < 10⁻⁴.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pyhf = pytest.importorskip("pyhf")

from aalearn.apps.measure import measure_files  # noqa: E402
from aalearn.cli.main import app  # noqa: E402
from aalearn.inference import Measurement, Templates  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")

REL = 1e-3  # HESSE precision
HIGH = 1000.0  # wide upper POI bound (see the module docstring)
ALL = "all systematics"


# ------------------------------------------------------------------------------ references
def _code4_slope(lo: float, hi: float) -> float:
    """d f/dα at α = 0 of pyhf's ``code4`` normsys factor f, from its definition.

    f(α) = hi^α for α ≥ 1, lo^(−α) for α ≤ −1, and 1 + Σ_{i=1}^{6} a_i α^i in between, with
    value, slope and curvature continuous at α = ±1 (pyhf's ``code4`` documentation). The
    six conditions are solved here; the slope at 0 is a_1.
    """
    powers = np.arange(1, 7)
    rows, rhs = [], []
    for x, base, sign in ((1.0, hi, 1.0), (-1.0, lo, -1.0)):
        log = math.log(base)
        rows.append(x**powers)
        rhs.append(base - 1.0)
        rows.append(powers * x ** (powers - 1))
        rhs.append(sign * log * base)
        rows.append(powers * (powers - 1) * x ** (powers - 2.0))
        rhs.append(log**2 * base)
    return float(np.linalg.solve(np.array(rows), np.array(rhs))[0])


def _fisher(m: Measurement, widths: dict[str, float], step: float = 1e-5) -> np.ndarray:
    """Asimov Fisher matrix at the nominal parameters (μ = 1), by central differences.

    Poisson part Σ_i ∂ν_i/∂θ_j ∂ν_i/∂θ_k / ν_i from the model's expected main counts, plus
    1/σ² for each Gaussian-constrained parameter (``widths``: label -> σ).
    """
    model = m.model
    nominal = np.asarray(model.config.suggested_init(), dtype=np.float64)
    nu = np.asarray(model.expected_actualdata(nominal), dtype=np.float64)
    grads = []
    for j in range(nominal.size):
        up, down = nominal.copy(), nominal.copy()
        up[j] += step
        down[j] -= step
        d_up = np.asarray(model.expected_actualdata(up), dtype=np.float64)
        d_down = np.asarray(model.expected_actualdata(down), dtype=np.float64)
        grads.append((d_up - d_down) / (2 * step))
    g = np.array(grads)
    info = (g / nu) @ g.T
    for label, width in widths.items():
        k = m.labels.index(label)
        info[k, k] += 1.0 / width**2
    return info


def _sigma_mu(info: np.ndarray, labels: list[str], fixed: list[str]) -> float:
    """sqrt([I⁻¹]_μμ) of the Fisher matrix without the ``fixed`` parameters."""
    keep = [k for k, lab in enumerate(labels) if lab not in fixed]
    sub = info[np.ix_(keep, keep)]
    return float(
        math.sqrt(np.linalg.inv(sub)[keep.index(labels.index("mu")), keep.index(labels.index("mu"))])
    )


# ------------------------------------------------------------------------------ analytic cases
def test_one_bin_normsys_matches_closed_form() -> None:
    """n = μs + b·f(α): σ_μ = √(s + b + (bκ)²)/s, contribution bκ/s, κ = f'(0) of code4."""
    s, b, lo, hi = 20.0, 100.0, 0.9, 1.2
    t = Templates(
        edges=[0.0, 1.0], signal=[s], background=[b], normsys={"bkg_norm": {"background": (lo, hi)}}
    )
    m = Measurement(t, poi_bounds=(-0.98 * b / s, HIGH))
    kappa = _code4_slope(lo, hi)
    # the slope is neither the exponential ln(hi) nor the linear (hi - lo)/2: the test tells them apart
    assert abs(kappa - math.log(hi)) > 0.02
    assert abs(kappa - (hi - lo) / 2) > 0.002
    res = m.breakdown()
    assert list(res["groups"]) == ["bkg_norm", ALL]
    dn = b * kappa
    assert res["sigma_mu"] == pytest.approx(math.sqrt(s + b + dn**2) / s, rel=REL)
    g = res["groups"]["bkg_norm"]
    assert g["parameters"] == ["bkg_norm"]
    assert g["sigma_mu_fixed"] == pytest.approx(math.sqrt(s + b) / s, rel=REL)
    assert g["contribution"] == pytest.approx(dn / s, rel=REL)
    assert g["fraction_of_variance"] == pytest.approx(dn**2 / (s + b + dn**2), rel=2 * REL)
    assert res["mu_hat"] == pytest.approx(1.0, abs=1e-4)
    assert res["groups"][ALL]["sigma_mu_fixed"] == pytest.approx(g["sigma_mu_fixed"], rel=1e-9)


def test_two_bin_histosys_matches_fisher_matrix() -> None:
    """One histosys alone: contribution = √(σ_μ² − σ_stat²) of fit(), and = the Fisher-matrix value."""
    t = Templates(
        edges=[0.0, 0.5, 1.0],
        signal=[5.0, 15.0],
        background=[100.0, 30.0],
        histosys={
            "shape": {"signal": ([6.0, 14.0], [4.0, 16.0]), "background": ([92.0, 38.0], [108.0, 22.0])}
        },
    )
    m = Measurement(t, poi_bounds=(-1.9, HIGH), histosys="none")
    res = m.breakdown()
    assert list(res["groups"]) == ["shape", ALL]
    g = res["groups"]["shape"]
    fit = m.fit()
    assert fit.mu_err_syst > 0.1 * fit.mu_err  # the systematic is not negligible
    assert g["contribution"] == pytest.approx(fit.mu_err_syst, rel=REL)
    assert res["sigma_mu"] == pytest.approx(fit.mu_err, rel=1e-6)

    info = _fisher(m, {"shape": 1.0})
    total = _sigma_mu(info, m.labels, [])
    fixed = _sigma_mu(info, m.labels, ["shape"])
    assert res["sigma_mu"] == pytest.approx(total, rel=REL)
    assert g["sigma_mu_fixed"] == pytest.approx(fixed, rel=REL)
    assert g["contribution"] == pytest.approx(math.sqrt(total**2 - fixed**2), rel=REL)
    assert g["fraction_of_variance"] == pytest.approx(1 - fixed**2 / total**2, rel=2 * REL)


def test_groups_of_the_full_model_match_fisher_matrix(full_measurement: Measurement) -> None:
    """Correlated groups (staterror, histosys, normsys, a user's union) against the Fisher matrix."""
    m = Measurement(full_measurement.input_templates, poi_bounds=(full_measurement.poi_bounds[0], HIGH))
    t = m.templates
    assert t.signal_sumw2 is not None
    assert t.background_sumw2 is not None
    # pyhf's staterror width per bin: √(Σ_samples Σw²)/Σ_samples ν
    gamma_width = np.sqrt(t.signal_sumw2 + t.background_sumw2) / (t.signal + t.background)
    gammas = [f"staterror_score[{i}]" for i in range(t.n_bins)]
    widths = {"det": 1.0, "xsec": 1.0, **dict(zip(gammas, gamma_width.tolist(), strict=True))}
    info = _fisher(m, widths)
    total = _sigma_mu(info, m.labels, [])

    default = m.breakdown()
    user = m.breakdown(groups={"mc": "staterror", "theory": ["xsec", "det"], "bin 0": ["staterror_score[0]"]})
    assert default["sigma_mu"] == pytest.approx(total, rel=REL)
    expected_members = {
        "staterror": gammas,
        "xsec": ["xsec"],
        "det": ["det"],
        "mc": gammas,
        "theory": ["det", "xsec"],
        "bin 0": ["staterror_score[0]"],
        ALL: [lab for lab in m.labels if lab != "mu"],
    }
    assert list(default["groups"]) == ["staterror", "xsec", "det", ALL]
    assert list(user["groups"]) == ["mc", "theory", "bin 0", ALL]
    for res in (default, user):
        for name, g in res["groups"].items():
            assert sorted(g["parameters"]) == sorted(expected_members[name]), name
            fixed = _sigma_mu(info, m.labels, expected_members[name])
            assert g["sigma_mu_fixed"] == pytest.approx(fixed, rel=REL), name
            # a small contribution is the difference of two close numbers: compare its square
            # to the precision of σ_μ²
            assert g["contribution"] ** 2 == pytest.approx(total**2 - fixed**2, abs=2 * REL * total**2), name
            if g["fraction_of_variance"] > 0.1:
                assert g["contribution"] == pytest.approx(math.sqrt(total**2 - fixed**2), rel=5 * REL), name
    # correlated groups: the contributions need not add in quadrature (here they do not, to 1 %)
    parts = sum(default["groups"][k]["contribution"] ** 2 for k in ("staterror", "xsec", "det"))
    assert parts != pytest.approx(default["groups"][ALL]["contribution"] ** 2, rel=1e-2)


def test_all_systematics_is_the_statistical_only_error(full_measurement: Measurement) -> None:
    fit = full_measurement.fit()
    res = full_measurement.breakdown()
    assert res["groups"][ALL]["sigma_mu_fixed"] == pytest.approx(fit.mu_err_stat, rel=1e-6)
    assert res["groups"][ALL]["contribution"] == pytest.approx(fit.mu_err_syst, rel=1e-6)
    assert res["sigma_mu"] == pytest.approx(fit.mu_err, rel=1e-6)
    for g in res["groups"].values():
        assert 0 < g["sigma_mu_fixed"] <= res["sigma_mu"] * (1 + 1e-6)
        assert g["fraction_of_variance"] == pytest.approx(g["contribution"] ** 2 / res["sigma_mu"] ** 2)


def test_breakdown_of_other_data_and_all_fixed_model() -> None:
    """Observed counts are fitted (not the Asimov data); a model without nuisances has no groups."""
    t = Templates(edges=[0.0, 1.0], signal=[20.0], background=[100.0])
    res = Measurement(t, poi_bounds=(-4.9, HIGH)).breakdown([150.0])
    assert res["groups"] == {}
    assert res["mu_hat"] == pytest.approx(2.5, abs=1e-3)
    assert res["sigma_mu"] == pytest.approx(math.sqrt(150.0) / 20.0, rel=REL)


# ------------------------------------------------------------------------------ bad groups
def test_unknown_label_is_a_one_line_error(full_measurement: Measurement) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter label 'jes' in breakdown group 'jets'") as err:
        full_measurement.breakdown(groups={"jets": ["jes"]})
    message = str(err.value)
    assert "\n" not in message
    assert "known labels: " in message
    for label in ("det", "xsec", "staterror_score[0]", "staterror_score[9]"):
        assert label in message
    with pytest.raises(ValueError, match="parameter of interest 'mu'"):
        full_measurement.breakdown(groups={"poi": ["mu"]})
    with pytest.raises(ValueError, match="is empty"):
        full_measurement.breakdown(groups={"none": []})


# ------------------------------------------------------------------------------ measure_files and the CLI
@pytest.fixture(scope="module")
def halves(challenge_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two halves of the clean file as a mild variation (as in test_uncertainty_cli.py)."""
    from aalearn.data.io import load_dataset, save_dataset

    ds = load_dataset(challenge_dir / "Clean_Test_Public.feather")
    out = tmp_path_factory.mktemp("halves")
    paths = []
    for i, sel in enumerate((np.arange(0, 2500), np.arange(2500, 5000))):
        path = out / f"half{i}.feather"
        save_dataset(ds.subset(sel), path)
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.usefixtures("single_torch_thread")
def test_measure_files_and_cli_report_the_breakdown(
    challenge_dir: Path, halves: tuple[Path, Path], tmp_path: Path
) -> None:
    clean = challenge_dir / "Clean_Test_Public.feather"
    model = challenge_dir / "best_model.hdf5"
    variation = f"halves={halves[0]}:{halves[1]}"
    with pytest.warns(UserWarning, match="halves"):
        result = measure_files(model, clean, clean, variations=[variation], bins=5)
    bd = result["breakdown"]
    assert list(bd["groups"]) == ["staterror", "background_norm", "signal_norm", "halves", ALL]
    assert bd["sigma_mu"] == pytest.approx(result["mu_err"], rel=1e-9)
    assert bd["groups"][ALL]["sigma_mu_fixed"] == pytest.approx(result["mu_err_stat"], rel=1e-6)
    json.dumps(bd, allow_nan=False)  # JSON-friendly
    # the signal normalisation (±5 %) alone adds ≈ 5 % of μ: √(σ² − σ_fixed²) ≈ 0.05 at μ̂ = 1
    assert bd["groups"]["signal_norm"]["contribution"] == pytest.approx(0.05, rel=0.05)

    runner = CliRunner()
    args = ["measure", "--model", str(model), "--signal", str(clean), "--background", str(clean)]
    args += ["--bins", "5", "--variation", variation]
    res = runner.invoke(app, [*args, "--json", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    payload = json.loads([line for line in res.stdout.splitlines() if line.strip()][-1])
    assert list(payload["breakdown"]["groups"]) == list(bd["groups"])
    assert {k: v["converged"] for k, v in payload["shifts"].items()} == {
        "variation:halves-down": True,
        "variation:halves-up": True,
    }
    for name, g in bd["groups"].items():
        assert payload["breakdown"]["groups"][name]["contribution"] == pytest.approx(
            g["contribution"], rel=1e-6
        )
    html = (tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    assert "Uncertainty breakdown" in html
    assert "all systematics" in html

    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "uncertainty breakdown of σ_μ" in res.stdout
    shift_row = next(line for line in res.stdout.splitlines() if "variation:halves-up" in line)
    assert shift_row.rstrip(" │|").endswith("Migrad")  # the shifts table's "fit" column
    row = next(line for line in res.stdout.splitlines() if re.search(r"\bsignal_norm\b", line))
    cells = [c.strip() for c in re.split(r"[│|]", row) if c.strip()]
    g = bd["groups"]["signal_norm"]
    assert cells == [
        "signal_norm",
        f"{g['sigma_mu_fixed']:.4g}",
        f"{g['contribution']:.4g}",
        f"{g['fraction_of_variance']:.4g}",
    ]
