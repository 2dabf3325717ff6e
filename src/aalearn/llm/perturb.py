r"""Meaning-preserving prompt perturbations that need no download, with a strength parameter.

The language-model counterpart of the physics attacks' robustness curves: the question
is perturbed at increasing strength, and the study (:func:`aalearn.llm.evaluate.perturbation_study`)
reports the answer flip rate, the accuracy drop and how the uncertainty scores move.

==============  =====================================================  =====================
perturbation    what it does                                           strength
==============  =====================================================  =====================
``typo``        one character edit (swap, delete, insert, substitute)  fraction of words
                per chosen word, as DeepWordBug (arXiv:1801.04354)
``homoglyph``   Latin letters replaced by Cyrillic/Greek look-alikes   fraction of letters
``suffix``      random 10-character strings appended, as CheckList     number of strings
                in PromptBench (arXiv:2306.04528)
``distractor``  " and true is true" appended, as StressTest in         number of clauses
                PromptBench
``paraphrase``  the question wrapped in a template                     template index (1–4)
                (:data:`PARAPHRASE_TEMPLATES`)
==============  =====================================================  =====================

Digits, and the words given as ``protect``, are never edited, so that a perturbation
cannot change the question's numbers (which would change its correct answer). Every
perturbation is deterministic for a given ``seed`` and text.

References:
    K. Zhu et al., "PromptRobust: Towards Evaluating the Robustness of Large Language
    Models on Adversarial Prompts", arXiv:2306.04528 (CheckList, StressTest, PDR).

    J. Gao, A. Lanchantin, M. L. Soffa, Y. Qi, "Black-box Generation of Adversarial Text
    Sequences to Evade Deep Learning Classifiers" (DeepWordBug), arXiv:1801.04354.

    X. Gao et al., "SPUQ: Perturbation-Based Uncertainty Quantification for Large Language
    Models", EACL 2024, arXiv:2403.02509 (perturbations as an uncertainty probe).

Example:
    >>> perturb("What is the mass of the proton?", "distractor", 2)
    'What is the mass of the proton? and true is true and true is true'
    >>> perturb("What is 7 plus 5?", "typo", 1.0, seed=0) != "What is 7 plus 5?"
    True
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Sequence

__all__ = [
    "DEFAULT_STRENGTHS",
    "HOMOGLYPHS",
    "PARAPHRASE_TEMPLATES",
    "PERTURBATIONS",
    "check_perturbations",
    "paraphrase_question",
    "perturb",
]

#: Perturbation names.
PERTURBATIONS: tuple[str, ...] = ("typo", "homoglyph", "suffix", "distractor", "paraphrase")

#: Default strength grid of each perturbation (the x axis of the robustness curves).
DEFAULT_STRENGTHS: dict[str, tuple[float, ...]] = {
    "typo": (0.1, 0.25, 0.5),
    "homoglyph": (0.1, 0.25, 0.5),
    "suffix": (1, 2, 4),
    "distractor": (1, 3, 5),
    "paraphrase": (1, 2, 3, 4),
}

#: Meaning-preserving rewrites of a question; index 0 is the question itself. Also the
#: input ensemble of :func:`aalearn.llm.decomposition.input_ensemble_decomposition`.
PARAPHRASE_TEMPLATES: tuple[str, ...] = (
    "{question}",
    "Please answer this question: {question}",
    "I would like to know the following. {question}",
    "Here is a question for you. {question}",
    "Tell me, if you can: {question}",
)

#: Latin letter → visually identical Cyrillic or Greek letter.
HOMOGLYPHS: dict[str, str] = {
    "a": "а",
    "c": "с",
    "e": "е",
    "i": "і",
    "j": "ј",
    "o": "о",
    "p": "р",
    "s": "ѕ",
    "x": "х",
    "y": "у",
    "A": "А",
    "B": "В",
    "C": "С",
    "E": "Е",
    "H": "Н",
    "K": "К",
    "M": "М",
    "O": "О",
    "P": "Р",
    "T": "Т",
    "X": "Х",
}
_DISTRACTOR = " and true is true"
_WORD = re.compile(r"[A-Za-z]{3,}")


_REWRITES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (
        re.compile(r"^what (?:is|are) (?P<x>.+?)\s*\?$", re.IGNORECASE),
        ("Tell me {x}.", "Please state {x}.", "Do you know {x}? Give it briefly.", "I need {x}. What is it?"),
    ),
    (
        re.compile(r"^how many (?P<x>.+?)\s*\?$", re.IGNORECASE),
        (
            "Tell me how many {x}.",
            "How many {x}? Answer with the number.",
            "Count them: how many {x}?",
            "I need to know how many {x}.",
        ),
    ),
    (
        re.compile(r"^(?P<w>which|who|when|in which year) (?P<x>.+?)\s*\?$", re.IGNORECASE),
        ("Tell me {w} {x}.", "Do you know {w} {x}?", "Please say {w} {x}.", "I would like to know {w} {x}."),
    ),
)


def paraphrase_question(question: str, k: int = 5) -> list[str]:
    """Up to ``k`` meaning-preserving rewrites of a question; the first is the question itself.

    Questions of the common short-answer shapes ("What is X?", "How many X?", "Which/Who/When
    X?") are **reworded** by rule ("What is the mass of the proton in MeV?" → "Tell me the
    mass of the proton in MeV.", "Please state …", …); other questions are wrapped in
    :data:`PARAPHRASE_TEMPLATES`. Numbers and units are copied verbatim, so every rewrite
    has the same correct answer. The input ensemble of
    :func:`aalearn.llm.decomposition.input_ensemble_decomposition` uses these by default.

    Args:
        question: The question.
        k: Number of variants (2 to 5).

    Raises:
        ValueError: For an empty question or ``k`` outside 2..5.

    Example:
        >>> paraphrase_question("What is the mass of the proton in MeV?", 3)[1:]
        ['Tell me the mass of the proton in MeV.', 'Please state the mass of the proton in MeV.']
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question to paraphrase is empty")
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 5:
        raise ValueError(f"k must be an integer in 2..5, got {k!r}")
    q = question.strip()
    for pattern, forms in _REWRITES:
        m = pattern.match(q)
        if m is not None:
            parts = {name: value for name, value in m.groupdict().items() if value is not None}
            if "w" in parts:
                parts["w"] = parts["w"].lower()
            return [q, *(f.format(**parts) for f in forms)][:k]
    return [t.format(question=q) for t in PARAPHRASE_TEMPLATES][:k]


def check_perturbations(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validated perturbation names (``None``/``"all"``: all; a comma-separated string is split).

    Raises:
        ValueError: For unknown names.

    Example:
        >>> check_perturbations("typo,suffix")
        ('typo', 'suffix')
    """
    if names is None:
        return PERTURBATIONS
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = tuple(dict.fromkeys(names))
    if out == ("all",):
        return PERTURBATIONS
    bad = [n for n in out if n not in PERTURBATIONS]
    if bad or not out:
        raise ValueError(
            f"unknown perturbation(s) {', '.join(map(repr, bad)) or '(none)'}; "
            f"choose from {', '.join(PERTURBATIONS)}"
        )
    return out


def _check_strength(kind: str, strength: float) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise TypeError(f"strength must be a number, got {strength!r}")
    if kind in ("typo", "homoglyph"):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"{kind} strength is a fraction in [0, 1], got {strength}")
    elif kind == "paraphrase":
        if strength != int(strength) or not 0 <= strength < len(PARAPHRASE_TEMPLATES):
            raise ValueError(
                f"paraphrase strength is a template index 0..{len(PARAPHRASE_TEMPLATES) - 1}, got {strength}"
            )
    elif strength < 0 or strength != int(strength):
        raise ValueError(f"{kind} strength is a count ≥ 0, got {strength}")
    return float(strength)


def _typo(word: str, rng: random.Random) -> str:
    for _ in range(8):  # a swap of equal letters changes nothing: try again
        new = _one_edit(word, rng)
        if new != word:
            return new
    return new


def _one_edit(word: str, rng: random.Random) -> str:
    k = rng.randrange(len(word))
    op = rng.choice(("swap", "delete", "insert", "substitute"))
    letters = string.ascii_lowercase
    if op == "swap" and len(word) > 1:
        k = min(k, len(word) - 2)
        return word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    if op == "delete" and len(word) > 1:
        return word[:k] + word[k + 1 :]
    if op == "insert":
        return word[:k] + rng.choice(letters) + word[k:]
    new = rng.choice([c for c in letters if c != word[k].lower()])
    return word[:k] + new + word[k + 1 :]


def perturb(text: str, kind: str, strength: float, *, seed: int = 0, protect: Sequence[str] = ()) -> str:
    """Apply one perturbation at a given strength.

    Args:
        text: The question.
        kind: One of :data:`PERTURBATIONS`.
        strength: Its strength (see the module table); 0 returns the text unchanged.
        seed: Seed (combined with the text, so different questions get different edits).
        protect: Words that typos and homoglyphs must not touch (case-insensitive).

    Returns:
        The perturbed text.

    Raises:
        ValueError: For an empty text, an unknown kind or a strength outside its range.

    Example:
        >>> perturb("What is the capital?", "paraphrase", 1)
        'Please answer this question: What is the capital?'
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text to perturb is empty")
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(PERTURBATIONS)}")
    s = _check_strength(kind, strength)
    if s == 0:
        return text
    rng = random.Random(f"{seed}|{kind}|{s}|{text}")
    keep = {w.lower() for w in protect}
    if kind == "typo":
        spans = [m for m in _WORD.finditer(text) if m.group().lower() not in keep]
        n = round(s * len(spans))
        if n == 0 and spans:
            n = 1
        chosen = sorted(rng.sample(range(len(spans)), min(n, len(spans))))
        out, last = [], 0
        for k in chosen:
            m = spans[k]
            out += [text[last : m.start()], _typo(m.group(), rng)]
            last = m.end()
        return "".join([*out, text[last:]])
    if kind == "homoglyph":
        protected: set[int] = set()
        for m in re.finditer(r"[A-Za-z]+", text):
            if m.group().lower() in keep:
                protected.update(range(m.start(), m.end()))
        positions = [i for i, ch in enumerate(text) if ch in HOMOGLYPHS and i not in protected]
        n = round(s * len(positions))
        if n == 0 and positions:
            n = 1
        chars = list(text)
        for i in rng.sample(positions, min(n, len(positions))):
            chars[i] = HOMOGLYPHS[chars[i]]
        return "".join(chars)
    if kind == "suffix":
        alphabet = string.ascii_letters + string.digits
        return text + "".join(" " + "".join(rng.choice(alphabet) for _ in range(10)) for _ in range(int(s)))
    if kind == "distractor":
        return text + _DISTRACTOR * int(s)
    return PARAPHRASE_TEMPLATES[int(s)].format(question=text)
