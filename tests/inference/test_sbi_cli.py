"""``aalearn sbi validate`` and ``aalearn sbi coverage``: JSON output, report, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aalearn.cli.main import app

pytest.importorskip("sbi")

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _json(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--task", "moons"], "unknown sbibm task"),
        (["validate", "--task", "two_moons", "--method", "abc"], "unknown method"),
        (["validate", "--task", "two_moons", "--observations", "11"], "1..10"),
        (["validate", "--task", "two_moons", "--simulations", "1"], "simulations"),
        (["coverage", "--task", "slcp", "--test-simulations", "1"], "test_simulations"),
        (["coverage", "--task", "slcp", "--calibration-simulations", "1"], "calibration_simulations"),
    ],
)
def test_user_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sbi", *args, "--json"])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.slow
def test_validate_and_coverage_json_and_report(tmp_path: Path) -> None:
    common = [
        "--task",
        "two_moons",
        "--simulations",
        "300",
        "--seed",
        "1",
        "--threads",
        "1",
        "--max-epochs",
        "30",
        "--json",
    ]
    res = _json(
        runner.invoke(
            app,
            [
                "sbi",
                "validate",
                *common,
                "--observations",
                "1",
                "--posterior-samples",
                "300",
                "--out",
                str(tmp_path / "v"),
            ],
        )
    )
    for key in ("c2st", "method", "simulations", "seconds", "c2st_per_observation", "published_table"):
        assert key in res
    assert res["method"] == "npe"
    assert res["simulations"] == 300
    assert 0.5 <= res["c2st"] <= 1.0
    page = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2
    assert json.loads((tmp_path / "v" / "result.json").read_text())["c2st"] == res["c2st"]

    cov = _json(
        runner.invoke(
            app,
            [
                "sbi",
                "coverage",
                *common,
                "--test-simulations",
                "60",
                "--posterior-samples",
                "100",
                "--out",
                str(tmp_path / "c"),
            ],
        )
    )
    assert cov["verdict"] in ("calibrated", "overconfident", "conservative")
    for key in ("max_deficit", "max_excess", "tarp_atc", "sbc_ks_pvalues", "expected_coverage", "n_test"):
        assert key in cov
    assert cov["n_test"] == 60
    # NPE: levels recalibrated on as many fresh pairs as test pairs, a verdict for the recalibrated regions
    cal = cov["calibration"]
    assert cal["n_calibration"] == 60
    assert cal["verdict"] in ("calibrated", "overconfident", "conservative")
    assert 0.0 < cal["hpd_mass_for"]["0.6827"] <= cal["hpd_mass_for"]["0.9545"] <= 1.0
    page = (tmp_path / "c" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 4  # coverage, TARP, SBC ranks, posterior


def test_cli_defaults_are_sbibms_settings_per_method() -> None:
    from aalearn.cli.sbi import _sbibm_defaults

    assert _sbibm_defaults("npe", None, None) == {"density_estimator": "nsf", "training_batch_size": 10_000}
    assert _sbibm_defaults("nle", None, None)["density_estimator"] == "maf"
    assert _sbibm_defaults("bnre", None, None)["density_estimator"] == "resnet"
    assert _sbibm_defaults("npe", "mdn", 256) == {"density_estimator": "mdn", "training_batch_size": 256}
