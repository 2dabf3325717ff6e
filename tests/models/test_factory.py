"""The one seeded tagger factory: same seed, same weights; the caller's RNG untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aalearn.models import RobustJetTagger, TopoDNN, build_tagger


def test_same_seed_same_weights_and_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a = build_tagger("topodnn", 5, seed=3, hidden=(8,))
    b = build_tagger("topodnn", 5, seed=3, hidden=(8,))
    c = build_tagger("topodnn", 5, seed=4, hidden=(8,))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert isinstance(a, TopoDNN)
    assert a.batchnorm_momentum == 0.1
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.output.weight, c.output.weight)  # type: ignore[union-attr]


def test_matches_manual_seeding_and_fits_scaling() -> None:
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        ref = TopoDNN(n_features=4, hidden=(6,), batchnorm_momentum=0.1)
    ref.fit_input_scaling(x)
    model = build_tagger("topodnn", 4, seed=9, hidden=(6,), fit_x=x)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    assert build_tagger("topodnn", 4, 0, hidden=(6,), batchnorm_momentum=0.01).batchnorm_momentum == 0.01


def test_robust_and_unknown_architecture() -> None:
    assert isinstance(build_tagger("robust", 87, seed=0), RobustJetTagger)
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        build_tagger("nope", 3, seed=0)
