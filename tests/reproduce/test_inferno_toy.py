"""The INFERNO synthetic benchmark (arXiv:1806.04743): toy, analytic values, binned σ_s, a reduced CLI run."""

from __future__ import annotations

import doctest
import json
import math
from functools import partial

import numpy as np
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

import aalearn.reproduce.inferno as inferno_module
from aalearn.cli.main import app
from aalearn.reproduce import REGISTRY
from aalearn.reproduce.inferno import (
    PAPER_TABLE,
    InfernoToyConfig,
    analytic_sigma,
    binned_sigma,
    make_inferno_toy,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_toy_follows_the_paper_code() -> None:
    rng = np.random.default_rng(0)
    b = make_inferno_toy(200_000, rng, signal=False).astype(np.float64)
    s = make_inferno_toy(200_000, rng, signal=True).astype(np.float64)
    # Background: x0 ~ N(2, var 5), x1 ~ N(0, var 9), x2 ~ Exp(rate 3); signal N(0, 1)^2 x Exp(rate 2).
    # Standard errors at n = 2e5: means <= 0.007, variances <= 0.03; tolerances ~4-5 standard errors.
    np.testing.assert_allclose(b.mean(0), [2.0, 0.0, 1 / 3], atol=0.03)
    np.testing.assert_allclose(b.var(0), [5.0, 9.0, 1 / 9], rtol=0.02)
    np.testing.assert_allclose(s.mean(0), [0.0, 0.0, 0.5], atol=0.01)
    np.testing.assert_allclose(s.var(0), [1.0, 1.0, 0.25], rtol=0.02)
    with pytest.raises(ValueError, match="positive integer"):
        make_inferno_toy(0, rng, signal=True)


@pytest.mark.parametrize(("benchmark", "tol"), [(0, 0.08), (4, 0.1)])
def test_analytic_values_match_table_1(benchmark: int, tol: float) -> None:
    # Monte Carlo, 3e5 draws: relative error ~0.5/sqrt(3e5) ≈ 0.1 % (0.015-0.02); the table rounds to 0.01.
    assert analytic_sigma(benchmark, 300_000) == pytest.approx(PAPER_TABLE["analytic"][benchmark], abs=tol)


def test_binned_sigma_equals_the_closed_form_for_cuts_on_x0() -> None:
    """Three bins cut on x0 at 0 and 2: S_i, B_i(r) and dB_i/dr are normal CDF/PDF differences."""
    edges = np.array([-np.inf, 0.0, 2.0, np.inf])
    sd = math.sqrt(5.0)
    sig = 50.0 * np.diff(norm.cdf(edges))
    bkg = 1000.0 * np.diff(norm.cdf((edges - 2.0) / sd))
    dbkg = (
        -1000.0 * np.diff(norm.pdf((edges - 2.0) / sd)) / sd
    )  # d/dr of 1000 [Φ((e_hi - r)/sd) - Φ((e_lo - r)/sd)]
    for benchmark in (0, 1):
        jac = np.stack([sig, dbkg], axis=1)[:, : benchmark + 1]
        info = jac.T @ (jac / (sig + bkg)[:, None])
        truth = 50.0 * math.sqrt(np.linalg.inv(info)[0, 0])
        rng = np.random.default_rng(benchmark)
        xs = make_inferno_toy(400_000, rng, signal=True)
        xb = make_inferno_toy(400_000, rng, signal=False)
        ours = binned_sigma(lambda x: np.searchsorted(edges[1:-1], x[:, 0]), 3, benchmark, xs, xb)
        # Multinomial noise of the templates at n = 4e5 (and of the finite difference) ≈ 1 %: 3 % tolerance.
        assert ours == pytest.approx(truth, rel=0.03), (benchmark, ours, truth)


def test_registered_with_the_paper_values() -> None:
    rep = REGISTRY["inferno"]
    assert "1806.04743" in rep.source
    for k in range(5):
        assert rep.expected[f"inferno_sigma_{k}"] == PAPER_TABLE["inferno"][k]
        assert rep.tolerance[f"inferno_sigma_{k}"] == pytest.approx(
            0.03 * PAPER_TABLE["inferno"][k], abs=1e-3
        )
    assert rep.expected["cross_entropy_sigma_2"] == 23.94
    assert rep.expected["analytic_sigma_0"] == 14.71


def test_reduced_reproduction_via_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI path with a reduced config (8k training rows, 4 epochs, one seed, benchmark 2 only).

    Looser tolerance than the registry's 3 %: with this little training INFERNO 2 reaches
    σ_s ≈ 17-19 on benchmark 2 (paper 16.95); the test asks for within 15 % of the paper,
    above the analytic bound, and clearly below the cross-entropy classifier (paper 23.94;
    the small classifier gives about 21-23).
    """
    small = partial(
        InfernoToyConfig,
        n_train=4000,
        n_val=2000,
        n_eval=50_000,
        benchmarks=(2,),
        seeds=(0,),
        epochs=4,
        batch_size=1000,
        lr=3e-3,
        hidden=(32, 32),
        ce_epochs=2,
        analytic_events=100_000,
    )
    monkeypatch.setattr(inferno_module, "InfernoToyConfig", small)
    result = CliRunner().invoke(app, ["reproduce", "inferno", "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    payload = json.loads(lines[-1])
    # A reduced run lacks benchmarks 0, 1, 3, 4: not a PASS, so a non-zero exit (1; the CLI's error
    # wrapper currently turns typer.Exit(1) into 2).
    assert result.exit_code != 0
    assert payload["passed"] is False
    details = payload["details"]
    assert len(details["inferno_sigma"]) == 5
    assert len(details["cross_entropy_sigma"]) == 5
    assert details["n_initialisations"] == 1
    inferno2, ce2, analytic2 = (
        payload["inferno_sigma_2"],
        payload["cross_entropy_sigma_2"],
        payload["analytic_sigma_2"],
    )
    assert analytic2 == pytest.approx(15.65, abs=0.15)
    assert analytic2 * 0.98 < inferno2 < 1.15 * 16.95
    assert inferno2 < 0.92 * ce2


def test_doctests() -> None:
    result = doctest.testmod(inferno_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2
    assert result.failed == 0
