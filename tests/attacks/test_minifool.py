"""Tests of MiniFool and its uncertainty-scale scan (:mod:`aalearn.attacks.minifool`)."""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
from collections.abc import Callable

import numpy as np
import pytest
import torch

from aalearn.attacks import DEFAULT_SCALES, MiniFoolScan, minifool, minifool_scan
from aalearn.attacks.components import FromPoint, MiniFoolObjective
from aalearn.constraints import ConstraintSet
from aalearn.models import TopoDNN
from aalearn.physics import challenge_features

FS = challenge_features()
SCALES = (0.25, 1.0, 4.0, 16.0)
STEPS = 25

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def data(challenge_jets: Callable[..., np.ndarray]) -> tuple[np.ndarray, TopoDNN, np.ndarray]:
    x = challenge_jets(120, pad_every=4)
    torch.manual_seed(0)
    model = TopoDNN(hidden=(32, 16)).fit_input_scaling(x).eval()
    with torch.no_grad():
        model.output.bias -= model(torch.as_tensor(x, dtype=torch.float32)).median()
        dec = (model(torch.as_tensor(x, dtype=torch.float32)) >= 0).long().numpy()
    labels = dec.copy()
    labels[::6] = 1 - labels[::6]  # 20 misclassified jets
    return x, model, labels


@pytest.fixture(scope="module")
def scan(data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> MiniFoolScan:
    x, model, labels = data
    return minifool_scan(model, x, labels, scales=SCALES, steps=STEPS)


def test_doctests() -> None:
    # ``aalearn.attacks.minifool`` is the function (it shadows the submodule attribute)
    module = importlib.import_module("aalearn.attacks.minifool")
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_scan_shapes_and_flip_fraction_monotone(scan: MiniFoolScan) -> None:
    assert scan.scales == list(SCALES)
    assert len(scan.flip_fraction) == len(SCALES) == len(scan.results)
    assert all(0.0 <= f <= 1.0 for f in scan.flip_fraction)
    assert all(b >= a for a, b in itertools.pairwise(scan.flip_fraction))
    assert scan.flip_fraction[-1] > scan.flip_fraction[0]  # the scan does find more flips at larger s
    assert scan.flip_fraction[-1] > 0.5
    for s, res in zip(SCALES, scan.results, strict=True):
        assert res.params["scale"] == s
        assert res.unphysical_fraction == 0.0


def test_critical_scale_is_consistent_with_per_scale_successes(
    scan: MiniFoolScan, data: tuple[np.ndarray, TopoDNN, np.ndarray]
) -> None:
    x, _, _ = data
    attacked = scan.results[0].attacked
    assert attacked.sum() == 100
    crit = scan.critical_scale
    assert crit.shape == (len(x),)
    assert np.isnan(crit[~attacked]).all()
    assert not np.isnan(crit[attacked]).any()
    succ = np.stack([r.success for r in scan.results])  # (scales, jets)
    for j in np.flatnonzero(attacked):
        hits = np.flatnonzero(succ[:, j])
        if hits.size:
            assert crit[j] == SCALES[hits[0]]  # the first scale at which the jet flipped
        else:
            assert np.isinf(crit[j])
    for k, s in enumerate(SCALES):
        assert scan.flip_fraction[k] == pytest.approx(np.mean(crit[attacked] <= s))
        assert not succ[k, ~attacked].any()  # misclassified jets never count
        assert np.array_equal(scan.results[k].x_adv[~attacked], x[~attacked])


def test_larger_scale_gives_larger_chi2_among_fooled(scan: MiniFoolScan) -> None:
    medians = [
        float(np.median(r.distance["chi2_sigma"][r.success])) for r in scan.results if r.success.sum() >= 1
    ]
    assert len(medians) >= 3
    assert all(b > a for a, b in itertools.pairwise(medians)), medians


def test_scan_unlabeled(data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    x, model, _ = data
    scan = minifool_scan(model, x[:40], None, scales=(1.0, 16.0), steps=15)
    assert not np.isnan(scan.critical_scale).any()
    assert all(r.labels is None and r.attacked.all() for r in scan.results)
    for r in scan.results:
        assert np.array_equal(r.success, r.decision_adv != r.decision_clean)
    assert scan.flip_fraction[1] >= scan.flip_fraction[0]
    assert scan.flip_fraction[1] > 0
    summary = scan.to_dict()
    json.dumps(summary)
    assert summary["scales"] == [1.0, 16.0]
    assert len(summary["per_scale"]) == 2


def test_scan_passes_run_options(data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    x, model, labels = data
    scan = minifool_scan(
        model,
        x[:30],
        labels[:30],
        scales=(4.0,),
        steps=10,
        constraints="default,pt-sum",
        mutable=["ConstPT_2"],
    )
    res = scan.results[0]
    assert "pt-sum" in res.violations
    frozen = np.array(FS.names) != "ConstPT_2"
    assert np.array_equal(res.x_adv[:, frozen], x[:30, frozen])


def test_scan_rejects_bad_scales(data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    x, model, _ = data
    with pytest.raises(ValueError, match="strictly increasing"):
        minifool_scan(model, x[:5], scales=(2.0, 1.0), steps=1)
    with pytest.raises(ValueError, match="strictly increasing"):
        minifool_scan(model, x[:5], scales=(1.0, 1.0), steps=1)
    with pytest.raises(ValueError, match="positive"):
        minifool_scan(model, x[:5], scales=(), steps=1)
    with pytest.raises(ValueError, match="positive"):
        minifool_scan(model, x[:5], scales=(0.0, 1.0), steps=1)
    with pytest.raises(ValueError, match="positive"):
        minifool_scan(model, x[:5], scales=(float("nan"),), steps=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": 0.0}, "scale must be positive"),
        ({"scale": -1.0}, "scale must be positive"),
        ({"scale": float("nan")}, "scale must be positive"),
        ({"alpha": 0.0}, "alpha must be positive"),
        ({"beta": -1.0}, "beta must be positive"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"target_offset": 0.5}, "target_offset"),
        ({"target_offset": -0.1}, "target_offset"),
    ],
)
def test_minifool_rejects_bad_settings(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        minifool(**kwargs)


def test_minifool_configuration() -> None:
    atk = minifool(2.0, steps=7, lr=0.2)
    assert isinstance(atk.objective, MiniFoolObjective)
    assert atk.objective.scale == 2.0
    assert atk.steps == 7
    assert atk.budget is None
    assert atk.params()["scale"] == 2.0
    assert atk.params()["lr"] == 0.2
    assert list(DEFAULT_SCALES) == sorted(DEFAULT_SCALES)


def test_minifool_objective_prefers_small_perturbations_and_the_other_side() -> None:
    obj = MiniFoolObjective(scale=2.0)
    logits = torch.tensor([3.0, 3.0, -3.0])
    target = torch.tensor([1, 1, 0])
    z0 = torch.zeros(3, 4)
    v0 = obj(logits, target, z0)
    # a perturbation costs (z/s)^2 on average
    v1 = obj(logits, target, torch.full((3, 4), 2.0))
    np.testing.assert_allclose((v0 - v1).numpy(), np.ones(3), rtol=1e-6)
    # a score on the other side of the threshold is better than one on the target side
    assert float(obj(torch.tensor([-3.0]), torch.tensor([1]), torch.zeros(1, 4))[0]) > float(v0[0])
    # multi-class: the probability of the target class is pushed to 0
    mc = obj(torch.tensor([[5.0, 0.0, 0.0], [-5.0, 0.0, 0.0]]), torch.tensor([0, 0]), torch.zeros(2, 4))
    assert float(mc[1]) > float(mc[0])


def test_warm_start_from_point(data: tuple[np.ndarray, TopoDNN, np.ndarray]) -> None:
    """A warm start with zero steps returns the (repaired) start point for feasible rows."""
    x, model, labels = data
    atk = minifool(1.0, steps=0)
    atk.init = FromPoint(torch.zeros(len(x), 87, dtype=torch.float64))
    res = atk.run(model, x, labels)
    assert np.array_equal(res.x_adv, x)
    assert not res.success.any()
    assert not any(v.any() for v in ConstraintSet.from_names(FS).check_numpy(res.x_adv, x).values())
