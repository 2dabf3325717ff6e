"""Fixtures of the LLM tests: a tiny random GPT-2, a scripted backend and a stub OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import Backend, Generation

_CORPUS = [
    "What is the capital of France? Paris.",
    "The proton mass is 938 MeV. The muon lives 2.2 microseconds.",
    "What is 7 plus 5? 12. What is 3 times 4? 12.",
    "Answer the question with a short answer (a few words or a number).",
]


def _tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def tiny_lm() -> tuple[Any, Any]:
    """A randomly initialised 2-layer GPT-2 (≈0.1 M parameters) and an in-memory BPE tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _tiny_tokenizer()
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_layer=2,
        n_head=2,
        n_embd=64,
        n_positions=256,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(cfg).eval()
    return model, tok


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_lm: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 saved with save_pretrained (a model directory for --model PATH)."""
    model, tok = tiny_lm
    path = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


_GUESSES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")


class ScriptedBackend(Backend):
    """Answers arithmetic questions correctly and confidently, everything else wrongly and hesitantly.

    Greedy answers carry log-probs −0.05 (arithmetic) or −2.0 (other) per token; samples
    repeat the greedy answer for arithmetic and are all different otherwise.
    """

    name = "scripted"
    supports_logprobs = True
    supports_scoring = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    @staticmethod
    def _solve(prompt: str) -> str | None:
        m = re.search(r"What is (\d+) (plus|minus|times) (\d+)\?", prompt)
        if m is None:
            return None
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return str({"plus": a + b, "minus": a - b, "times": a * b}[op])

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
        self.calls.append(prompt)
        solved = self._solve(prompt)
        out = []
        for k in range(n):
            if solved is not None:
                text, lp = solved, -0.05
            else:
                text, lp = ("I am not sure" if temperature == 0 else _GUESSES[k % len(_GUESSES)]), -2.0
            out.append(Generation(text, np.full(3, lp), np.full(3, -lp)))
        return out


@pytest.fixture
def scripted_backend() -> ScriptedBackend:
    return ScriptedBackend()


Handler = Callable[[str, str, dict[str, Any] | None], tuple[int, bytes, float]]


class StubServer:
    """An OpenAI-compatible stub on 127.0.0.1 whose answers the test scripts (``handler``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.requests.append((method, self.path, body))
                status, payload, delay = outer.handler(method, self.path, body)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_reply(texts: list[str], *, logprobs: bool = True) -> bytes:
    """A /chat/completions body with one choice per text (two tokens each when logprobs)."""
    choices = []
    for i, t in enumerate(texts):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": t},
            "finish_reason": "stop",
        }
        if logprobs:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": t[:1],
                        "logprob": -0.1,
                        "top_logprobs": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -2.4}],
                    },
                    {
                        "token": t[1:],
                        "logprob": -0.3,
                        "top_logprobs": [{"token": "c", "logprob": -0.3}, {"token": "d", "logprob": -1.4}],
                    },
                ]
            }
        else:
            choice["logprobs"] = None
        choices.append(choice)
    return json.dumps({"id": "x", "object": "chat.completion", "choices": choices}).encode()


@pytest.fixture
def stub_server() -> Iterator[Callable[[Handler], StubServer]]:
    servers: list[StubServer] = []

    def _make(handler: Handler) -> StubServer:
        server = StubServer(handler)
        servers.append(server)
        return server

    yield _make
    for s in servers:
        s.close()


@pytest.fixture
def chat_reply_fn() -> Callable[..., bytes]:
    return chat_reply


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()
