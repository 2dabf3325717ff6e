"""End-to-end tests of the ``aalearn`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from aalearn.cli.main import app

runner = CliRunner()


def _json(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_version_and_help() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert "aalearn" in res.stdout
    res = runner.invoke(app, ["--help"])
    for cmd in ("generate", "train", "evaluate", "reproduce", "demo"):
        assert cmd in res.stdout


def test_reproduce_list_has_challenge_model_first() -> None:
    payload = _json(runner.invoke(app, ["reproduce", "--list", "--json"]))
    first = payload["reproductions"][0]
    assert first["name"] == "challenge-model"
    assert first["expected"] == {"clean_accuracy": 1.0, "adversarial_accuracy": 0.093}
    assert first["tolerance"]
    assert first["source"]
    table = runner.invoke(app, ["reproduce", "--list"])
    assert table.exit_code == 0
    assert "challenge-model" in table.stdout


def test_reproduce_challenge_model(challenge_dir: Path) -> None:
    payload = _json(runner.invoke(app, ["reproduce", "challenge-model", "--json"]))
    assert payload["passed"] is True
    assert payload["clean_accuracy"] == pytest.approx(1.0, abs=5e-4)
    assert payload["adversarial_accuracy"] == pytest.approx(0.093, abs=5e-4)


def _evaluate_challenge_model(challenge_dir: Path, data_file: str, *extra: str) -> dict:  # type: ignore[type-arg]
    """``aalearn evaluate --json`` of the challenge's model on one of its public files."""
    args = [
        "evaluate",
        "--model",
        str(challenge_dir / "best_model.hdf5"),
        "--data",
        str(challenge_dir / data_file),
    ]
    return _json(runner.invoke(app, [*args, *extra, "--json"]))


def test_evaluate_challenge_model_on_clean_file(challenge_dir: Path) -> None:
    payload = _evaluate_challenge_model(challenge_dir, "Clean_Test_Public.feather")
    assert payload["accuracy"] == 1.0
    assert payload["auc"] == pytest.approx(1.0)
    assert payload["n"] == 5000


def test_evaluate_writes_report_and_results(challenge_dir: Path, tmp_path: Path) -> None:
    from aalearn.report.render import find_chromium, render_check

    out = tmp_path / "eval"
    payload = _evaluate_challenge_model(challenge_dir, "Adversaries_Test_Public.feather", "--out", str(out))
    assert payload["accuracy"] == pytest.approx(0.093, abs=5e-4)
    results = json.loads((out / "results.json").read_text())
    assert len(results["scores_signal"]) + len(results["scores_background"]) == 5000
    assert results["fpr"][0] == 0.0
    assert payload["report"] == str(out / "report.html")
    if find_chromium() is not None:
        check = render_check(out / "report.html")
        assert check.images_total == 2
        assert check.images_loaded == 2


def test_unknown_reproduction_and_bad_files_give_clear_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["reproduce", "no-such-thing"])
    assert res.exit_code == 2
    assert "unknown reproduction" in res.stderr
    res = runner.invoke(
        app, ["evaluate", "--model", str(tmp_path / "missing.safetensors"), "--data", "x.feather"]
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("error:")
    bad = tmp_path / "bad.feather"
    bad.write_bytes(b"not a feather file at all")
    res = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2
    assert "error:" in res.stderr
    res = runner.invoke(app, ["generate", "--process", "higgs", "--n", "5", "--out", str(tmp_path / "x.h5")])
    assert res.exit_code == 2
    assert "error:" in res.stderr


def test_generate_train_evaluate_round_trip(tmp_path: Path) -> None:
    """Tiny real generation through the CLI (in a subprocess: stdout must hold only the JSON)."""
    env = dict(os.environ)
    files = {}
    for process in ("top", "w"):
        out = tmp_path / f"{process}.h5"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "aalearn.cli.main",
                "generate",
                "--process",
                process,
                "--n",
                "40",
                "--chunk-size",
                "20",
                "--out",
                str(out),
                "--seed",
                "3",
                "--json",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, f"stdout polluted: {proc.stdout!r}"
        summary = json.loads(lines[0])
        assert summary["n_jets"] == 40
        files[process] = out
    model = tmp_path / "m.safetensors"
    payload = _json(
        runner.invoke(
            app,
            [
                "train",
                "--data",
                str(files["top"]),
                str(files["w"]),
                "--out",
                str(model),
                "--epochs",
                "3",
                "--no-progress",
                "--json",
            ],
        )
    )
    assert model.is_file()
    assert payload["n_train"] + payload["n_val"] == 80
    ev = _json(runner.invoke(app, ["evaluate", "--model", str(model), "--data", str(files["w"]), "--json"]))
    assert {"accuracy", "auc", "n"} <= set(ev)
    assert ev["n"] == 40
    # --level/--bootstrap reach the intervals: the accuracy's 95 % Clopper-Pearson interval
    # equals scipy's exact binomial interval for the same count
    interval_args = ["--level", "0.95", "--bootstrap", "50"]
    ev95 = _json(
        runner.invoke(
            app,
            ["evaluate", "--model", str(model), "--data", str(files["w"]), *interval_args, "--json"],
        )
    )
    k = round(ev95["accuracy"] * 40)
    ci = binomtest(k, 40).proportion_ci(0.95, method="exact")
    acc95, acc68 = ev95["intervals"]["accuracy"], ev["intervals"]["accuracy"]
    assert (acc95["low"], acc95["high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert acc95["level"] == 0.95
    assert acc68["level"] == 0.68
    assert acc95["high"] - acc95["low"] > acc68["high"] - acc68["low"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--level", "68"], "level must lie in (0, 1)"), (["--bootstrap", "5"], "at least 10")],
)
def test_interval_options_refused_before_work(tmp_path: Path, args: list[str], message: str) -> None:
    missing = str(tmp_path / "missing.safetensors")
    commands = (
        ["evaluate", "--model", missing, "--data", "x.feather"],
        ["compare", "--models", missing, "--data", "x.h5"],
    )
    for cmd in commands:
        result = runner.invoke(app, [*cmd, *args])
        assert result.exit_code == 2, result.output
        assert message in result.output


@pytest.mark.chromium
def test_demo_writes_report_that_renders(tmp_path: Path) -> None:
    from aalearn.report.render import find_chromium, render_check

    out = tmp_path / "demo"
    payload = _json(
        runner.invoke(
            app,
            [
                "demo",
                "--out",
                str(out),
                "--n-per-class",
                "60",
                "--workers",
                "1",
                "--epochs",
                "3",
                "--no-progress",
                "--no-audit",  # the demo-with-audit path: tests/apps/test_demo_audit.py
                "--json",
            ],
        )
    )
    assert (out / "report.html").is_file()
    assert (out / "results.json").is_file()
    assert (out / "model.safetensors").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["n_jets"] == 120
    assert "aalearn test split" in results["evaluation"]
    assert {r["attack"] for r in results["robustness"]} >= {"pgd", "rdsa", "sparse", "minifool"}
    assert all(r["unphysical_fraction"] == 0.0 for r in results["robustness"])
    assert payload["report"].endswith("report.html")
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (make test installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    check = render_check(out / "report.html", screenshot=tmp_path / "demo.png")
    assert check.images_total >= 5
    assert check.images_loaded == check.images_total
