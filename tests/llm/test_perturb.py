"""Prompt perturbations: deterministic, strength-controlled, numbers and protected words untouched."""

from __future__ import annotations

import re

import pytest

from aalearn.llm.perturb import (
    DEFAULT_STRENGTHS,
    HOMOGLYPHS,
    PARAPHRASE_TEMPLATES,
    PERTURBATIONS,
    check_perturbations,
    perturb,
)

Q = "How many centimetres are in 3 metres of copper wire?"


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_every_perturbation_is_deterministic_and_keeps_numbers(kind: str) -> None:
    for s in DEFAULT_STRENGTHS[kind]:
        a = perturb(Q, kind, s, seed=1)
        assert a == perturb(Q, kind, s, seed=1)
        assert a != Q
        assert re.findall(r"\d+", a)[:1] == ["3"]
    assert perturb(Q, kind, 0) == Q


def test_strength_controls_the_amount() -> None:
    def changed(s: float) -> int:
        return sum(x != y for x, y in zip(Q, perturb(Q, "homoglyph", s, seed=0), strict=True))

    assert changed(0.1) < changed(0.25) < changed(0.5)
    assert perturb(Q, "distractor", 3).count(" and true is true") == 3
    assert len(perturb(Q, "suffix", 2)) == len(Q) + 22
    assert perturb(Q, "paraphrase", 2) == PARAPHRASE_TEMPLATES[2].format(question=Q)
    assert set(perturb(Q, "homoglyph", 1.0)) & set(HOMOGLYPHS.values())


def test_protected_words() -> None:
    out = perturb(Q, "typo", 1.0, seed=3, protect=["centimetres", "metres"])
    assert "centimetres" in out
    assert "metres" in out.replace("centimetres", "")
    out2 = perturb(Q, "homoglyph", 1.0, protect=["copper"])
    assert "copper" in out2


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(Q, "shout", 1)
    with pytest.raises(ValueError, match="fraction"):
        perturb(Q, "typo", 2.0)
    with pytest.raises(ValueError, match="template index"):
        perturb(Q, "paraphrase", 9)
    with pytest.raises(ValueError, match="count"):
        perturb(Q, "suffix", 1.5)
    with pytest.raises(ValueError, match="empty"):
        perturb("", "typo", 0.1)
    with pytest.raises(ValueError, match="unknown perturbation"):
        check_perturbations("typo,shout")
    assert check_perturbations("all") == PERTURBATIONS
