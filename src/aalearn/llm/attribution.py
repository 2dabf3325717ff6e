r"""Token attributions of a local language model: which prompt tokens drive the answer's confidence.

For a local Hugging Face model (:class:`~aalearn.llm.backends.hf.HFBackend`) the
attribution of prompt token :math:`i` with input embedding :math:`e_i` is

* ``gradient-x-input`` (default): :math:`a_i = e_i \cdot \nabla_{e_i} \log p(y \mid x)`,
  the first-order (Taylor) share of :math:`\log p(y \mid x)` (Shrikumar et al.,
  arXiv:1605.01713; Simonyan et al., arXiv:1312.6034);
* ``integrated-gradients``: :math:`a_i = e_i \cdot \int_0^1 \nabla_{e_i} \log p(y \mid \alpha x)\,d\alpha`
  along the straight path from the zero embedding (Sundararajan et al., arXiv:1703.01365),
  whose attributions sum to :math:`\log p(y \mid x) - \log p(y \mid 0)` (completeness; the
  position embeddings are kept).

:math:`y` is the model's greedy answer (or a given answer) and :math:`\log p(y \mid x)` the
sum of its token log-probabilities at temperature 1. A positive attribution means the
token raises the answer's probability. Server models (OpenAI-compatible APIs) expose no
weights, so no attribution is available for them.

Example:
    >>> METHODS
    ('gradient-x-input', 'integrated-gradients')
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.result import ReportBuilder
from aalearn.llm.backends.base import Backend
from aalearn.llm.backends.hf import HFBackend

__all__ = ["METHODS", "SERVER_MODEL_ERROR", "TokenAttribution", "token_attributions"]

FloatArray = npt.NDArray[np.float64]

#: Attribution methods.
METHODS: tuple[str, ...] = ("gradient-x-input", "integrated-gradients")
#: The one-line error for models without weights.
SERVER_MODEL_ERROR = "not available for server models: token attributions need the model's weights"


@dataclass
class TokenAttribution:
    """Attributions of the answer's log-probability to the prompt tokens (a Result).

    Attributes:
        model: Model name.
        prompt: The prompt as given.
        answer: The answer text.
        tokens: The prompt's tokens as text (chat template included when used).
        token_ids: Their ids.
        attributions: One value per prompt token (nats of :math:`\\log p(y \\mid x)`).
        answer_logprob: :math:`\\log p(y \\mid x)`.
        baseline_logprob: :math:`\\log p(y \\mid 0)` with zero prompt embeddings.
        method: ``gradient-x-input`` or ``integrated-gradients``.
        steps: Path points (integrated gradients; 1 for gradient × input).
        seconds: Wall time.
    """

    model: str
    prompt: str
    answer: str
    tokens: list[str]
    token_ids: list[int]
    attributions: FloatArray
    answer_logprob: float
    baseline_logprob: float
    method: str
    steps: int
    seconds: float

    @property
    def completeness_gap(self) -> float:
        """:math:`\\sum_i a_i - (\\log p(y \\mid x) - \\log p(y \\mid 0))` (≈ 0 for integrated gradients)."""
        return float(self.attributions.sum() - (self.answer_logprob - self.baseline_logprob))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "model": self.model,
            "prompt": self.prompt,
            "answer": self.answer,
            "method": self.method,
            "steps": self.steps,
            "answer_logprob": self.answer_logprob,
            "baseline_logprob": self.baseline_logprob,
            "sum_attributions": float(self.attributions.sum()),
            "completeness_gap": self.completeness_gap,
            "tokens": [
                {"index": i, "token": t, "id": tid, "attribution": float(a)}
                for i, (t, tid, a) in enumerate(
                    zip(self.tokens, self.token_ids, self.attributions, strict=True)
                )
            ],
            "seconds": self.seconds,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per prompt token, in prompt order."""
        return [
            {"index": i, "token": repr(t), "attribution (nats)": float(a)}
            for i, (t, a) in enumerate(zip(self.tokens, self.attributions, strict=True))
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """One section: the answer, its log-probability and the token table."""
        report.add_section(
            "Prompt-token attributions",
            text=(
                f"Answer {self.answer!r}, log p = {self.answer_logprob:.3f} (zero-embedding baseline "
                f"{self.baseline_logprob:.3f}); {self.method}, {self.steps} path point(s)."
            ),
            table=self.summary(),
        )


def _answer_ids(
    backend: HFBackend, prompt: str, answer: str | None, max_new_tokens: int
) -> tuple[str, list[int]]:
    if answer is None:
        gen = backend.generate(prompt, n=1, temperature=0.0, max_new_tokens=max_new_tokens)[0]
        ids = list(gen.token_ids or ())
        if not ids:
            raise ValueError("the model gave no answer tokens to attribute")
        return gen.text, ids
    if not answer.strip():
        raise ValueError("the answer is empty")
    text = answer
    if not backend.use_chat_template and not prompt[-1].isspace() and not answer[0].isspace():
        text = " " + answer  # "A:" + " Paris", as HFBackend.score does
    ids = list(backend.tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"the answer {answer!r} encodes to no tokens")
    return answer, ids


def token_attributions(
    backend: Backend,
    prompt: str,
    *,
    answer: str | None = None,
    method: str = "gradient-x-input",
    steps: int = 32,
    max_new_tokens: int = 16,
) -> TokenAttribution:
    """Attribute the log-probability of the model's answer to the prompt tokens.

    Args:
        backend: A local :class:`~aalearn.llm.backends.hf.HFBackend`.
        prompt: The question (formatted like the backend's answers: chat template when used).
        answer: Answer to attribute; default the model's greedy answer.
        method: ``gradient-x-input`` or ``integrated-gradients`` (:data:`METHODS`).
        steps: Path points of integrated gradients (midpoint rule).
        max_new_tokens: Longest greedy answer.

    Returns:
        The :class:`TokenAttribution` (one value per prompt token).

    Raises:
        ValueError: For a server model (:data:`SERVER_MODEL_ERROR`), an unknown method,
            ``steps < 1``, an empty prompt or answer.

    Example:
        >>> res = token_attributions(HFBackend.from_path("model-dir"), "What is 2 + 2?")  # doctest: +SKIP
        >>> len(res.attributions) == len(res.tokens)  # doctest: +SKIP
        True
    """
    t0 = time.perf_counter()
    if not isinstance(backend, HFBackend):
        raise ValueError(SERVER_MODEL_ERROR)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n_steps = 1 if method == "gradient-x-input" else int(steps)
    torch = require("torch", purpose="token attributions")
    ids = backend.encode_prompt(prompt)  # checks the prompt
    text, ans = _answer_ids(backend, prompt, answer, max_new_tokens)
    emb = backend.prompt_embeddings(ids).float()
    # the model's parameters need no gradients: only the prompt embeddings do
    params = [p for p in backend.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            logp = float(backend.answer_logprob(emb, ans)[0])
            base = float(backend.answer_logprob(torch.zeros_like(emb), ans)[0])
        alphas = (
            torch.tensor([1.0])
            if n_steps == 1
            else (torch.arange(n_steps, dtype=torch.float32) + 0.5) / n_steps
        )
        grad = torch.zeros_like(emb[0])
        for chunk in alphas.split(8):
            path = (chunk[:, None, None] * emb).requires_grad_(True)
            total = backend.answer_logprob(path, ans).sum()
            (g,) = torch.autograd.grad(total, path)
            grad += g.sum(dim=0)
        attr = (grad / n_steps * emb[0]).sum(dim=-1).double().numpy()
    finally:
        for p in params:
            p.requires_grad_(True)
    id_list = [int(i) for i in ids[0].tolist()]
    tokens = [backend.tokenizer.decode([i]) for i in id_list]
    return TokenAttribution(
        model=backend.name,
        prompt=prompt,
        answer=text,
        tokens=tokens,
        token_ids=id_list,
        attributions=np.asarray(attr, dtype=np.float64),
        answer_logprob=logp,
        baseline_logprob=base,
        method=method,
        steps=n_steps,
        seconds=time.perf_counter() - t0,
    )
