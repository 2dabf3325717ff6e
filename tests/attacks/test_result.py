"""Tests of :class:`aalearn.attacks.AttackResult` and the metric functions (:mod:`aalearn.attacks.result`)."""

from __future__ import annotations

import doctest
import importlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from aalearn.attacks import AttackResult, challenge_score, get_attack, mean_absolute_deviation
from aalearn.models import TopoDNN

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def make_result(
    *,
    x: np.ndarray | None = None,
    x_adv: np.ndarray | None = None,
    labels: list[int] | None,
    decision_clean: list[int],
    decision_adv: list[int],
    attacked: list[bool],
    score_adv: list[float] | None = None,
    physical: dict[str, list[bool]] | None = None,
    extra: dict[str, Any] | None = None,
) -> AttackResult:
    """A hand-made result (the metrics are computed from the stored arrays only)."""
    n = len(decision_clean)
    x = np.zeros((n, 3)) if x is None else x
    x_adv = x.copy() if x_adv is None else x_adv
    lab = None if labels is None else np.asarray(labels, dtype=np.int64)
    dc = np.asarray(decision_clean, dtype=np.int64)
    da = np.asarray(decision_adv, dtype=np.int64)
    att = np.asarray(attacked, dtype=bool)
    target = dc if lab is None else lab
    return AttackResult(
        attack="hand-made",
        params={"eps": 1.0},
        x=x,
        x_adv=x_adv,
        target=target,
        labels=lab,
        decision_clean=dc,
        decision_adv=da,
        score_clean=None,
        score_adv=None if score_adv is None else np.asarray(score_adv, dtype=np.float64),
        attacked=att,
        success=att & (da != target),
        feasible=np.ones(n, dtype=bool),
        violations={"budget": np.zeros(n, dtype=bool), "bounds": np.arange(n) == 0},
        physical_violations={k: np.asarray(v, dtype=bool) for k, v in (physical or {}).items()},
        distance={
            "linf_sigma": np.arange(n, dtype=np.float64),
            "l2_sigma": np.arange(n, dtype=np.float64),
            "chi2_sigma": np.arange(n, dtype=np.float64),
            "l1": np.zeros(n),
            "n_changed": np.arange(n, dtype=np.float64),
        },
        seconds=0.5,
        extra=extra or {},
    )


def test_doctests() -> None:
    module = importlib.import_module("aalearn.attacks.result")
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------- metric functions
def test_mean_absolute_deviation() -> None:
    assert mean_absolute_deviation([[0.0, 0.0]], [[0.1, -0.3]]) == pytest.approx(0.2)
    assert mean_absolute_deviation([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 8.0]]) == pytest.approx(1.0)
    assert mean_absolute_deviation(np.zeros((0, 87)), np.zeros((0, 87))) == 0.0
    # feature units, no wrapping of φ (as in the challenge's scorer)
    assert mean_absolute_deviation([[3.1]], [[-3.1]]) == pytest.approx(6.2)
    # float32 input is accumulated in float64
    a = np.full((1000, 87), 0.1, dtype=np.float32)
    assert mean_absolute_deviation(a, a + np.float32(1e-3)) == pytest.approx(1e-3, rel=1e-3)


def test_mean_absolute_deviation_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        mean_absolute_deviation(np.zeros((3, 87)), np.zeros((3, 86)))


def test_challenge_score() -> None:
    assert challenge_score(0.907, 0.00664) == pytest.approx(0.794, abs=1e-3)
    assert challenge_score(1.0, 0.0) == 1.0
    assert challenge_score(0.0, 0.01) == 0.0
    assert challenge_score(0.5, 0.05) == pytest.approx(0.5 * math.exp(-1.0))
    assert challenge_score(0.9, 0.01) > challenge_score(0.9, 0.02)


# --------------------------------------------------------------------------- AttackResult (hand-made)
def test_fooling_ratio_counts_only_attacked_rows() -> None:
    res = make_result(
        labels=[0, 0, 1, 1, 0, 1],
        decision_clean=[0, 0, 1, 1, 1, 0],  # the last two are misclassified: not attacked
        decision_adv=[1, 0, 0, 1, 0, 1],  # rows 4 and 5 "change" but were never attacked
        attacked=[True, True, True, True, False, False],
    )
    assert res.success.tolist() == [True, False, True, False, False, False]
    assert res.fooling_ratio == pytest.approx(2 / 4)
    assert res.accuracy_clean == pytest.approx(4 / 6)
    assert res.accuracy == pytest.approx(4 / 6)
    assert res.flip_fraction == pytest.approx(4 / 6)
    assert res.challenge_score == pytest.approx(1 - 4 / 6)  # MAD 0
    m = res.metrics()
    assert m["n"] == 6
    assert m["n_attacked"] == 4
    assert m["fooling_ratio"] == pytest.approx(0.5)


def test_fooling_ratio_with_nothing_attacked() -> None:
    res = make_result(labels=[1, 1], decision_clean=[0, 0], decision_adv=[0, 0], attacked=[False, False])
    assert res.fooling_ratio == 0.0
    assert res.metrics()["median_chi2_sigma_fooled"] is None


def test_metrics_without_labels() -> None:
    res = make_result(
        labels=None,
        decision_clean=[0, 1, 1, 0],
        decision_adv=[1, 1, 0, 0],
        attacked=[True] * 4,
        score_adv=[0.6, 0.7, 0.4, 0.2],
        x=np.zeros((4, 2)),
        x_adv=np.array([[0.1, 0.0], [0.0, 0.0], [0.0, -0.1], [0.0, 0.0]]),
    )
    assert res.accuracy is None
    assert res.accuracy_clean is None
    assert res.auc() is None
    assert res.fooling_ratio == pytest.approx(0.5)
    assert res.flip_fraction == pytest.approx(0.5)
    assert res.mad == pytest.approx(0.2 / 8)
    assert res.challenge_score == pytest.approx(0.5 * math.exp(-20 * 0.2 / 8))
    m = res.metrics()
    assert m["accuracy"] is None
    assert m["auc"] is None
    assert m["accuracy_clean"] is None
    json.dumps(m)


def test_auc() -> None:
    kwargs: dict[str, Any] = {
        "decision_clean": [0, 0, 1, 1],
        "decision_adv": [0, 1, 1, 0],
        "attacked": [True] * 4,
        "score_adv": [0.1, 0.6, 0.9, 0.4],
    }
    res = make_result(labels=[0, 0, 1, 1], **kwargs)
    auc = res.auc()
    assert auc is not None
    assert 0.0 <= auc <= 1.0
    assert res.auc(signal_label=1) == pytest.approx(0.75)
    assert make_result(labels=[1, 1, 1, 1], **kwargs).auc() is None  # one class only
    assert make_result(labels=[0, 0, 1, 1], **{**kwargs, "score_adv": None}).auc() is None  # multi-class


def test_unphysical_fraction_and_violation_summary() -> None:
    res = make_result(
        labels=None,
        decision_clean=[0, 0, 0, 0],
        decision_adv=[0, 0, 0, 0],
        attacked=[True] * 4,
        physical={"bounds": [True, False, False, False], "phi-wrap": [True, True, False, False]},
    )
    assert res.unphysical.tolist() == [True, True, False, False]
    assert res.unphysical_fraction == pytest.approx(0.5)
    assert res.violation_summary() == {"budget": 0.0, "bounds": 0.25}
    assert (
        make_result(labels=None, decision_clean=[0], decision_adv=[0], attacked=[True]).unphysical_fraction
        == 0.0
    )


def test_to_dict_is_json_and_drops_arrays() -> None:
    res = make_result(
        labels=[0, 1],
        decision_clean=[0, 1],
        decision_adv=[1, 1],
        attacked=[True, True],
        score_adv=[0.7, 0.8],
        extra={"sigma": np.ones((2, 3)), "mean_tries": 3.5, "note": "ok"},
    )
    d = res.to_dict()
    json.dumps(d)
    assert d["params"] == {"eps": 1.0}
    assert d["extra"] == {"mean_tries": 3.5, "note": "ok"}
    for key in (
        "fooling_ratio",
        "accuracy",
        "auc",
        "mad",
        "challenge_score",
        "unphysical_fraction",
        "seconds",
    ):
        assert key in d


# --------------------------------------------------------------------------- from a real run


@pytest.fixture(scope="module")
def run_data(challenge_jets: Callable[..., np.ndarray]) -> tuple[np.ndarray, TopoDNN, np.ndarray]:
    x = challenge_jets(80)
    torch.manual_seed(0)
    model = TopoDNN(hidden=(16,)).fit_input_scaling(x).eval()
    with torch.no_grad():
        model.output.bias -= model(torch.as_tensor(x, dtype=torch.float32)).median()
        dec = (model(torch.as_tensor(x, dtype=torch.float32)) >= 0).long().numpy()
    labels = dec.copy()
    labels[::4] = 1 - labels[::4]
    return x, model, labels


def test_metrics_of_a_real_run(run_data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    x, model, labels = run_data
    res = get_attack("pgd", eps=1.0, steps=5).run(model, x, labels)
    assert res.n == 80
    assert res.attacked.sum() == 60
    assert not (res.success & ~res.attacked).any()
    assert res.fooling_ratio == pytest.approx(res.success.sum() / 60)
    assert 0 < res.fooling_ratio <= 1
    assert res.accuracy_clean == pytest.approx(0.75)
    assert res.accuracy == pytest.approx(np.mean(res.decision_adv == labels))
    assert res.mad == pytest.approx(mean_absolute_deviation(x, res.x_adv))
    assert res.challenge_score == pytest.approx(challenge_score(1 - res.accuracy, res.mad))
    auc = res.auc()
    assert auc is not None
    assert 0.0 <= auc <= 1.0
    assert res.score_adv is not None
    assert np.all((res.score_adv >= 0) & (res.score_adv <= 1))
    np.testing.assert_array_equal(res.score_adv >= 0.5, res.decision_adv == 1)
    m = res.metrics()
    json.dumps(res.to_dict())
    assert m["median_linf_sigma_fooled"] <= 1.0 + 1e-4
    assert m["feasible_fraction"] == 1.0
    assert m["unphysical_fraction"] == 0.0


def test_metrics_of_an_unlabeled_run(run_data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    x, model, _ = run_data
    res = get_attack("fgsm", eps=1.0).run(model, x)
    assert res.labels is None
    assert res.accuracy is None
    assert res.accuracy_clean is None
    assert res.auc() is None
    assert res.fooling_ratio == pytest.approx(res.flip_fraction)
    assert res.challenge_score == pytest.approx(challenge_score(res.flip_fraction, res.mad))
    m = res.metrics()
    assert m["accuracy"] is None
    assert m["auc"] is None
    json.dumps(m)
