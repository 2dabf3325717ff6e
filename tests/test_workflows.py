"""Library workflows behind the CLI: split, train, evaluate."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.apps.evaluate import metric_row
from aalearn.apps.train import train_topodnn
from aalearn.data import JetDataset
from aalearn.data.split import split_indices
from aalearn.physics import challenge_feature_names


def test_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.array([0] * 70 + [1] * 30)
    parts = split_indices(y, fractions=(0.6, 0.2, 0.2), seed=3)
    all_idx = np.concatenate(list(parts.values()))
    assert len(np.unique(all_idx)) == 100
    assert (y[parts["train"]] == 1).sum() == 18
    assert (y[parts["test"]] == 1).sum() == 6
    again = split_indices(y, fractions=(0.6, 0.2, 0.2), seed=3)
    for k in parts:
        np.testing.assert_array_equal(parts[k], again[k])
    no_test = split_indices(y, fractions=(0.8, 0.2, 0.0), seed=0)
    assert len(no_test["test"]) == 0
    assert len(no_test["train"]) + len(no_test["val"]) == 100
    with pytest.raises(ValueError, match="summing to 1"):
        split_indices(y, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="positive"):
        split_indices(y, fractions=(1.0, 0.0, 0.0))


def _toy(n: int = 1000, seed: int = 0) -> JetDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 87)).astype(np.float32) * 0.05
    x[:, 0] += 0.25 * y  # leading pT separates the classes
    return JetDataset(x, y, tuple(challenge_feature_names()), "toy")


def test_train_topodnn_learns_and_saves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aalearn.evaluation import evaluate_scores
    from aalearn.models import load_model, predict_proba

    data = _toy()
    run = train_topodnn(data, out=tmp_path / "m.safetensors", epochs=15, seed=1, progress=False)
    assert run.checkpoint is not None
    assert run.checkpoint.is_file()
    val = run.split["val"]
    assert data.labels is not None
    result = evaluate_scores(data.labels[val], predict_proba(run.model, data.features[val]))
    assert result.auc is not None
    assert result.auc > 0.9
    reloaded = load_model(run.checkpoint)
    np.testing.assert_array_equal(
        predict_proba(reloaded, data.features), predict_proba(run.model, data.features)
    )
    row = metric_row(result)
    assert set(row) == {"n", "accuracy", "auc", "rejection@0.3", "rejection@0.5"}


def test_train_topodnn_bad_input() -> None:
    data = _toy()
    unlabeled = JetDataset(data.features, None, data.feature_names, "unlabeled")
    with pytest.raises(ValueError, match="labelled"):
        train_topodnn(unlabeled, progress=False)
    one_class = JetDataset(data.features, np.zeros(len(data), dtype=int), data.feature_names, "one")
    with pytest.raises(ValueError, match="both classes"):
        train_topodnn(one_class, progress=False)
