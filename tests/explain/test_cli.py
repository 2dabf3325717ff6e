"""``aalearn explain``: the JSON contract, the report, user errors, and the challenge files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from aalearn.apps.explain import explain_file
from aalearn.cli import explain as explain_cli
from aalearn.data.dataset import JetDataset
from aalearn.data.io import save_dataset
from aalearn.models import TopoDNN, save_checkpoint
from aalearn.physics.features import challenge_feature_names

app = typer.Typer()
app.command(name="explain")(explain_cli.explain)
app.command(name="noop")(lambda: None)  # a second command keeps "explain" a subcommand


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small TopoDNN checkpoint and 60 challenge-layout jets whose label follows ConstPT_0."""
    tmp = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    names = challenge_feature_names()
    x = np.zeros((60, 87), dtype=np.float32)
    pt_cols = [i for i, n in enumerate(names) if n.startswith("ConstPT")]
    x[:, pt_cols] = np.sort(rng.uniform(0.001, 0.05, (60, 30)), axis=1)[:, ::-1]
    ang = [i for i, n in enumerate(names) if not n.startswith("ConstPT")]
    x[:, ang] = rng.normal(0.0, 0.2, (60, len(ang)))
    labels = (x[:, 0] < np.median(x[:, 0])).astype(np.int64)
    data = tmp / "jets.feather"
    save_dataset(JetDataset(x, labels, tuple(names)), data)
    torch.manual_seed(0)
    model = tmp / "model.safetensors"
    save_checkpoint(TopoDNN(hidden=(16, 8)).eval(), model)
    return model, data


def test_json_contract(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    res = CliRunner().invoke(
        app,
        [
            "explain",
            "--model",
            str(model),
            "--data",
            str(data),
            "--steps",
            "32",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_jets"] == 60
    assert out["method"] == "integrated-gradients"
    fi = out["feature_importance"]
    assert len(fi) == 87
    assert {r["feature"] for r in fi} == set(challenge_feature_names())
    imps = [r["importance"] for r in fi]
    assert imps == sorted(imps, reverse=True)
    assert imps[0] > 0
    assert all(r["importance_sigma"] is not None and r["importance_sigma"] >= 0 for r in fi)
    # shares per feature kind add up to one
    assert sum(v["share"] for v in out["groups"]["kind"].values()) == pytest.approx(1.0)
    assert len(out["groups"]["rank"]) == 30
    s = out["sanity"]
    assert 0.0 <= s["completeness_error"] < 0.05
    assert -1.0 <= s["randomization_rank_correlation"] <= 1.0
    assert s["randomization_interpretation"]
    assert s["stability"] >= 0.0
    assert "sum_pt" in out["observable_correlations"]
    assert -1.0 <= out["observable_correlations"]["sum_pt"]["spearman"] <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["feature_importance"][0] == fi[0]
    html = (tmp_path / "report.html").read_text()
    assert "Explanations" in html
    assert "Explanation sanity checks" in html


def test_table_output_and_attack_explanation(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    res = CliRunner().invoke(
        app,
        [
            "explain",
            "--model",
            str(model),
            "--data",
            str(data),
            "--method",
            "saliency",
            "--adversarial",
            str(data),
            "--n-max",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "most important features" in res.stdout
    assert "sanity" in res.stdout
    # identical "adversarial" file: no jet moved
    direct = explain_file(model, data, method="saliency", n_max=20, adversarial=data)
    assert direct.attacks[0].per_feature.max() == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "lime"], "unknown attribution method"),
        (["--baseline", "median"], "unknown baseline"),
        (["--n-max", "0"], "n_max"),
    ],
)
def test_user_errors_exit_2(files: tuple[Path, Path], args: list[str], message: str) -> None:
    model, data = files
    res = CliRunner().invoke(app, ["explain", "--model", str(model), "--data", str(data), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_width_mismatch_exit_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, data = files
    small = tmp_path / "small.safetensors"
    save_checkpoint(TopoDNN(n_features=5, hidden=(4,)).eval(), small)
    res = CliRunner().invoke(app, ["explain", "--model", str(small), "--data", str(data)])
    assert res.exit_code == 2
    assert "expects 5 input features" in res.output


def test_challenge_files(challenge_dir: Path) -> None:
    """The reference model on 300 public jets: completeness, and the pT features lead."""
    res = explain_file(
        challenge_dir / "best_model.hdf5",
        challenge_dir / "Clean_Test_Public.feather",
        n_max=300,
        adversarial=challenge_dir / "Adversaries_Test_Public.feather",
    )
    out = res.to_dict()
    assert out["sanity"]["completeness_error"] <= 0.01
    top5 = [r["feature"] for r in out["feature_importance"][:5]]
    assert "ConstPT_0" in top5
    assert out["observable_correlations"]["sum_pt"]["spearman"] < -0.3  # high ΣpT -> top (label 0)
    attack = out["attacks"][0]
    assert attack["n_successful"] > 200  # the public RDSA adversaries fool the model on ~91 % of jets
    assert attack["per_kind"]["pt"] > attack["per_kind"]["eta"]
