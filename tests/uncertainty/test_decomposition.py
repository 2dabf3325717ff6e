"""Entropy decomposition: identities, limiting cases, binary vs two-column multi-class, validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aalearn.uncertainty import UncertaintyDecomposition, decompose, entropy

LN2 = math.log(2.0)


def _random_members(m: int = 7, n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.beta(0.7, 0.7, size=(m, n))


def test_entropy_binary_values() -> None:
    assert float(entropy(0.5)) == pytest.approx(LN2, abs=1e-15)
    np.testing.assert_array_equal(entropy([0.0, 1.0]), [0.0, 0.0])
    p = 0.2
    assert float(entropy(p)) == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p), rel=1e-14)
    assert not np.signbit(entropy([0.0, 1.0])).any()  # 0, not -0


def test_entropy_multiclass_and_binary_flag() -> None:
    np.testing.assert_allclose(entropy(np.full((3, 4), 0.25)), np.full(3, math.log(4)), rtol=1e-14)
    members = np.array([[0.5, 0.1], [0.9, 0.5]])
    h01, h09 = float(entropy(0.1)), float(entropy(0.9))
    np.testing.assert_allclose(entropy(members, binary=True), np.array([[LN2, h01], [h09, LN2]]))
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(members)  # 2-D defaults to multi-class, rows do not sum to 1


def test_total_is_aleatoric_plus_epistemic_and_non_negative() -> None:
    d = decompose(_random_members())
    np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic, rtol=0, atol=1e-12)
    for arr in (d.total, d.aleatoric, d.epistemic):
        assert arr.shape == (500,)
        assert arr.dtype == np.float64
        assert (arr >= 0).all()
        assert (arr <= LN2 + 1e-12).all()
    assert d.n_members == 7
    assert d.method == "ensemble"
    assert d.binary


def test_identical_members_have_no_epistemic_uncertainty() -> None:
    p = np.random.default_rng(1).uniform(size=300)
    d = decompose(np.tile(p, (5, 1)))
    assert np.abs(d.epistemic).max() < 1e-12
    np.testing.assert_allclose(d.total, entropy(p), atol=1e-12)
    np.testing.assert_allclose(d.aleatoric, entropy(p), atol=1e-12)


def test_maximal_disagreement_is_purely_epistemic() -> None:
    d = decompose(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))
    np.testing.assert_allclose(d.aleatoric, 0.0, atol=0)
    np.testing.assert_allclose(d.epistemic, LN2, rtol=1e-14)
    np.testing.assert_allclose(d.total, LN2, rtol=1e-14)
    np.testing.assert_allclose(d.mean, 0.5)


def test_binary_and_two_column_multiclass_agree() -> None:
    members = _random_members(m=4, n=200, seed=3)
    binary = decompose(members)
    multi = decompose(np.stack([1.0 - members, members], axis=-1))
    assert not multi.binary
    assert multi.mean.shape == (200, 2)
    np.testing.assert_allclose(multi.mean[:, 1], binary.mean, rtol=1e-14)
    for name in ("total", "aleatoric", "epistemic"):
        np.testing.assert_allclose(getattr(multi, name), getattr(binary, name), rtol=1e-12, atol=1e-15)


def test_multiclass_mutual_information_matches_definition() -> None:
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=(5, 40))  # (M, N, C)
    d = decompose(probs, method="custom")
    mean = probs.mean(axis=0)
    total = -(mean * np.log(mean)).sum(-1)
    aleatoric = -(probs * np.log(probs)).sum(-1).mean(0)
    np.testing.assert_allclose(d.total, total, rtol=1e-12)
    np.testing.assert_allclose(d.aleatoric, aleatoric, rtol=1e-12)
    assert (d.epistemic > 0).all()
    assert d.method == "custom"


def test_single_member_allowed_with_zero_epistemic() -> None:
    d = decompose(np.array([[0.2, 0.7]]))
    assert d.n_members == 1
    np.testing.assert_array_equal(d.epistemic, 0.0)


def test_summary_and_to_dict() -> None:
    d = decompose(_random_members(m=3, n=10))
    s = d.summary()
    assert set(s) == {"mean_total", "mean_aleatoric", "mean_epistemic", "n", "n_members", "method"}
    assert s["n"] == 10
    assert s["n_members"] == 3
    assert s["mean_total"] == pytest.approx(float(d.total.mean()))
    assert len(d) == 10
    small = d.to_dict()
    assert "total" not in small
    full = json.loads(json.dumps(d.to_dict(per_jet=True)))
    assert len(full["epistemic"]) == 10
    assert full["mean_epistemic"] == pytest.approx(s["mean_epistemic"])
    assert isinstance(d, UncertaintyDecomposition)


@pytest.mark.parametrize(
    ("members", "kwargs", "error", "match"),
    [
        (np.array([0.1, 0.2]), {}, ValueError, r"\(M, N\)"),
        (np.zeros((2, 2, 2, 2)), {}, ValueError, r"\(M, N\)"),
        (np.zeros((0, 3)), {}, ValueError, "empty"),
        (np.array([[0.1, np.nan]]), {}, ValueError, "NaN"),
        (np.array([[0.1, 1.2]]), {}, ValueError, r"\[0, 1\]"),
        (np.array([[-0.1, 0.2]]), {}, ValueError, "logits"),
        (np.full((2, 3, 2), 0.4), {}, ValueError, "sum to 1"),
        (np.full((2, 3, 1), 1.0), {}, ValueError, "at least 2 classes"),
        (np.full((2, 3, 2), 0.5), {"binary": True}, ValueError, "binary"),
        (np.full((2, 3), 0.5), {"binary": False}, ValueError, "multi-class"),
        (np.array([["a", "b"]]), {}, TypeError, "numeric"),
        (np.full((2, 3), 0.5), {"method": ""}, TypeError, "method"),
    ],
)
def test_decompose_validation(members: np.ndarray, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        decompose(members, **kwargs)
