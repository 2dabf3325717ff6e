r"""Do two answers state the same quantity? Numbers and units before any entailment judgement.

The sampling-based scores group answers into meanings with an entailment backend
(:mod:`aalearn.llm.semantic`); none of the offline backends reads numbers (token overlap
merges "approximately 173 GeV" with "approximately 125 GeV"). :func:`quantity_relation`
compares the quantities the answers state, read with the answer-matching rule of
:mod:`aalearn.llm.datasets` (numbers repeated from the question skipped, eV…TeV, fs…h,
fm…km and mg…kg converted), within the question's tolerance
(:attr:`aalearn.llm.datasets.QAItem.tolerance`). Every
:class:`~aalearn.llm.semantic.EntailmentBackend` applies it first.

Example:
    >>> quantity_relation("Top-quark mass?", "approximately 173 GeV", "0.125 TeV")
    False
"""

from __future__ import annotations

from typing import Any

from aalearn.llm.datasets import answer_quantities

__all__ = ["DEFAULT_TOLERANCE", "check_tolerance", "quantity_relation"]

#: ``(rel_tol, abs_tol, unit)`` used by :func:`quantity_relation` when the question gives none.
DEFAULT_TOLERANCE: tuple[float, float, str | None] = (1e-6, 0.0, None)


def check_tolerance(tolerance: Any) -> tuple[float, float, str | None]:
    """Validated ``(rel_tol, abs_tol, unit)`` (``None``: :data:`DEFAULT_TOLERANCE`).

    Example:
        >>> check_tolerance(None)
        (1e-06, 0.0, None)
    """
    if tolerance is None:
        return DEFAULT_TOLERANCE
    try:
        rel, abs_, unit = tolerance
        rel, abs_ = float(rel), float(abs_)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be (rel_tol, abs_tol, unit), got {tolerance!r}") from None
    if not (rel >= 0 and abs_ >= 0):
        raise ValueError(f"tolerances must be ≥ 0, got {tolerance!r}")
    return rel, abs_, unit


def quantity_relation(
    question: str, a: str, b: str, *, tolerance: tuple[float, float, str | None] | None = None
) -> bool | None:
    r"""Whether two answers state the same quantity: ``False``, ``True`` or ``None`` (no verdict).

    Quantities are read with :func:`aalearn.llm.datasets.answer_quantities` (the rule of
    :func:`~aalearn.llm.datasets.match_answer`: numbers repeated from the question are
    skipped; a unit right after a number is converted to its dimension's base unit).

    * ``False`` — both answers state a quantity and their first ones differ: different
      dimensions, or :math:`|x - y| > \max(	ext{abs\_tol}, 	ext{rel\_tol}\cdot\max(|x|, |y|))`;
    * ``True`` — each answer states exactly one quantity, written with digits, and they agree
      within that tolerance;
    * ``None`` — otherwise (no number in one of them, or several numbers that agree on the first).

    When only one of the two numbers carries a unit, the bare number is taken to be in the
    question's unit (``tolerance[2]``) when it has one of the same dimension, else in the other
    answer's unit. ``abs_tol`` is in the question's unit.

    Args:
        question: The question (its numbers are not answers).
        a: First answer.
        b: Second answer.
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question (:attr:`QAItem.tolerance`);
            ``None``: :data:`DEFAULT_TOLERANCE`.

    Example:
        >>> quantity_relation("Top-quark mass?", "approximately 173 GeV", "approximately 125 GeV")
        False
        >>> quantity_relation("Top-quark mass?", "about 173 GeV", "0.173 TeV")
        True
        >>> quantity_relation("Capital of France?", "Paris", "Lyon") is None
        True
    """
    rel, abs_tol, unit = check_tolerance(tolerance)
    qa = answer_quantities(question, a, convert=False)
    qb = answer_quantities(question, b, convert=False)
    if not qa or not qb:
        return None
    (xa, ua), (xb, ub) = qa[0], qb[0]
    fa = _unit_of(ua)
    fb = _unit_of(ub)
    fq = _unit_of(unit)
    scale = 1.0  # base units per question unit (for abs_tol)
    if fa is not None and fb is not None:
        if fa[0] != fb[0]:
            return False
        xa, xb = xa * fa[1], xb * fb[1]
        if fq is not None and fq[0] == fa[0]:
            scale = fq[1]
    elif fa is not None or fb is not None:
        known = fa if fa is not None else fb
        assert known is not None
        bare = fq[1] if fq is not None and fq[0] == known[0] else known[1]
        xa = xa * (fa[1] if fa is not None else bare)
        xb = xb * (fb[1] if fb is not None else bare)
        if fq is not None and fq[0] == known[0]:
            scale = fq[1]
    tol = max(abs_tol * scale, rel * max(abs(xa), abs(xb)))
    if abs(xa - xb) > tol:
        return False
    if len(qa) != 1 or len(qb) != 1 or not (_has_digit(a) and _has_digit(b)):
        return None  # a number word is read only once ("two up and one down"): no "same" verdict
    return True


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _unit_of(unit: str | None) -> tuple[str, float] | None:
    """(dimension, factor to the base unit) of a unit word, via the datasets' unit tables."""
    if unit is None:
        return None
    q = answer_quantities("", f"1 {unit}")
    if not q or q[0][1] is None:
        return None
    return str(q[0][1]), float(q[0][0])
