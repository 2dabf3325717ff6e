"""Intervals in the apps (issue 17 item 5): ``aalearn evaluate``, challenge Task 2, model comparison.

The figures are value-checked on models with a known answer; the interval ends on cases
where they are known exactly (Clopper–Pearson closed forms at k = 0 and k = n, a paired
bootstrap with no spread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from aalearn.apps.challenge import Comparison, challenge_task2, compare_models
from aalearn.apps.evaluate import evaluate_file, metric_row
from aalearn.core.jsonutil import dumps
from aalearn.evaluation import evaluate_scores
from aalearn.evaluation.bootstrap import bootstrap_metrics, proportion_interval
from aalearn.models import TopoDNN, save_checkpoint

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_evaluate_file_reports_every_figure_with_interval_level_and_n(sign_rule: Any) -> None:
    clean, adv, ds = sign_rule.files(80, 4)
    assert ds.labels is not None
    run = evaluate_file(sign_rule.model, adv, n_boot=200, seed=3)  # type: ignore[arg-type]
    out = run.to_dict()
    n = len(ds)
    # every adversarial jet is misclassified: accuracy 0 with the closed-form upper end 1 - 0.16^(1/n)
    acc = out["intervals"]["accuracy"]
    assert (acc["value"], acc["low"], acc["n"], acc["level"]) == (0.0, 0.0, n, 0.68)
    assert acc["high"] == pytest.approx(1 - 0.16 ** (1 / n), rel=1e-9)
    auc = out["intervals"]["auc"]
    assert auc["value"] == out["auc"]
    assert (auc["n"], auc["n_boot"], auc["method"]) == (n, 200, "bootstrap")
    # the same numbers as the library on the same scores and seed
    ref = bootstrap_metrics(ds.labels, 1 - ds.labels.astype(float), n_boot=200, seed=3)
    assert (auc["low"], auc["high"]) == (ref["auc"].low, ref["auc"].high)
    row = run.summary()[0]
    assert row["accuracy 68% CI"] == f"[0, {acc['high']:.4g}]"
    assert row["n_boot"] == 200
    assert "Infinity" not in dumps(out["intervals"])
    # without intervals the row keeps its old keys
    assert set(metric_row(evaluate_scores([0, 1], [0.2, 0.7]))) == {
        "n",
        "accuracy",
        "auc",
        "rejection@0.3",
        "rejection@0.5",
    }
    assert "intervals" not in evaluate_file(sign_rule.model, clean, n_boot=0).to_dict()  # type: ignore[arg-type]


def test_task2_intervals_on_a_known_answer(sign_rule: Any) -> None:
    """Clean accuracy 1 and adversarial accuracy 0 on every jet: each jet contributes exactly ½."""
    clean, adv, ds = sign_rule.files(80, 4)
    n = len(ds)
    res = challenge_task2(sign_rule.model, clean=clean, adversarial=adv, adaptive=(), n_boot=100).to_dict()
    assert res["mixed_accuracy"] == 0.5
    assert (res["mixed_accuracy_low"], res["mixed_accuracy_high"]) == (0.5, 0.5)  # paired: no spread
    assert res["clean_accuracy_high"] == 1.0
    assert res["clean_accuracy_low"] == pytest.approx(0.16 ** (1 / n), rel=1e-9)
    assert res["adversarial_accuracy_high"] == pytest.approx(1 - 0.16 ** (1 / n), rel=1e-9)
    iv = res["intervals"]["accuracy_drop"]
    assert (iv["value"], iv["low"], iv["high"], iv["n"]) == (1.0, 1.0, 1.0, n)
    assert res["interval_level"] == 0.68


def test_task2_adaptive_rows_carry_attack_intervals(sign_rule: Any) -> None:
    clean, adv, _ = sign_rule.files(80, 4)
    torch.manual_seed(0)
    model = TopoDNN(hidden=(8,), batchnorm=False)
    res = challenge_task2(
        model, clean=clean, adversarial=adv, adaptive=(("fgsm", 1.0),), n_adaptive=30, n_boot=50
    ).to_dict()
    (row,) = res["adaptive"]
    ivs = row["intervals"]
    assert row["n"] == 30
    assert ivs["accuracy"]["value"] == pytest.approx(row["accuracy"])
    k = round(row["accuracy"] * 30)
    expect = proportion_interval(k, 30)
    assert (row["accuracy_low"], row["accuracy_high"]) == (expect.low, expect.high)
    assert ivs["fooling_ratio"]["value"] == pytest.approx(row["fooling_ratio"])
    assert ivs["challenge_score"]["value"] == pytest.approx(row["challenge_score"], rel=1e-9)


def test_compare_models_paired_auc_difference(tmp_path: Path, sign_rule: Any) -> None:
    """The same checkpoint twice: the paired AUC difference is exactly 0 with zero width."""
    clean, _, _ = sign_rule.files(80, 4)
    torch.manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(TopoDNN(hidden=(8,), batchnorm=False), path)
    rows = compare_models([str(path), str(path)], clean, attacks=(), n_boot=100)
    assert "delta_auc" not in rows[0]
    assert (rows[1]["delta_auc"], rows[1]["delta_auc_low"], rows[1]["delta_auc_high"]) == (0.0, 0.0, 0.0)
    assert rows[0]["auc_low"] <= rows[0]["auc"] <= rows[0]["auc_high"]
    assert rows[1]["intervals"]["delta_auc"]["method"] == "paired bootstrap"
    table = Comparison(str(clean), rows).summary()
    assert all(not isinstance(v, dict) for r in table for v in r.values())
