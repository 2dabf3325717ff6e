"""An ensemble of one model twice is refused (issue 18, point 7): it would report epistemic 0."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aalearn.cli.main import app
from aalearn.data.dataset import JetDataset
from aalearn.data.io import save_dataset
from aalearn.models import TopoDNN
from aalearn.models.checkpoint import save_checkpoint
from aalearn.uncertainty import DeepEnsemble

runner = CliRunner()


def _net(seed: int) -> TopoDNN:
    torch.manual_seed(seed)
    return TopoDNN(n_features=4, hidden=(5,))


def test_members_with_identical_weights_are_refused_and_distinct_ones_disagree() -> None:
    a = _net(0)
    with pytest.raises(ValueError, match="ensemble members 0 and 2 have identical weights"):
        DeepEnsemble([a, _net(1), copy.deepcopy(a)])
    x = np.random.default_rng(0).normal(size=(50, 4))
    d = DeepEnsemble([a, _net(1)]).predict(x)
    # independent truth: epistemic = H(mean p) - mean H(p_m) in nats (mutual information)
    with torch.no_grad():
        p = np.stack(
            [torch.sigmoid(m.eval()(torch.from_numpy(x).float())).numpy().ravel() for m in (a, _net(1))]
        )
    p = p.astype(np.float64)

    def h(q: np.ndarray) -> np.ndarray:
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    mutual_information = h(p.mean(0)) - h(p).mean(0)
    np.testing.assert_allclose(d.epistemic, mutual_information, rtol=1e-4, atol=1e-7)  # float32 forward
    assert float(np.mean(d.epistemic)) > 1e-5


def test_the_cli_refuses_one_model_file_twice_and_a_copy_of_it(tmp_path: Path) -> None:
    model = save_checkpoint(_net(0), tmp_path / "m.safetensors")
    copy_ = Path(shutil.copy(model, tmp_path / "m_copy.safetensors"))
    rng = np.random.default_rng(0)
    data = tmp_path / "d.feather"
    save_dataset(
        JetDataset(rng.normal(size=(40, 4)).astype(np.float32), np.arange(40) % 2, ("a", "b", "c", "d")), data
    )
    base = ["uncertainty", "--data", str(data), "--model", str(model)]
    res = runner.invoke(app, [*base, "--model", str(tmp_path / "." / "m.safetensors")])
    assert res.exit_code == 2
    assert "m.safetensors is given more than once" in res.output
    res = runner.invoke(app, [*base, "--model", str(copy_)])
    assert res.exit_code == 2
    assert "ensemble members 0 and 1 have identical weights" in res.output
