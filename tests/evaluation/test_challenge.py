"""Challenge Task 2 (mixed accuracy), adaptive evaluation and the model comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from aalearn.apps.challenge import challenge_task2, compare_models, mixed_accuracy, variation_shift
from aalearn.attacks import get_attack
from aalearn.data import JetDataset
from aalearn.data.io import load_dataset, save_dataset
from aalearn.models import TopoDNN, load_model, predict_proba, save_checkpoint

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _decisions(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Label decisions of a one-logit model, computed here (logit ≥ 0 is label 1)."""
    with torch.no_grad():
        return (model(torch.as_tensor(x, dtype=torch.float32)).reshape(-1) >= 0).long().numpy()


def test_mixed_accuracy_known_answer(sign_rule: Any) -> None:
    x = np.zeros((4, 87), dtype=np.float32)
    x[:, 0] = [0.06, 0.09, 0.06, 0.09]
    y = np.array([0, 1, 0, 1])
    adv = x.copy()
    adv[:2, 0] = [0.09, 0.06]  # the first two rows flipped, the last two unchanged
    res = mixed_accuracy(sign_rule.model, x, adv, y)
    assert res == {"clean_accuracy": 1.0, "adversarial_accuracy": 0.5, "mixed_accuracy": 0.75, "n": 4}


def test_mixed_accuracy_rejects_unpaired_and_bad_input(sign_rule: Any) -> None:
    x = np.zeros((4, 87), dtype=np.float32)
    with pytest.raises(ValueError, match="row-paired"):
        mixed_accuracy(sign_rule.model, x, x[:3], [0, 1, 0, 1])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN|finite"):
        mixed_accuracy(sign_rule.model, x, bad, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="label"):
        mixed_accuracy(sign_rule.model, x, x, [0, 2, 0, 1])


def test_challenge_task2_on_files(sign_rule: Any) -> None:
    clean, adv, _ = sign_rule.files(60, 3)
    res = challenge_task2(sign_rule.model, clean=clean, adversarial=adv, adaptive=()).to_dict()
    assert res["clean_accuracy"] == 1.0
    assert res["adversarial_accuracy"] == 0.0
    assert res["mixed_accuracy"] == 0.5
    assert res["adaptive"] == []


def test_challenge_task2_adaptive_attack_rows(sign_rule: Any) -> None:
    clean, adv, ds = sign_rule.files(60, 3)
    torch.manual_seed(0)
    # scaled inputs and the bias at the median logit: decisions near the boundary, so PGD fools some jets
    model = TopoDNN(hidden=(8,), batchnorm=False).fit_input_scaling(ds.features).eval()
    with torch.no_grad():
        model.output.bias.sub_(model(torch.as_tensor(ds.features)).median())
    res = challenge_task2(
        model, clean=clean, adversarial=adv, adaptive=(("pgd", 1.0),), n_adaptive=20
    ).to_dict()
    (row,) = res["adaptive"]
    assert row["attack"] == "pgd"
    # the same attack run here on the first 20 clean jets (as read back from the file), seed 0
    ds = load_dataset(clean)
    assert ds.labels is not None
    x, y = ds.features[:20], ds.labels[:20]
    ref = get_attack("pgd", eps=1.0).run(model, x, y, seed=0)
    assert row["accuracy"] == pytest.approx(float(np.mean(_decisions(model, ref.x_adv) == y)), abs=1e-12)
    assert row["fooling_ratio"] == pytest.approx(ref.fooling_ratio, abs=1e-12)
    # the challenge's MAD of the same adversarial jets: the rows come from this very run (same seed)
    assert row["mad"] == pytest.approx(float(np.abs(ref.x_adv - x.astype(np.float64)).mean()), rel=1e-9)
    assert row["fooling_ratio"] > 0.2  # the attack has an effect to compare
    assert row["accuracy"] < float(np.mean(_decisions(model, x) == y))
    with pytest.raises(ValueError, match="unknown attack"):
        challenge_task2(model, clean=clean, adversarial=adv, adaptive=(("nope", None),))


def test_compare_models_and_variation_shift(tmp_path: Path, sign_rule: Any) -> None:
    clean, _, ds = sign_rule.files(60, 3)
    specs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = TopoDNN(hidden=(8,), batchnorm=False)
        path = tmp_path / f"m{seed}.safetensors"
        save_checkpoint(model, path, metadata={"strategy": "nominal", "train_seconds": 1.5})
        specs.append(str(path))
    shifted = JetDataset(
        features=(ds.features * 1.3).astype(np.float32),
        labels=ds.labels,
        feature_names=ds.feature_names,
        source="shifted",
    )
    save_dataset(shifted, tmp_path / "shifted.feather")
    rows = compare_models(
        specs, clean, attacks=(("fgsm", 1.0),), variations={"x1.3": tmp_path / "shifted.feather"}, n_attack=20
    )
    assert [r["model"] for r in rows] == specs
    assert ds.labels is not None
    y = ds.labels
    for spec, r in zip(specs, rows, strict=True):
        assert {"auc", "accuracy", "rejection@0.5", "acc_fgsm(eps=1)", "max_ks_x1.3", "train_seconds"} <= set(
            r
        )
        assert r["train_seconds"] == 1.5
        # every figure recomputed here from the saved model (sklearn, scipy, the attack registry)
        saved = load_model(spec)
        p, p_shift = predict_proba(saved, ds.features), predict_proba(saved, shifted.features)
        assert r["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert r["accuracy"] == pytest.approx(float(np.mean((p >= 0.5) == y)), abs=1e-12)
        ks = max(ks_2samp(p[y == c], p_shift[y == c]).statistic for c in (0, 1))
        assert r["max_ks_x1.3"] == pytest.approx(ks, abs=1e-12)
        ref = get_attack("fgsm", eps=1.0).run(saved, ds.features[:20], y[:20], seed=0)
        acc = float(np.mean(_decisions(saved, ref.x_adv) == y[:20]))
        assert r["acc_fgsm(eps=1)"] == pytest.approx(acc, abs=1e-12)
    assert rows[0]["auc"] != rows[1]["auc"]  # two different models were compared
    # identical inputs give no shift; a known shift of one feature moves the score of the sign-rule model
    same = variation_shift(sign_rule.model, ds, {"same": ds})[0]
    assert same["ks_label0"] == 0.0
    assert same["accuracy_change"] == 0.0
    with pytest.raises(ValueError, match="at least one model"):
        compare_models([], clean)
