"""Adversarial-sample detector: known-answer metrics, threshold, persistence, cross-run test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

from aalearn.training.detector import (
    AdversarialDetector,
    DetectionResult,
    cross_run_test,
    detection_metrics,
    fooled_mask,
    threshold_at_fpr,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

N_FEATURES = 5


def _tagger(n_features: int = N_FEATURES, column: int = 1, gain: float = 5.0) -> nn.Module:
    """Linear tagger deciding on one column: label 1 where x[:, column] > 0."""
    lin = nn.Linear(n_features, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, column] = gain
        lin.bias.zero_()
    return lin.eval()


def _jets(n: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    y = (x[:, 1] > 0).astype(np.int64)
    y[rng.random(n) < 0.1] ^= 1  # 10 % the tagger gets wrong
    return x, y


def _attack(
    x: npt.NDArray[np.float64], *, seed: int, column: int, offset: float = 8.0
) -> npt.NDArray[np.float64]:
    """A toy 'attack': for 80 % of the jets flip the decision feature and shift one other column.

    The flipped decision feature keeps its (symmetric) marginal; the shift is the attack's
    fingerprint a detector can learn.
    """
    rng = np.random.default_rng(seed)
    attacked = rng.random(len(x)) < 0.8
    adv = x.copy()
    adv[attacked, 1] = -x[attacked, 1]
    if offset:
        adv[attacked, column] += offset + 0.1 * rng.normal(size=int(attacked.sum()))
    return adv


def _small_detector(**kwargs: object) -> AdversarialDetector:
    settings: dict[str, object] = {"hidden": (16, 8), "epochs": 15, "batch_size": 64, "lr": 3e-3}
    settings.update(kwargs)
    return AdversarialDetector(**settings)  # type: ignore[arg-type]


class _FixedDetector:
    """Scores the clipped column 1; flags above 0.5 (a detector with a known answer)."""

    threshold_ = 0.5

    def score(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.clip(np.asarray(x, dtype=np.float64)[:, 1], 0.0, 1.0)

    def predict(self, x: npt.ArrayLike, threshold: float | None = None) -> npt.NDArray[np.bool_]:
        return self.score(x) > (self.threshold_ if threshold is None else threshold)


class _FlagNothing:
    def score(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.zeros(len(np.asarray(x)))

    def predict(self, x: npt.ArrayLike, threshold: float | None = None) -> npt.NDArray[np.bool_]:
        return np.zeros(len(np.asarray(x)), dtype=bool)


def test_hand_computed_metrics_on_a_tiny_example() -> None:
    tagger = _tagger(n_features=2, column=0)
    clean = np.array([[1, 0], [2, 0], [-1, 0], [-2, 0], [3, 0], [-3, 1]], dtype=float)
    adv = np.array([[-1, 1], [2, 0], [1, 0], [-2, 1], [3, 0], [3, 0]], dtype=float)
    y = np.array([1, 1, 0, 0, 0, 1])
    # correct when clean: rows 0-3; fooled: rows 0 and 2; row 0's adversary is flagged.
    correct, fooled = fooled_mask(tagger, clean, adv, y)
    np.testing.assert_array_equal(correct, [True, True, True, True, False, False])
    np.testing.assert_array_equal(fooled, [True, False, True, False, False, False])
    res = detection_metrics(tagger, _FixedDetector(), clean, adv, y)
    assert isinstance(res, DetectionResult)
    assert (res.n, res.n_correct, res.n_fooled, res.n_fooled_undetected) == (6, 4, 2, 1)
    assert res.fooling_ratio == 0.5
    assert res.corrected_fooling_ratio == 0.25
    assert res.detection_rate == 0.5
    assert res.false_positive_rate == pytest.approx(1 / 6)
    # AUC of fooled adversaries' scores {1, 0} against clean scores {0,0,0,0,0,1}: (5 + ½ + 5·½) / 12
    assert res.detector_auc == pytest.approx(8 / 12)
    assert res.threshold == 0.5
    # an explicit threshold overrides the detector's: 0.0 flags every positive score
    assert detection_metrics(tagger, _FixedDetector(), clean, adv, y, threshold=0.0).detection_rate == 0.5
    assert res.to_dict()["corrected_fooling_ratio"] == 0.25


def test_a_detector_that_flags_nothing_leaves_the_fooling_ratio_unchanged() -> None:
    x, y = _jets(300, seed=0)
    adv = _attack(x, seed=1, column=0)
    res = detection_metrics(_tagger(), _FlagNothing(), x, adv, y)
    assert res.fooling_ratio > 0.7
    assert res.corrected_fooling_ratio == res.fooling_ratio
    assert res.detection_rate == 0.0
    assert res.false_positive_rate == 0.0
    assert res.detector_auc == 0.5
    assert res.threshold is None


def test_no_successful_adversaries_gives_zero_fooling_and_undefined_detection() -> None:
    x, y = _jets(50, seed=0)
    res = detection_metrics(_tagger(), _FixedDetector(), x, x.copy(), y)
    assert res.n_fooled == 0
    assert res.fooling_ratio == 0.0 == res.corrected_fooling_ratio
    assert res.detection_rate is None
    assert res.detector_auc is None


def test_detector_learns_a_constant_offset_known_answer() -> None:
    x, y = _jets(800, seed=0)
    adv = _attack(x, seed=1, column=0)
    tagger = _tagger()
    _, fooled = fooled_mask(tagger, x, adv, y)
    det = _small_detector().fit(x[:500], adv[:500][fooled[:500]], seed=0)
    assert det.threshold_ is not None
    assert det.val_fpr_ is not None
    assert det.val_fpr_ <= 0.05
    assert det.val_detection_rate_ == 1.0
    res = detection_metrics(tagger, det, x[500:], adv[500:], y[500:])  # unseen jets
    assert res.fooling_ratio > 0.7
    assert res.detector_auc is not None
    assert res.detector_auc > 0.999
    assert res.corrected_fooling_ratio < 0.01
    assert res.false_positive_rate < 0.12  # 5 % target, binomial scatter on 300 clean jets
    flags = det.predict(adv[500:])
    assert flags.dtype == bool
    assert flags.shape == (300,)
    assert det.score(x[500:]).shape == (300,)


def test_threshold_at_fpr() -> None:
    scores = np.arange(1, 21) / 20.0  # 0.05 ... 1.0
    assert threshold_at_fpr(scores, 0.05) == 0.95  # only 1.0 lies above: 1/20
    assert threshold_at_fpr(scores, 0.10) == 0.90
    assert threshold_at_fpr(scores, 0.01) == 1.0  # nothing above
    assert np.mean(scores > threshold_at_fpr(scores, 0.33)) <= 0.33
    with pytest.raises(ValueError, match="target_fpr must lie strictly between 0 and 1"):
        threshold_at_fpr(scores, 0.0)
    with pytest.raises(ValueError, match="no clean scores"):
        threshold_at_fpr([], 0.1)


def test_fit_is_reproducible_and_save_load_round_trips(tmp_path: Path) -> None:
    x, _y = _jets(400, seed=2)
    adv = _attack(x, seed=3, column=2)
    first = _small_detector(target_fpr=0.1).fit(x, adv, seed=7)
    second = _small_detector(target_fpr=0.1).fit(x, adv, seed=7)
    np.testing.assert_array_equal(first.score(x), second.score(x))
    path = first.save(tmp_path / "detector.safetensors")
    loaded = AdversarialDetector.load(path)
    assert loaded.config == first.config
    assert loaded.threshold_ == first.threshold_
    assert loaded.val_fpr_ == first.val_fpr_
    np.testing.assert_array_equal(loaded.score(adv), first.score(adv))
    np.testing.assert_array_equal(loaded.predict(adv), first.predict(adv))


def test_tagger_logit_as_an_extra_input(tmp_path: Path) -> None:
    x, _y = _jets(300, seed=4)
    adv = _attack(x, seed=5, column=3)
    tagger = _tagger()
    det = _small_detector(tagger=tagger, include_logit=True).fit(x, adv, seed=0)
    assert det.net_ is not None
    assert det.net_.n_features == N_FEATURES + 1
    assert det.score(x).shape == (300,)
    path = det.save(tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match="pass tagger="):
        AdversarialDetector.load(path)
    np.testing.assert_array_equal(AdversarialDetector.load(path, tagger=tagger).score(x), det.score(x))


def test_bad_input_raises_clear_errors(tmp_path: Path) -> None:
    x, y = _jets(40, seed=0)
    with pytest.raises(ValueError, match="include_logit=True needs the tagger"):
        AdversarialDetector(include_logit=True)
    with pytest.raises(ValueError, match="target_fpr"):
        AdversarialDetector(target_fpr=1.0)
    with pytest.raises(ValueError, match="hidden"):
        AdversarialDetector(hidden=())
    with pytest.raises(TypeError, match="tagger must be"):
        AdversarialDetector("model.safetensors")  # type: ignore[arg-type]
    det = _small_detector(epochs=1)
    with pytest.raises(ValueError, match="not fitted"):
        det.score(x)
    with pytest.raises(ValueError, match="x_clean has 5 feature columns but x_adv has 4"):
        det.fit(x, x[:, :4])
    with pytest.raises(ValueError, match="at least 4"):
        det.fit(x, x[:2])
    with pytest.raises(ValueError, match="val_fraction"):
        det.fit(x, x, val_fraction=1.5)
    det.fit(x, x + 1.0)
    with pytest.raises(ValueError, match="fitted on 5"):
        det.score(x[:, :3])
    with pytest.raises(ValueError, match="row-paired"):
        detection_metrics(_tagger(), det, x, x[:10], y)
    with pytest.raises(ValueError, match="must be 0 or 1"):
        detection_metrics(_tagger(), det, x, x, y + 2)
    other = tmp_path / "plain.safetensors"
    from aalearn.models import TopoDNN, save_checkpoint

    save_checkpoint(TopoDNN(n_features=3, hidden=(2,)), other)
    with pytest.raises(ValueError, match="not a saved AdversarialDetector"):
        AdversarialDetector.load(other)


def test_cross_run_test_same_attack_other_seed_and_other_attack() -> None:
    x, y = _jets(800, seed=0)
    tagger = _tagger()
    runs = {
        "shift0-seed1": (x, _attack(x, seed=1, column=0), y),
        "shift0-seed2": (x, _attack(x, seed=2, column=0), y),
        "flip-only": (x, _attack(x, seed=3, column=2, offset=0.0), y),
    }
    other_x, other_y = _jets(300, seed=9)
    runs["shift0-other-jets"] = (other_x, _attack(other_x, seed=4, column=0), other_y)
    table = cross_run_test(tagger, _small_detector, runs, train_on="shift0-seed1", holdout=0.5, seed=0)
    rows = {r["run"]: r for r in table}
    assert [r["run"] for r in table] == list(runs)
    assert rows["shift0-seed1"]["trained_on"]
    assert not rows["flip-only"]["trained_on"]
    assert rows["shift0-seed2"]["rows"] == "held-out"
    assert rows["shift0-seed2"]["n"] == 400
    assert rows["shift0-other-jets"]["rows"] == "all"
    assert rows["shift0-other-jets"]["n"] == 300
    for name in ("shift0-seed1", "shift0-seed2", "shift0-other-jets"):  # same attack: detected
        assert rows[name]["detector_auc"] > 0.99, name
        assert rows[name]["corrected_fooling_ratio"] < 0.02, name
    # another attack, without the fingerprint (its adversaries follow the clean distribution):
    # the detector cannot separate them, it flags them as often as clean jets
    other = rows["flip-only"]
    assert 0.4 < other["detector_auc"] < 0.6
    assert other["detection_rate"] < 0.15
    assert other["corrected_fooling_ratio"] > 0.85 * other["fooling_ratio"] > 0.6


def test_cross_run_test_bad_arguments() -> None:
    x, y = _jets(100, seed=0)
    runs = {"a": (x, _attack(x, seed=1, column=0), y)}
    with pytest.raises(ValueError, match="not one of the runs"):
        cross_run_test(_tagger(), _small_detector, runs, train_on="b")
    with pytest.raises(ValueError, match="non-empty mapping"):
        cross_run_test(_tagger(), _small_detector, {}, train_on="a")
    with pytest.raises(ValueError, match="run 'bad'"):
        cross_run_test(_tagger(), _small_detector, {**runs, "bad": (x, x[:5], y)}, train_on="a")
    with pytest.raises(ValueError, match="successful adversaries"):
        cross_run_test(_tagger(), _small_detector, {"a": (x, x.copy(), y)}, train_on="a")
    with pytest.raises(ValueError, match="holdout"):
        cross_run_test(_tagger(), _small_detector, runs, train_on="a", holdout=0.0)
