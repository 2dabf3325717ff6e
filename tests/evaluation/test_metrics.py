"""Accuracy, ROC AUC and background rejection on cases with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.evaluation import MAX_ROC_POINTS, background_rejection, evaluate_model, evaluate_scores
from aalearn.models import TopoDNN, load_keras_topodnn
from aalearn.physics.features import challenge_feature_names


def _strict_json(d: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(d, allow_nan=False))


def test_perfect_separation() -> None:
    labels = np.array([0] * 5 + [1] * 5)
    scores = np.r_[np.linspace(0.0, 0.4, 5), np.linspace(0.6, 1.0, 5)]
    res = evaluate_scores(labels, scores)
    assert res.accuracy == 1.0
    assert res.auc == 1.0
    assert res.background_rejection == {0.3: math.inf, 0.5: math.inf}
    assert (res.n, res.n_signal, res.n_background, res.signal_label) == (10, 5, 5, LABEL_TOP)
    d = _strict_json(res.to_dict())
    assert d["background_rejection"] == {"0.3": "inf", "0.5": "inf"}
    assert "fpr" not in d


def test_inverted_scores() -> None:
    labels = np.array([0] * 5 + [1] * 5)
    scores = np.r_[np.linspace(0.6, 1.0, 5), np.linspace(0.0, 0.4, 5)]
    res = evaluate_scores(labels, scores)
    assert res.accuracy == 0.0
    assert res.auc == 0.0
    assert res.background_rejection[0.5] == pytest.approx(1.0)


def test_random_scores_have_auc_one_half() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20_000)
    scores = rng.uniform(size=20_000)
    res = evaluate_scores(labels, scores)
    # σ(AUC) ≈ sqrt((n_s + n_b + 1) / (12 n_s n_b)) ≈ 0.004 here.
    assert res.auc == pytest.approx(0.5, abs=0.02)
    assert res.accuracy == pytest.approx(0.5, abs=0.02)
    # For a random tagger ε_B = ε_S, so 1/ε_B = 1/ε_S.
    assert res.rejection_at(0.3) == pytest.approx(1 / 0.3, rel=0.1)
    assert res.rejection_at(0.5) == pytest.approx(2.0, rel=0.1)
    assert res.fpr.size <= MAX_ROC_POINTS
    assert res.fpr[0] == 0.0
    assert res.tpr[-1] == 1.0
    assert np.all(np.diff(res.fpr) >= 0)
    assert np.all(np.diff(res.tpr) >= 0)


def test_hand_computed_rejection_and_auc() -> None:
    # Signal = label 1 with scores 0.9, 0.8, 0.7, 0.6; eight background jets, one (0.85) above
    # three signal jets. Every ε_S ≥ 0.25 up to 1 costs ε_B = 1/8: rejection 8 at 0.3 and 0.5.
    sig = [0.9, 0.8, 0.7, 0.6]
    bkg = [0.85, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]
    labels = np.r_[np.ones(4), np.zeros(8)].astype(int)
    res = evaluate_scores(labels, np.r_[sig, bkg], signal_label=1)
    assert res.rejection_at(0.3) == pytest.approx(8.0)
    assert res.rejection_at(0.5) == pytest.approx(8.0)
    assert res.auc == pytest.approx(29 / 32)  # 8 + 7 + 7 + 7 ordered pairs out of 32
    assert res.accuracy == pytest.approx(11 / 12)  # 0.85 is the only error (0.5 is not > 0.5)


def test_rejection_is_interpolated_linearly_on_the_roc_curve() -> None:
    # Tied scores: ROC points (0, 0), (0.5, 1), (1, 1); ε_B(ε_S) = ε_S / 2 below ε_S = 1.
    res = evaluate_scores([1, 1, 0, 0], [0.8, 0.8, 0.8, 0.1], signal_label=1)
    assert res.rejection_at(0.3) == pytest.approx(1 / 0.15)
    assert res.rejection_at(0.5) == pytest.approx(4.0)
    assert background_rejection([0.0, 0.5, 1.0], [0.0, 1.0, 1.0], 0.5) == pytest.approx(4.0)
    # A horizontal ROC segment: the smallest ε_B reaching ε_S is used.
    assert background_rejection([0.0, 0.2, 0.6, 1.0], [0.0, 0.5, 0.5, 1.0], 0.5) == pytest.approx(5.0)
    with pytest.raises(KeyError, match="not evaluated"):
        res.rejection_at(0.7)


def test_signal_label_swap_gives_the_same_auc() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    top = evaluate_scores(labels, scores, signal_label=LABEL_TOP)
    w = evaluate_scores(labels, scores, signal_label=LABEL_W)
    reference = roc_auc_score(labels, scores)
    assert top.auc == pytest.approx(reference, abs=1e-12)
    assert w.auc == pytest.approx(reference, abs=1e-12)
    assert top.accuracy == w.accuracy
    assert (top.n_signal, top.n_background) == (w.n_background, w.n_signal)
    np.testing.assert_array_equal(top.scores_signal, scores[labels == 0])
    np.testing.assert_array_equal(w.scores_signal, scores[labels == 1])


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_input(label: int) -> None:
    res = evaluate_scores(np.full(4, label), [0.2, 0.4, 0.6, 0.8])
    assert res.accuracy == 0.5
    assert res.auc is None
    assert res.background_rejection == {0.3: None, 0.5: None}
    assert len(res.notes) == 1
    assert "undefined" in res.notes[0]
    d = _strict_json(res.to_dict(include_curves=True))
    assert d["auc"] is None
    assert d["fpr"] == []


def test_to_dict_with_curves_is_json() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 3000)
    scores = rng.uniform(size=3000)
    res = evaluate_scores(labels, scores, threshold=0.4, signal_efficiencies=(0.1, 0.5, 0.9))
    d = _strict_json(res.to_dict(include_curves=True))
    assert set(d["background_rejection"]) == {"0.1", "0.5", "0.9"}
    assert len(d["fpr"]) == len(d["tpr"]) <= MAX_ROC_POINTS
    assert len(d["scores_signal"]) + len(d["scores_background"]) == 3000
    assert d["threshold"] == 0.4


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        evaluate_scores([0, 1], [-0.5, 2.0])
    with pytest.raises(ValueError, match="entries"):
        evaluate_scores([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 or 1"):
        evaluate_scores([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        evaluate_scores([], [])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="signal_label"):
        evaluate_scores([0, 1], [0.1, 0.9], signal_label=2)
    with pytest.raises(ValueError, match="threshold"):
        evaluate_scores([0, 1], [0.1, 0.9], threshold=1.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        evaluate_scores([0, 1], [0.1, 0.9], signal_efficiencies=(0.0,))


def test_evaluate_model_on_a_dataset() -> None:
    model = TopoDNN(n_features=3, hidden=(4,)).eval()
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    ds = JetDataset(x, np.arange(20) % 2, ("a", "b", "c"), source="toy")
    res = evaluate_model(model, ds, batch_size=7)
    assert res.n == 20
    assert res.auc is not None
    unlabeled = JetDataset(x, None, ("a", "b", "c"), source="toy")
    with pytest.raises(ValueError, match="no labels"):
        evaluate_model(model, unlabeled)
    with pytest.raises(ValueError, match="model expects 4"):
        evaluate_model(TopoDNN(n_features=4, hidden=(2,)), ds)


def test_challenge_model_metrics(challenge_dir: Path) -> None:
    model = load_keras_topodnn(challenge_dir / "best_model.hdf5")
    names = challenge_feature_names()
    results = {}
    for kind in ("Clean", "Adversaries"):
        df = pd.read_feather(challenge_dir / f"{kind}_Test_Public.feather")
        ds = JetDataset(df[list(names)].to_numpy(np.float32), df["Label"].to_numpy(), names, source=kind)
        results[kind] = evaluate_model(model, ds)
    clean, adv = results["Clean"], results["Adversaries"]
    assert clean.accuracy == pytest.approx(1.0, abs=5e-4)
    assert adv.accuracy == pytest.approx(0.093, abs=5e-4)
    assert clean.auc == 1.0
    assert adv.auc is not None
    assert adv.auc < 0.5
    assert (clean.n_signal, clean.n_background) == (2733, 2267)
    _strict_json(clean.to_dict(include_curves=True))


# --------------------------------------------------------------------------- sample weights
def test_weighted_metrics_equal_sklearn_and_row_duplication() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    s = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, 400), 0, 1)
    w = rng.integers(0, 4, 400).astype(np.float64)
    res = evaluate_scores(y, s, sample_weight=w)
    # peer library: sklearn's weighted AUC with top (label 0) as the positive class
    assert res.auc == pytest.approx(roc_auc_score(y == LABEL_TOP, -s, sample_weight=w), rel=1e-12)
    # independent reference: integer weights = repeating each jet w times
    rep = np.repeat(np.arange(400), w.astype(int))
    dup = evaluate_scores(y[rep], s[rep])
    assert res.auc == pytest.approx(dup.auc, rel=1e-12)
    assert res.accuracy == pytest.approx(dup.accuracy, rel=1e-12)
    for eff in (0.3, 0.5):
        assert res.rejection_at(eff) == pytest.approx(dup.rejection_at(eff), rel=1e-9)
    assert res.weighted
    assert res.to_dict()["weighted"] is True
    plain = evaluate_scores(y, s)
    assert "weighted" not in plain.to_dict()
    assert plain.auc != pytest.approx(res.auc, rel=1e-6)  # the weights matter here


def test_bad_sample_weights() -> None:
    with pytest.raises(ValueError, match="one weight per jet"):
        evaluate_scores([0, 1], [0.2, 0.8], sample_weight=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        evaluate_scores([0, 1], [0.2, 0.8], sample_weight=[1.0, -1.0])
