r"""Question sets with gold answers, built without downloads, and the answer-matching rules.

``physics-qa`` (:func:`physics_qa`) combines

* **PDG questions** generated from the Particle Data Group tables that the ``particle``
  package ships: masses (in MeV, or GeV for W, Z, H and the top quark), electric charges
  (in units of e), mean lifetimes (in seconds) and valence-quark content;
* **concept questions** with one-word answers (force carriers, antiparticles);
* **arithmetic** (sums, differences and products of small integers) and **unit
  conversions** (metres, grams, seconds, electronvolts), so that a small model gets some
  answers right and the detection metrics have both classes.

A user's own set is a JSONL file (:func:`load_jsonl`), one object per line:
``{"question": "...", "answer": "..."}`` (or ``"answers": [...]``), optionally with
``"value"`` (a number; the answer is then matched numerically), ``"rel_tol"``,
``"abs_tol"``, ``"unit"``, ``"category"``, ``"id"`` and ``"clarifications"`` (a list of
clarified rewrites of the question for the epistemic/aleatoric decomposition).

**Answer-matching rule** (:func:`match_answer`, documented so that accuracies are reproducible):

* *numeric* items: the answer's numbers are read in order (decimal and scientific
  notation such as ``2.2e-6``, ``2.2 × 10^-6``, ``2.2·10⁻⁶``; thousands separators
  ``1,000``; fractions ``-1/3``; the words zero…twenty); numbers that also occur in the
  question are skipped (an answer that repeats "3 metres" is judged on what follows; if all
  of them occur in the question, the last one counts); the **first remaining number** is
  compared with the gold value after converting a unit written right after it (eV…TeV for
  masses, fs…s/minutes/hours for times, and the length/mass units of the conversion
  questions) into the item's unit (no unit: the item's unit is assumed).
  It is correct when :math:`|x - v| \le \max(\text{abs\_tol}, \text{rel\_tol}\cdot|v|)`.
  Defaults: masses 2 %, lifetimes 5 % (relative only: an absolute floor would accept any
  tiny lifetime), charges, arithmetic and unit conversions exact (:math:`10^{-6}` absolute).
  "neutral" counts as charge 0.
* *text* items: after lower-casing and removing punctuation and articles, correct when a
  gold answer (or its plural with "s") occurs in the answer as a whole-word sequence.
* *quark content*: the flavours named in the answer — a compact code such as ``uud``,
  ``u d-bar`` or ``ud̄``, or words such as "two up quarks and one down quark" — must equal
  the gold multiset of valence flavours. Quark versus antiquark is **not** checked (``ud``
  matches the π⁺'s ``ud̄``).

Example:
    >>> items = physics_qa()
    >>> len(items) > 80, {i.category for i in items} >= {"mass", "charge", "arithmetic"}
    (True, True)
    >>> match_answer(QAItem("q1", "What is 7 plus 5?", ("12",), kind="numeric", value=12.0), "7 + 5 = 12")
    True
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aalearn.core.optional import require

__all__ = [
    "DATASETS",
    "QAItem",
    "answer_quantities",
    "arithmetic_questions",
    "concept_questions",
    "load_dataset",
    "load_jsonl",
    "match_answer",
    "parse_numbers",
    "pdg_questions",
    "physics_qa",
    "unit_questions",
]

#: Built-in dataset names accepted by :func:`load_dataset`.
DATASETS: tuple[str, ...] = ("physics-qa", "pdg", "arithmetic", "units", "concepts")
_KINDS = ("text", "numeric", "quarks")


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answer and matching rule.

    Attributes:
        id: Stable identifier.
        question: The question text.
        answers: Accepted answers as text (for display, and for ``kind="text"`` matching).
        kind: ``"text"``, ``"numeric"`` or ``"quarks"`` (see :func:`match_answer`).
        value: Gold number for ``kind="numeric"``.
        unit: Unit of ``value`` (``"MeV"``, ``"s"``, ``"cm"``, …) for unit conversion.
        rel_tol: Relative tolerance of numeric matching.
        abs_tol: Absolute tolerance of numeric matching.
        category: Group name (``"mass"``, ``"arithmetic"``, ``"user"``, …).
        clarifications: Clarified rewrites of the question (input-clarification ensembles).

    Example:
        >>> QAItem("x", "2+2?", ("4",), kind="numeric", value=4.0).is_correct("It is 4.")
        True
    """

    id: str
    question: str
    answers: tuple[str, ...]
    kind: str = "text"
    value: float | None = None
    unit: str | None = None
    rel_tol: float = 0.0
    abs_tol: float = 1e-6
    category: str = "user"
    clarifications: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"item {self.id!r}: the question is empty")
        if self.kind not in _KINDS:
            raise ValueError(f"item {self.id!r}: kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if not self.answers or not all(isinstance(a, str) and a.strip() for a in self.answers):
            raise ValueError(f"item {self.id!r}: needs at least one non-empty gold answer")
        if self.kind == "numeric" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"item {self.id!r}: a numeric item needs a finite 'value'")
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise ValueError(f"item {self.id!r}: tolerances must be ≥ 0")

    @property
    def tolerance(self) -> tuple[float, float, str | None] | None:
        """``(rel_tol, abs_tol, unit)`` of a numeric item (``None`` for text items).

        Used to decide when two sampled answers state the same quantity
        (:func:`aalearn.llm.semantic.quantity_relation`).
        """
        return (self.rel_tol, self.abs_tol, self.unit) if self.kind == "numeric" else None

    def is_correct(self, answer: str) -> bool:
        """Whether ``answer`` matches (see :func:`match_answer`)."""
        return match_answer(self, answer)

    @property
    def gold(self) -> str:
        """The first gold answer (with its unit for numeric items)."""
        return self.answers[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (the JSONL format of :func:`load_jsonl`)."""
        out: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "kind": self.kind,
            "category": self.category,
        }
        if self.value is not None:
            out.update(value=self.value, unit=self.unit, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        if self.clarifications:
            out["clarifications"] = list(self.clarifications)
        return out


# --------------------------------------------------------------------------- number parsing
_WORDS = {
    w: float(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_SUPERSCRIPT = str.maketrans("⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹", "-+0123456789")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+−–])?\s*(?P<num>\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+))?"
    r"(?:\s*(?:[eE]|[×x*·]\s*10\s*\^?)\s*(?P<exp>[-+−–]?\s*\d+))?"
)
_UNITS: dict[str, dict[str, float]] = {
    "eV": {"ev": 1e-6, "kev": 1e-3, "mev": 1.0, "gev": 1e3, "tev": 1e6},  # in MeV
    "s": {
        "s": 1.0,
        "sec": 1.0,
        "second": 1.0,
        "seconds": 1.0,
        "ms": 1e-3,
        "millisecond": 1e-3,
        "milliseconds": 1e-3,
        "us": 1e-6,
        "µs": 1e-6,
        "μs": 1e-6,
        "microsecond": 1e-6,
        "microseconds": 1e-6,
        "ns": 1e-9,
        "nanosecond": 1e-9,
        "nanoseconds": 1e-9,
        "ps": 1e-12,
        "picosecond": 1e-12,
        "picoseconds": 1e-12,
        "fs": 1e-15,
        "femtosecond": 1e-15,
        "femtoseconds": 1e-15,
        "min": 60.0,
        "minute": 60.0,
        "minutes": 60.0,
        "h": 3600.0,
        "hour": 3600.0,
        "hours": 3600.0,
    },
    "m": {
        "m": 1.0,
        "metre": 1.0,
        "metres": 1.0,
        "meter": 1.0,
        "meters": 1.0,
        "cm": 1e-2,
        "centimetre": 1e-2,
        "centimetres": 1e-2,
        "centimeter": 1e-2,
        "centimeters": 1e-2,
        "mm": 1e-3,
        "millimetre": 1e-3,
        "millimetres": 1e-3,
        "millimeter": 1e-3,
        "millimeters": 1e-3,
        "km": 1e3,
        "um": 1e-6,
        "µm": 1e-6,
        "μm": 1e-6,
        "micrometre": 1e-6,
        "micrometres": 1e-6,
        "micrometer": 1e-6,
        "micrometers": 1e-6,
        "nm": 1e-9,
        "nanometre": 1e-9,
        "nanometres": 1e-9,
        "nanometer": 1e-9,
        "nanometers": 1e-9,
        "pm": 1e-12,
        "fm": 1e-15,
        "femtometre": 1e-15,
        "femtometres": 1e-15,
        "femtometer": 1e-15,
        "femtometers": 1e-15,
        "fermi": 1e-15,
        "kilometre": 1e3,
        "kilometres": 1e3,
        "kilometer": 1e3,
        "kilometers": 1e3,
    },
    "g": {
        "g": 1.0,
        "gram": 1.0,
        "grams": 1.0,
        "kg": 1e3,
        "kilogram": 1e3,
        "kilograms": 1e3,
        "mg": 1e-3,
        "milligram": 1e-3,
        "milligrams": 1e-3,
    },
}


def _unit_factor(unit: str) -> tuple[str, float] | None:
    """(dimension, factor to the dimension's base unit) of a unit word; energies are case-insensitive."""
    u = unit.strip()
    for dim, table in _UNITS.items():
        if u in table:
            return dim, table[u]
        low = u.lower()
        if (dim == "eV" or len(u) > 2) and low in table:
            return dim, table[low]
    return None


def parse_numbers(text: str) -> list[tuple[float, str | None]]:
    """Numbers in ``text`` in order, each with the unit word written right after it (if any).

    Example:
        >>> parse_numbers("about 2.2 × 10^-6 s, or 2,197 ns; charge -1/3")
        [(2.2e-06, 's'), (2197.0, 'ns'), (-0.3333333333333333, None)]
    """
    t = str(text).translate(_SUPERSCRIPT)
    out: list[tuple[float, str | None]] = []
    for m in _NUMBER.finditer(t):
        num = float(m.group("num").replace(",", ""))
        if m.group("den"):
            den = float(m.group("den"))
            if den == 0:
                continue
            num /= den
        if m.group("exp"):
            exp = m.group("exp").replace(" ", "").replace("−", "-").replace("–", "-")
            num *= 10.0 ** int(exp)
        before = t[: m.start()].rstrip()
        binary = bool(before) and (before[-1].isdigit() or before[-1] in ")]")  # "6 - 3": an operator
        if m.group("sign") in ("-", "−", "–") and not binary:
            num = -num
        rest = t[m.end() :]
        unit_match = re.match(r"\s*([A-Za-zµμ]+)", rest)
        unit = unit_match.group(1) if unit_match else None
        if unit is not None and _unit_factor(unit) is None:
            unit = None
        out.append((num, unit))
    for w in re.findall(r"[a-z]+", t.lower()):
        if w in _WORDS and not out:
            out.append((_WORDS[w], None))
    return out


def _numbers_in_question(question: str) -> set[float]:
    return {round(v, 12) for v, _ in parse_numbers(question)}


def _answer_candidates(question: str, answer: str) -> list[tuple[float, str | None]]:
    """The answer's numbers that do not repeat the question's (the last one if all do)."""
    skip = _numbers_in_question(question)
    found = parse_numbers(answer)
    candidates = [(v, u) for v, u in found if round(v, 12) not in skip]
    if not candidates and found:  # every number repeats the question: the last one is the answer
        candidates = [found[-1]]
    return candidates


def answer_quantities(question: str, answer: str, *, convert: bool = True) -> list[tuple[float, str | None]]:
    """The quantities an answer states, read as :func:`match_answer` reads numeric answers.

    Numbers that repeat the question are skipped (as in the matching rule); each remaining
    number is converted to the base unit of its unit's dimension (MeV for energies, s, m,
    g) and returned with the dimension's name (``"eV"``, ``"s"``, ``"m"``, ``"g"``), or with
    ``None`` when no known unit follows it. The first entry is the answer's value under the
    matching rule. With ``convert=False`` the numbers are returned as written, each with
    its unit word (or ``None``), as :func:`parse_numbers` does.

    Example:
        >>> answer_quantities("Mass of the top quark?", "about 0.173 TeV")
        [(173000.0, 'eV')]
        >>> answer_quantities("What is 3 plus 4?", "3 plus 4 is 7")
        [(7.0, None)]
    """
    if not convert:
        return _answer_candidates(question, answer)
    out: list[tuple[float, str | None]] = []
    for value, unit in _answer_candidates(question, answer):
        factor = _unit_factor(unit) if unit is not None else None
        out.append((value * factor[1], factor[0]) if factor is not None else (value, None))
    return out


def _match_numeric(item: QAItem, answer: str) -> bool:
    if item.value is None:  # excluded by QAItem.__post_init__
        return False
    candidates = _answer_candidates(item.question, answer)
    if not candidates and item.unit is None and "neutral" in answer.lower():
        candidates = [(0.0, None)]
    if not candidates:
        return False
    value, unit = candidates[0]
    if unit is not None and item.unit is not None:
        have, want = _unit_factor(unit), _unit_factor(item.unit)
        if have is not None and want is not None and have[0] == want[0]:
            value = value * have[1] / want[1]
    tol = max(item.abs_tol, item.rel_tol * abs(item.value))
    return abs(value - item.value) <= tol


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _norm_words(text: str) -> list[str]:
    t = re.sub(r"[^\w\s+-]", " ", str(text).lower())
    return _ARTICLES.sub(" ", t).split()


def _match_text(item: QAItem, answer: str) -> bool:
    words = _norm_words(answer)
    joined = f" {' '.join(words)} "
    golds = [" ".join(_norm_words(g)) for g in item.answers if _norm_words(g)]
    return any(f" {g} " in joined or f" {g}s " in joined for g in golds)  # a plural counts


_FLAVOURS = {
    "up": "u",
    "down": "d",
    "strange": "s",
    "charm": "c",
    "charmed": "c",
    "bottom": "b",
    "beauty": "b",
    "top": "t",
    "truth": "t",
}
_COUNTS = {"one": 1, "two": 2, "three": 3, "1": 1, "2": 2, "3": 3, "single": 1}
_COMPACT = re.compile(r"(?<![a-z])((?:[udscbt](?:\s*-?\s*bar|\u0304|~)?[\s,]*){2,3})(?![a-z])")


def _quark_flavours(answer: str) -> Counter[str] | None:
    text = answer.lower()
    words = re.findall(r"[a-z0-9]+", text)
    counts: Counter[str] = Counter()
    for k, w in enumerate(words):
        base = w[4:] if w.startswith("anti") and len(w) > 4 else w
        if base in _FLAVOURS and k + 1 < len(words) and words[k + 1].startswith(("quark", "antiquark")):
            n = _COUNTS.get(words[k - 1], 1) if k > 0 else 1
            counts[_FLAVOURS[base]] += n
    if counts:
        return counts
    m = _COMPACT.search(text)
    if m:
        letters = re.sub(r"bar|[^udscbt]", "", m.group(1))
        if 2 <= len(letters) <= 3:
            return Counter(letters)
    return None


def _match_quarks(item: QAItem, answer: str) -> bool:
    found = _quark_flavours(answer)
    return found is not None and found == Counter(item.answers[0].lower().replace("̄", ""))


def match_answer(item: QAItem, answer: str) -> bool:
    """Whether ``answer`` is correct for ``item`` (the rule is in the module docstring).

    Args:
        item: The question with its gold answer.
        answer: The model's answer.

    Returns:
        ``True`` when correct.

    Example:
        >>> item = QAItem("m", "What is the mass of the proton in MeV?", ("938.272 MeV",),
        ...               kind="numeric", value=938.272, unit="MeV", rel_tol=0.02)
        >>> match_answer(item, "About 0.938 GeV."), match_answer(item, "1 GeV")
        (True, False)
    """
    if not isinstance(item, QAItem):
        raise TypeError(f"item must be a QAItem, got {type(item).__name__}")
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a string, got {type(answer).__name__}")
    if not answer.strip():
        return False
    if item.kind == "numeric":
        return _match_numeric(item, answer)
    if item.kind == "quarks":
        return _match_quarks(item, answer)
    return _match_text(item, answer)


# --------------------------------------------------------------------------- PDG questions
# PDG id → English name used in the questions.
_MASS_PARTICLES: dict[int, str] = {
    11: "the electron",
    13: "the muon",
    15: "the tau lepton",
    2212: "the proton",
    2112: "the neutron",
    211: "the charged pion",
    111: "the neutral pion",
    321: "the charged kaon",
    221: "the eta meson",
    443: "the J/psi meson",
    553: "the Upsilon(1S) meson",
    421: "the D0 meson",
    521: "the B+ meson",
    3122: "the Lambda baryon",
    3334: "the Omega- baryon",
}
_GEV_PARTICLES: dict[int, str] = {
    24: "the W boson",
    23: "the Z boson",
    25: "the Higgs boson",
    6: "the top quark",
}
_CHARGE_PARTICLES: dict[int, str] = {
    11: "the electron",
    13: "the muon",
    2212: "the proton",
    2112: "the neutron",
    211: "the positive pion (pi+)",
    111: "the neutral pion (pi0)",
    3334: "the Omega- baryon",
    2224: "the Delta++ baryon",
    3222: "the Sigma+ baryon",
    2: "the up quark",
    1: "the down quark",
    3: "the strange quark",
    4: "the charm quark",
    5: "the bottom quark",
    6: "the top quark",
    24: "the W+ boson",
    23: "the Z boson",
    22: "the photon",
}
_LIFETIME_PARTICLES: dict[int, str] = {
    13: "the muon",
    15: "the tau lepton",
    2112: "the free neutron",
    211: "the charged pion",
    111: "the neutral pion",
    321: "the charged kaon",
    130: "the K-long (K0L) meson",
    310: "the K-short (K0S) meson",
    3122: "the Lambda baryon",
    421: "the D0 meson",
    521: "the B+ meson",
    3334: "the Omega- baryon",
}
_QUARK_PARTICLES: dict[int, str] = {
    2212: "the proton",
    2112: "the neutron",
    211: "the positive pion (pi+)",
    321: "the positive kaon (K+)",
    3122: "the Lambda baryon",
    3334: "the Omega- baryon",
    2224: "the Delta++ baryon",
    3222: "the Sigma+ baryon",
    3312: "the Xi- baryon",
    443: "the J/psi meson",
    553: "the Upsilon(1S) meson",
    421: "the D0 meson",
    411: "the D+ meson",
    521: "the B+ meson",
    511: "the B0 meson",
}


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def pdg_questions() -> list[QAItem]:
    """Questions on masses, charges, lifetimes and quark content from the ``particle`` package's PDG tables.

    Gold values are read from ``particle`` at run time (its PDG edition); masses are in MeV
    (GeV for W, Z, H, top) with 2 % tolerance, lifetimes in seconds with 5 %, charges exact.

    Raises:
        ImportError: If ``particle`` is not installed.

    Example:
        >>> q = {i.id: i for i in pdg_questions()}["mass-2212"]
        >>> q.question, q.unit
        ('What is the mass of the proton in MeV?', 'MeV')
    """
    particle = require("particle", purpose="PDG physics questions")
    get = particle.Particle.from_pdgid
    items: list[QAItem] = []
    for pid, name in _MASS_PARTICLES.items():
        m = float(get(pid).mass)
        items.append(
            QAItem(
                f"mass-{pid}",
                f"What is the mass of {name} in MeV?",
                (f"{_fmt(m)} MeV",),
                kind="numeric",
                value=m,
                unit="MeV",
                rel_tol=0.02,
                abs_tol=0.0,
                category="mass",
            )
        )
    for pid, name in _GEV_PARTICLES.items():
        m = float(get(pid).mass) / 1e3
        items.append(
            QAItem(
                f"mass-{pid}",
                f"What is the mass of {name} in GeV?",
                (f"{_fmt(m)} GeV",),
                kind="numeric",
                value=m,
                unit="GeV",
                rel_tol=0.02,
                abs_tol=0.0,
                category="mass",
            )
        )
    for pid, name in _CHARGE_PARTICLES.items():
        q = int(get(pid).three_charge) / 3.0
        gold = {1 / 3: "+1/3", -1 / 3: "-1/3", 2 / 3: "+2/3", -2 / 3: "-2/3"}.get(q, f"{q:+g}" if q else "0")
        items.append(
            QAItem(
                f"charge-{pid}",
                f"What is the electric charge of {name}, in units of the elementary charge e?",
                (gold,),
                kind="numeric",
                value=q,
                unit=None,
                abs_tol=1e-6,
                category="charge",
            )
        )
    for pid, name in _LIFETIME_PARTICLES.items():
        tau = float(get(pid).lifetime) * 1e-9  # particle gives ns
        items.append(
            QAItem(
                f"lifetime-{pid}",
                f"What is the mean lifetime of {name} in seconds?",
                (f"{tau:.4g} s",),
                kind="numeric",
                value=tau,
                unit="s",
                rel_tol=0.05,
                abs_tol=0.0,
                category="lifetime",
            )
        )
    for pid, name in _QUARK_PARTICLES.items():
        code = str(get(pid).quarks)
        flavours = "".join(ch.lower() for ch in code if ch.isalpha())
        shown = "".join(ch.lower() + ("̄" if ch.isupper() else "") for ch in code if ch.isalpha())
        items.append(
            QAItem(
                f"quarks-{pid}",
                f"What is the valence quark content of {name}?",
                (flavours, shown),
                kind="quarks",
                category="quarks",
            )
        )
    return items


_CONCEPTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("photon", "Which particle mediates the electromagnetic force?", ("photon",)),
    ("gluon", "Which particle mediates the strong force between quarks?", ("gluon",)),
    (
        "positron",
        "What is the antiparticle of the electron called?",
        ("positron", "anti-electron", "antielectron"),
    ),
    ("heaviest-quark", "Which quark flavour is the heaviest?", ("top",)),
    ("lightest-lepton", "What is the lightest charged lepton?", ("electron",)),
    ("proton-baryon", "Is the proton a baryon or a meson?", ("baryon",)),
    ("pion-meson", "Is the pion a baryon or a meson?", ("meson",)),
    ("neutrino-charge", "Does the neutrino carry electric charge? Answer yes or no.", ("no",)),
    ("higgs-year", "In which year was the Higgs boson discovery announced at CERN?", ("2012",)),
    ("speed-of-light", "What is the speed of light in vacuum in km/s, approximately?", ("300000", "299792")),
)


def concept_questions() -> list[QAItem]:
    """Ten textbook particle-physics questions with one-word answers.

    Example:
        >>> concept_questions()[0].is_correct("The photon.")
        True
    """
    items = []
    for key, question, answers in _CONCEPTS:
        if key == "speed-of-light":
            items.append(
                QAItem(
                    f"concept-{key}",
                    question,
                    ("299792 km/s",),
                    kind="numeric",
                    value=299_792.458,
                    rel_tol=0.01,
                    category="concepts",
                )
            )
        else:
            items.append(QAItem(f"concept-{key}", question, answers, kind="text", category="concepts"))
    return items


def arithmetic_questions(n: int = 20, *, seed: int = 0) -> list[QAItem]:
    """Sums, differences and products of small integers (exact answers).

    Args:
        n: Number of questions.
        seed: Seed of the operands.

    Example:
        >>> arithmetic_questions(2, seed=1)[0].question.startswith("What is ")
        True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer ≥ 0, got {n!r}")
    rng = random.Random(seed)
    items = []
    ops = (("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b), ("times", lambda a, b: a * b))
    for k in range(n):
        word, fn = ops[k % 3]
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        if word == "minus" and b > a:
            a, b = b, a
        value = fn(a, b)
        items.append(
            QAItem(
                f"arith-{k}",
                f"What is {a} {word} {b}?",
                (str(value),),
                kind="numeric",
                value=float(value),
                category="arithmetic",
            )
        )
    return items


_CONVERSIONS: tuple[tuple[str, str, float, str], ...] = (
    ("centimetres", "metres", 100.0, "cm"),
    ("millimetres", "metres", 1000.0, "mm"),
    ("metres", "kilometres", 1000.0, "m"),
    ("grams", "kilograms", 1000.0, "g"),
    ("seconds", "minutes", 60.0, "s"),
    ("minutes", "hours", 60.0, "min"),
    ("MeV", "GeV", 1000.0, "MeV"),
    ("keV", "MeV", 1000.0, "keV"),
    ("GeV", "TeV", 1000.0, "GeV"),
    ("milligrams", "grams", 1000.0, "mg"),
)


def unit_questions(*, seed: int = 0) -> list[QAItem]:
    """Unit conversions ("How many centimetres are in 3 metres?"), one per unit pair.

    Example:
        >>> unit_questions()[0].unit
        'cm'
    """
    rng = random.Random(seed + 7919)
    items = []
    for k, (small, big, factor, unit) in enumerate(_CONVERSIONS):
        amount = rng.randint(2, 9)
        value = amount * factor
        items.append(
            QAItem(
                f"units-{k}",
                f"How many {small} are in {amount} {big}?",
                (f"{value:g} {small}",),
                kind="numeric",
                value=value,
                unit=unit,
                category="units",
            )
        )
    return items


def _interleave(groups: Sequence[list[QAItem]]) -> list[QAItem]:
    """Round-robin over the groups, so that the first N items cover every category."""
    out: list[QAItem] = []
    k = 0
    while any(k < len(g) for g in groups):
        out.extend(g[k] for g in groups if k < len(g))
        k += 1
    return out


def physics_qa(*, seed: int = 0, n_arithmetic: int = 20) -> list[QAItem]:
    """The built-in ``physics-qa`` set: PDG, concept, arithmetic and unit questions, interleaved.

    Categories alternate (mass, charge, lifetime, quarks, concepts, arithmetic, units, …)
    so that ``--limit N`` keeps a mix. Deterministic for a given ``seed``.

    Example:
        >>> [i.category for i in physics_qa()[:4]]
        ['mass', 'charge', 'lifetime', 'quarks']
    """
    pdg = pdg_questions()
    by_cat: dict[str, list[QAItem]] = {}
    for item in pdg:
        by_cat.setdefault(item.category, []).append(item)
    groups = [
        *by_cat.values(),
        concept_questions(),
        arithmetic_questions(n_arithmetic, seed=seed),
        unit_questions(seed=seed),
    ]
    return _interleave(groups)


def load_jsonl(path: str | os.PathLike[str]) -> list[QAItem]:
    """Read a user question set (one JSON object per line; see the module docstring).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For invalid JSON or missing fields, naming the line.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.jsonl"
        >>> _ = p.write_text('{"question": "2+2?", "answer": "4", "value": 4}\\n')
        >>> load_jsonl(p)[0].kind
        'numeric'
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"question file {p} does not exist; give a JSONL file or 'physics-qa'")
    items: list[QAItem] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{p}:{lineno}: each line must be a JSON object")
            items.append(_item_from_json(obj, f"{p.name}:{lineno}", len(items)))
    if not items:
        raise ValueError(f"{p} holds no questions")
    return items


def _item_from_json(obj: dict[str, Any], where: str, index: int) -> QAItem:
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    answers = obj.get("answers", obj.get("answer"))
    value = obj.get("value")
    if answers is None and value is not None:
        answers = str(value)
    if isinstance(answers, (str, int, float)) and not isinstance(answers, bool):
        answers = [str(answers)]
    if (
        not isinstance(answers, list)
        or not answers
        or not all(isinstance(a, (str, int, float)) for a in answers)
    ):
        raise ValueError(f"{where}: give 'answer' (a string) or 'answers' (a list of strings)")
    kind = obj.get("kind", "numeric" if value is not None else "text")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{where}: 'value' must be a number")
    clar = obj.get("clarifications", [])
    if not isinstance(clar, list) or not all(isinstance(c, str) for c in clar):
        raise ValueError(f"{where}: 'clarifications' must be a list of strings")
    try:
        return QAItem(
            id=str(obj.get("id", f"q{index}")),
            question=question,
            answers=tuple(str(a) for a in answers),
            kind=str(kind),
            value=None if value is None else float(value),
            unit=obj.get("unit"),
            rel_tol=float(obj.get("rel_tol", 0.0)),
            abs_tol=float(obj.get("abs_tol", 1e-6)),
            category=str(obj.get("category", "user")),
            clarifications=tuple(clar),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_dataset(
    name: str | os.PathLike[str], *, limit: int | None = None, seed: int = 0, shuffle: bool = False
) -> list[QAItem]:
    """A built-in set (``physics-qa``, ``pdg``, ``arithmetic``, ``units``, ``concepts``) or a JSONL file.

    Args:
        name: Dataset name or path.
        limit: Keep the first ``limit`` items (after the optional shuffle).
        seed: Seed of the generated questions and of the shuffle.
        shuffle: Shuffle before ``limit``.

    Raises:
        ValueError: For an unknown name or a bad ``limit``.
        FileNotFoundError: For a missing file.

    Example:
        >>> len(load_dataset("arithmetic", limit=5))
        5
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    key = os.fspath(name)
    if key == "physics-qa":
        items = physics_qa(seed=seed)
    elif key == "pdg":
        items = _interleave(
            [
                [i for i in pdg_questions() if i.category == c]
                for c in ("mass", "charge", "lifetime", "quarks")
            ]
        )
    elif key == "arithmetic":
        items = arithmetic_questions(20, seed=seed)
    elif key == "units":
        items = unit_questions(seed=seed)
    elif key == "concepts":
        items = concept_questions()
    elif key.endswith((".jsonl", ".json")) or Path(key).expanduser().exists():
        items = load_jsonl(key)
    else:
        raise ValueError(f"unknown dataset {key!r}; choose {', '.join(DATASETS)} or give a JSONL file")
    if shuffle:
        items = list(items)
        random.Random(seed).shuffle(items)
    return items[:limit] if limit is not None else items
