"""The demo's closing trust audits (tiny data): the tagger and a stand-in for the challenge's model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aalearn.apps.demo import _audit_section, demo_audits
from aalearn.data.dataset import JetDataset
from aalearn.data.io import save_dataset
from aalearn.models import TopoDNN, save_checkpoint
from aalearn.physics import challenge_feature_names
from aalearn.report import Report


def _jets(make: Callable[..., np.ndarray], n: int, seed: int) -> JetDataset:
    x = make(n, seed=seed).astype(np.float32)
    # a learnable label: the leading constituent's pT above its median
    y = (x[:, 0] > np.median(x[:, 0])).astype(np.int64)
    return JetDataset(x, y, tuple(challenge_feature_names()), source="toy")


def _tagger(ds: JetDataset, path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    net = TopoDNN(n_features=87, hidden=(16,), batchnorm=False)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    assert ds.labels is not None
    x, y = torch.from_numpy(ds.features), torch.from_numpy(ds.labels.astype(np.float32))
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
        opt.step()
    save_checkpoint(net.eval(), path)
    return path


def test_demo_audits_write_reports_and_verdicts(
    tmp_path: Path, challenge_jets: Callable[..., np.ndarray]
) -> None:
    test = _jets(challenge_jets, 120, seed=3)
    model = _tagger(_jets(challenge_jets, 400, seed=4), tmp_path / "model.safetensors", seed=0)
    # a stand-in for the challenge's reference model and clean file
    other = _tagger(_jets(challenge_jets, 400, seed=5), tmp_path / "reference.safetensors", seed=1)
    clean = tmp_path / "Clean_Test_Public.feather"
    save_dataset(_jets(challenge_jets, 120, seed=6), clean)
    out = tmp_path / "demo"
    light: dict[str, Any] = {"budgets": (1.0,), "n_boot": 20, "explain_steps": 16}  # the demo: defaults
    audits = demo_audits(model, test, out, challenge_model=other, challenge_data=clean, seed=0, **light)
    assert set(audits) == {"tagger", "challenge_model"}
    for key, folder in (("tagger", "audit"), ("challenge_model", "audit-challenge")):
        entry = audits[key]
        assert "error" not in entry, entry
        written = json.loads((out / folder / "results.json").read_text())
        assert (out / folder / "report.html").is_file()
        assert entry["verdict"] == written["verdict"]
        assert entry["failing_checks"] == written["failing_checks"]
        assert entry["n_jets"] == written["n_jets"] == 60  # the odd rows
        assert entry["link"] == f"{folder}/report.html"
        assert "explanations" in written
    # the demo report links both audits and shows their verdicts
    report = Report("demo")
    _audit_section(report, audits)
    html = report.to_html()
    assert "Trust audit" in html
    for entry in audits.values():
        assert entry["link"] in html
        assert entry["verdict"].split(":")[0] in html
    # without the challenge files only the tagger is audited; a one-class split is reported, not raised
    one_class = JetDataset(test.features, np.zeros(len(test), dtype=np.int64), test.feature_names)
    solo = demo_audits(model, one_class, tmp_path / "solo", seed=0, **light)
    assert set(solo) == {"tagger"}
    assert solo["tagger"]["verdict"] is None
    assert "both classes" in solo["tagger"]["error"]
