"""End-to-end runs of ``aalearn surrogate amplification`` and ``aalearn surrogate closure``.

Tiny settings (2 members, 1 epoch, a few toys) on 400 synthetic labelled jets: the runs check
the plumbing (files, labels, split, output) and that every reported figure obeys the formula
it is defined by (Butter et al., arXiv:2008.06545, for the amplification; the closure's bias,
pulls and coverage), recomputed here from the other reported numbers.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aalearn.cli.main import app
from aalearn.data import JetDataset
from aalearn.data.io import save_dataset
from aalearn.physics import challenge_features

pytest.importorskip("zuko")

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("single_torch_thread")

TINY = ["--members", "2", "--epochs", "1", "--n-gen", "2000", "--seed", "0", "--json"]


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def jet_file(tmp_path_factory: pytest.TempPathFactory, challenge_jets: Callable[..., np.ndarray]) -> Path:
    """400 labelled jets, 200 per class; class 1 has a 30 % harder leading constituent."""
    x = challenge_jets(400, seed=5)
    y = np.repeat([0, 1], 200)
    x[200:, 0] *= 1.3
    names = tuple(s.name for s in challenge_features())
    path = tmp_path_factory.mktemp("surrogate-cli") / "jets.feather"
    save_dataset(JetDataset(features=x.astype(np.float32), labels=y, feature_names=names, source="t"), path)
    return path


def test_surrogate_amplification_cli(jet_file: Path, tmp_path: Path) -> None:
    args = [
        "surrogate",
        "amplification",
        "--data",
        str(jet_file),
        *TINY,
        "--bins",
        "5",
        "--out",
        str(tmp_path),
    ]
    payload = _json(runner.invoke(app, args))
    assert json.loads((tmp_path / "study.json").read_text()) == payload
    assert (tmp_path / "report.html").stat().st_size > 0
    assert payload["members"] == 2
    assert payload["n_train"] == {"top": 100, "w": 100}  # --holdout 0.5 of 200 jets per class
    assert payload["n_holdout"] == {"top": 100, "w": 100}
    assert len(payload["fit_seconds"]) == 2
    for cls in ("top", "w"):
        a = payload["amplification"][cls]
        assert (a["n_members"], a["n_gen"], a["n_train"], a["n_truth"]) == (2, 2000, 100, 100)
        b = a["bins"]
        p, q = np.array(b["p_true"]), np.array(b["q_mean"])
        # 5 equal-probability bins of the 100 held-out jets hold 20 jets each
        np.testing.assert_allclose(p, 0.2, rtol=0, atol=1e-12)
        assert q.sum() == pytest.approx(1.0, abs=1e-12)  # outer edges ±∞: every generated jet is binned
        np.testing.assert_allclose(b["bias"], q - p, rtol=0, atol=1e-12)
        # the totals clip the summed estimate at 0, the bins each bin's: clipping bins only adds
        assert 0 <= a["bias2_total"] <= sum(b["bias2"]) + 1e-15
        assert 0 <= a["model_var_total"] <= sum(b["model_var"]) + 1e-15
        limit = np.sum(p * (1 - p)) / (a["bias2_total"] + a["model_var_total"])
        assert a["n_equiv_limit"] == pytest.approx(limit, rel=1e-9)
        assert a["amplification"] == pytest.approx(a["n_equiv_limit"] / 100, rel=1e-9)
        assert a["amplification_at_n_gen"] == pytest.approx(a["n_equiv"] / 100, rel=1e-9)
        assert a["curve"]["n_gen"][-1] == 2000
        # one epoch on 100 jets is a poor model: worth fewer than its 100 training jets
        assert 0 < a["amplification"] < 1


def test_surrogate_closure_cli(jet_file: Path) -> None:
    args = ["surrogate", "closure", "--data", str(jet_file), *TINY, "--bins", "4", "--toys", "10"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few events: fits near the POI bound warn
        payload = _json(runner.invoke(app, args))  # no --out: the report is tested with amplification
    c = payload["closure"]
    assert len(c["edges"]) == 5
    assert c["n_members"] == 2
    for kind in ("template", "real"):
        assert sum(c[f"{kind}_signal"]) == pytest.approx(c["expected_signal"], rel=1e-9)
        assert sum(c[f"{kind}_background"]) == pytest.approx(c["expected_background"], rel=1e-9)
    variants = {v["name"]: v for v in c["variants"]}
    assert set(variants) == {"plain", "model_nuisance", "real_templates"}
    for v in variants.values():
        n = v["n_toys"] - v["n_failed"]
        assert v["n_toys"] == 10
        assert n >= 8
        # bias in units of σ_stat, its error and significance; coverage is a count of toys
        assert v["bias"] == pytest.approx((v["mu_hat_mean"] - v["mu_true"]) / v["sigma_stat"], rel=1e-9)
        assert v["bias_significance"] == pytest.approx(v["bias"] / v["bias_error"], rel=1e-9)
        assert v["coverage"] * n == pytest.approx(round(v["coverage"] * n), abs=1e-9)  # over converged toys
        # binomial error at the nominal 68.27 %, not at the measured coverage
        assert v["coverage_error"] == pytest.approx(math.sqrt(0.6827 * 0.3173 / n), rel=1e-3)
        assert v["sigma_total"] >= v["sigma_stat"] * (1 - 1e-9)
    # the model-variance nuisance widens the interval; the plain fit has no nuisance at all
    assert variants["plain"]["sigma_total"] == pytest.approx(variants["plain"]["sigma_stat"], rel=1e-9)
    assert variants["model_nuisance"]["sigma_total"] > variants["model_nuisance"]["sigma_stat"] * 1.01
    checks = {ch["name"]: ch for ch in payload["checks"]}
    bias = checks["closure:bias"]
    assert bias["value"] == pytest.approx(variants["plain"]["bias"], rel=1e-12)
    assert bias["threshold"] == 0.2  # --bias-tolerance default
    assert bias["passed"] == (abs(bias["value"]) <= bias["threshold"])
    assert checks["closure:coverage"]["value"] == variants["plain"]["coverage"]
