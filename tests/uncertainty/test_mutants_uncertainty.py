"""Tests written to kill surviving mutants of ``uncertainty/decomposition.py`` (issue 23).

References: the error messages a user needs (which argument, what to do), and closed-form
entropies of small ensembles computed here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.uncertainty.decomposition import decompose, entropy


def test_bad_member_probs_are_named_with_the_fix() -> None:
    with pytest.raises(
        ValueError, match=r"member_probs must lie in \[0, 1\].*pass probabilities, not logits"
    ):
        decompose(np.array([[2.0, -1.0], [0.5, 0.5]]))
    with pytest.raises(TypeError, match="member_probs must be numeric"):
        decompose(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="member_probs: multi-class probabilities must sum to 1"):
        decompose(np.full((2, 3, 2), 0.7))
    with pytest.raises(ValueError, match="probs: multi-class probabilities must sum to 1"):
        entropy(np.full((3, 2), 0.7), binary=False)


def test_explicit_multiclass_decomposition_equals_numpy() -> None:
    """binary=False with (M, N, C): total = H(mean), aleatoric = mean H(member), in nats."""
    p = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.6, 0.3]]])  # 2 members, 1 jet, 3 classes
    d = decompose(p, binary=False)
    mean = p.mean(axis=0)
    total = -(mean * np.log(mean)).sum(axis=-1)
    aleatoric = (-(p * np.log(p)).sum(axis=-1)).mean(axis=0)
    np.testing.assert_allclose(d.total, total, rtol=1e-12)
    np.testing.assert_allclose(d.aleatoric, aleatoric, rtol=1e-12)
    np.testing.assert_allclose(d.epistemic, total - aleatoric, rtol=1e-12)


def test_boolean_member_predictions_are_probabilities_0_and_1() -> None:
    """Hard 0/1 votes (a bool array): the aleatoric part is 0, the epistemic part H(vote share)."""
    votes = np.array([[True, True], [False, True]])
    d = decompose(votes)
    np.testing.assert_allclose(d.aleatoric, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(d.epistemic, [np.log(2.0), 0.0], atol=1e-12)


def test_per_jet_dictionary_holds_the_arrays() -> None:
    p = np.array([[0.2, 0.9], [0.4, 0.7]])
    d = decompose(p)
    out = d.to_dict(per_jet=True)
    np.testing.assert_allclose(out["mean"], [0.3, 0.8], rtol=1e-12)
    np.testing.assert_allclose(out["total"], d.total, rtol=1e-12)
    np.testing.assert_allclose(out["aleatoric"], d.aleatoric, rtol=1e-12)
    np.testing.assert_allclose(out["epistemic"], d.epistemic, rtol=1e-12)
