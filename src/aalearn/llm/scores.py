r"""Uncertainty scores of a language model's answer: white-box and sampling-based.

**Contract: every score is a real number where higher means more uncertain**, so that
the answer should be trusted less (the convention of lm-polygraph's estimators). Scores
are not probabilities; :func:`confidence` maps each to a confidence in [0, 1] by a fixed
monotone decreasing transformation (no fitting) for calibration plots.

White-box (the greedy answer :math:`y = y_1 \dots y_T` and the model's token
distributions; needs log-probabilities):

* ``msp`` — maximum sequence probability, :math:`-\sum_t \log p(y_t \mid y_{<t}, x)`;
* ``perplexity`` — :math:`\exp(-\frac1T\sum_t \log p(y_t \mid y_{<t}, x))`;
* ``mean_token_entropy`` — :math:`\frac1T\sum_t H[p(\cdot \mid y_{<t}, x)]` (nats).

Sampling-based (``M`` samples at temperature 1, clustered into meanings by an
:class:`~aalearn.llm.semantic.EntailmentBackend`):

* ``predictive_entropy`` — naive entropy :math:`-\frac1M\sum_m \log \bar P(s_m \mid x)`
  with length-normalised likelihoods (Farquhar et al.'s baseline; needs log-probs);
* ``semantic_entropy`` — entropy over meaning clusters weighted by likelihood (needs log-probs);
* ``discrete_semantic_entropy`` — entropy of cluster frequencies (black-box);
* ``num_semantic_sets`` — number of clusters (black-box);
* ``lexical_similarity`` — one minus the mean pairwise ROUGE-L (black-box);
* ``eigv``, ``degmat`` — graph spectral scores on the entailment similarity (black-box).

References:
    S. Farquhar, J. Kossen, L. Kuhn, Y. Gal, Nature 630, 625 (2024) (semantic entropy).

    E. Fadeeva et al., "LM-Polygraph", EMNLP 2023 demo, arXiv:2311.07383 (MSP, perplexity,
    mean token entropy, lexical similarity; the "higher = more uncertain" contract).

    Z. Lin, S. Trivedi, J. Sun, "Generating with Confidence: Uncertainty Quantification for
    Black-box Large Language Models", TMLR 2024, arXiv:2305.19187 (NumSemSets, EigV, DegMat).

Example:
    >>> from aalearn.llm.backends import Generation
    >>> g = Generation("Paris", token_logprobs=np.log([0.5, 0.5]), token_entropies=np.array([0.7, 0.7]))
    >>> round(maximum_sequence_probability(g), 4), round(perplexity(g), 4)
    (1.3863, 2.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.llm.backends import Backend, Generation, GenerationSet, SamplingConfig
from aalearn.llm.backends.base import check_prompt
from aalearn.llm.semantic import (
    EntailmentBackend,
    cluster_from_equivalence,
    degmat,
    discrete_semantic_entropy,
    eigv,
    lexical_similarity_uncertainty,
    num_semantic_sets,
    semantic_entropy,
)

__all__ = [
    "ALL_METHODS",
    "ENTAILMENT_METHODS",
    "QUESTION_TEMPLATE",
    "SCORES",
    "WHITE_BOX_METHODS",
    "ScoreSpec",
    "ScoredAnswer",
    "check_methods",
    "compute_scores",
    "confidence",
    "format_question",
    "maximum_sequence_probability",
    "mean_token_entropy",
    "perplexity",
    "predictive_entropy",
    "score_question",
]

FloatArray = npt.NDArray[np.float64]

#: How a question becomes the prompt (one user message for chat models).
QUESTION_TEMPLATE = "Answer the question with a short answer (a few words or a number).\nQuestion: {question}"


def format_question(question: str, template: str = QUESTION_TEMPLATE) -> str:
    """The prompt for a question.

    Raises:
        ValueError: For an empty question or a template without ``{question}``.

    Example:
        >>> format_question("What is 2 + 2?").endswith("Question: What is 2 + 2?")
        True
    """
    q = check_prompt(question).strip()
    if "{question}" not in template:
        raise ValueError("the question template must contain '{question}'")
    return template.format(question=q)


# --------------------------------------------------------------------------- white-box
def _need_logprobs(gen: Generation, what: str) -> FloatArray:
    if not isinstance(gen, Generation):
        raise TypeError(f"{what} needs a Generation, got {type(gen).__name__}")
    if gen.token_logprobs is None:
        raise ValueError(f"{what} needs token log-probabilities, which this backend did not return")
    return gen.token_logprobs


def maximum_sequence_probability(gen: Generation) -> float:
    r"""MSP uncertainty :math:`-\log p(y \mid x) = -\sum_t \log p(y_t \mid y_{<t}, x)` (≥ 0).

    An empty answer is scored by the log-probability of stopping at once when the backend
    reports it (the local backend keeps the stop token's log-probability for an empty answer);
    with no log-probability at all it has no score (``ValueError``), rather than the
    probability 1 that an empty sum would give.

    Example:
        >>> maximum_sequence_probability(Generation("a", token_logprobs=np.array([-0.2, -0.3])))
        0.5
    """
    lp = _need_logprobs(gen, "msp")
    if lp.size == 0:
        raise ValueError("the answer is empty and the backend gave no log-probability of stopping")
    return float(-np.sum(lp)) + 0.0


def perplexity(gen: Generation) -> float:
    r"""Perplexity :math:`\exp(-\frac1T\sum_t \log p(y_t \mid y_{<t}, x))` (≥ 1).

    An empty answer without any log-probability has no score (``ValueError``).

    Example:
        >>> perplexity(Generation("a", token_logprobs=np.log([0.25, 0.25])))
        4.0
    """
    lp = _need_logprobs(gen, "perplexity")
    if lp.size == 0:
        raise ValueError("the answer is empty and the backend gave no log-probability of stopping")
    return float(np.exp(-np.mean(lp)))


def mean_token_entropy(gen: Generation) -> float:
    r"""Mean entropy (nats) of the next-token distributions along the answer.

    Example:
        >>> mean_token_entropy(Generation("a", token_entropies=np.array([0.25, 0.75])))
        0.5
    """
    if not isinstance(gen, Generation):
        raise TypeError(f"mean_token_entropy needs a Generation, got {type(gen).__name__}")
    if gen.token_entropies is None:
        raise ValueError("mean_token_entropy needs token entropies, which this backend did not return")
    if gen.token_entropies.size == 0:
        raise ValueError("the answer is empty and the backend gave no next-token entropy")
    return float(np.mean(gen.token_entropies))


def predictive_entropy(samples: Sequence[Generation]) -> float:
    r"""Naive predictive entropy :math:`-\frac1M\sum_m \frac1{T_m}\sum_t \log p(s_{m,t} \mid s_{m,<t}, x)`.

    The Monte-Carlo estimate with length-normalised likelihoods that Farquhar et al.
    compare semantic entropy with.

    Example:
        >>> round(predictive_entropy([Generation("a", token_logprobs=np.array([-1.0]))] * 2), 3)
        1.0
    """
    lls = [_need_logprobs(g, "predictive_entropy") for g in samples]
    if not lls:
        raise ValueError("predictive_entropy needs at least one sample")
    if any(lp.size == 0 for lp in lls):
        raise ValueError("a sample is empty and has no log-probability")
    return float(-np.mean([np.mean(lp) for lp in lls])) + 0.0


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ScoreSpec:
    """What a score needs and how it maps to a confidence.

    Attributes:
        name: Method name (``--methods``).
        needs_logprobs: Needs token log-probabilities (white-box).
        needs_samples: Needs sampled answers.
        to_confidence: Monotone decreasing map from the score to [0, 1].
        description: One line for tables and help texts.
        reference: Paper (arXiv id or DOI).
    """

    name: str
    needs_logprobs: bool
    needs_samples: bool
    to_confidence: Callable[[float], float]
    description: str
    reference: str


def _exp_neg(u: float) -> float:
    return float(math.exp(-max(u, 0.0)))


def _inverse(u: float) -> float:
    return float(1.0 / max(u, 1.0))


def _one_minus(u: float) -> float:
    return float(min(max(1.0 - u, 0.0), 1.0))


#: Every score, keyed by method name.
SCORES: dict[str, ScoreSpec] = {
    s.name: s
    for s in (
        ScoreSpec("msp", True, False, _exp_neg, "−log p(greedy answer)", "arXiv:2311.07383"),
        ScoreSpec("perplexity", True, False, _inverse, "exp(−mean token log p)", "arXiv:2311.07383"),
        ScoreSpec("mean_token_entropy", True, False, _exp_neg, "mean next-token entropy", "arXiv:2311.07383"),
        ScoreSpec(
            "predictive_entropy",
            True,
            True,
            _exp_neg,
            "naive entropy of length-normalised samples",
            "doi:10.1038/s41586-024-07421-0",
        ),
        ScoreSpec(
            "semantic_entropy",
            True,
            True,
            _exp_neg,
            "entropy over meaning clusters (likelihood-weighted)",
            "doi:10.1038/s41586-024-07421-0",
        ),
        ScoreSpec(
            "discrete_semantic_entropy",
            False,
            True,
            _exp_neg,
            "entropy of meaning-cluster frequencies",
            "doi:10.1038/s41586-024-07421-0",
        ),
        ScoreSpec(
            "num_semantic_sets", False, True, _inverse, "number of meaning clusters", "arXiv:2305.19187"
        ),
        ScoreSpec(
            "lexical_similarity", False, True, _one_minus, "1 − mean pairwise ROUGE-L", "arXiv:2005.10608"
        ),
        ScoreSpec(
            "eigv", False, True, _inverse, "sum of max(0, 1 − λ) of the graph Laplacian", "arXiv:2305.19187"
        ),
        ScoreSpec("degmat", False, True, _one_minus, "1 − mean entailment similarity", "arXiv:2305.19187"),
    )
}
#: All method names in a fixed order.
ALL_METHODS: tuple[str, ...] = tuple(SCORES)
#: Methods that need only the greedy answer (no samples).
WHITE_BOX_METHODS: tuple[str, ...] = tuple(n for n, s in SCORES.items() if not s.needs_samples)
#: Methods that cluster the samples into meanings (they need an entailment backend).
ENTAILMENT_METHODS = frozenset(
    {"semantic_entropy", "discrete_semantic_entropy", "num_semantic_sets", "eigv", "degmat"}
)


def check_methods(methods: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validated method names (``None`` or ``"all"``: every method; a comma-separated string is split).

    Raises:
        ValueError: For an unknown or empty method list.

    Example:
        >>> check_methods("msp, semantic_entropy")
        ('msp', 'semantic_entropy')
    """
    if methods is None:
        return ALL_METHODS
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    names = tuple(dict.fromkeys(methods))
    if names == ("all",):
        return ALL_METHODS
    if not names:
        raise ValueError(f"no methods given; choose from {', '.join(ALL_METHODS)} (or 'all')")
    unknown = [m for m in names if m not in SCORES]
    if unknown:
        raise ValueError(
            f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {', '.join(ALL_METHODS)}"
        )
    return names


def confidence(method: str, score: float | None) -> float | None:
    """The score mapped to a confidence in [0, 1] (``exp(−u)``, ``1/u`` or ``1 − u`` by method).

    Example:
        >>> confidence("msp", 0.0), confidence("perplexity", 2.0)
        (1.0, 0.5)
    """
    if method not in SCORES:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(ALL_METHODS)}")
    if score is None or not math.isfinite(score):
        return None
    return SCORES[method].to_confidence(float(score))


# --------------------------------------------------------------------------- scoring
@dataclass
class ScoredAnswer:
    """The answer to one question with its uncertainty scores.

    Attributes:
        question: The question.
        answer: The greedy answer (the one to trust or reject).
        scores: Method → score (higher = more uncertain); ``None`` where unavailable.
        samples: The sampled answers.
        cluster_ids: Meaning cluster of each sample (empty without entailment methods).
        entailment: Name of the entailment backend (``None`` when unused).
        approximate: Whether the entailment backend is an approximation.
        notes: Why a score is missing, and similar remarks.
        seconds_generation: Time spent generating.
        seconds_scoring: Time spent computing scores on top of generation (clustering included).
        decomposition: Epistemic/aleatoric split when requested (see :mod:`aalearn.llm.decomposition`).
        finish_reason: Why the greedy answer ended (``"stop"``, ``"length"``, …) when known.
        truncated: The greedy answer hit the token budget (``finish_reason == "length"``)
            even after the retries: it is incomplete and is graded as wrong.
        truncated_samples: Samples that hit the token budget.
        approximate_scores: Scores computed from an approximation (token entropies from a
            server's top-k log-probs).
    """

    question: str
    answer: str
    scores: dict[str, float | None]
    samples: list[str] = field(default_factory=list)
    cluster_ids: list[int] = field(default_factory=list)
    entailment: str | None = None
    approximate: bool = False
    notes: list[str] = field(default_factory=list)
    seconds_generation: float = 0.0
    seconds_scoring: float = 0.0
    decomposition: dict[str, Any] | None = None
    finish_reason: str | None = None
    truncated: bool = False
    truncated_samples: int = 0
    approximate_scores: list[str] = field(default_factory=list)

    def confidences(self) -> dict[str, float | None]:
        """Each score mapped by :func:`confidence`."""
        return {m: confidence(m, v) for m, v in self.scores.items() if m in SCORES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return {
            "question": self.question,
            "answer": self.answer,
            "scores": dict(self.scores),
            "confidence": self.confidences(),
            "samples": list(self.samples),
            "cluster_ids": list(self.cluster_ids),
            "n_clusters": len(set(self.cluster_ids)) if self.cluster_ids else None,
            "entailment": self.entailment,
            "approximate": self.approximate,
            "notes": list(self.notes),
            "seconds_generation": self.seconds_generation,
            "seconds_scoring": self.seconds_scoring,
            "decomposition": self.decomposition,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
            "truncated_samples": self.truncated_samples,
            "approximate_scores": list(self.approximate_scores),
        }


def compute_scores(
    gset: GenerationSet,
    *,
    question: str,
    methods: Sequence[str] | None = None,
    entailment: EntailmentBackend | None = None,
    tolerance: tuple[float, float, str | None] | None = None,
    count_repeats: bool = False,
) -> ScoredAnswer:
    """All requested scores from a :class:`~aalearn.llm.backends.GenerationSet`.

    Scores that cannot be computed (no log-probs from a black-box server, no samples)
    are ``None`` with a note saying why.

    Args:
        gset: Greedy answer and samples.
        question: The question (context for the entailment judge).
        methods: Method names (``None``: all).
        entailment: Backend for the clustering methods (required by them).
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question for the quantity check of the
            clustering (:func:`aalearn.llm.semantic.quantity_relation`).
        count_repeats: Semantic entropy counts every sample, repeats included, as Farquhar
            et al.'s code does (default: every distinct answer once).

    Returns:
        The :class:`ScoredAnswer` (``seconds_scoring`` is the time spent here).

    Raises:
        ValueError: For unknown methods or clustering methods without an entailment backend.

    Example:
        >>> from aalearn.llm.backends import Generation, GenerationSet
        >>> from aalearn.llm.semantic import TokenOverlap
        >>> g = Generation("Paris", token_logprobs=np.array([-0.1]), token_entropies=np.array([0.3]))
        >>> s = compute_scores(GenerationSet("q", g, [g, g]), question="q", entailment=TokenOverlap())
        >>> s.scores["semantic_entropy"], s.scores["num_semantic_sets"]
        (0.0, 1.0)
    """
    names = check_methods(methods)
    start = time.perf_counter()
    scores: dict[str, float | None] = {}
    notes: list[str] = []
    greedy, samples = gset.greedy, gset.samples
    texts = [s.text for s in samples]
    need_clusters = any(m in ENTAILMENT_METHODS for m in names)
    if need_clusters and entailment is None:
        raise ValueError(
            "the methods " + ", ".join(m for m in names if m in ENTAILMENT_METHODS) + " need an entailment "
            "backend (overlap, embedding, nli:PATH or judge)"
        )
    ids: npt.NDArray[np.int64] | None = None
    sim: FloatArray | None = None
    if need_clusters and texts and entailment is not None:
        e, q = entailment.relations(question, texts, tolerance=tolerance)
        ids = cluster_from_equivalence(q)
        sim = 0.5 * (e + e.T)
    have_lp = all(s.token_logprobs is not None for s in samples)
    for m in names:
        spec = SCORES[m]
        if spec.needs_samples and not samples:
            scores[m] = None
            notes.append(f"{m}: no samples were drawn")
            continue
        try:
            scores[m] = _one_score(m, greedy, samples, texts, ids, sim, have_lp, count_repeats)
        except ValueError as exc:
            scores[m] = None
            notes.append(f"{m}: {exc}")
    approx = []
    if "mean_token_entropy" in names and greedy.entropy_approximate:
        approx.append("mean_token_entropy")
        notes.append("mean_token_entropy: from the server's top-k log-probs (approximate)")
    truncated = greedy.finish_reason == "length"
    n_trunc = sum(s.finish_reason == "length" for s in samples)
    if truncated:
        notes.append("the answer hit the token budget (truncated); it is graded as wrong")
    if n_trunc:
        notes.append(f"{n_trunc} of {len(samples)} samples hit the token budget (truncated)")
    return ScoredAnswer(
        question=question,
        answer=greedy.text,
        scores=scores,
        samples=texts,
        cluster_ids=[] if ids is None else [int(i) for i in ids],
        entailment=None if entailment is None or not need_clusters else entailment.name,
        approximate=bool(entailment is not None and need_clusters and entailment.approximate),
        notes=notes,
        seconds_generation=gset.seconds,
        seconds_scoring=time.perf_counter() - start,
        finish_reason=greedy.finish_reason,
        truncated=truncated,
        truncated_samples=int(n_trunc),
        approximate_scores=approx,
    )


def _one_score(
    m: str,
    greedy: Generation,
    samples: list[Generation],
    texts: list[str],
    ids: Any,
    sim: Any,
    have_lp: bool,
    count_repeats: bool = False,
) -> float:
    if m == "msp":
        return maximum_sequence_probability(greedy)
    if m == "perplexity":
        return perplexity(greedy)
    if m == "mean_token_entropy":
        return mean_token_entropy(greedy)
    if m == "predictive_entropy":
        return predictive_entropy(samples)
    if m == "lexical_similarity":
        return lexical_similarity_uncertainty(texts)
    if m == "semantic_entropy":
        if not have_lp:
            raise ValueError(
                "needs token log-probabilities (use discrete_semantic_entropy for a black-box model)"
            )
        if any(s.n_tokens == 0 for s in samples):
            raise ValueError("a sample is empty and has no log-probability")
        lls = [s.mean_logprob for s in samples]
        return semantic_entropy(lls, ids, texts=texts, count_repeats=count_repeats)
    if m == "discrete_semantic_entropy":
        return discrete_semantic_entropy(ids)
    if m == "num_semantic_sets":
        return float(num_semantic_sets(ids))
    if m == "eigv":
        return eigv(sim)
    if m == "degmat":
        return degmat(sim)
    raise ValueError(f"unknown method {m!r}")  # pragma: no cover - check_methods guards


def score_question(
    backend: Backend,
    question: str,
    *,
    methods: Sequence[str] | None = None,
    entailment: EntailmentBackend | None = None,
    config: SamplingConfig | None = None,
    template: str = QUESTION_TEMPLATE,
    tolerance: tuple[float, float, str | None] | None = None,
    count_repeats: bool = False,
    retry_truncated: int = 0,
) -> ScoredAnswer:
    """Answer one question and compute its uncertainty scores.

    Samples are drawn only when a requested method needs them. A greedy answer that hits
    the token budget (``finish_reason == "length"``) is generated again with twice the
    budget, up to ``retry_truncated`` times (default 0: the default model's truncated answers
    are mostly runaway digit loops that no budget ends); one still truncated is flagged
    (:attr:`ScoredAnswer.truncated`).

    Args:
        backend: The language model.
        question: The question text.
        methods: Method names (``None``: all).
        entailment: Entailment backend for the clustering methods.
        config: Sampling settings.
        template: Prompt template with ``{question}``.
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question (quantity check of the clustering).
        count_repeats: Semantic entropy counts repeated samples (jlko's convention).
        retry_truncated: Retries of a truncated greedy answer with a doubled budget.

    Returns:
        The :class:`ScoredAnswer`.

    Raises:
        ValueError: For an empty question or unknown methods.
        BackendError: If the model fails (for example an unreachable server).

    Example:
        >>> score_question(load_backend("default"), "What is 2 + 2?").answer  # doctest: +SKIP
        '4'
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be an aalearn.llm Backend, got {type(backend).__name__}")
    names = check_methods(methods)
    prompt = format_question(question, template)
    config = config or SamplingConfig()
    if any(SCORES[m].needs_samples for m in names):
        gset = backend.answer_and_sample(prompt, config)
    else:
        start = time.perf_counter()
        greedy = backend.generate(
            prompt,
            n=1,
            temperature=0.0,
            max_new_tokens=config.max_new_tokens,
            stop_at_newline=config.stop_at_newline,
        )[0]
        gset = GenerationSet(prompt, greedy, [], time.perf_counter() - start)
    budget = config.max_new_tokens
    for _ in range(max(0, int(retry_truncated))):
        if gset.greedy.finish_reason != "length":
            break
        budget *= 2
        start = time.perf_counter()
        gset.greedy = backend.generate(
            prompt, n=1, temperature=0.0, max_new_tokens=budget, stop_at_newline=config.stop_at_newline
        )[0]
        gset.seconds += time.perf_counter() - start
    return compute_scores(
        gset,
        question=question,
        methods=names,
        entailment=entailment,
        tolerance=tolerance,
        count_repeats=count_repeats,
    )
