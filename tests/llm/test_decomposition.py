"""Epistemic/aleatoric decompositions: non-negative, summing to the total, right limits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import CapabilityError, HFBackend, SamplingConfig
from aalearn.llm.decomposition import (
    decompose_distributions,
    input_ensemble_decomposition,
    iterative_mutual_information,
    iterative_prompting_decomposition,
)
from aalearn.llm.semantic import TokenOverlap


@pytest.mark.parametrize("varied", ["paraphrase", "clarification"])
def test_decomposition_is_non_negative_and_sums(varied: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        k, c = rng.integers(1, 6), rng.integers(1, 6)
        p = rng.dirichlet(np.full(c, 0.5), size=k)
        d = decompose_distributions(p, varied=varied)
        assert d.epistemic >= 0
        assert d.aleatoric >= 0
        assert d.epistemic + d.aleatoric == pytest.approx(d.total, abs=1e-12)
        mean = p.mean(axis=0)
        assert d.total == pytest.approx(float(-(mean[mean > 0] * np.log(mean[mean > 0])).sum()), abs=1e-9)


def test_what_is_varied_decides_the_roles() -> None:
    disagree = [[1.0, 0.0], [0.0, 1.0]]  # each variant certain, variants disagree
    para = decompose_distributions(disagree, varied="paraphrase")
    clar = decompose_distributions(disagree, varied="clarification")
    assert para.epistemic == pytest.approx(math.log(2))
    assert para.aleatoric == pytest.approx(0.0)
    assert clar.aleatoric == pytest.approx(math.log(2))
    assert clar.epistemic == pytest.approx(0.0)
    with pytest.raises(ValueError, match="varied"):
        decompose_distributions(disagree, varied="seeds")
    with pytest.raises(ValueError, match="sum to 1"):
        decompose_distributions([[0.5, 0.6]], varied="paraphrase")


def test_iterative_mutual_information_limits() -> None:
    # the answer copies the context: I = H(Y1), nothing aleatoric
    total, epi, alea = iterative_mutual_information([0.0, 0.0, 0.0], np.where(np.eye(3) > 0, 0.0, -60.0))
    assert epi == pytest.approx(math.log(3), abs=1e-6)
    assert alea == pytest.approx(0.0, abs=1e-6)
    # the context is ignored: I = 0, all aleatoric
    total, epi, alea = iterative_mutual_information([0.0, -1.0], [[0.0, -1.0], [0.0, -1.0]])
    assert epi == pytest.approx(0.0, abs=1e-12)
    assert alea == pytest.approx(total)
    rng = np.random.default_rng(1)
    for _ in range(30):
        u = int(rng.integers(1, 5))
        t, e, a = iterative_mutual_information(rng.normal(size=u), rng.normal(size=(u, u)) * 3)
        assert e >= 0
        assert a >= 0
        assert e + a == pytest.approx(t)
    with pytest.raises(ValueError, match="finite"):
        iterative_mutual_information([0.0, float("-inf")], np.zeros((2, 2)))


def test_input_ensemble_with_a_scripted_model(scripted_backend: Any) -> None:
    cfg = SamplingConfig(n_samples=3)
    known = input_ensemble_decomposition(
        scripted_backend, "What is 2 plus 2?", entailment=TokenOverlap(), config=cfg
    )
    assert known.total == pytest.approx(0.0)
    assert known.n_variants == 5
    unknown = input_ensemble_decomposition(
        scripted_backend, "Who won?", entailment=TokenOverlap(threshold=0.9), config=cfg, varied="paraphrase"
    )
    assert unknown.aleatoric > 0
    assert unknown.epistemic >= 0
    assert unknown.epistemic + unknown.aleatoric == pytest.approx(unknown.total)
    with pytest.raises(ValueError, match="clarified"):
        input_ensemble_decomposition(scripted_backend, "q", entailment=TokenOverlap(), varied="clarification")
    clar = input_ensemble_decomposition(
        scripted_backend,
        "What is it?",
        entailment=TokenOverlap(),
        varied="clarification",
        variants=["What is 2 plus 2?", "What is 3 times 3?"],
        config=cfg,
    )
    assert clar.aleatoric == pytest.approx(math.log(2))
    assert clar.epistemic == pytest.approx(0.0)


def test_iterative_needs_scoring(scripted_backend: Any) -> None:
    with pytest.raises(CapabilityError, match="score"):
        iterative_prompting_decomposition(scripted_backend, "q", entailment=TokenOverlap())


@pytest.mark.usefixtures("single_torch_thread")
def test_iterative_prompting_on_a_tiny_model(tiny_lm: tuple[Any, Any]) -> None:
    model, tok = tiny_lm
    backend = HFBackend(model, tok)
    d = iterative_prompting_decomposition(
        backend,
        "What is the capital of France?",
        entailment=TokenOverlap(),
        config=SamplingConfig(n_samples=4, max_new_tokens=4, seed=2),
    )
    assert d.varied == "iterative"
    assert d.epistemic >= 0
    assert d.aleatoric >= 0
    assert d.epistemic + d.aleatoric == pytest.approx(d.total)
    assert d.total <= math.log(d.n_variants) + 1e-9
