"""White-box and sampling-based scores on constructed generations; the registry and its contract."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import Generation, GenerationSet, SamplingConfig
from aalearn.llm.scores import (
    ALL_METHODS,
    SCORES,
    WHITE_BOX_METHODS,
    check_methods,
    compute_scores,
    confidence,
    format_question,
    maximum_sequence_probability,
    mean_token_entropy,
    perplexity,
    predictive_entropy,
    score_question,
)
from aalearn.llm.semantic import TokenOverlap


def _gen(text: str, lps: list[float], ents: list[float] | None = None) -> Generation:
    return Generation(text, np.array(lps), np.array(ents if ents is not None else [0.5] * len(lps)))


def test_white_box_formulas() -> None:
    g = _gen("Paris", [math.log(0.5), math.log(0.25)], [0.1, 0.3])
    assert maximum_sequence_probability(g) == pytest.approx(-math.log(0.125))
    assert perplexity(g) == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.25)) / 2))
    assert mean_token_entropy(g) == pytest.approx(0.2)
    empty = _gen("", [], [])  # an empty answer without the log-prob of stopping has no score
    with pytest.raises(ValueError, match="empty"):
        maximum_sequence_probability(empty)
    with pytest.raises(ValueError, match="empty"):
        perplexity(empty)
    stop = _gen("", [math.log(0.3)], [0.4])  # with the stop token's log-prob: p(empty) = 0.3
    assert maximum_sequence_probability(stop) == pytest.approx(-math.log(0.3))
    assert predictive_entropy([_gen("a", [-1.0, -3.0]), _gen("b", [-0.5])]) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="log-prob"):
        maximum_sequence_probability(Generation("x"))


def test_higher_means_more_uncertain() -> None:
    """A confident, consistent answer scores lower than a hesitant, inconsistent one on every score."""
    sure = GenerationSet(
        "q", _gen("Paris", [-0.01, -0.02], [0.05, 0.05]), [_gen("Paris", [-0.01, -0.02])] * 5
    )
    unsure_samples = [_gen(w, [-2.0, -2.5], [3.0, 3.0]) for w in ("Paris", "Lyon", "Nice", "Lille", "Metz")]
    unsure = GenerationSet("q", _gen("Lyon", [-2.0, -2.5], [3.0, 3.0]), unsure_samples)
    a = compute_scores(sure, question="Capital of France?", entailment=TokenOverlap())
    b = compute_scores(unsure, question="Capital of France?", entailment=TokenOverlap())
    for m in ALL_METHODS:
        assert a.scores[m] is not None, m
        assert b.scores[m] is not None, m
        assert b.scores[m] > a.scores[m], m
        ca, cb = confidence(m, a.scores[m]), confidence(m, b.scores[m])
        assert ca is not None, m
        assert cb is not None, m
        assert 0.0 <= cb <= ca <= 1.0, m
    assert a.scores["semantic_entropy"] == 0.0
    assert a.scores["num_semantic_sets"] == 1.0
    assert b.scores["semantic_entropy"] == pytest.approx(math.log(5))
    assert a.approximate
    assert a.entailment is not None
    assert "approximate" in a.entailment


def test_methods_and_errors() -> None:
    assert check_methods(None) == ALL_METHODS == check_methods("all")
    assert set(WHITE_BOX_METHODS) == {"msp", "perplexity", "mean_token_entropy"}
    with pytest.raises(ValueError, match="unknown method"):
        check_methods("msp,magic")
    with pytest.raises(ValueError, match="no methods"):
        check_methods(" , ")
    gset = GenerationSet("q", _gen("a", [-1.0]), [_gen("a", [-1.0])])
    with pytest.raises(ValueError, match="entailment"):
        compute_scores(gset, question="q", methods=["semantic_entropy"])
    with pytest.raises(ValueError, match="unknown method"):
        confidence("magic", 1.0)
    assert confidence("msp", None) is None
    with pytest.raises(ValueError, match="empty"):
        format_question("  ")
    assert all(s.reference for s in SCORES.values())


def test_white_box_only_needs_no_samples(scripted_backend: Any) -> None:
    res = score_question(scripted_backend, "What is 3 plus 4?", methods=WHITE_BOX_METHODS)
    assert res.answer == "7"
    assert res.samples == []
    assert len(scripted_backend.calls) == 1
    assert res.scores["msp"] == pytest.approx(0.15)
    res2 = score_question(
        scripted_backend,
        "Who?",
        methods="msp,discrete_semantic_entropy",
        entailment=TokenOverlap(),
        config=SamplingConfig(n_samples=4),
    )
    assert len(res2.samples) == 4
    assert res2.scores["discrete_semantic_entropy"] > 0
    d = res2.to_dict()
    assert d["n_clusters"] == len(set(d["cluster_ids"]))
    assert d["confidence"]["msp"] is not None
    with pytest.raises(TypeError):
        score_question(object(), "q")  # type: ignore[arg-type]


def test_samples_of_different_lengths_are_length_normalised() -> None:
    """Semantic and predictive entropy average the token log-probs of each sample (Farquhar et al. 2024).

    The samples have 4, 1, 2 and 2 tokens, so averaging and summing give different cluster
    weights: by mean log-prob Paris (the better of its two samples, -0.1), Lyon -0.3, Nice -0.4;
    by sum Paris -0.4, Lyon -0.3, Nice -0.8. The expected values are computed here with
    scipy's entropy (exact up to round-off, tolerance 1e-12).
    """
    from scipy.stats import entropy

    samples = [
        _gen("Paris", [-0.1] * 4),
        _gen("Lyon", [-0.3]),
        _gen("Nice", [-0.2, -0.6]),
        _gen("Paris", [-0.05, -0.5]),  # the same text again, with a lower mean (-0.275): not counted twice
    ]
    gset = GenerationSet("q", _gen("Paris", [-0.1, -0.2]), samples)
    res = compute_scores(gset, question="Capital of France?", entailment=TokenOverlap())
    assert res.cluster_ids == [0, 1, 2, 0]
    se = res.scores["semantic_entropy"]
    assert se is not None
    averaged = entropy(np.exp([-0.1, -0.3, -0.4]))  # scipy normalises the weights
    summed = entropy(np.exp([-0.4, -0.3, -0.8]))
    assert abs(averaged - summed) > 0.01  # the fixture can tell the two apart
    assert se == pytest.approx(averaged, rel=0, abs=1e-12)
    pe = res.scores["predictive_entropy"]
    assert pe is not None
    assert pe == pytest.approx((0.1 + 0.3 + 0.4 + 0.275) / 4, rel=0, abs=1e-12)
    # the greedy answer's white-box scores: MSP sums, perplexity averages
    assert res.scores["msp"] == pytest.approx(0.3, abs=1e-12)
    assert res.scores["perplexity"] == pytest.approx(math.exp(0.15), abs=1e-12)
