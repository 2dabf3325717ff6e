"""A model behind an OpenAI-compatible HTTP API (vLLM, llama-server, Ollama, LM Studio, LiteLLM).

Requests go through the standard library's ``urllib`` (no client package needed), with
timeouts, retries and clear errors. Log-probabilities are used when the server returns
them; otherwise only black-box (sampling-based) scores work.

**API key.** Read from ``api_key`` (Python callers), else the file ``api_key_file``, else
``$AALEARN_API_KEY``, else ``$OPENAI_API_KEY``. It is sent only in the ``Authorization``
header; it is not part of :meth:`OpenAIBackend.describe`, of ``repr()`` or of any error
message, so it never reaches results, reports, logs or task descriptions.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

from aalearn.llm.backends.base import (
    Backend,
    BackendError,
    CapabilityError,
    FloatArray,
    Generation,
    check_generate_args,
    check_prompt,
)

__all__ = ["API_KEY_ENV", "OpenAIBackend", "read_api_key"]

#: Environment variables searched for the API key, in order.
API_KEY_ENV: tuple[str, ...] = ("AALEARN_API_KEY", "OPENAI_API_KEY")


def read_api_key(api_key_file: str | os.PathLike[str] | None = None) -> str | None:
    """The API key from ``api_key_file`` (first line), else from :data:`API_KEY_ENV` (``None`` if unset).

    Raises:
        FileNotFoundError: If ``api_key_file`` does not exist.
        ValueError: If the file is empty.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "key"
        >>> _ = path.write_text("sk-test\\n")
        >>> read_api_key(path)
        'sk-test'
    """
    if api_key_file is not None:
        path = os.path.expanduser(os.fspath(api_key_file))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"API key file {path} does not exist")
        with open(path, encoding="utf-8") as fh:
            key = fh.readline().strip()
        if not key:
            raise ValueError(f"API key file {path} is empty")
        return key
    for name in API_KEY_ENV:
        value = os.environ.get(name)
        if value:
            return value.strip()
    return None


def _entropy_from_top(top: Sequence[float | None]) -> float:
    """Entropy of the distribution renormalised over the top-k log-probs (an approximation)."""
    lp = np.asarray([v for v in top if v is not None and math.isfinite(v)], dtype=np.float64)
    if lp.size == 0:
        return math.nan
    lp = lp - np.logaddexp.reduce(lp)
    return float(-np.sum(np.exp(lp) * lp))


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
    server that rejects them (an HTTP 400 whose message names ``logprobs``) is asked again
    without them and the backend is then black-box. Any other HTTP 400 (for example a
    context-length error) fails that request only (:class:`BackendError`) and changes
    nothing for later questions. Chat requests send ``max_completion_tokens`` (the current
    OpenAI name) and fall back to ``max_tokens`` when the server rejects it. Servers that
    ignore ``n`` are asked repeatedly until ``n`` answers are in. ``finish_reason`` is kept
    on every :class:`Generation` (``"length"``: truncated). Token entropies come from the
    top-k log-probs and are marked approximate (:attr:`Generation.entropy_approximate`).

    Args:
        base_url: Server address, e.g. ``"http://127.0.0.1:8000/v1"`` (``/v1`` is added to
            a bare host).
        model: Model name on the server (``None``: the first entry of ``GET /models``).
        api_key: Bearer token (``None``: :func:`read_api_key` from ``api_key_file`` or the
            environment; local servers need none). Never give it on a command line.
        api_key_file: File whose first line is the key.
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
        api_key_file: str | os.PathLike[str] | None = None,
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
        self._api_key = api_key if api_key is not None else read_api_key(api_key_file)
        self.supports_logprobs = True  # until the server shows otherwise
        self.logprobs_error: str | None = None  # why log-probs were switched off, if they were
        self._token_param = "max_completion_tokens" if self.chat else "max_tokens"
        self._model = model
        self.name = f"{model or '?'} @ {self.base_url}"

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.base_url!r}, model={self._model!r})"  # never the key

    def describe(self) -> dict[str, Any]:
        """Name, capabilities and request settings (no key), for results files."""
        out = super().describe()
        out.update(
            base_url=self.base_url,
            chat=self.chat,
            token_parameter=self._token_param,
            logprobs_error=self.logprobs_error,
            entropy="approximate (top-k log-probs)" if self.top_logprobs else None,
        )
        return out

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}/{path.lstrip('/')}"
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
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
                raise _HTTPStatusError(
                    exc.code, f"{url} answered HTTP {exc.code}: {detail}", detail
                ) from None
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
            self._token_param: int(max_new_tokens),
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

    def _complete(self, payload: dict[str, Any], endpoint: str | None = None) -> dict[str, Any]:
        endpoint = endpoint or ("chat/completions" if self.chat else "completions")
        for _ in range(3):
            try:
                return self._request("POST", endpoint, payload)
            except _HTTPStatusError as exc:
                detail = exc.detail.lower()
                if exc.status == 400 and "logprobs" in payload and "logprob" in detail:
                    # the server says it cannot return log-probs: black-box from now on
                    self.supports_logprobs = False
                    self.logprobs_error = exc.detail[:200]
                    payload = {k: v for k, v in payload.items() if k not in ("logprobs", "top_logprobs")}
                    continue
                if (
                    exc.status == 400
                    and "max_completion_tokens" in payload
                    and "max_completion_tokens" in detail
                ):
                    self._token_param = "max_tokens"  # an older server: the deprecated name
                    budget = payload["max_completion_tokens"]
                    payload = {k: v for k, v in payload.items() if k != "max_completion_tokens"}
                    payload["max_tokens"] = budget
                    continue
                raise BackendError(str(exc)) from None
        raise BackendError(f"{self.base_url}/{endpoint} rejected the request repeatedly")

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
        check_generate_args(n, temperature, max_new_tokens)
        prompt = check_prompt(prompt)
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
        if gens and all(g.token_logprobs is None for g in gens):  # no block at all (empty answers have one)
            self.supports_logprobs = False
        return gens

    def score(self, prompt: str, continuations: Sequence[str]) -> list[FloatArray]:
        """Token log-probs of each continuation given the prompt, formatted as for generation.

        * ``chat=True``: the prompt is the user message and the continuation the start of the
          assistant's reply, sent to ``/chat/completions`` with vLLM's ``echo``,
          ``add_generation_prompt=False``, ``continue_final_message=True`` and
          ``prompt_logprobs``, so the server applies the **same chat template** as when it
          generates; the continuation's tokens are the last prompt tokens.
        * ``chat=False``: ``/completions`` with ``echo=True`` on the raw prompt (a space is
          put between a prompt and a continuation that lack one).

        Raises:
            CapabilityError: If the server does not return prompt log-probabilities (only
                vLLM does, as far as known).
        """
        prompt = check_prompt(prompt)
        results: list[FloatArray] = []
        for cont in continuations:
            if not cont:
                results.append(np.zeros(0))
                continue
            results.append(self._score_chat(prompt, cont) if self.chat else self._score_raw(prompt, cont))
        return results

    def _score_chat(self, prompt: str, cont: str) -> FloatArray:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": cont}],
            "add_generation_prompt": False,
            "continue_final_message": True,
            "echo": True,
            "prompt_logprobs": 0,
            "temperature": 0.0,
            self._token_param: 1,
        }
        try:
            reply = self._complete(payload, "chat/completions")
        except BackendError as exc:
            raise CapabilityError(f"the server cannot score text in chat form ({exc})") from None
        entries = reply.get("prompt_logprobs")
        if not isinstance(entries, list) or not entries:
            raise CapabilityError(
                f"{self.base_url} returned no prompt_logprobs for a chat request; scoring given text in chat "
                "form needs vLLM (or use --no-chat with a server that supports echo=True)"
            )
        target = cont.strip()
        got: list[float] = []
        text = ""
        for entry in reversed(entries):
            if len(text.strip()) >= len(target):
                break
            if not isinstance(entry, dict) or not entry:
                break
            options = [v for v in entry.values() if isinstance(v, dict)]
            rest = target[: max(0, len(target) - len(text.strip()))]
            chosen = next(
                (
                    o
                    for o in options
                    if str(o.get("decoded_token", "")).strip()
                    and rest.endswith(str(o.get("decoded_token", "")).strip())
                ),
                options[0] if len(options) == 1 else None,
            )
            if chosen is None or not isinstance(chosen.get("logprob"), (int, float)):
                raise CapabilityError(f"{self.base_url} returned prompt_logprobs that do not match the text")
            got.append(float(chosen["logprob"]))
            text = str(chosen.get("decoded_token", "")) + text
        return np.asarray(got[::-1], dtype=np.float64)

    def _score_raw(self, prompt: str, cont: str) -> FloatArray:
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
                "scoring given text needs vLLM or a local Hugging Face model"
            )
        offsets, values = block["text_offset"], block.get("token_logprobs") or []
        keep = [
            float(v)
            for off, v in zip(offsets, values, strict=False)
            if isinstance(off, int) and len(prompt) <= off < len(prompt) + len(cont) and v is not None
        ]
        return np.asarray(keep, dtype=np.float64)


class _HTTPStatusError(BackendError):
    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


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
