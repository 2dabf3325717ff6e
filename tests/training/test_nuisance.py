"""The nuisance study: output shifts between variations on known cases, and pivot/DisCo reducing them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import Tensor, nn

from aalearn.data import JetDataset
from aalearn.training.nuisance import default_nuisance_values, nuisance_shift, train_nuisance_study

pytestmark = pytest.mark.usefixtures("single_torch_thread")


class _FirstFeature(nn.Module):
    """logit = x₀: the score is σ(x₀)."""

    n_features = 2

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0] + 0.0 * self.dummy


def _labelled(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.stack([rng.normal(size=n) + 2.0 * y, rng.normal(size=n)], axis=1).astype(np.float32)
    return x, y


def test_shift_of_identical_and_saturated_variations() -> None:
    x, y = _labelled(2000, seed=0)
    saturated = x.copy()
    saturated[:, 0] = 50.0  # every score → 1: the W-like side, no jet passes the top-tag cut
    ds = JetDataset(x, y, ("a", "b"), source="copy")
    rows = nuisance_shift(_FirstFeature(), {"nominal": (x, y), "same": ds, "sat": (saturated, y)})
    nominal, same, sat = rows
    assert [r["variation"] for r in rows] == ["nominal", "same", "sat"]
    for key in ("mean_shift", "ks_top", "ks_w", "ks_max", "sig_eff_shift", "bkg_eff_shift"):
        assert nominal[key] == 0.0
        assert same[key] == 0.0
    assert nominal["sig_eff_at_ref_cut"] == pytest.approx(
        0.5, abs=2e-3
    )  # the working point keeps 50 % of top
    assert same["auc"] == nominal["auc"] > 0.85
    assert sat["ks_top"] == pytest.approx(1.0)
    assert sat["ks_w"] > 0.9
    assert sat["sig_eff_at_ref_cut"] == 0.0
    assert sat["bkg_eff_at_ref_cut"] == 0.0
    assert sat["sig_eff_shift"] == pytest.approx(-nominal["sig_eff_at_ref_cut"])
    assert sat["bkg_eff_shift"] == pytest.approx(-nominal["bkg_eff_at_ref_cut"])
    s = 1.0 / (1.0 + np.exp(-x[:, 0].astype(np.float64)))
    assert sat["mean_shift"] == pytest.approx(1.0 - s.mean(), abs=1e-6)
    assert sat["mean_shift_top"] == pytest.approx(1.0 - s[y == 0].mean(), abs=1e-6)
    assert nominal["bkg_eff"] == pytest.approx(nominal["bkg_eff_at_ref_cut"], abs=0.01)


def test_bad_inputs_give_clear_errors() -> None:
    x, y = _labelled(100, seed=1)
    model = _FirstFeature()
    with pytest.raises(ValueError, match="reference variation 'nominal' is not among"):
        nuisance_shift(model, {"up": (x, y)})
    with pytest.raises(ValueError, match="only one class"):
        nuisance_shift(model, {"nominal": (x, y), "up": (x, np.zeros(100, np.int64))})
    with pytest.raises(ValueError, match="no labels"):
        nuisance_shift(model, {"nominal": JetDataset(x, None, ("a", "b"))})
    with pytest.raises(TypeError, match="JetDataset or a tuple"):
        nuisance_shift(model, {"nominal": x})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="signal_efficiency"):
        nuisance_shift(model, {"nominal": (x, y)}, signal_efficiency=1.0)
    assert default_nuisance_values(["nominal", "isr_up", "tune-down"]) == {
        "nominal": 0.0,
        "isr_up": 1.0,
        "tune-down": -1.0,
    }
    with pytest.raises(ValueError, match="pass z_values"):
        default_nuisance_values(["nominal", "tune-a14"])
    with pytest.raises(ValueError, match="include 'nominal'"):
        train_nuisance_study({"nominal": (x, y)}, strategies=("pivot",))
    with pytest.raises(ValueError, match="disco_variable"):
        train_nuisance_study({"nominal": (x, y)}, disco_variable="pt")
    with pytest.raises(ValueError, match="strategies must be"):
        train_nuisance_study({"nominal": (x, y)}, strategies=("adversarial",))
    with pytest.raises(ValueError, match="87-column"):
        train_nuisance_study(
            {"nominal": (x, y), "a-up": (x, y)}, strategies=("disco",), disco_variable="mass"
        )


def _fake_variations(n: int, seed: int) -> dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
    """x0 separates the classes; x1 does too but moves with the nuisance (a fake shower variation)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, z in (("nominal", 0.0), ("fake-up", 1.0), ("fake-down", -1.0)):
        y = rng.integers(0, 2, n)
        x0 = rng.normal(size=n) + 1.2 * y
        x1 = rng.normal(size=n) + 1.2 * y + 1.0 * z
        out[name] = (np.stack([x0, x1, rng.normal(size=n)], axis=1).astype(np.float32), y)
    return out


@pytest.mark.slow
def test_pivot_and_disco_reduce_the_shift_between_variations() -> None:
    study = train_nuisance_study(
        _fake_variations(2000, seed=2),
        hidden=(16,),
        epochs=8,
        batch_size=256,
        lr=1e-2,
        patience=8,
        pivot_lr=3e-3,
        pivot_epochs=4,
        pivot_options={"lam": 50.0, "adversary_steps": 3, "adversary_pretrain_steps": 200},
        disco_options={"lam": 5.0},
        test_fraction=0.4,
        seed=0,
    )
    summary = {row["strategy"]: row for row in study.summary()}
    assert list(summary) == ["nominal", "pivot", "disco"]
    assert summary["nominal"]["max_ks"] > 0.25  # the plain tagger follows x1
    for strategy in ("pivot", "disco"):
        assert summary[strategy]["max_ks"] < 0.5 * summary["nominal"]["max_ks"], strategy
        assert summary[strategy]["max_abs_bkg_eff_shift"] < summary["nominal"]["max_abs_bkg_eff_shift"]
        assert summary[strategy]["auc_reference"] > 0.7  # still a tagger (x0 alone gives 0.80)
    assert len(study.rows) == 9
    assert set(study.to_dict()) == {"summary", "rows", "histories", "config"}
