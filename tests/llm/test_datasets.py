"""Question sets and the answer-matching rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aalearn.llm.datasets import (
    QAItem,
    arithmetic_questions,
    load_dataset,
    load_jsonl,
    match_answer,
    parse_numbers,
    pdg_questions,
    physics_qa,
    unit_questions,
)


def test_pdg_questions_use_particle_values() -> None:
    from particle import Particle

    items = {i.id: i for i in pdg_questions()}
    assert items["mass-2212"].value == pytest.approx(Particle.from_pdgid(2212).mass)
    assert items["mass-24"].unit == "GeV"
    assert items["mass-24"].value == pytest.approx(Particle.from_pdgid(24).mass / 1e3)
    assert items["lifetime-13"].value == pytest.approx(2.197e-6, rel=1e-3)
    assert items["charge-1"].value == pytest.approx(-1 / 3)
    assert items["quarks-2212"].answers[0] == "uud"
    assert {i.category for i in items.values()} == {"mass", "charge", "lifetime", "quarks"}


def test_physics_qa_is_deterministic_and_mixed() -> None:
    a, b = physics_qa(seed=3), physics_qa(seed=3)
    assert [i.question for i in a] == [i.question for i in b]
    assert len({i.id for i in a}) == len(a) > 80
    first = {i.category for i in a[:7]}
    assert first == {"mass", "charge", "lifetime", "quarks", "concepts", "arithmetic", "units"}
    assert len(load_dataset("physics-qa", limit=9)) == 9
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("trivia")
    with pytest.raises(ValueError, match="limit"):
        load_dataset("physics-qa", limit=0)


@pytest.mark.parametrize(
    ("item_id", "answer", "ok"),
    [
        ("mass-2212", "The proton mass is about 938.3 MeV.", True),
        ("mass-2212", "0.938 GeV", True),
        ("mass-2212", "1 GeV", False),
        ("mass-2212", "938272 keV", True),
        ("mass-24", "80.4 GeV", True),
        ("mass-24", "91 GeV", False),
        ("lifetime-13", "2.2 microseconds", True),
        ("lifetime-13", "2.197 × 10⁻⁶ s", True),
        ("lifetime-13", "2.2e-6 seconds", True),
        ("lifetime-13", "2.2 ms", False),
        ("charge-11", "-1", True),
        ("charge-11", "The electron has charge −1 e.", True),
        ("charge-11", "+1", False),
        ("charge-2112", "It is neutral.", True),
        ("charge-1", "-1/3 e", True),
        ("charge-2", "+2/3", True),
        ("quarks-2212", "uud", True),
        ("quarks-2212", "two up quarks and one down quark", True),
        ("quarks-2212", "udd", False),
        ("quarks-211", "u d-bar", True),
        ("quarks-211", "an up quark and a down antiquark", True),
        ("concept-photon", "The photon.", True),
        ("concept-photon", "photons", True),
        ("concept-photon", "The gluon.", False),
        ("concept-speed-of-light", "about 300,000 km/s", True),
    ],
)
def test_matching_rule(item_id: str, answer: str, ok: bool) -> None:
    items = {i.id: i for i in physics_qa()}
    assert match_answer(items[item_id], answer) is ok


def test_numbers_repeated_from_the_question_are_skipped() -> None:
    add = QAItem("a", "What is 7 plus 5?", ("12",), kind="numeric", value=12.0)
    assert add.is_correct("7 + 5 = 12")
    assert not add.is_correct("7")
    diff = QAItem("d", "What is 6 minus 3?", ("3",), kind="numeric", value=3.0)
    assert diff.is_correct("6 - 3 = 3")
    assert not diff.is_correct("6 - 3 = 1")
    sub = QAItem("s", "What is 12 minus 6?", ("6",), kind="numeric", value=6.0)
    assert sub.is_correct("6")
    assert sub.is_correct("12 minus 6 is 6")
    assert not sub.is_correct("12")
    conv = unit_questions()[0]
    assert conv.is_correct(f"{conv.value:g} centimetres")
    assert not conv.is_correct("")
    assert parse_numbers("1,000 and 2.5·10^3") == [(1000.0, None), (2500.0, None)]
    assert all(q.value is not None for q in arithmetic_questions(9))


def test_item_validation() -> None:
    with pytest.raises(ValueError, match="empty"):
        QAItem("x", " ", ("a",))
    with pytest.raises(ValueError, match="value"):
        QAItem("x", "q", ("a",), kind="numeric")
    with pytest.raises(ValueError, match="kind"):
        QAItem("x", "q", ("a",), kind="date")
    with pytest.raises(TypeError):
        match_answer("not an item", "a")  # type: ignore[arg-type]


def test_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "q.jsonl"
    rows = [
        {"question": "Capital of France?", "answer": "Paris", "clarifications": ["Capital city of France?"]},
        {"question": "2+2?", "value": 4},
        {"question": "Speed?", "answers": ["fast", "quick"], "category": "misc", "id": "s1"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = load_jsonl(p)
    assert [i.kind for i in items] == ["text", "numeric", "text"]
    assert items[0].clarifications == ("Capital city of France?",)
    assert items[2].id == "s1"
    assert items[0].is_correct("It is Paris.")
    assert items[2].is_correct("quick")
    assert load_dataset(str(p), limit=1)[0].question == "Capital of France?"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        load_jsonl(bad)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_jsonl(bad)
    with pytest.raises(FileNotFoundError):
        load_jsonl(tmp_path / "missing.jsonl")
