"""End-to-end tests of ``aalearn uncertainty`` and ``aalearn measure`` on the challenge's public files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from aalearn.cli.main import app

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _json(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])  # type: ignore[no-any-return]


@pytest.mark.parametrize(("method", "extra"), [("laplace", []), ("mc-dropout", ["--dropout", "0.1"])])
def test_uncertainty_keys(challenge_dir: Path, method: str, extra: list[str], tmp_path: Path) -> None:
    args = [
        "uncertainty",
        "--model",
        str(challenge_dir / "best_model.hdf5"),
        "--data",
        str(challenge_dir / "Clean_Test_Public.feather"),
        "--method",
        method,
        "--n-max",
        "600",
        "--attacks",
        "fgsm",
        "--shifted",
        f"rdsa={challenge_dir / 'Adversaries_Test_Public.feather'}",
        "--out",
        str(tmp_path / "u"),
        *extra,
    ]
    payload = _json(runner.invoke(app, [*args, "--json"]))
    for key in ("ece", "brier", "nll", "mean_epistemic", "mean_aleatoric"):
        assert key in payload
        assert payload[key] >= 0
    assert payload["ece_temperature_scaled"] >= 0
    assert set(payload["shifts"]) == {"attack:fgsm", "file:rdsa"}
    assert 0 <= payload["shifts"]["file:rdsa"]["auroc_epistemic"] <= 1
    # value checks: the split of the 600 jets, the exact decomposition total = aleatoric + epistemic
    # (mutual information), and the sizes of the shifted sets
    assert (payload["n_calibration"], payload["n_evaluation"]) == (300, 300)
    # the organisers' model on its clean jets (published: 1.000; MC dropout's mean flips 2 of 300)
    assert payload["accuracy"] == pytest.approx(1.0, abs=0.01)
    for part in (payload, *payload["shifts"].values()):
        assert part["mean_total"] == pytest.approx(part["mean_aleatoric"] + part["mean_epistemic"], rel=1e-9)
    rdsa, fgsm = payload["shifts"]["file:rdsa"], payload["shifts"]["attack:fgsm"]
    assert rdsa["n"] == 5000
    assert fgsm["n"] == round(fgsm["fooling_ratio"] * 300)  # the fooled evaluation jets
    assert fgsm["accuracy"] < 0.1  # only jets fooled by the attack are kept
    # the attacked jets are more uncertain than the clean ones
    assert fgsm["mean_total"] > payload["mean_total"]
    # intervals (issue 17): the accuracy's is scipy's exact binomial interval at the default 0.68;
    # the ECE's brackets the ECE, from 200 replicas over the 300 evaluation jets
    acc = payload["intervals"]["accuracy"]
    k = round(payload["accuracy"] * 300)
    ci = binomtest(k, 300).proportion_ci(0.68, method="exact")
    assert (acc["low"], acc["high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)
    for key in ("ece", "ece_temperature_scaled"):
        iv = payload["intervals"][key]
        assert iv["value"] == pytest.approx(payload[key], abs=1e-12)
        assert (iv["n"], iv["n_boot"], iv["level"]) == (300, 200, 0.68)
        assert iv["low"] <= iv["value"] <= iv["high"]
    page = (tmp_path / "u" / "report.html").read_text(encoding="utf-8")
    ece = payload["intervals"]["ece"]
    assert f"[{ece['low']:.4g}, {ece['high']:.4g}]" in page  # the interval is in the report's table


def test_uncertainty_bad_method(challenge_dir: Path) -> None:
    args = ["uncertainty", "--model", str(challenge_dir / "best_model.hdf5")]
    res = runner.invoke(
        app, [*args, "--data", str(challenge_dir / "Clean_Test_Public.feather"), "--method", "bayes"]
    )
    assert res.exit_code == 2
    assert "unknown method" in res.output


def test_ensemble_needs_members(challenge_dir: Path) -> None:
    args = ["uncertainty", "--model", str(challenge_dir / "best_model.hdf5")]
    res = runner.invoke(app, [*args, "--data", str(challenge_dir / "Clean_Test_Public.feather")])
    assert res.exit_code == 2
    assert "several --model" in res.output


def test_measure_keys_and_shift(challenge_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from aalearn.data.io import load_dataset, save_dataset

    clean = str(challenge_dir / "Clean_Test_Public.feather")
    adv = str(challenge_dir / "Adversaries_Test_Public.feather")
    # a mild "variation": two halves of the clean file (a statistical fluctuation)
    ds = load_dataset(clean)
    halves = []
    for i, sel in enumerate((np.arange(0, 2500), np.arange(2500, 5000))):
        path = tmp_path / f"half{i}.feather"
        save_dataset(ds.subset(sel), path)
        halves.append(str(path))
    args = [
        "measure",
        "--model",
        str(challenge_dir / "best_model.hdf5"),
        "--signal",
        clean,
        "--background",
        clean,
        "--data",
        adv,
        "--variation",
        f"halves={halves[0]}:{halves[1]}",
        "--attacks",
        "fgsm",
        "--out",
        str(tmp_path / "m"),
    ]
    payload = _json(runner.invoke(app, [*args, "--json"]))
    for key in ("mu_hat", "mu_err", "z_asimov", "delta_mu_over_sigma"):
        assert key in payload
    assert payload["mu_hat"] == pytest.approx(1.0, abs=1e-2)  # Asimov fit
    assert payload["mu_err"] > 0
    assert payload["z_asimov"] > 0
    assert "attack:fgsm" in payload["shifts"]
    assert abs(payload["delta_mu_over_sigma"]) > 1  # the organisers' RDSA jets bias the measurement
    ws = json.loads((tmp_path / "m" / "workspace.json").read_text())
    assert ws["version"] == "1.0.0"


def test_measure_bad_input(challenge_dir: Path) -> None:
    clean = str(challenge_dir / "Clean_Test_Public.feather")
    model = str(challenge_dir / "best_model.hdf5")
    args = ["measure", "--model", model, "--signal", clean, "--background", clean, "--expected-signal", "-1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "positive" in res.output
    res = runner.invoke(
        app, ["measure", "--model", model, "--signal", clean, "--background", clean, "--variation", "x"]
    )
    assert res.exit_code == 2
    assert "NAME=DOWN_FILE:UP_FILE" in res.output
