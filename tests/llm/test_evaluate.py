"""Evaluation and perturbation workflows on a scripted backend; report sections."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path
from typing import Any

import pytest

from aalearn.apps.llm import evaluate_model, perturbation_study, score_many, write_llm_report
from aalearn.llm.backends import SamplingConfig
from aalearn.llm.datasets import QAItem, arithmetic_questions, concept_questions
from aalearn.llm.semantic import TokenOverlap


def _items() -> list[QAItem]:
    return [*arithmetic_questions(6, seed=1), *concept_questions()[:4]]


def test_evaluate_detects_the_scripted_models_errors(scripted_backend: Any) -> None:
    ev = evaluate_model(
        scripted_backend,
        _items(),
        methods="msp,perplexity,semantic_entropy,discrete_semantic_entropy,num_semantic_sets,eigv",
        config=SamplingConfig(n_samples=4),
        limit=None,
    )
    d = ev.to_dict()
    assert d["accuracy"] == pytest.approx(0.6)
    assert d["n_questions"] == 10
    assert d["accuracy_by_category"] == {"arithmetic": 1.0, "concepts": 0.0}
    for m in d["methods"]:
        assert d["auroc"][m] == pytest.approx(1.0), m
        assert d["prr"][m] == pytest.approx(1.0), m
        assert 0.0 <= d["ece"][m] <= 1.0
    assert d["approximate_entailment"]
    assert any("approximation" in n for n in d["notes"])
    assert d["seconds"] >= d["seconds_scoring"] >= 0
    assert len(d["questions"]) == 10
    assert set(d["questions"][0]) >= {
        "question",
        "gold",
        "answer",
        "correct",
        "scores",
    }


def test_evaluate_with_a_decomposition(scripted_backend: Any) -> None:
    ev = evaluate_model(
        scripted_backend,
        _items(),
        methods="msp",
        decomposition="paraphrase",
        config=SamplingConfig(n_samples=2),
        limit=None,
    )
    assert set(ev.methods) == {"msp", "paraphrase_epistemic", "paraphrase_aleatoric"}
    assert ev.metrics["paraphrase_aleatoric"]["auroc"] == pytest.approx(1.0)
    rec = ev.records[0]
    assert rec["decomposition"]["varied"] == "paraphrase"
    assert rec["scores"]["paraphrase_epistemic"] >= 0


def test_score_many_order_and_errors(scripted_backend: Any) -> None:
    qs = ["What is 2 plus 3?", "Who?", "What is 4 times 5?"]
    res = score_many(scripted_backend, qs, methods="msp", entailment=None)
    assert [r.answer for r in res] == ["5", "I am not sure", "20"]
    with pytest.raises(ValueError, match="empty"):
        score_many(scripted_backend, ["ok?", " "], methods="msp")
    with pytest.raises(ValueError, match="by name"):
        score_many(scripted_backend, qs, methods="msp", workers=2)
    with pytest.raises(ValueError, match="unknown method"):
        score_many(scripted_backend, qs, methods="magic")
    with pytest.raises(ValueError, match="decomposition"):
        score_many(scripted_backend, qs, methods="msp", decomposition="seeds")


def test_perturbation_study(scripted_backend: Any) -> None:
    study = perturbation_study(
        scripted_backend,
        _items(),
        perturbations="distractor,paraphrase,typo",
        strengths={"distractor": (1, 2), "paraphrase": (1,), "typo": (1.0,)},
        limit=None,
    )
    d = study.to_dict()
    assert d["clean_accuracy"] == pytest.approx(0.6)
    rows = {(r["perturbation"], r["strength"]): r for r in d["curves"]}
    assert set(rows) == {("distractor", 1.0), ("distractor", 2.0), ("paraphrase", 1.0), ("typo", 1.0)}
    # the scripted model still reads "What is a plus b?" after a distractor or a paraphrase
    assert rows[("distractor", 2.0)]["accuracy"] == pytest.approx(0.6)
    assert rows[("distractor", 2.0)]["flip_rate"] == 0.0
    assert rows[("distractor", 2.0)]["pdr"] == pytest.approx(0.0)
    # typos in every word break its pattern: arithmetic answers flip and become wrong
    typo = rows[("typo", 1.0)]
    assert typo["accuracy"] < 0.6
    assert typo["flip_rate"] > 0
    assert typo["cohens_h"] > 0
    assert typo["pdr"] == pytest.approx(1 - typo["accuracy"] / 0.6)
    assert typo["uncertainty_shift"]["msp"] > 0
    # flipped and unflipped answers are now all "I am not sure" with the same score: no separation
    assert typo["flip_auroc"]["msp"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturbation_study(scripted_backend, _items(), perturbations="shout")
    with pytest.raises(ValueError, match="fraction"):
        perturbation_study(scripted_backend, _items(), perturbations="typo", strengths={"typo": (3.0,)})


@pytest.mark.slow
def test_report(scripted_backend: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ev = evaluate_model(
        scripted_backend,
        _items(),
        methods="msp,semantic_entropy",
        limit=None,
        config=SamplingConfig(n_samples=3),
        entailment=TokenOverlap(),
    )
    study = perturbation_study(scripted_backend, _items(), perturbations="distractor", limit=4)
    path = write_llm_report(tmp_path / "out", evaluation=ev, perturbation=study)
    page = path.read_text(encoding="utf-8")
    assert "LLM hallucination detection" in page
    assert "LLM robustness under prompt perturbations" in page
    assert page.count("data:image/png;base64,") == 4  # ROC, risk–coverage, reliability, perturbation curves
    assert "APPROXIMATION" in page
    assert (tmp_path / "out" / "results.json").is_file()


@pytest.mark.parametrize(
    "module",
    [
        "llm.semantic",
        "llm.quantities",
        "llm.scores",
        "llm.evaluate",
        "llm.metrics",
        "llm.decomposition",
        "llm.datasets",
        "llm.perturb",
        "llm.backends",
        "llm.backends.base",
        "llm.backends.hf",
        "llm.backends.openai",
        "llm.plots",
        "apps.llm",
    ],
)
def test_doctests(module: str) -> None:
    if module == "llm.plots":
        pytest.importorskip("matplotlib")
    mod = importlib.import_module(f"aalearn.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
