"""OpenAI-compatible backend fixes of issue 22 (item 4) on a stub server, and the API-key handling."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aalearn.apps.llm import evaluate_command, score_many
from aalearn.cli.main import app
from aalearn.llm.backends import BackendError, OpenAIBackend, SamplingConfig
from aalearn.llm.scores import score_question
from aalearn.llm.semantic import TokenOverlap

PROMPT = "What is 7 plus 5?"
SENTINEL = "sk-SENTINEL-7f3a9c"


def _reply(texts: list[str], finish: str = "stop") -> bytes:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": t},
            "finish_reason": finish,
            "logprobs": {
                "content": [
                    {
                        "token": t,
                        "logprob": -0.2,
                        "top_logprobs": [{"token": t, "logprob": -0.2}, {"token": "x", "logprob": -1.8}],
                    }
                ]
            },
        }
        for i, t in enumerate(texts)
    ]
    return json.dumps({"choices": choices}).encode()


def _answer(body: dict[str, Any]) -> str:
    content = body["messages"][0]["content"]
    m = re.search(r"What is (\d+) (plus|minus|times) (\d+)\?", content)
    if m is None:
        return "unknown"
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return str({"plus": a + b, "minus": a - b, "times": a * b}[op])


def test_a_context_length_400_does_not_switch_logprobs_off(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        if "LONG" in body["messages"][0]["content"]:
            return 400, b'{"error": "maximum context length is 2048 tokens, you requested 5000"}', 0.0
        return 200, _reply(["12"] * body["n"]), 0.0

    backend = OpenAIBackend(stub_server(handler).url, model="m", timeout=5)
    with pytest.raises(BackendError, match="context length"):
        backend.generate("LONG " + PROMPT, n=1, temperature=0.0)
    assert backend.supports_logprobs  # one bad request changes nothing for later questions
    (g,) = backend.generate(PROMPT, n=1, temperature=0.0)
    assert g.has_logprobs
    assert backend.describe()["logprobs_error"] is None


def test_a_logprobs_400_switches_them_off_and_says_why(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        if body and "logprobs" in body:
            return 400, b'{"error": "logprobs are not supported by this model"}', 0.0
        return 200, _reply(["12"]), 0.0

    backend = OpenAIBackend(stub_server(handler).url, model="m", timeout=5)
    backend.generate(PROMPT, n=1, temperature=0.0)
    assert not backend.supports_logprobs
    assert "logprobs" in backend.describe()["logprobs_error"]


def test_chat_sends_max_completion_tokens_with_fallback(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        if "max_completion_tokens" in body:
            return 400, b'{"error": "Unrecognized request argument supplied: max_completion_tokens"}', 0.0
        return 200, _reply(["12"]), 0.0

    server = stub_server(handler)
    backend = OpenAIBackend(server.url, model="m", timeout=5)
    (g,) = backend.generate(PROMPT, n=1, temperature=0.0, max_new_tokens=33)
    assert g.text == "12"
    assert backend.supports_logprobs  # the 400 was about the token parameter, not log-probs
    first, second = server.requests[0][2], server.requests[1][2]
    assert first["max_completion_tokens"] == 33
    assert "max_tokens" not in first
    assert second["max_tokens"] == 33
    backend.generate(PROMPT, n=1, temperature=0.0)
    assert "max_completion_tokens" not in server.requests[-1][2]  # remembered
    assert len(server.requests) == 3


def test_chat_score_uses_the_chat_template(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        assert path.endswith("/chat/completions")
        plp = [None, {"11": {"logprob": -2.0, "rank": 3, "decoded_token": "<user>"}}]
        plp += [
            {"7": {"logprob": -0.5, "rank": 1, "decoded_token": " Par"}},
            {"8": {"logprob": -0.25, "rank": 1, "decoded_token": "is"}},
        ]
        return 200, json.dumps({"choices": [], "prompt_logprobs": plp}).encode(), 0.0

    server = stub_server(handler)
    backend = OpenAIBackend(server.url, model="m", timeout=5)
    (lp,) = backend.score("Capital of France?", ["Paris"])
    np.testing.assert_allclose(lp, [-0.5, -0.25])
    body = server.requests[-1][2]
    assert body["messages"] == [
        {"role": "user", "content": "Capital of France?"},  # the same user message as for generation
        {"role": "assistant", "content": "Paris"},
    ]
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False


def test_truncated_answers_are_retried_flagged_and_graded_wrong(stub_server) -> None:  # type: ignore[no-untyped-def]
    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        budget = body.get("max_completion_tokens", 0)
        finish = "length" if budget < 100 else "stop"
        return 200, _reply([_answer(body)] * body["n"], finish), 0.0

    server = stub_server(handler)
    backend = OpenAIBackend(server.url, model="m", timeout=5)
    cfg = SamplingConfig(n_samples=2, max_new_tokens=64)
    res = score_question(backend, PROMPT, methods="msp,mean_token_entropy", config=cfg, retry_truncated=1)
    assert not res.truncated  # 64 → retried with 128 → complete
    assert server.requests[-1][2]["max_completion_tokens"] == 128
    assert "mean_token_entropy" in res.approximate_scores  # top-k entropies are marked
    res = score_question(
        backend, PROMPT, methods="msp", config=SamplingConfig(max_new_tokens=20), retry_truncated=1
    )
    assert res.truncated
    assert res.finish_reason == "length"
    assert any("truncated" in n for n in res.notes)


def test_evaluation_grades_truncated_answers_wrong(stub_server) -> None:  # type: ignore[no-untyped-def]
    server = stub_server(lambda m, p, b: (200, _reply([_answer(b)] * b["n"], "length"), 0.0))
    ev, payload = evaluate_command(
        server.url, "arithmetic", methods="msp", limit=3, model_name="m", n_boot=20
    )
    assert payload["n_truncated"] == 3
    assert all(r["truncated"] and not r["correct"] for r in payload["questions"])
    assert ev.accuracy == 0.0


def test_api_key_is_sent_but_never_written(
    stub_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    seen: list[str | None] = []

    def handler(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes, float]:
        assert body is not None
        return 200, _reply([_answer(body)] * body["n"]), 0.0

    server = stub_server(handler)
    orig = server.httpd.RequestHandlerClass._serve  # type: ignore[attr-defined]

    def _serve(self: Any, method: str) -> None:
        seen.append(self.headers.get("Authorization"))
        orig(self, method)

    server.httpd.RequestHandlerClass._serve = _serve  # type: ignore[attr-defined]
    monkeypatch.setenv("AALEARN_API_KEY", SENTINEL)
    out = tmp_path / "run"
    ev, payload = evaluate_command(
        server.url,
        "arithmetic",
        methods="msp,num_semantic_sets,semantic_entropy",
        limit=3,
        samples=2,
        model_name="m",
        out=out,
        n_boot=20,
    )
    assert seen
    assert all(h == f"Bearer {SENTINEL}" for h in seen)  # the key was used
    assert ev.accuracy == 1.0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert SENTINEL not in p.read_text(errors="replace"), p
    assert SENTINEL not in json.dumps(payload, default=str)
    # the key is not in the backend's representation, nor in what the tasks carry
    backend = OpenAIBackend(server.url, model="m")
    assert SENTINEL not in repr(backend)
    assert SENTINEL not in json.dumps(backend.describe())
    assert SENTINEL not in repr(backend.__dict__.get("name"))
    with pytest.raises(ValueError, match="api_key"):
        score_many(server.url, [PROMPT], methods="msp", model_options={"api_key": SENTINEL})
    # the command line: --api-key is refused, the key file works, nothing printed holds the key
    runner = CliRunner()
    res = runner.invoke(
        app, ["llm", "score", "--model", server.url, "--question", PROMPT, "--api-key", SENTINEL]
    )
    assert res.exit_code == 2
    assert "AALEARN_API_KEY" in res.output
    assert SENTINEL not in res.output
    monkeypatch.delenv("AALEARN_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    key_file = tmp_path / "key.txt"
    key_file.write_text(SENTINEL + "\n")
    seen.clear()
    res = runner.invoke(
        app,
        [
            "llm",
            "score",
            "--model",
            server.url,
            "--model-name",
            "m",
            "--question",
            PROMPT,
            "--methods",
            "msp",
            "--api-key-file",
            str(key_file),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert seen
    assert all(h == f"Bearer {SENTINEL}" for h in seen)
    assert SENTINEL not in res.output
    assert json.loads(res.stdout)["answer"] == "12"
    res = runner.invoke(
        app,
        [
            "llm",
            "score",
            "--model",
            server.url,
            "--question",
            PROMPT,
            "--api-key-file",
            str(tmp_path / "none"),
        ],
    )
    assert res.exit_code == 2


def test_empty_answers_get_no_probability_one(stub_server) -> None:  # type: ignore[no-untyped-def]
    body = {"choices": [{"message": {"content": ""}, "finish_reason": "stop", "logprobs": {"content": []}}]}
    server = stub_server(lambda m, p, b: (200, json.dumps(body).encode(), 0.0))
    backend = OpenAIBackend(server.url, model="m")
    res = score_question(backend, PROMPT, methods="msp,perplexity", entailment=TokenOverlap())
    assert res.answer == ""
    assert res.scores["msp"] is None  # not 0 (= probability 1)
    assert res.scores["perplexity"] is None
    assert any("empty" in n for n in res.notes)
    assert backend.supports_logprobs  # an empty answer is not a server without log-probs


@pytest.mark.usefixtures("single_torch_thread")
def test_local_backend_drops_the_newline_token_and_scores_empty_answers(tiny_lm: tuple[Any, Any]) -> None:
    import torch

    from aalearn.llm.backends import HFBackend

    model, tok = tiny_lm
    hf = HFBackend(model, tok, name="tiny")
    nl = tok.convert_tokens_to_ids("Ċ")  # the byte-level newline token
    eos = tok.eos_token_id
    word = tok.convert_tokens_to_ids("P")
    torch.manual_seed(0)
    logits = [torch.randn(3, len(tok)) for _ in range(3)]
    logp = [torch.log_softmax(x, dim=-1) for x in logits]

    class Out:
        sequences = torch.tensor([[word, nl, eos], [nl, eos, eos], [eos, eos, eos]])

    Out.logits = tuple(logits)  # type: ignore[attr-defined]
    answer, newline_only, stop_at_once = hf._parse(Out, 0)
    assert answer.text == "P"
    np.testing.assert_allclose(
        answer.token_logprobs, [float(logp[0][0, word])], atol=1e-6
    )  # newline not counted
    assert answer.finish_reason == "stop"
    # empty answers keep the log-probability of stopping at once (not probability 1)
    assert newline_only.text == ""
    np.testing.assert_allclose(newline_only.token_logprobs, [float(logp[0][1, nl])], atol=1e-6)
    np.testing.assert_allclose(stop_at_once.token_logprobs, [float(logp[0][2, eos])], atol=1e-6)
