"""Shared fixtures: seeding, the challenge's public files, temporary caches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aalearn._paths import find_challenge_data


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    import torch

    np.random.seed(0)  # noqa: NPY002 - resets the legacy global state some libraries still use
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AALEARN_CACHE", str(tmp_path_factory.mktemp("aalearn-cache")))


@pytest.fixture(scope="session")
def challenge_dir() -> Path:
    """Directory with the challenge's public files; skips the test when absent."""
    path = find_challenge_data()
    if path is None:
        pytest.skip("the challenge's public files (../shared/data/colliding-adversaries) are not present")
    return path


@pytest.fixture(scope="module")
def single_torch_thread() -> Iterator[None]:
    """Small models and tensors: intra-op threads only add overhead (a lot on a busy machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
