"""Iterative prompting (arXiv:2406.02543) and the paraphrase decomposition on scripted models whose
mutual information is known (issue 22, item 3)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import Backend, Generation, SamplingConfig
from aalearn.llm.decomposition import input_ensemble_decomposition, iterative_prompting_decomposition
from aalearn.llm.semantic import TokenOverlap


class TwoStageModel(Backend):
    """Samples Y1 from ``p1`` and, under the iterative prompt stating Y1 = a, Y2 from ``p2[a]``.

    Each answer is one token whose log-probability is the log of its scripted probability.
    """

    name = "two-stage"
    supports_logprobs = True

    def __init__(self, p1: dict[str, float], p2: dict[str, dict[str, float]]) -> None:
        self.p1, self.p2 = p1, p2

    def generate(
        self, prompt: str, *, n: int = 1, seed: int | None = None, **kwargs: Any
    ) -> list[Generation]:
        m = re.search(r"One answer to question Q is (.+?)\.\n", prompt)
        dist = self.p2[m.group(1)] if m else self.p1
        names = list(dist)
        probs = np.array([dist[k] for k in names])
        picks = np.random.default_rng(seed).choice(len(names), size=n, p=probs)
        return [Generation(names[i], np.array([math.log(probs[i])]), np.array([0.0])) for i in picks]


def _run(model: TwoStageModel, **kw: Any) -> Any:
    return iterative_prompting_decomposition(
        model, "Which one?", entailment=TokenOverlap(), config=SamplingConfig(n_samples=30, seed=1), **kw
    )


P1 = {"Alpha": 0.5, "Bravo": 0.5}


def test_partial_copying_gives_the_true_mutual_information() -> None:
    p2 = {"Alpha": {"Alpha": 0.8, "Bravo": 0.2}, "Bravo": {"Alpha": 0.2, "Bravo": 0.8}}
    d = _run(TwoStageModel(P1, p2))
    assert d.details["n_distinct_tuples"] == 4  # every tuple was sampled: the normalised joint is exact
    h = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert d.epistemic == pytest.approx(math.log(2) - h, abs=1e-9)  # 0.1927
    assert d.total == pytest.approx(math.log(2), abs=1e-9)
    assert d.remainder == pytest.approx(h, abs=1e-9)
    assert d.remainder_name == "conditional_entropy"
    assert d.aleatoric is None
    # diagnostics: the sampled tuples, their weights and the joint
    assert len(d.details["tuples"]) == 30
    assert sorted(np.round(d.details["joint"], 9)) == [0.1, 0.1, 0.4, 0.4]


def test_a_model_that_knows_ignores_the_context_and_one_that_does_not_copies_it() -> None:
    knows = _run(TwoStageModel(P1, {"Alpha": P1, "Bravo": P1}))
    assert knows.details["n_distinct_tuples"] == 4
    assert knows.epistemic == pytest.approx(0.0, abs=1e-9)
    copies = _run(TwoStageModel(P1, {"Alpha": {"Alpha": 1.0}, "Bravo": {"Bravo": 1.0}}))
    assert copies.epistemic == pytest.approx(math.log(2), abs=1e-9)
    assert copies.remainder == pytest.approx(0.0, abs=1e-9)


def test_length_normalisation_and_frequency_weighting() -> None:
    p2 = {"Alpha": {"Alpha": 0.8, "Bravo": 0.2}, "Bravo": {"Alpha": 0.2, "Bravo": 0.8}}
    model = TwoStageModel(P1, p2)
    same = _run(model, length_normalized=True)  # one token per answer: nothing changes
    assert same.epistemic == pytest.approx(math.log(2) + 0.8 * math.log(0.8) + 0.2 * math.log(0.2), abs=1e-9)
    assert same.details["length_normalized"] is True
    freq = _run(model, weighting="frequency")  # sampling frequencies of the 30 tuples
    counts = np.zeros((2, 2))
    index = {"Alpha": 0, "Bravo": 1}
    for a, b in freq.details["tuples"]:
        counts[index[a], index[b]] += 1
    joint = counts / counts.sum()
    m1, m2 = joint.sum(1), joint.sum(0)
    ref = sum(
        joint[i, j] * math.log(joint[i, j] / (m1[i] * m2[j]))
        for i in range(2)
        for j in range(2)
        if joint[i, j]
    )
    assert freq.epistemic == pytest.approx(ref, abs=1e-12)


class VariantModel(Backend):
    """Answers depend on the variant (``dependent``) or not: uniform over four names otherwise."""

    name = "variants"
    supports_logprobs = True
    _names = ("Alpha", "Bravo", "Charlie", "Delta")

    def __init__(self, dependent: bool) -> None:
        self.dependent = dependent

    def generate(
        self, prompt: str, *, n: int = 1, seed: int | None = None, **kwargs: Any
    ) -> list[Generation]:
        if self.dependent:
            k = int(re.search(r"variant (\d)", prompt).group(1))  # type: ignore[union-attr]
            return [Generation(self._names[k], np.array([-0.1])) for _ in range(n)]
        picks = np.random.default_rng(seed).integers(0, 4, n)
        return [Generation(self._names[i], np.array([-1.4])) for i in picks]


VARIANTS = ["Question, variant 0?", "Question, variant 1?", "Question, variant 2?"]


def test_paraphrase_mutual_information_is_bias_corrected() -> None:
    plugin, corrected = [], []
    for seed in range(8):  # answers independent of the variant: the true mutual information is 0
        d = input_ensemble_decomposition(
            VariantModel(False),
            "Question?",
            entailment=TokenOverlap(),
            variants=VARIANTS,
            config=SamplingConfig(n_samples=4, seed=seed),
            n_permutations=100,
        )
        plugin.append(d.details["plugin_mutual_information"])
        corrected.append(d.epistemic)
    assert np.mean(plugin) > 0.15  # the plug-in estimate's sampling artefact
    assert np.mean(corrected) < 0.5 * np.mean(plugin)
    assert np.mean(corrected) < 0.1
    # answers fully determined by the variant: the true mutual information is ln 3
    d = input_ensemble_decomposition(
        VariantModel(True),
        "Question?",
        entailment=TokenOverlap(),
        variants=VARIANTS,
        config=SamplingConfig(n_samples=10, seed=0),
        n_permutations=200,
    )
    assert d.details["plugin_mutual_information"] == pytest.approx(math.log(3), abs=1e-12)
    assert d.epistemic == pytest.approx(math.log(3), abs=0.15)
    assert d.details["mutual_information_p_value"] < 0.01
    assert d.aleatoric == pytest.approx(0.0, abs=1e-12)
