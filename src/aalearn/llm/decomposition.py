r"""Epistemic versus aleatoric uncertainty of a language model's answer, with what is varied made explicit.

Two estimators, each returning two numbers per question that add up to a total:

**Input ensembles** (:func:`input_ensemble_decomposition`). The question is asked in
:math:`K` variants :math:`x_k`; all sampled answers are clustered into meanings together,
giving one distribution :math:`p_k(c)` over meanings per variant, and the entropy of the
mixture splits exactly as for a deep ensemble (:func:`aalearn.uncertainty.decompose`):

.. math::

    \underbrace{H\Bigl[\tfrac1K\sum_k p_k\Bigr]}_{\text{total}}
    = \underbrace{\tfrac1K\sum_k H[p_k]}_{\text{expected entropy}}
    + \underbrace{I(C; k)}_{\text{mutual information}} .

Which term is epistemic depends on **what is varied**:

* ``varied="paraphrase"`` — meaning-preserving rewrites (:data:`~aalearn.llm.perturb.PARAPHRASE_TEMPLATES`)
  act like ensemble members: a model that knows the answer gives it however the question is
  phrased, so disagreement between phrasings (the mutual information) is **epistemic**,
  and the expected entropy within one phrasing is reported as **aleatoric** (SPUQ-style
  ensembles, arXiv:2403.02509; the notes' §2.3 d).
* ``varied="clarification"`` — rewrites that each resolve an ambiguity of the question
  (input-clarification ensembling, Hou et al., ICML 2024, arXiv:2311.08718): the mutual
  information measures how much the answer depends on *which* reading was meant, i.e. the
  ambiguity of the question — **aleatoric**; the expected entropy given a clarified
  question is **epistemic**. (The roles are reversed with respect to a Bayesian ensemble, as
  in the paper.)

**Iterative prompting** (:func:`iterative_prompting_decomposition`; Abbasi-Yadkori,
Kuzborskij, György, Szepesvári, "To Believe or Not to Believe Your LLM", NeurIPS 2024,
arXiv:2406.02543). Sample answers :math:`Y_1 \sim Q(\cdot \mid F_0(x))`, then score every
answer :math:`Y_2` under the prompt :math:`F_1(x, Y_1)` that states "One answer to question Q
is :math:`Y_1`". On the sampled meanings this defines a pseudo-joint
:math:`\hat\mu(i, j) = \hat\mu_1(i)\,\hat\mu_2(j \mid i)`; its mutual information
:math:`\hat I = I(Y_1; Y_2)` lower-bounds the epistemic uncertainty :math:`D_{KL}(\tilde Q \| \tilde P)`
(their Theorem 4.5): a model that knows the answer is not swayed by a repeated wrong answer,
one that does not know copies it. It is reported as **epistemic**; with
:math:`H(Y_1) = I(Y_1;Y_2) + H(Y_1 \mid Y_2)` the remainder :math:`H(Y_1 \mid Y_2)` is
reported as **aleatoric** (both non-negative, summing to :math:`H(Y_1)`). This needs the
log-likelihood of given text (:meth:`Backend.score`): a local model, or vLLM's
``echo=True``. The paper uses :math:`n = 2` and :math:`k = 10` samples; each meaning is
represented by its distinct answers, and the likelihoods are normalised over the sampled
meanings (:math:`\gamma_1 = \gamma_2 = 0`).

Example:
    >>> d = decompose_distributions([[1.0, 0.0], [0.0, 1.0]], varied="paraphrase")
    >>> round(d.epistemic, 4), round(d.aleatoric, 4), round(d.total, 4)
    (0.6931, 0.0, 0.6931)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.llm.backends import Backend, CapabilityError, Generation, SamplingConfig
from aalearn.llm.perturb import PARAPHRASE_TEMPLATES
from aalearn.llm.scores import QUESTION_TEMPLATE, format_question
from aalearn.llm.semantic import EntailmentBackend, cluster_from_equivalence, cluster_probabilities
from aalearn.uncertainty.decomposition import decompose  # the classifier ensembles' decomposition

__all__ = [
    "DECOMPOSITIONS",
    "ITERATIVE_TEMPLATE",
    "LLMDecomposition",
    "decompose_distributions",
    "input_ensemble_decomposition",
    "iterative_mutual_information",
    "iterative_prompting_decomposition",
]

FloatArray = npt.NDArray[np.float64]

#: What can be varied (the ``varied`` argument / ``--decompose`` option).
DECOMPOSITIONS: tuple[str, ...] = ("paraphrase", "clarification", "iterative")

#: Prompt :math:`F_1(x, Y_1)` of arXiv:2406.02543 (n = 2), asking for a short answer like
#: :data:`~aalearn.llm.scores.QUESTION_TEMPLATE`.
ITERATIVE_TEMPLATE = (
    "Consider the following question: Q: {question}\n"
    "One answer to question Q is {answer}.\n"
    "Provide a short answer (a few words or a number) to the following question: Q: {question}\nA:"
)


@dataclass
class LLMDecomposition:
    """Epistemic and aleatoric uncertainty of one question (nats).

    Attributes:
        total: Total uncertainty, ``epistemic + aleatoric``.
        epistemic: The epistemic part.
        aleatoric: The aleatoric part.
        varied: What was varied: ``"paraphrase"``, ``"clarification"`` or ``"iterative"``.
        n_variants: Number of input variants (or of sampled first answers for ``"iterative"``).
        details: Variant prompts, cluster distributions and the like, for inspection.

    Example:
        >>> LLMDecomposition(0.5, 0.2, 0.3, "paraphrase", 3).to_dict()["epistemic"]
        0.2
    """

    total: float
    epistemic: float
    aleatoric: float
    varied: str
    n_variants: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return {
            "total": self.total,
            "epistemic": self.epistemic,
            "aleatoric": self.aleatoric,
            "varied": self.varied,
            "n_variants": self.n_variants,
            "details": self.details,
        }


def decompose_distributions(variant_probs: npt.ArrayLike, *, varied: str) -> LLMDecomposition:
    r"""Split the entropy of :math:`K` distributions over meanings (one per input variant).

    Args:
        variant_probs: ``(K, C)`` rows summing to 1: :math:`p_k(c)` for variant k.
        varied: ``"paraphrase"`` (mutual information = epistemic) or ``"clarification"``
            (mutual information = aleatoric).

    Returns:
        The :class:`LLMDecomposition` (both parts ≥ 0, summing to the total).

    Raises:
        ValueError: For a bad shape, rows not summing to 1 or an unknown ``varied``.

    Example:
        >>> d = decompose_distributions([[0.5, 0.5], [0.5, 0.5]], varied="clarification")
        >>> round(d.aleatoric, 6), round(d.epistemic, 4)
        (0.0, 0.6931)
    """
    if varied not in ("paraphrase", "clarification"):
        raise ValueError(f"varied must be 'paraphrase' or 'clarification' here, got {varied!r}")
    p = np.asarray(variant_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"variant_probs must have shape (K variants, C meanings), got {p.shape}")
    if p.shape[1] == 1:  # one meaning: pad an empty one (decompose needs two classes)
        p = np.concatenate([p, np.zeros_like(p)], axis=1)
    d = decompose(p[:, None, :], binary=False, method=f"input ensemble ({varied})")
    total, expected, mi = float(d.total[0]), float(d.aleatoric[0]), float(d.epistemic[0])
    expected = max(0.0, min(expected, total))
    mi = total - expected
    if varied == "paraphrase":
        return LLMDecomposition(total, mi, expected, varied, int(p.shape[0]), {"variant_probs": p.tolist()})
    return LLMDecomposition(total, expected, mi, varied, int(p.shape[0]), {"variant_probs": p.tolist()})


def _sample_variant(backend: Backend, prompt: str, config: SamplingConfig, seed: int) -> list[Generation]:
    return backend.generate(
        prompt,
        n=config.n_samples,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        max_new_tokens=config.max_new_tokens,
        seed=seed,
        stop_at_newline=config.stop_at_newline,
    )


def input_ensemble_decomposition(
    backend: Backend,
    question: str,
    *,
    entailment: EntailmentBackend,
    varied: str = "paraphrase",
    variants: Sequence[str] | None = None,
    config: SamplingConfig | None = None,
    weighting: str = "frequency",
    template: str = QUESTION_TEMPLATE,
) -> LLMDecomposition:
    """Epistemic/aleatoric split over an ensemble of input variants (see the module docstring).

    Args:
        backend: The language model.
        question: The question.
        entailment: Clusters all variants' answers into shared meanings.
        varied: ``"paraphrase"`` or ``"clarification"``.
        variants: The variant questions. Default for ``"paraphrase"``: the question in the
            :data:`~aalearn.llm.perturb.PARAPHRASE_TEMPLATES`; ``"clarification"`` needs them
            (for example the ``clarifications`` of a JSONL item).
        config: Sampling settings (``n_samples`` answers per variant).
        weighting: ``"frequency"`` (black-box: fraction of a variant's samples per meaning)
            or ``"likelihood"`` (length-normalised likelihoods, as semantic entropy).
        template: Prompt template applied to every variant.

    Returns:
        The :class:`LLMDecomposition`.

    Raises:
        ValueError: For fewer than two variants, an unknown ``weighting``, or
            ``"likelihood"`` without log-probabilities.

    Example:
        >>> input_ensemble_decomposition(backend, "2+2?", entailment=TokenOverlap())  # doctest: +SKIP
    """
    if varied not in ("paraphrase", "clarification"):
        raise ValueError(f"varied must be 'paraphrase' or 'clarification', got {varied!r}")
    if weighting not in ("frequency", "likelihood"):
        raise ValueError(f"weighting must be 'frequency' or 'likelihood', got {weighting!r}")
    if variants is None:
        if varied == "clarification":
            raise ValueError(
                "a clarification ensemble needs the clarified questions (JSONL field 'clarifications')"
            )
        variants = [t.format(question=question) for t in PARAPHRASE_TEMPLATES]
    variants = [v for v in variants if isinstance(v, str) and v.strip()]
    if len(variants) < 2:
        raise ValueError(f"an input ensemble needs at least two variants, got {len(variants)}")
    config = config or SamplingConfig()
    prompts = [format_question(v, template) for v in variants]
    gens = [_sample_variant(backend, p, config, config.seed + 1000 * k) for k, p in enumerate(prompts)]
    texts = [g.text for gs in gens for g in gs]
    _, q = entailment.relations(question, texts)
    ids = cluster_from_equivalence(q)
    n_clusters = int(ids.max()) + 1
    probs = np.zeros((len(variants), n_clusters))
    pos = 0
    for k, gs in enumerate(gens):
        vid = ids[pos : pos + len(gs)]
        if weighting == "frequency":
            probs[k] = np.bincount(vid, minlength=n_clusters) / len(gs)
        else:
            if not all(g.token_logprobs is not None for g in gs):
                raise ValueError(
                    "likelihood weighting needs token log-probabilities; use weighting='frequency'"
                )
            lls = [g.mean_logprob if g.n_tokens else 0.0 for g in gs]
            clusters, p = cluster_probabilities(lls, vid, texts=[g.text for g in gs])
            probs[k, clusters] = p
        pos += len(gs)
    d = decompose_distributions(probs, varied=varied)
    d.details.update(
        variants=list(variants),
        answers=[[g.text for g in gs] for gs in gens],
        cluster_ids=ids.tolist(),
        weighting=weighting,
        entailment=entailment.name,
        approximate=entailment.approximate,
    )
    return d


def iterative_mutual_information(
    log_mu1: npt.ArrayLike, log_mu2: npt.ArrayLike
) -> tuple[float, float, float]:
    r"""Total, epistemic and aleatoric parts from first-answer and conditional log-likelihoods.

    :math:`\hat\mu_1 \propto \exp(\text{log\_mu1})` over the :math:`u` sampled meanings and
    :math:`\hat\mu_2(\cdot \mid i) \propto \exp(\text{log\_mu2}[i])` (rows normalised):
    total :math:`H(Y_1)`, epistemic :math:`I(Y_1; Y_2)`, aleatoric :math:`H(Y_1 \mid Y_2)`.

    Args:
        log_mu1: ``(u,)`` log-likelihoods of the meanings under the plain prompt.
        log_mu2: ``(u, u)`` log-likelihood of meaning j under the prompt that states meaning i.

    Returns:
        ``(total, epistemic, aleatoric)`` in nats, non-negative, epistemic + aleatoric = total.

    Example:
        >>> iterative_mutual_information([0.0, 0.0], [[0.0, -50.0], [-50.0, 0.0]])[1] > 0.69
        True
        >>> iterative_mutual_information([0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]])[1]
        0.0
    """
    l1 = np.asarray(log_mu1, dtype=np.float64)
    l2 = np.asarray(log_mu2, dtype=np.float64)
    if l1.ndim != 1 or l1.size == 0 or l2.shape != (l1.size, l1.size):
        raise ValueError(f"log_mu1 must be (u,) and log_mu2 (u, u); got {l1.shape} and {l2.shape}")
    if not (np.all(np.isfinite(l1)) and np.all(np.isfinite(l2))):
        raise ValueError("log-likelihoods must be finite")
    mu1 = np.exp(l1 - np.logaddexp.reduce(l1))
    cond = np.exp(l2 - np.logaddexp.reduce(l2, axis=1, keepdims=True))
    joint = mu1[:, None] * cond
    m2 = joint.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (mu1[:, None] * m2[None, :])), 0.0)
    total = float(-np.sum(np.where(mu1 > 0, mu1 * np.log(mu1), 0.0)))
    mi = float(min(max(np.sum(terms), 0.0), total))
    return total, mi, total - mi


def iterative_prompting_decomposition(
    backend: Backend,
    question: str,
    *,
    entailment: EntailmentBackend,
    config: SamplingConfig | None = None,
    template: str = QUESTION_TEMPLATE,
) -> LLMDecomposition:
    """Epistemic uncertainty by iterative prompting (arXiv:2406.02543), with ``H(Y1|Y2)`` as aleatoric.

    ``config.n_samples`` first answers are sampled (the paper uses 10), clustered into
    meanings; every distinct answer is scored under :data:`ITERATIVE_TEMPLATE` stating each
    meaning's first answer, and the meanings' likelihoods are the sums over their distinct
    answers.

    Args:
        backend: A backend that can score text (:attr:`Backend.supports_scoring`).
        question: The question.
        entailment: Groups the answers into meanings.
        config: Sampling settings.
        template: Prompt template of the first stage.

    Returns:
        The :class:`LLMDecomposition` (``varied="iterative"``).

    Raises:
        CapabilityError: If the backend cannot score text.

    Example:
        >>> iterative_prompting_decomposition(backend, "2+2?", entailment=TokenOverlap())  # doctest: +SKIP
    """
    if not backend.supports_scoring:
        raise CapabilityError(
            f"{backend.name} cannot score given text; iterative prompting needs a local Hugging Face model "
            "or a server with prompt log-probabilities (vLLM)"
        )
    config = config or SamplingConfig()
    prompt0 = format_question(question, template)
    gens = _sample_variant(backend, prompt0, config, config.seed)
    texts = [g.text for g in gens]
    _, q = entailment.relations(question, texts)
    ids = cluster_from_equivalence(q)
    distinct: dict[str, int] = {}
    for t, c in zip(texts, ids, strict=True):
        distinct.setdefault(t, int(c))
    answers = list(distinct)
    answer_cluster = np.array([distinct[a] for a in answers])
    n_clusters = int(ids.max()) + 1
    first = {int(c): texts[int(np.argmax(ids == c))] for c in range(n_clusters)}

    def _by_cluster(values: FloatArray) -> FloatArray:
        out = np.full(n_clusters, -np.inf)
        for v, c in zip(values, answer_cluster, strict=True):
            out[c] = np.logaddexp(out[c], v)
        return out

    lp0 = backend.score(prompt0, answers)
    log_mu1 = _by_cluster(np.array([float(np.sum(x)) for x in lp0]))
    log_mu2 = np.zeros((n_clusters, n_clusters))
    for i in range(n_clusters):
        prompt1 = format_question(ITERATIVE_TEMPLATE.format(question=question, answer=first[i]), "{question}")
        lp = backend.score(prompt1, answers)
        log_mu2[i] = _by_cluster(np.array([float(np.sum(x)) for x in lp]))
    total, epistemic, aleatoric = iterative_mutual_information(log_mu1, log_mu2)
    if not math.isfinite(total):  # pragma: no cover - guarded by iterative_mutual_information
        raise ValueError("non-finite iterative-prompting estimate")
    return LLMDecomposition(
        total,
        epistemic,
        aleatoric,
        "iterative",
        n_clusters,
        {
            "answers": texts,
            "cluster_ids": ids.tolist(),
            "first_answers": [first[c] for c in range(n_clusters)],
            "entailment": entailment.name,
            "approximate": entailment.approximate,
        },
    )
