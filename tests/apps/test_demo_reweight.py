"""The demo's spectrum reweighting: fewer bins for a small sample, else unweighted with the reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from aalearn.apps.demo import DemoConfig, _demo_weights
from aalearn.data.dataset import JetDataset
from aalearn.data.reweight import reweight_to_reference
from aalearn.physics import challenge_feature_names


def test_demo_weights_fall_back_to_fewer_bins(challenge_jets: Callable[..., np.ndarray]) -> None:
    names = tuple(challenge_feature_names())
    ref = JetDataset(challenge_jets(2000, seed=1).astype(np.float32), (np.arange(2000) // 2) % 2, names)
    gen = JetDataset(challenge_jets(16, seed=2).astype(np.float32), np.arange(16) % 2, names)
    with pytest.raises(ValueError, match="bins empty"):
        reweight_to_reference(gen, ref, n_bins=10)
    weights, info = _demo_weights(gen, ref)
    assert weights is not None
    assert info["n_bins"] < 10
    np.testing.assert_allclose(weights, reweight_to_reference(gen, ref, n_bins=info["n_bins"]).weights)
    one_class = JetDataset(ref.features, np.zeros(2000, dtype=np.int64), names)
    weights, info = _demo_weights(gen, one_class)
    assert weights is None
    assert "only class" in info["error"]


def test_demo_config_rejects_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        DemoConfig(preset="lhc-2030")
    assert DemoConfig().preset == "cms-challenge"
    assert DemoConfig().reweight
