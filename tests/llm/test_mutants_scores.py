"""Tests that kill surviving mutants of ``aalearn.llm.scores`` (issue 23, tools/mutation.py).

Values are hand-computed here (entropies, graph scores on a fixed entailment matrix, the
confidence maps) or written out in full (the result dictionary); tolerances are stated at
each assertion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import Backend, Generation, GenerationSet, SamplingConfig
from aalearn.llm.scores import (
    ALL_METHODS,
    QUESTION_TEMPLATE,
    SCORES,
    ScoredAnswer,
    check_methods,
    compute_scores,
    confidence,
    format_question,
    score_question,
)
from aalearn.llm.semantic import EntailmentBackend


class FixedEntailment(EntailmentBackend):
    """Returns a given entailment matrix E for the distinct texts (in order of first appearance)."""

    name = "fixed"
    approximate = False
    numeric = False

    def __init__(self, e: np.ndarray, equivalent: np.ndarray) -> None:
        super().__init__()
        self._e, self._q = np.asarray(e, float), np.asarray(equivalent, bool)

    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        return self._e[:n, :n].copy(), self._q[:n, :n].copy()


def _gen(text: str, lps: list[float], ents: list[float] | None = None, **kw: Any) -> Generation:
    return Generation(text, np.array(lps), np.array(ents if ents is not None else [0.5] * len(lps)), **kw)


def test_scored_answer_to_dict_is_complete() -> None:
    s = ScoredAnswer(
        question="q?",
        answer="a",
        scores={"msp": 0.5, "perplexity": 2.0, "other": 1.0},
        samples=["a", "b"],
        cluster_ids=[0, 1, 1],
        entailment="fixed",
        approximate=True,
        notes=["n"],
        seconds_generation=1.5,
        seconds_scoring=0.25,
        decomposition={"x": 1},
        finish_reason="stop",
        truncated=True,
        truncated_samples=2,
        approximate_scores=["mean_token_entropy"],
    )
    assert s.to_dict() == {
        "question": "q?",
        "answer": "a",
        "scores": {"msp": 0.5, "perplexity": 2.0, "other": 1.0},
        "confidence": {"msp": math.exp(-0.5), "perplexity": 0.5},  # unknown methods are left out
        "samples": ["a", "b"],
        "cluster_ids": [0, 1, 1],
        "n_clusters": 2,
        "entailment": "fixed",
        "approximate": True,
        "notes": ["n"],
        "seconds_generation": 1.5,
        "seconds_scoring": 0.25,
        "decomposition": {"x": 1},
        "finish_reason": "stop",
        "truncated": True,
        "truncated_samples": 2,
        "approximate_scores": ["mean_token_entropy"],
    }
    assert ScoredAnswer("q", "a", {}).to_dict()["n_clusters"] is None


@pytest.mark.parametrize(
    ("method", "score", "expected"),
    [
        ("msp", 0.7, math.exp(-0.7)),
        ("msp", -0.3, 1.0),  # exp(-max(u, 0))
        ("semantic_entropy", 2.0, math.exp(-2.0)),
        ("perplexity", 4.0, 0.25),
        ("perplexity", 0.5, 1.0),  # 1 / max(u, 1)
        ("num_semantic_sets", 1.0, 1.0),
        ("eigv", 2.5, 0.4),
        ("lexical_similarity", 0.3, 0.7),
        ("degmat", 1.4, 0.0),  # clipped to [0, 1]
        ("degmat", -0.2, 1.0),
        ("msp", math.inf, None),
        ("msp", math.nan, None),
    ],
)
def test_confidence_maps(method: str, score: float, expected: float | None) -> None:
    got = confidence(method, score)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-15)


def test_registry_flags_and_method_parsing() -> None:
    needs = {n: (s.needs_logprobs, s.needs_samples) for n, s in SCORES.items()}
    assert needs == {
        "msp": (True, False),
        "perplexity": (True, False),
        "mean_token_entropy": (True, False),
        "predictive_entropy": (True, True),
        "semantic_entropy": (True, True),
        "discrete_semantic_entropy": (False, True),
        "num_semantic_sets": (False, True),
        "lexical_similarity": (False, True),
        "eigv": (False, True),
        "degmat": (False, True),
    }
    assert check_methods(" msp , eigv,msp,") == ("msp", "eigv")  # stripped, duplicates once, order kept
    assert check_methods(["degmat", "msp"]) == ("degmat", "msp")
    assert check_methods(["all"]) == ALL_METHODS
    with pytest.raises(ValueError, match=r"unknown method\(s\) 'x', 'y'"):
        check_methods("x,msp,y")
    assert format_question("  Why?  ") == QUESTION_TEMPLATE.format(question="Why?")
    assert format_question("Why?", "Q: {question} A:") == "Q: Why? A:"
    with pytest.raises(ValueError, match="must contain"):
        format_question("Why?", "no placeholder")


def test_graph_scores_from_a_fixed_entailment_matrix() -> None:
    # three distinct answers; E is asymmetric, W = (E + E^T)/2
    e = np.array([[1.0, 0.8, 0.0], [0.4, 1.0, 0.2], [0.0, 0.6, 1.0]])
    q = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
    w = 0.5 * (e + e.T)
    samples = [_gen("a", [-0.5]), _gen("b", [-1.0, -1.0]), _gen("c", [-0.25])]
    gset = GenerationSet("p", _gen("a", [-0.1]), samples, seconds=3.0)
    res = compute_scores(gset, question="q", entailment=FixedEntailment(e, q))
    assert res.cluster_ids == [0, 0, 1]
    # DegMat = 1 - mean(W) (Lin et al. 2023)
    assert res.scores["degmat"] == pytest.approx(1.0 - w.mean(), abs=1e-12)
    # EigV = sum max(0, 1 - lambda) of L = I - D^-1/2 W D^-1/2
    d = w.sum(axis=1)
    lam = np.linalg.eigvalsh(np.eye(3) - w / np.sqrt(np.outer(d, d)))
    assert res.scores["eigv"] == pytest.approx(np.sum(np.maximum(0.0, 1.0 - lam)), abs=1e-10)
    # discrete SE: clusters of sizes 2 and 1
    assert res.scores["discrete_semantic_entropy"] == pytest.approx(
        -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3), abs=1e-12
    )
    assert res.scores["num_semantic_sets"] == 2.0
    # predictive entropy: minus the mean of the per-sample mean log-probs
    assert res.scores["predictive_entropy"] == pytest.approx((0.5 + 1.0 + 0.25) / 3, abs=1e-12)
    # semantic entropy: cluster weights from mean log-probs, logsumexp within a cluster, normalised
    lw = np.array([np.logaddexp(-0.5, -1.0), -0.25])
    p = np.exp(lw - np.logaddexp(*lw))
    assert res.scores["semantic_entropy"] == pytest.approx(-np.sum(p * np.log(p)), abs=1e-12)
    assert (res.entailment, res.approximate, res.seconds_generation) == ("fixed", False, 3.0)
    assert res.samples == ["a", "b", "c"]
    assert res.answer == "a"
    assert res.seconds_scoring >= 0.0
    assert res.notes == []


def test_missing_scores_come_with_notes() -> None:
    # black-box samples (no log-probs), a truncated greedy answer and one truncated sample
    samples = [Generation("x", finish_reason="length"), Generation("y", finish_reason="stop")]
    greedy = _gen("x", [-0.2], [0.3], entropy_approximate=True, finish_reason="length")
    gset = GenerationSet("p", greedy, samples)
    e = np.array([[1.0, 0.0], [0.0, 1.0]])
    res = compute_scores(gset, question="q", entailment=FixedEntailment(e, np.eye(2, dtype=bool)))
    assert res.scores["semantic_entropy"] is None
    assert res.scores["predictive_entropy"] is None
    assert res.scores["msp"] == pytest.approx(0.2)
    assert res.scores["mean_token_entropy"] == pytest.approx(0.3)
    assert res.notes == [
        "predictive_entropy: predictive_entropy needs token log-probabilities, which this backend did "
        "not return",
        "semantic_entropy: needs token log-probabilities (use discrete_semantic_entropy for a black-box "
        "model)",
        "mean_token_entropy: from the server's top-k log-probs (approximate)",
        "the answer hit the token budget (truncated); it is graded as wrong",
        "1 of 2 samples hit the token budget (truncated)",
    ]
    assert (res.truncated, res.truncated_samples, res.finish_reason) == (True, 1, "length")
    assert res.approximate_scores == ["mean_token_entropy"]
    # no samples: every sampling method is None with its note; white-box ones still computed
    fixed = FixedEntailment(np.eye(1), np.eye(1, dtype=bool))
    res2 = compute_scores(
        GenerationSet("p", _gen("x", [-0.2])), question="q", methods="msp,degmat", entailment=fixed
    )
    assert res2.scores == {"msp": pytest.approx(0.2), "degmat": None}
    assert res2.notes == ["degmat: no samples were drawn"]
    assert (res2.entailment, res2.cluster_ids, res2.truncated, res2.truncated_samples) == (
        "fixed",
        [],
        False,
        0,
    )


def test_semantic_entropy_with_an_empty_sample_has_a_note() -> None:
    samples = [_gen("a", [-0.5]), _gen("", [])]
    e = np.eye(2)
    res = compute_scores(
        GenerationSet("p", _gen("a", [-0.1]), samples),
        question="q",
        methods="semantic_entropy",
        entailment=FixedEntailment(e, np.eye(2, dtype=bool)),
    )
    assert res.scores["semantic_entropy"] is None
    assert res.notes == ["semantic_entropy: a sample is empty and has no log-probability"]
    # an entailment backend given but not needed is not reported
    res2 = compute_scores(
        GenerationSet("p", _gen("a", [-0.1]), samples),
        question="q",
        methods="msp",
        entailment=FixedEntailment(e, e > 0),
    )
    assert (res2.entailment, res2.approximate, res2.cluster_ids) == (None, False, [])


class _Truncating(Backend):
    """Greedy answers hit the budget unless it is at least ``enough`` tokens; records the budgets."""

    name = "truncating"
    supports_logprobs = True
    supports_scoring = False

    def __init__(self, enough: int) -> None:
        self.enough = enough
        self.budgets: list[tuple[int, float, int]] = []

    def generate(
        self,
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 24,
        seed: int | None = None,
        stop_at_newline: bool = True,
    ) -> list[Generation]:
        self.budgets.append((n, temperature, max_new_tokens))
        reason = "stop" if max_new_tokens >= self.enough else "length"
        return [_gen(f"t{k}", [-0.1 * max_new_tokens / 8], finish_reason=reason) for k in range(n)]


def test_score_question_retries_truncated_answers_with_doubled_budgets() -> None:
    b = _Truncating(enough=32)
    cfg = SamplingConfig(max_new_tokens=8)
    res = score_question(b, "q?", methods="msp", config=cfg, retry_truncated=5)
    assert b.budgets == [(1, 0.0, 8), (1, 0.0, 16), (1, 0.0, 32)]  # stops as soon as it fits
    assert res.truncated is False
    assert res.scores["msp"] == pytest.approx(0.4)  # the answer generated with 32 tokens
    b2 = _Truncating(enough=1000)
    res2 = score_question(b2, "q?", methods="msp", config=cfg, retry_truncated=2)
    assert [x[2] for x in b2.budgets] == [8, 16, 32]
    assert res2.truncated is True
    b3 = _Truncating(enough=1000)
    score_question(b3, "q?", methods="msp", config=cfg)  # default: no retry
    assert b3.budgets == [(1, 0.0, 8)]
    b4 = _Truncating(enough=1)
    res4 = score_question(
        b4,
        "q?",
        methods="msp,num_semantic_sets",
        config=SamplingConfig(n_samples=3),
        entailment=FixedEntailment(np.eye(3), np.eye(3, dtype=bool)),
    )
    assert [x[0] for x in b4.budgets] == [1, 3]  # greedy, then the samples
    assert res4.scores["num_semantic_sets"] == 3.0


def test_error_messages_name_the_score_and_the_culprit() -> None:
    from aalearn.llm.scores import (
        ALL_METHODS,
        maximum_sequence_probability,
        mean_token_entropy,
        perplexity,
        predictive_entropy,
    )

    with pytest.raises(ValueError, match=r"^msp needs token log-probabilities"):
        maximum_sequence_probability(Generation("x"))
    with pytest.raises(ValueError, match=r"^perplexity needs token log-probabilities"):
        perplexity(Generation("x"))
    with pytest.raises(ValueError, match=r"^the answer is empty and the backend gave no log-probability"):
        perplexity(_gen("", []))
    with pytest.raises(TypeError, match=r"^mean_token_entropy needs a Generation, got object$"):
        mean_token_entropy(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^a sample is empty and has no log-probability$"):
        predictive_entropy([_gen("a", [-1.0]), _gen("", [])])
    with pytest.raises(ValueError, match=r"^predictive_entropy needs at least one sample$"):
        predictive_entropy([])
    with pytest.raises(ValueError, match="; choose from " + ", ".join(ALL_METHODS) + "$"):
        check_methods("nope")
    with pytest.raises(
        ValueError,
        match=r"^the methods eigv, degmat need an entailment backend "
        r"\(overlap, embedding, nli:PATH or judge\)$",
    ):
        compute_scores(GenerationSet("p", _gen("a", [-0.1])), question="q", methods="msp,eigv,degmat")
    with pytest.raises(TypeError, match=r"^backend must be an aalearn.llm Backend, got object$"):
        score_question(object(), "q")  # type: ignore[arg-type]


def test_score_question_uses_the_template() -> None:
    class _Recording(_Truncating):
        def __init__(self) -> None:
            super().__init__(enough=1)
            self.prompts: list[str] = []

        def generate(self, prompt: str, **kw: Any) -> list[Generation]:
            self.prompts.append(prompt)
            return super().generate(prompt, **kw)

    b = _Recording()
    res = score_question(b, "  Why?  ", methods="msp", template="Q: {question} A:")
    assert b.prompts == ["Q: Why? A:"]
    assert res.question == "  Why?  "
