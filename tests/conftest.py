"""Shared fixtures: seeding, the challenge's public files, temporary caches."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from aalearn.core.paths import find_challenge_data
from aalearn.data import JetDataset
from aalearn.data.io import save_dataset
from aalearn.physics import challenge_features


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    import torch

    np.random.seed(0)  # noqa: NPY002 - resets the legacy global state some libraries still use
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AALEARN_CACHE", str(tmp_path_factory.mktemp("aalearn-cache")))


MISSING_CHALLENGE_DATA = "the challenge's public files (../shared/data/colliding-adversaries) are not present"


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``regression_pin`` marker (``--strict-markers`` rejects unknown ones)."""
    config.addinivalue_line(
        "markers",
        "regression_pin(source): the expected value is a recorded output of this code (a regression pin), "
        "not an independent truth; ``source`` says where the value comes from",
    )


def running_in_ci() -> bool:
    """True when the environment variable ``CI`` is set to true (GitHub Actions, GitLab and most CIs)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_challenge_data() -> Path:
    """Directory with the challenge's public files.

    When it is absent the test is skipped with the reason, except under ``CI=true``, where
    it fails: the strongest oracles (the published model's accuracies, ART's PGD) need these
    files, and a CI run that silently skips them proves nothing.
    """
    path = find_challenge_data()
    if path is None:
        if running_in_ci():
            pytest.fail(f"{MISSING_CHALLENGE_DATA}; CI=true requires them, so this test may not be skipped")
        pytest.skip(MISSING_CHALLENGE_DATA)
    return path


@pytest.fixture(scope="session")
def challenge_dir() -> Path:
    """Directory with the challenge's public files; see :func:`require_challenge_data`."""
    return require_challenge_data()


@pytest.fixture(scope="session")
def challenge_data() -> Callable[[], Path]:
    """:func:`require_challenge_data`, for tests that must check other prerequisites first."""
    return require_challenge_data


@pytest.fixture(scope="module")
def single_torch_thread() -> Iterator[None]:
    """Small models and tensors: intra-op threads only add overhead (a lot on a busy machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _challenge_jets(
    n: int, seed: int = 0, *, pad_every: int = 0, n_padded: int = 0, float32_exact: bool = True
) -> np.ndarray:
    """Plausible jets in the 87-column challenge layout (float64).

    pT in units of 1679 GeV, decreasing along the constituents (leading 0.05-0.1, soft
    ~0.001), relative η and φ within 0.7, φ₁ ≤ 0. Every ``pad_every``-th jet has 3-8
    zero-padded constituents; ``n_padded`` pads the last constituents of every jet. With
    ``float32_exact`` the values are representable in float32, like the challenge's files.
    """

    rng = np.random.default_rng(seed)
    lead = rng.uniform(0.05, 0.1, n)
    pts = lead[:, None] * np.exp(-0.15 * np.arange(30)) * rng.uniform(0.7, 1.0, (n, 30))
    pts = -np.sort(-pts, axis=1)
    eta = rng.uniform(-0.7, 0.7, (n, 30))
    phi = rng.uniform(-0.7, 0.7, (n, 30))
    phi[:, 1] = -np.abs(phi[:, 1])
    if pad_every:
        for i in range(0, n, pad_every):
            k = 30 - int(rng.integers(3, 9))
            pts[i, k:] = eta[i, k:] = phi[i, k:] = 0.0
    if n_padded:
        pts[:, 30 - n_padded :] = eta[:, 30 - n_padded :] = phi[:, 30 - n_padded :] = 0.0
    cols = {"pt": pts, "eta": eta, "phi": phi}
    x = np.stack([cols[s.kind][:, s.constituent] for s in challenge_features()], axis=1)
    return x.astype(np.float32).astype(np.float64) if float32_exact else x


@pytest.fixture(scope="session")
def challenge_jets() -> Callable[..., np.ndarray]:
    """Factory of synthetic challenge-layout jets (see :func:`_challenge_jets`)."""
    return _challenge_jets


class _SignOfFirst(torch.nn.Module):
    """Predicts label 1 exactly where feature 0 exceeds 0.075 (a known answer)."""

    n_features = 87

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] - 0.075) * 1000.0


@dataclass
class SignRule:
    """A model with a known answer and row-paired files on which every jet flips it.

    ``model`` labels a jet 1 exactly where feature 0 exceeds 0.075; :meth:`files` writes
    ``clean.feather`` (synthetic challenge jets labelled by that rule) and ``adv.feather``
    (feature 0 reflected about 0.075, which flips the rule for every jet).
    """

    directory: Path
    model: torch.nn.Module

    def files(self, n: int, seed: int) -> tuple[Path, Path, JetDataset]:
        """``(clean path, adversarial path, clean data set)`` for ``n`` jets drawn with ``seed``."""
        x = _challenge_jets(n, seed=seed)
        y = (x[:, 0] > 0.075).astype(np.int64)
        names = tuple(s.name for s in challenge_features())
        clean = JetDataset(features=x.astype(np.float32), labels=y, feature_names=names, source="clean")
        adv_x = x.copy()
        adv_x[:, 0] = 0.15 - adv_x[:, 0]  # flips the rule of the model for every jet
        adv = JetDataset(features=adv_x.astype(np.float32), labels=y, feature_names=names, source="adv")
        save_dataset(clean, self.directory / "clean.feather")
        save_dataset(adv, self.directory / "adv.feather")
        return self.directory / "clean.feather", self.directory / "adv.feather", clean


@pytest.fixture
def sign_rule(tmp_path: Path) -> SignRule:
    """The known-answer model and its files in this test's temporary folder (see :class:`SignRule`)."""
    return SignRule(tmp_path, _SignOfFirst())
