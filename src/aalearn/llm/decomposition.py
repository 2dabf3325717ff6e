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

The plug-in mutual information of a few samples per variant is biased upwards (when every
answer differs it equals :math:`\ln K` exactly, a sampling artefact). It is therefore
**bias-corrected by permutation**: the variant labels of the samples are shuffled
(``n_permutations`` times), the mean mutual information under this null of "the answer does
not depend on the variant" is subtracted, and the result is clipped at 0
(:func:`permutation_corrected_mi`); the plug-in value, the null mean and a permutation
p-value are kept in ``details``. The default paraphrases are real rewrites of the question
(:func:`aalearn.llm.perturb.paraphrase_question`).

**Iterative prompting** (:func:`iterative_prompting_decomposition`; Abbasi-Yadkori,
Kuzborskij, György, Szepesvári, "To Believe or Not to Believe Your LLM", NeurIPS 2024,
arXiv:2406.02543), as in the paper with :math:`n = 2`: :math:`k` tuples
:math:`X_i = (Y_1, Y_2)` are **sampled** from the pseudo-joint,
:math:`Y_1 \sim Q(\cdot \mid F_0(x))` and :math:`Y_2 \sim Q(\cdot \mid F_1(x, Y_1))` where
:math:`F_1` states "One answer to question Q is :math:`Y_1`" (:data:`ITERATIVE_TEMPLATE`).
Answers are grouped into meanings; the empirical pseudo-joint puts on each distinct
sampled tuple the weight :math:`\tilde Q(X_i) = Q(Y_1 \mid F_0)\,Q(Y_2 \mid F_1(x, Y_1))`
(from the generations' token log-probabilities; optionally length-normalised), summed
per pair of meanings and **normalised over the sampled tuples**:
:math:`\hat\mu(X_i) = \tilde Q(X_i) / \sum_j \tilde Q(X_j)`, with marginals
:math:`\hat\mu_1, \hat\mu_2` and :math:`\hat\mu^\otimes = \hat\mu_1 \hat\mu_2`. The estimator is

.. math::

    \hat I_k(\gamma_1, \gamma_2) = \sum_i \hat\mu(X_i)
        \ln\frac{\hat\mu(X_i) + \gamma_1}{\hat\mu^\otimes(X_i) + \gamma_2}

(the paper's defaults :math:`\gamma_1 = \gamma_2 = 0`, :math:`k = 10`). It lower-bounds the
epistemic uncertainty :math:`D_{KL}(\tilde Q \| \tilde P)` (their Theorem 4.5) and is
reported as **epistemic**. The remainder :math:`H(Y_1) - \hat I = H(Y_1 \mid Y_2)` is **not**
an aleatoric uncertainty in the paper's sense (which gives no such split); it is reported
under its own name, ``conditional_entropy`` (what is left of the first answer's entropy once
the repeated answer is seen). Without log-probabilities the tuples are weighted by their
sampling frequency (every sample counts). No scoring of given text is needed.

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
from aalearn.llm.perturb import paraphrase_question
from aalearn.llm.scores import QUESTION_TEMPLATE, format_question
from aalearn.llm.semantic import EntailmentBackend, cluster_from_equivalence, cluster_probabilities
from aalearn.uncertainty.decomposition import decompose  # the classifier ensembles' decomposition

__all__ = [
    "DECOMPOSITIONS",
    "ITERATIVE_TEMPLATE",
    "LLMDecomposition",
    "decompose_distributions",
    "decomposition_score_names",
    "input_ensemble_decomposition",
    "iterative_mutual_information",
    "iterative_prompting_decomposition",
    "permutation_corrected_mi",
    "remainder_name",
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


def remainder_name(varied: str) -> str:
    """Name of the non-epistemic part: ``"conditional_entropy"`` for ``"iterative"``, else ``"aleatoric"``.

    Example:
        >>> remainder_name("iterative"), remainder_name("paraphrase")
        ('conditional_entropy', 'aleatoric')
    """
    return "conditional_entropy" if varied == "iterative" else "aleatoric"


def decomposition_score_names(varied: str) -> tuple[str, str]:
    """The two score names a decomposition adds to an evaluation (``"<varied>_epistemic"``, …).

    Example:
        >>> decomposition_score_names("iterative")
        ('iterative_epistemic', 'iterative_conditional_entropy')
    """
    return f"{varied}_epistemic", f"{varied}_{remainder_name(varied)}"


@dataclass
class LLMDecomposition:
    r"""Epistemic uncertainty of one question and the remainder of the total (nats).

    Attributes:
        total: Total uncertainty, ``epistemic + remainder``.
        epistemic: The epistemic part.
        remainder: The other part: the aleatoric part for input ensembles, the conditional
            entropy :math:`H(Y_1 \mid Y_2)` for iterative prompting (see :func:`remainder_name`).
        varied: What was varied: ``"paraphrase"``, ``"clarification"`` or ``"iterative"``.
        n_variants: Number of input variants (or of sampled tuples for ``"iterative"``).
        details: Variant prompts, cluster distributions, diagnostics, for inspection.

    Example:
        >>> d = LLMDecomposition(0.5, 0.2, 0.3, "paraphrase", 3)
        >>> d.to_dict()["epistemic"], d.aleatoric
        (0.2, 0.3)
    """

    total: float
    epistemic: float
    remainder: float
    varied: str
    n_variants: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def remainder_name(self) -> str:
        """``"aleatoric"`` or ``"conditional_entropy"``."""
        return remainder_name(self.varied)

    @property
    def aleatoric(self) -> float | None:
        """The aleatoric part (``None`` for iterative prompting, which does not estimate one)."""
        return self.remainder if self.remainder_name == "aleatoric" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (the remainder under its own name)."""
        return {
            "total": self.total,
            "epistemic": self.epistemic,
            self.remainder_name: self.remainder,
            "remainder_name": self.remainder_name,
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


def _variant_probs(
    variant_of: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    n_variants: int,
    lls: FloatArray | None,
    texts: Sequence[str],
) -> FloatArray:
    """``(K, C)`` meaning distributions per variant: frequencies, or likelihoods (``lls``)."""
    n_clusters = int(ids.max()) + 1
    probs = np.zeros((n_variants, n_clusters))
    for k in range(n_variants):
        sel = np.flatnonzero(variant_of == k)
        if sel.size == 0:
            continue
        if lls is None:
            probs[k] = np.bincount(ids[sel], minlength=n_clusters) / sel.size
        else:
            clusters, p = cluster_probabilities(lls[sel], ids[sel], texts=[texts[int(i)] for i in sel])
            probs[k, clusters] = p
    return probs


def _mi(probs: FloatArray) -> float:
    mean = probs.mean(axis=0)

    def h(p: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(-np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1))

    return float(max(0.0, float(h(mean)) - float(np.mean(h(probs)))))


def permutation_corrected_mi(
    variant_of: npt.ArrayLike,
    cluster_ids: npt.ArrayLike,
    *,
    log_likelihoods: npt.ArrayLike | None = None,
    texts: Sequence[str] | None = None,
    n_permutations: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    r"""Mutual information between the variant and the meaning, corrected for its small-sample bias.

    The plug-in :math:`I(C; k) = H[\bar p] - \frac1K\sum_k H[p_k]` of a few samples per variant
    is positive even when the answer does not depend on the variant. The variant labels are
    permuted ``n_permutations`` times (keeping the number of samples per variant); the mean
    plug-in value under this null is the bias, subtracted and clipped at 0.

    Args:
        variant_of: Variant index of each sample.
        cluster_ids: Meaning of each sample.
        log_likelihoods: Length-normalised log-likelihoods (``None``: frequencies).
        texts: The samples (duplicates count once with likelihood weighting).
        n_permutations: Permutations of the null (0: no correction).
        seed: Seed of the permutations.

    Returns:
        ``{"plugin", "null_mean", "corrected", "p_value"}`` (``p_value``: fraction of
        permutations at least as large as the plug-in value, with the +1 correction).

    Example:
        >>> r = permutation_corrected_mi([0, 0, 1, 1], [0, 1, 2, 3], n_permutations=50)
        >>> round(r["plugin"], 4), r["corrected"]  # every answer differs: no evidence
        (0.6931, 0.0)
    """
    v = np.asarray(variant_of, dtype=np.int64)
    ids = np.asarray(cluster_ids, dtype=np.int64)
    if v.ndim != 1 or v.shape != ids.shape or v.size == 0:
        raise ValueError(
            f"variant_of and cluster_ids must be 1-d of equal length, got {v.shape}, {ids.shape}"
        )
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 0:
        raise ValueError(f"n_permutations must be an integer ≥ 0, got {n_permutations!r}")
    lls = None if log_likelihoods is None else np.asarray(log_likelihoods, dtype=np.float64)
    txt = list(texts) if texts is not None else [str(i) for i in range(v.size)]
    k = int(v.max()) + 1
    plugin = _mi(_variant_probs(v, ids, k, lls, txt))
    if n_permutations == 0:
        return {"plugin": plugin, "null_mean": 0.0, "corrected": plugin, "p_value": math.nan}
    rng = np.random.default_rng(seed)
    null = np.array(
        [_mi(_variant_probs(rng.permutation(v), ids, k, lls, txt)) for _ in range(n_permutations)]
    )
    return {
        "plugin": plugin,
        "null_mean": float(null.mean()),
        "corrected": float(max(0.0, plugin - null.mean())),
        "p_value": float((1 + np.sum(null >= plugin - 1e-12)) / (1 + n_permutations)),
    }


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
    tolerance: tuple[float, float, str | None] | None = None,
    n_permutations: int = 200,
) -> LLMDecomposition:
    """Epistemic/aleatoric split over an ensemble of input variants (see the module docstring).

    The mutual-information term is bias-corrected by permutation
    (:func:`permutation_corrected_mi`); the expected entropy is the plug-in value, and the
    total is their sum. ``details`` keeps the plug-in total and mutual information, the
    null mean and the p-value.

    Args:
        backend: The language model.
        question: The question.
        entailment: Clusters all variants' answers into shared meanings.
        varied: ``"paraphrase"`` or ``"clarification"``.
        variants: The variant questions. Default for ``"paraphrase"``: the rewrites of
            :func:`~aalearn.llm.perturb.paraphrase_question`; ``"clarification"`` needs them
            (for example the ``clarifications`` of a JSONL item).
        config: Sampling settings (``n_samples`` answers per variant).
        weighting: ``"frequency"`` (black-box: fraction of a variant's samples per meaning)
            or ``"likelihood"`` (length-normalised likelihoods, as semantic entropy).
        template: Prompt template applied to every variant.
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question (quantity check of the clustering).
        n_permutations: Permutations of the bias correction (0: plug-in estimate).

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
        variants = paraphrase_question(question)
    variants = [v for v in variants if isinstance(v, str) and v.strip()]
    if len(variants) < 2:
        raise ValueError(f"an input ensemble needs at least two variants, got {len(variants)}")
    config = config or SamplingConfig()
    prompts = [format_question(v, template) for v in variants]
    gens = [_sample_variant(backend, p, config, config.seed + 1000 * k) for k, p in enumerate(prompts)]
    flat = [g for gs in gens for g in gs]
    texts = [g.text for g in flat]
    _, q = entailment.relations(question, texts, tolerance=tolerance)
    ids = cluster_from_equivalence(q)
    variant_of = np.repeat(np.arange(len(gens)), [len(gs) for gs in gens])
    lls: FloatArray | None = None
    if weighting == "likelihood":
        if not all(g.n_tokens > 0 for g in flat):
            raise ValueError("likelihood weighting needs token log-probabilities; use weighting='frequency'")
        lls = np.array([g.mean_logprob for g in flat])
    probs = _variant_probs(variant_of, ids, len(variants), lls, texts)
    plug = decompose_distributions(probs, varied=varied)
    mi = permutation_corrected_mi(
        variant_of, ids, log_likelihoods=lls, texts=texts, n_permutations=n_permutations, seed=config.seed
    )
    expected = max(0.0, plug.total - mi["plugin"])  # the plug-in expected entropy
    corrected = mi["corrected"]
    epistemic, remainder = (corrected, expected) if varied == "paraphrase" else (expected, corrected)
    return LLMDecomposition(
        expected + corrected,
        epistemic,
        remainder,
        varied,
        len(variants),
        {
            "variant_probs": probs.tolist(),
            "variants": list(variants),
            "answers": [[g.text for g in gs] for gs in gens],
            "cluster_ids": ids.tolist(),
            "weighting": weighting,
            "entailment": entailment.name,
            "approximate": entailment.approximate,
            "plugin_total": plug.total,
            "plugin_mutual_information": mi["plugin"],
            "null_mean_mutual_information": mi["null_mean"],
            "mutual_information_p_value": mi["p_value"],
            "n_permutations": n_permutations,
        },
    )


def iterative_mutual_information(
    first_ids: npt.ArrayLike,
    second_ids: npt.ArrayLike,
    log_weights: npt.ArrayLike | None = None,
    *,
    keys: Sequence[Any] | None = None,
    gamma1: float = 0.0,
    gamma2: float = 0.0,
) -> dict[str, Any]:
    r"""The estimator :math:`\hat I_k(\gamma_1, \gamma_2)` of arXiv:2406.02543 on sampled tuples.

    Args:
        first_ids: Meaning of :math:`Y_1` in each sampled tuple.
        second_ids: Meaning of :math:`Y_2` in each sampled tuple.
        log_weights: :math:`\log\tilde Q(X_i) = \log Q(Y_1 \mid F_0) + \log Q(Y_2 \mid F_1)` per
            tuple; ``None``: every sampled tuple weighs 1 (frequencies, repeats counted).
        keys: Identity of each tuple (e.g. its two texts): with ``log_weights`` a tuple
            sampled twice counts once (the paper sums over the distinct tuples).
        gamma1: :math:`\gamma_1` (paper: 0).
        gamma2: :math:`\gamma_2` (paper: 0).

    Returns:
        ``{"mutual_information", "entropy_y1", "conditional_entropy", "joint", "pairs",
        "n_distinct_tuples"}`` with ``joint`` the normalised :math:`\hat\mu` on the meaning
        pairs ``pairs``; ``conditional_entropy`` is :math:`H(Y_1) - \hat I` (:math:`H(Y_1\mid Y_2)`
        at :math:`\gamma = 0`).

    Example:
        >>> r = iterative_mutual_information([0, 1], [0, 1])  # the answer copies the context
        >>> round(r["mutual_information"], 4), round(r["entropy_y1"], 4)
        (0.6931, 0.6931)
        >>> iterative_mutual_information([0, 0, 1, 1], [0, 1, 0, 1])["mutual_information"]
        0.0
    """
    a = np.asarray(first_ids, dtype=np.int64)
    b = np.asarray(second_ids, dtype=np.int64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"first_ids and second_ids must be 1-d of equal length, got {a.shape}, {b.shape}")
    if gamma1 < 0 or gamma2 < 0:
        raise ValueError("gamma1 and gamma2 must be ≥ 0")
    weights: dict[tuple[int, int], float] = {}
    if log_weights is None:
        for x, y in zip(a, b, strict=True):
            weights[(int(x), int(y))] = weights.get((int(x), int(y)), 0.0) + 1.0
        n_distinct = len(set(zip(a.tolist(), b.tolist(), strict=True)))
    else:
        lw = np.asarray(log_weights, dtype=np.float64)
        if lw.shape != a.shape or not np.all(np.isfinite(lw)):
            raise ValueError("log_weights must be finite, one per tuple")
        ks = list(keys) if keys is not None else list(range(a.size))
        if len(ks) != a.size:
            raise ValueError(f"keys has {len(ks)} entries for {a.size} tuples")
        seen: dict[Any, tuple[int, int, float]] = {}
        for key, x, y, w in zip(ks, a, b, lw, strict=True):
            if key not in seen or w > seen[key][2]:
                seen[key] = (int(x), int(y), float(w))
        top = max(w for _, _, w in seen.values())
        for x, y, w in seen.values():
            weights[(x, y)] = weights.get((x, y), 0.0) + math.exp(w - top)
        n_distinct = len(seen)
    pairs = sorted(weights)
    mu = np.array([weights[p] for p in pairs])
    mu = mu / mu.sum()
    m1: dict[int, float] = {}
    m2: dict[int, float] = {}
    for (x, y), v in zip(pairs, mu, strict=True):
        m1[x] = m1.get(x, 0.0) + float(v)
        m2[y] = m2.get(y, 0.0) + float(v)
    prod = np.array([m1[x] * m2[y] for x, y in pairs])
    mi = float(np.sum(mu * np.log((mu + gamma1) / (prod + gamma2))))
    p1 = np.array(list(m1.values()))
    h1 = float(-np.sum(p1 * np.log(p1)))
    mi = max(0.0, mi) + 0.0
    return {
        "mutual_information": mi,
        "entropy_y1": h1,
        "conditional_entropy": max(0.0, h1 - mi),
        "joint": mu.tolist(),
        "pairs": [list(p) for p in pairs],
        "n_distinct_tuples": n_distinct,
    }


def iterative_prompting_decomposition(
    backend: Backend,
    question: str,
    *,
    entailment: EntailmentBackend,
    config: SamplingConfig | None = None,
    template: str = QUESTION_TEMPLATE,
    length_normalized: bool = False,
    weighting: str = "likelihood",
    tolerance: tuple[float, float, str | None] | None = None,
    gamma1: float = 0.0,
    gamma2: float = 0.0,
) -> LLMDecomposition:
    """Epistemic uncertainty by iterative prompting (arXiv:2406.02543, n = 2; see the module docstring).

    ``config.n_samples`` first answers :math:`Y_1` are sampled (the paper uses k = 10); for each
    one a second answer :math:`Y_2` is sampled from :data:`ITERATIVE_TEMPLATE` stating it. All
    answers are clustered together into meanings and :func:`iterative_mutual_information`
    estimates :math:`\\hat I` from the tuples.

    Args:
        backend: The language model (log-probabilities needed for ``weighting="likelihood"``).
        question: The question.
        entailment: Groups the answers into meanings.
        config: Sampling settings.
        template: Prompt template of the first stage.
        length_normalized: Weigh tuples by length-normalised likelihoods (mean token
            log-probability per answer) instead of the paper's plain likelihoods.
        weighting: ``"likelihood"`` (the paper) or ``"frequency"`` (black-box).
        tolerance: ``(rel_tol, abs_tol, unit)`` of the question (quantity check of the clustering).
        gamma1: :math:`\\gamma_1`.
        gamma2: :math:`\\gamma_2`.

    Returns:
        The :class:`LLMDecomposition` (``varied="iterative"``; total :math:`H(Y_1)` of the
        pseudo-joint's first marginal, epistemic :math:`\\hat I`, remainder
        ``conditional_entropy``), with the tuples, weights and meanings in ``details``.

    Raises:
        CapabilityError: For ``weighting="likelihood"`` when the backend returns no log-probabilities.
        ValueError: For an unknown ``weighting``.

    Example:
        >>> iterative_prompting_decomposition(backend, "2+2?", entailment=TokenOverlap())  # doctest: +SKIP
    """
    if weighting not in ("likelihood", "frequency"):
        raise ValueError(f"weighting must be 'likelihood' or 'frequency', got {weighting!r}")
    config = config or SamplingConfig()
    prompt0 = format_question(question, template)
    first = _sample_variant(backend, prompt0, config, config.seed)
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(first):
        groups.setdefault(g.text, []).append(i)
    second: list[Generation | None] = [None] * len(first)
    for j, (text, idx) in enumerate(groups.items()):
        prompt1 = format_question(ITERATIVE_TEMPLATE.format(question=question, answer=text), "{question}")
        gens = backend.generate(
            prompt1,
            n=len(idx),
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed + 7919 * (j + 1),
            stop_at_newline=config.stop_at_newline,
        )
        for i, g in zip(idx, gens, strict=True):
            second[i] = g
    y2 = [g for g in second if g is not None]
    texts = [g.text for g in first] + [g.text for g in y2]
    _, q = entailment.relations(question, texts, tolerance=tolerance)
    ids = cluster_from_equivalence(q)
    k = len(first)
    log_w: FloatArray | None = None
    if weighting == "likelihood":
        if not all(g.n_tokens > 0 for g in [*first, *y2]):
            raise CapabilityError(
                f"{backend.name} returned no token log-probabilities; use weighting='frequency' for "
                "iterative prompting with a black-box model"
            )

        def ll(g: Generation) -> float:
            return g.mean_logprob if length_normalized else g.sum_logprob

        log_w = np.array([ll(g1) + ll(g2) for g1, g2 in zip(first, y2, strict=True)])
    res = iterative_mutual_information(
        ids[:k],
        ids[k:],
        log_w,
        keys=[(g1.text, g2.text) for g1, g2 in zip(first, y2, strict=True)],
        gamma1=gamma1,
        gamma2=gamma2,
    )
    return LLMDecomposition(
        res["entropy_y1"],
        res["mutual_information"],
        res["conditional_entropy"],
        "iterative",
        k,
        {
            "tuples": [[g1.text, g2.text] for g1, g2 in zip(first, y2, strict=True)],
            "tuple_log_weights": None if log_w is None else log_w.tolist(),
            "cluster_ids_y1": ids[:k].tolist(),
            "cluster_ids_y2": ids[k:].tolist(),
            "joint": res["joint"],
            "pairs": res["pairs"],
            "n_distinct_tuples": res["n_distinct_tuples"],
            "weighting": weighting,
            "length_normalized": bool(length_normalized),
            "gamma1": gamma1,
            "gamma2": gamma2,
            "entailment": entailment.name,
            "approximate": entailment.approximate,
        },
    )
