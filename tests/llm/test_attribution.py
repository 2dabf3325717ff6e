"""Prompt-token attributions of a local model (tiny random GPT-2): values, completeness, server error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aalearn.cli.main import app
from aalearn.llm.attribution import SERVER_MODEL_ERROR, token_attributions
from aalearn.llm.backends import HFBackend, load_backend

runner = CliRunner()
PROMPT = "What is the capital of France?"


@pytest.fixture
def hf(tiny_lm: tuple[Any, Any]) -> HFBackend:
    model, tok = tiny_lm
    return HFBackend(model, tok, name="tiny")


def _logp_scaled(hf: HFBackend, answer: str, scale: torch.Tensor) -> float:
    """log p(answer | prompt) with the prompt embeddings multiplied per token by ``scale`` (L,)."""
    ids = hf.encode_prompt(PROMPT)
    ans = list(hf.tokenizer(" " + answer, add_special_tokens=False)["input_ids"])
    emb = hf.prompt_embeddings(ids).float()
    with torch.no_grad():
        return float(hf.answer_logprob(emb * scale[None, :, None], ans)[0])


def test_gradient_x_input_is_the_directional_derivative(hf: HFBackend) -> None:
    res = token_attributions(hf, PROMPT, answer="Paris")
    n = hf.encode_prompt(PROMPT).shape[1]
    assert len(res.tokens) == len(res.token_ids) == len(res.attributions) == n
    assert "".join(res.tokens) == PROMPT
    # log p of the answer: the same as the backend's cached scoring path
    assert res.answer_logprob == pytest.approx(float(hf.score(PROMPT, ["Paris"])[0].sum()), abs=1e-4)
    # a_i = e_i . grad_i = d/dβ log p(y | e_i scaled by β) at β = 1 (central differences, h = 1e-2)
    h = 1e-2
    for i in (int(np.argmax(np.abs(res.attributions))), 0, n - 1):
        up, down = torch.ones(n), torch.ones(n)
        up[i], down[i] = 1 + h, 1 - h
        fd = (_logp_scaled(hf, "Paris", up) - _logp_scaled(hf, "Paris", down)) / (2 * h)
        assert res.attributions[i] == pytest.approx(fd, rel=0.02, abs=2e-4), i
    # the sum: scaling every token together
    fd_all = (
        _logp_scaled(hf, "Paris", torch.full((n,), 1 + h))
        - _logp_scaled(hf, "Paris", torch.full((n,), 1 - h))
    ) / (2 * h)
    assert res.attributions.sum() == pytest.approx(fd_all, rel=0.02, abs=2e-4)
    assert all(p.requires_grad for p in hf.model.parameters())  # the weights are left as they were


def test_integrated_gradients_complete(hf: HFBackend) -> None:
    """Σ a_i = log p(y|x) − log p(y|0) within 2 % of the change (midpoint rule, 64 points)."""
    res = token_attributions(hf, PROMPT, answer="Paris", method="integrated-gradients", steps=64)
    delta = res.answer_logprob - res.baseline_logprob
    assert abs(delta) > 1e-3
    assert abs(res.completeness_gap) <= 0.02 * abs(delta)
    base = torch.zeros(len(res.tokens))
    assert res.baseline_logprob == pytest.approx(_logp_scaled(hf, "Paris", base), abs=1e-5)


def test_greedy_answer_and_cli_json(hf: HFBackend, tiny_model_dir: Path) -> None:
    gen = hf.generate(PROMPT, temperature=0.0, max_new_tokens=16)[0]
    res = token_attributions(hf, PROMPT)
    assert res.answer == gen.text
    assert gen.token_logprobs is not None
    assert res.answer_logprob == pytest.approx(float(gen.token_logprobs.sum()), abs=1e-4)
    out = runner.invoke(
        app, ["llm", "explain", "--model", str(tiny_model_dir), "--question", PROMPT, "--json"]
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert [t["token"] for t in payload["tokens"]] == res.tokens
    np.testing.assert_allclose(
        [t["attribution"] for t in payload["tokens"]], res.attributions, rtol=1e-4, atol=1e-6
    )


def test_server_models_have_no_attributions() -> None:
    server = load_backend("http://127.0.0.1:9/v1", model_name="m", api_key="k")
    with pytest.raises(ValueError, match="not available for server models"):
        token_attributions(server, PROMPT)
    out = runner.invoke(app, ["llm", "explain", "--model", "http://127.0.0.1:9/v1", "--question", PROMPT])
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    assert SERVER_MODEL_ERROR in lines[0]


def test_bad_options(hf: HFBackend) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        token_attributions(hf, PROMPT, method="shap")
    with pytest.raises(ValueError, match="steps"):
        token_attributions(hf, PROMPT, method="integrated-gradients", steps=0)
