"""Epistemic/aleatoric decompositions: non-negative, summing to the total, right limits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import CapabilityError, Generation, HFBackend, SamplingConfig
from aalearn.llm.decomposition import (
    decompose_distributions,
    input_ensemble_decomposition,
    iterative_mutual_information,
    iterative_prompting_decomposition,
)
from aalearn.llm.perturb import PARAPHRASE_TEMPLATES
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
    # the second answer copies the first: I = H(Y1), no conditional entropy left
    r = iterative_mutual_information([0, 1, 2], [0, 1, 2])
    assert r["mutual_information"] == pytest.approx(math.log(3), abs=1e-12)
    assert r["conditional_entropy"] == pytest.approx(0.0, abs=1e-12)
    # every combination equally often: independent, I = 0
    r = iterative_mutual_information([0, 0, 1, 1], [0, 1, 0, 1])
    assert r["mutual_information"] == pytest.approx(0.0, abs=1e-12)
    assert r["entropy_y1"] == pytest.approx(math.log(2))
    # likelihood weights: distinct tuples count once, normalised over the sampled tuples
    w = np.log([0.4, 0.1, 0.1, 0.4])
    r = iterative_mutual_information(
        [0, 0, 1, 1, 1], [0, 1, 0, 1, 1], np.append(w, w[-1]), keys=["aa", "ab", "ba", "bb", "bb"]
    )
    joint = np.array([[0.4, 0.1], [0.1, 0.4]])
    expected = float(np.sum(joint * np.log(joint / 0.25)))
    assert r["mutual_information"] == pytest.approx(expected, abs=1e-12)
    assert r["n_distinct_tuples"] == 4
    rng = np.random.default_rng(1)
    for _ in range(30):
        a, b = rng.integers(0, 3, 8), rng.integers(0, 3, 8)
        res = iterative_mutual_information(a, b, rng.normal(size=8))
        assert 0 <= res["mutual_information"] <= res["entropy_y1"] + 1e-12
    with pytest.raises(ValueError, match="finite"):
        iterative_mutual_information([0, 1], [0, 1], [0.0, float("-inf")])


def test_input_ensemble_with_a_scripted_model(scripted_backend: Any) -> None:
    cfg = SamplingConfig(n_samples=3)
    q = "What is 2 plus 2?"  # the scripted model recognises only this form: wrap it in the templates
    known = input_ensemble_decomposition(
        scripted_backend,
        q,
        entailment=TokenOverlap(),
        config=cfg,
        variants=[t.format(question=q) for t in PARAPHRASE_TEMPLATES],
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
    assert clar.details["plugin_mutual_information"] == pytest.approx(math.log(2))
    # bias-corrected: the plug-in value minus its mean under permuted variant labels
    assert clar.aleatoric == pytest.approx(math.log(2) - clar.details["null_mean_mutual_information"])
    assert 0 < clar.aleatoric < math.log(2)
    assert clar.epistemic == pytest.approx(0.0)


def test_iterative_without_logprobs_needs_frequency_weighting(scripted_backend: Any) -> None:
    scripted_backend.generate = lambda prompt, **kw: [  # type: ignore[method-assign]
        Generation("Alpha") for _ in range(kw.get("n", 1))
    ]
    with pytest.raises(CapabilityError, match="log-probabilities"):
        iterative_prompting_decomposition(scripted_backend, "q", entailment=TokenOverlap())
    d = iterative_prompting_decomposition(
        scripted_backend, "q", entailment=TokenOverlap(), weighting="frequency"
    )
    assert d.epistemic == 0.0
    assert d.aleatoric is None  # iterative prompting estimates no aleatoric part
    assert d.to_dict()["conditional_entropy"] == 0.0


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
    assert d.remainder_name == "conditional_entropy"
    assert d.epistemic >= 0
    assert d.remainder >= 0
    assert d.epistemic + d.remainder == pytest.approx(d.total)
    assert len(d.details["tuples"]) == 4
