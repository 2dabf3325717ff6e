"""Backends: the Hugging Face backend on a tiny random GPT-2, the OpenAI-compatible one on a stub server."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aalearn.llm.backends import (
    BackendError,
    CapabilityError,
    HFBackend,
    OpenAIBackend,
    SamplingConfig,
    load_backend,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

PROMPT = "What is the capital of France?"


@pytest.fixture
def hf(tiny_lm: tuple[Any, Any]) -> HFBackend:
    model, tok = tiny_lm
    return HFBackend(model, tok, name="tiny")


# --------------------------------------------------------------------------- Hugging Face
def test_hf_generate_logprobs_match_a_forward_pass(hf: HFBackend) -> None:
    import torch

    gens = hf.generate(PROMPT, n=3, temperature=1.0, top_k=0, max_new_tokens=8, seed=1, stop_at_newline=False)
    assert len(gens) == 3
    ids = hf.encode_prompt(PROMPT)
    for g in gens:
        assert g.token_ids is not None
        assert g.token_logprobs is not None
        assert g.token_entropies is not None
        assert len(g.token_ids) == g.n_tokens == g.token_entropies.size
        assert np.all(g.token_logprobs <= 0)
        assert np.all(g.token_entropies >= 0)
        assert np.all(g.token_entropies <= math.log(hf.model.config.vocab_size) + 1e-6)
        if not g.token_ids:
            continue
        full = torch.cat([ids, torch.tensor([g.token_ids])], dim=1)
        with torch.no_grad():
            logp = torch.log_softmax(hf.model(full).logits[0].double(), dim=-1)
        start = ids.shape[1]
        expected = [float(logp[start - 1 + t, tok]) for t, tok in enumerate(g.token_ids)]
        np.testing.assert_allclose(g.token_logprobs, expected, atol=1e-4)


def test_hf_prefill_reuse_gives_the_same_samples(tiny_lm: tuple[Any, Any]) -> None:
    model, tok = tiny_lm
    cfg = SamplingConfig(n_samples=4, max_new_tokens=6, seed=3, stop_at_newline=False)
    a = HFBackend(model, tok, reuse_prefill=True).answer_and_sample(PROMPT, cfg)
    b = HFBackend(model, tok, reuse_prefill=False).answer_and_sample(PROMPT, cfg)
    assert [s.token_ids for s in a.samples] == [s.token_ids for s in b.samples]
    assert a.greedy.token_ids == b.greedy.token_ids
    for x, y in zip(a.samples, b.samples, strict=True):
        np.testing.assert_allclose(x.token_logprobs, y.token_logprobs, atol=1e-4)


def test_hf_greedy_row_of_the_joint_batch_is_greedy(hf: HFBackend) -> None:
    cfg = SamplingConfig(n_samples=5, max_new_tokens=8, seed=0, stop_at_newline=False)
    gset = hf.answer_and_sample(PROMPT, cfg)
    alone = hf.generate(PROMPT, n=1, temperature=0.0, max_new_tokens=8, stop_at_newline=False)[0]
    assert gset.greedy.token_ids == alone.token_ids
    np.testing.assert_allclose(gset.greedy.token_logprobs, alone.token_logprobs, atol=1e-4)
    assert len(gset.samples) == 5
    assert len({s.token_ids for s in gset.samples}) > 1  # the samples are not greedy


def test_hf_seed_is_reproducible_and_leaves_global_rng(hf: HFBackend) -> None:
    import torch

    state = torch.random.get_rng_state()
    a = hf.generate(PROMPT, n=2, max_new_tokens=5, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())
    b = hf.generate(PROMPT, n=2, max_new_tokens=5, seed=7)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_hf_score_matches_a_forward_pass(hf: HFBackend) -> None:
    import torch

    lps = hf.score(PROMPT, ["Paris", "", "Paris is nice"])
    assert lps[1].size == 0
    # Without a chat template a space separates prompt and continuation.
    cont = hf.tokenizer(" Paris is nice", add_special_tokens=False)["input_ids"]
    ids = hf.encode_prompt(PROMPT)
    with torch.no_grad():
        full = torch.cat([ids, torch.tensor([cont])], dim=1)
        logp = torch.log_softmax(hf.model(full).logits[0].double(), dim=-1)
    start = ids.shape[1]
    expected = [float(logp[start - 1 + t, tok]) for t, tok in enumerate(cont)]
    np.testing.assert_allclose(lps[2], expected, atol=1e-4)
    # The prefix's log-probs do not depend on what follows (right padding is harmless).
    np.testing.assert_allclose(lps[2][: lps[0].size], lps[0], atol=1e-4)
    # Cache reuse and the plain padded batch agree.
    plain = HFBackend(hf.model, hf.tokenizer, reuse_prefill=False)
    for x, y in zip(plain.score(PROMPT, ["Paris", "Paris is nice"]), [lps[0], lps[2]], strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_hf_bad_input(hf: HFBackend) -> None:
    with pytest.raises(ValueError, match="empty"):
        hf.generate("   ")
    with pytest.raises(ValueError, match="greedy"):
        hf.generate(PROMPT, n=2, temperature=0.0)
    with pytest.raises(ValueError, match="n must be"):
        hf.generate(PROMPT, n=0)
    with pytest.raises(TypeError):
        HFBackend(object(), hf.tokenizer)
    with pytest.raises(ValueError, match="chat template"):
        HFBackend(hf.model, hf.tokenizer, use_chat_template=True)


def test_load_backend_from_directory(tiny_model_dir: Path) -> None:
    backend = load_backend(str(tiny_model_dir))
    assert isinstance(backend, HFBackend)
    assert backend.name == tiny_model_dir.name
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backend(str(tiny_model_dir / "missing"))
    with pytest.raises(ValueError, match="empty"):
        load_backend("  ")


def test_sampling_config_validation() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        SamplingConfig(n_samples=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=1.5)
    with pytest.raises(TypeError):
        SamplingConfig(max_new_tokens=2.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- OpenAI-compatible
def test_openai_chat_with_logprobs(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        if path.endswith("/models"):
            return 200, json.dumps({"data": [{"id": "stub-model"}]}).encode(), 0.0
        assert body is not None
        return 200, chat_reply_fn([f"Paris {k}" for k in range(body["n"])]), 0.0

    server = stub_server(handler)
    backend = OpenAIBackend(server.url, api_key="secret", timeout=5)
    gens = backend.generate(PROMPT, n=3, temperature=1.0, seed=4)
    assert [g.text for g in gens] == ["Paris 0", "Paris 1", "Paris 2"]
    assert backend.model == "stub-model"
    np.testing.assert_allclose(gens[0].token_logprobs, [-0.1, -0.3])
    assert gens[0].entropy_approximate
    assert gens[0].token_entropies is not None
    assert np.all(gens[0].token_entropies > 0)
    _method, path, body = server.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["logprobs"] is True
    assert body["n"] == 3
    assert body["messages"][0]["content"] == PROMPT
    assert body["stop"] == ["\n"]


def test_openai_missing_logprobs_makes_it_black_box(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    server = stub_server(
        lambda m, p, b: (200, chat_reply_fn(["Paris"] * (b or {}).get("n", 1), logprobs=False), 0.0)
    )
    backend = OpenAIBackend(server.url, model="m", timeout=5)
    gset = backend.answer_and_sample(PROMPT, SamplingConfig(n_samples=2))
    assert gset.greedy.token_logprobs is None
    assert not backend.supports_logprobs
    from aalearn.llm.scores import compute_scores
    from aalearn.llm.semantic import TokenOverlap

    res = compute_scores(gset, question=PROMPT, entailment=TokenOverlap())
    assert res.scores["msp"] is None
    assert res.scores["semantic_entropy"] is None
    assert res.scores["discrete_semantic_entropy"] == 0.0
    assert any("log-prob" in n for n in res.notes)


def test_openai_server_that_rejects_logprobs(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        if body and "logprobs" in body:
            return 400, b'{"error": "logprobs not supported"}', 0.0
        return 200, chat_reply_fn(["4"], logprobs=False), 0.0

    backend = OpenAIBackend(stub_server(handler).url, model="m", timeout=5)
    (g,) = backend.generate(PROMPT, n=1, temperature=0.0)
    assert g.text == "4"
    assert not backend.supports_logprobs


def test_openai_server_that_ignores_n(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    server = stub_server(lambda m, p, b: (200, chat_reply_fn(["one"]), 0.0))
    gens = OpenAIBackend(server.url, model="m", timeout=5).generate(PROMPT, n=3)
    assert len(gens) == 3
    assert len(server.requests) == 3


def test_openai_retries_after_server_error(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        calls["n"] += 1
        return (503, b"busy", 0.0) if calls["n"] == 1 else (200, chat_reply_fn(["ok"]), 0.0)

    backend = OpenAIBackend(stub_server(handler).url, model="m", timeout=5, backoff=0.01)
    assert backend.generate(PROMPT, n=1)[0].text == "ok"
    assert calls["n"] == 2


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"this is not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"choices": []}', "no 'choices'"),
        (b'{"choices": [{"message": {"role": "assistant"}}]}', "no answer text"),
    ],
)
def test_openai_malformed_responses(stub_server, payload: bytes, match: str) -> None:  # type: ignore[no-untyped-def]
    backend = OpenAIBackend(stub_server(lambda m, p, b: (200, payload, 0.0)).url, model="m", timeout=5)
    with pytest.raises(BackendError, match=match):
        backend.generate(PROMPT)


def test_openai_timeout(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    server = stub_server(lambda m, p, b: (200, chat_reply_fn(["late"]), 1.0))
    backend = OpenAIBackend(server.url, model="m", timeout=0.2, max_retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="could not reach") as exc:
        backend.generate(PROMPT)
    assert "2 attempt" in str(exc.value)
    assert "timed out" in str(exc.value).lower()


def test_openai_unreachable(unused_port: int) -> None:
    backend = OpenAIBackend(f"http://127.0.0.1:{unused_port}", model="m", timeout=1, max_retries=0)
    assert backend.base_url.endswith("/v1")
    with pytest.raises(BackendError, match="could not reach the OpenAI-compatible server"):
        backend.generate(PROMPT)


def test_openai_http_client_error_and_bad_url(stub_server) -> None:  # type: ignore[no-untyped-def]
    backend = OpenAIBackend(stub_server(lambda m, p, b: (401, b'{"error": "bad key"}', 0.0)).url, model="m")
    with pytest.raises(BackendError, match="HTTP 401"):
        backend.generate(PROMPT)
    with pytest.raises(ValueError, match="http"):
        OpenAIBackend("ftp://host/v1")


def test_openai_score_with_echo(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        assert body["echo"] is True
        assert path.endswith("/completions")
        prompt = body["prompt"]
        cut = len("Q: capital? A:")
        lp = {
            "tokens": ["Q: capital? A:", " Par", "is", "!"],
            "token_logprobs": [None, -1.0, -0.5, -3.0],
            "text_offset": [0, cut, cut + 4, len(prompt)],
        }
        return 200, json.dumps({"choices": [{"text": prompt + "!", "logprobs": lp}]}).encode(), 0.0

    backend = OpenAIBackend(stub_server(handler).url, model="m", timeout=5, chat=False)
    (lp,) = backend.score("Q: capital? A:", ["Paris"])
    np.testing.assert_allclose(lp, [-1.0, -0.5])


def test_openai_score_unsupported(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    backend = OpenAIBackend(
        stub_server(lambda m, p, b: (200, b'{"choices": [{"text": "x"}]}', 0.0)).url, model="m"
    )
    with pytest.raises(CapabilityError, match="prompt_logprobs"):
        backend.score("Q", ["A"])  # chat form: the server gives no prompt_logprobs
    backend.chat = False
    with pytest.raises(CapabilityError, match="prompt log-probabilities"):
        backend.score("Q", ["A"])
