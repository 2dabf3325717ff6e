"""Tests written to kill surviving mutants of ``llm/semantic.py`` (issue 23): the error messages
that tell a user what was wrong must name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from aalearn.llm.semantic import EmbeddingSimilarity, cluster_answers, load_entailment


def test_cluster_answers_names_the_wrong_backend_type() -> None:
    with pytest.raises(TypeError, match="must be an EntailmentBackend, got str"):
        cluster_answers(["a", "b"], "overlap")  # type: ignore[arg-type]


def test_unknown_entailment_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"entailment must be one of .*overlap.*, got ' '"):
        load_entailment(" ")
    with pytest.raises(ValueError, match=r"unknown entailment backend 'bogus'; choose overlap"):
        load_entailment("bogus")


def test_missing_embedding_model_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    with pytest.raises(FileNotFoundError, match=f"embedding model path {missing} does not exist"):
        EmbeddingSimilarity(missing)
