"""Surrogate models: a zuko flow and conditional flow matching fit simple densities, save/load, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zuko")

from aalearn.surrogates.models import (
    FlowMatchingSurrogate,
    FlowSurrogate,
    Surrogate,
    load_surrogate,
    make_surrogate,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _banana(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A curved 2-D density per class: b | a ~ N(a²/2 + 2y, 0.3²), a ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = rng.normal(size=n)
    b = 0.5 * a**2 + 2.0 * y + 0.3 * rng.normal(size=n)
    return np.stack([a, b], axis=1), y


def _gauss_logpdf(train: np.ndarray, x: np.ndarray) -> float:
    from scipy import stats

    return float(stats.multivariate_normal(train.mean(0), np.cov(train.T)).logpdf(x).mean())


def _small_flow() -> FlowSurrogate:
    return FlowSurrogate(transforms=2, hidden=(16,))


def _small_fm() -> FlowMatchingSurrogate:
    return FlowMatchingSurrogate(hidden=(16,), steps=5)


@pytest.fixture(scope="module")
def banana() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = _banana(3000, 0)
    xt, yt = _banana(2000, 1)
    return x, y, xt, yt


@pytest.fixture(scope="module")
def fitted_flow(single_torch_thread: None, banana: tuple[np.ndarray, ...]) -> FlowSurrogate:
    """NSF trained for real (about 3 s of CPU)."""
    x, y, _, _ = banana
    return FlowSurrogate(transforms=3, hidden=(32, 32)).fit(x, y, epochs=15, batch_size=256, lr=5e-3, seed=0)


@pytest.fixture(scope="module")
def fitted_fm(single_torch_thread: None, banana: tuple[np.ndarray, ...]) -> FlowMatchingSurrogate:
    """Flow matching trained for real (about 4 s of CPU)."""
    x, y, _, _ = banana
    return FlowMatchingSurrogate(hidden=(64, 64, 64), steps=20).fit(
        x, y, epochs=40, batch_size=128, lr=3e-3, seed=0
    )


@pytest.fixture(scope="module")
def quick_flow(single_torch_thread: None, banana: tuple[np.ndarray, ...]) -> FlowSurrogate:
    """A barely trained flow for API tests."""
    x, y, _, _ = banana
    return _small_flow().fit(x[:600], y[:600], epochs=1, seed=0)


@pytest.fixture(scope="module")
def quick_fm(single_torch_thread: None, banana: tuple[np.ndarray, ...]) -> FlowMatchingSurrogate:
    """A barely trained flow-matching model for API tests."""
    x, y, _, _ = banana
    return _small_fm().fit(x[:600], y[:600], epochs=1, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["flow", "fm"])
def test_fits_a_curved_2d_density(
    which: str, fitted_flow: FlowSurrogate, fitted_fm: FlowMatchingSurrogate, banana: tuple[np.ndarray, ...]
) -> None:
    x, y, xt, yt = banana
    model: Surrogate = fitted_flow if which == "flow" else fitted_fm
    fm = which == "fm"
    # held-out log-likelihood improves over training and beats the best Gaussian per class
    assert model.history_["val_loss"][model.best_epoch_] < model.history_["val_loss"][0]
    lp = model.log_prob(xt, yt)
    assert lp.shape == (xt.shape[0],)
    assert np.all(np.isfinite(lp))
    gauss = np.mean([_gauss_logpdf(x[y == c], xt[yt == c]) for c in (0, 1)])
    assert lp.mean() > gauss + 0.2
    # samples reproduce the class-conditional moments (std errors ~0.02-0.04 here)
    for c in (0, 1):
        s = model.sample(4000, c, seed=3)
        ref = xt[yt == c]
        np.testing.assert_allclose(s.mean(0), ref.mean(0), atol=0.15)
        np.testing.assert_allclose(s.std(0), ref.std(0), rtol=0.2 if fm else 0.15)
        # the curvature: corr(a², b) is 0.91 in truth; NSF reaches ~0.89, flow matching ~0.85
        corr = np.corrcoef(s[:, 0] ** 2, s[:, 1])[0, 1]
        assert corr > np.corrcoef(ref[:, 0] ** 2, ref[:, 1])[0, 1] - (0.15 if fm else 0.08)


@pytest.mark.slow
def test_flow_log_prob_is_normalised(fitted_flow: FlowSurrogate) -> None:
    """∫ p(x | y) dx ≈ 1 on a grid (the preprocessing Jacobian is included)."""
    a, b = np.meshgrid(np.linspace(-5, 5, 161), np.linspace(-3, 9, 193))
    grid = np.stack([a.ravel(), b.ravel()], axis=1)
    area = (10 / 160) * (12 / 192)
    for c in (0, 1):
        total = np.exp(fitted_flow.log_prob(grid, np.full(grid.shape[0], c))).sum() * area
        assert total == pytest.approx(1.0, abs=0.03)


@pytest.mark.slow
def test_log_space_columns_stay_positive_and_jacobian_is_included() -> None:
    from scipy import stats

    def draw(n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack([rng.lognormal(mean=3.0, sigma=0.5, size=n), rng.normal(size=n)], axis=1)

    m = FlowSurrogate(transforms=2, hidden=(16,), log_features=[0]).fit(
        draw(2000, 0), epochs=8, batch_size=128, seed=0, lr=5e-3
    )
    s = m.sample(5000, seed=1)
    assert np.all(s[:, 0] > 0)
    # log p(x) must be the density of x (log-normal), not of log x: they differ by E[log x] = 3
    xt = draw(2000, 1)
    truth = (stats.lognorm(s=0.5, scale=np.exp(3.0)).logpdf(xt[:, 0]) + stats.norm.logpdf(xt[:, 1])).mean()
    assert m.log_prob(xt).mean() == pytest.approx(truth, abs=0.25)
    with pytest.raises(ValueError, match="log_offset"):
        m.log_prob(np.array([[-1.0, 0.0]]))


def test_seeded_and_reproducible(banana: tuple[np.ndarray, ...]) -> None:
    x, y, _, _ = banana
    a = FlowMatchingSurrogate(hidden=(16,), steps=5).fit(x[:500], y[:500], epochs=2, seed=4)
    b = FlowMatchingSurrogate(hidden=(16,), steps=5).fit(x[:500], y[:500], epochs=2, seed=4)
    np.testing.assert_array_equal(a.sample(50, seed=1), b.sample(50, seed=1))
    assert not np.array_equal(a.sample(50, seed=1), a.sample(50, seed=2))
    assert a.history_["train_loss"] == b.history_["train_loss"]


def test_sample_labels(quick_flow: FlowSurrogate) -> None:
    x, labels = quick_flow.sample_labeled(1000, seed=0)
    assert x.shape == (1000, 2)
    assert labels is not None
    assert set(np.unique(labels).tolist()) == {0, 1}
    assert abs(labels.mean() - quick_flow.class_prior_[1]) < 0.06
    given = np.array([0, 1, 1, 0])
    _, same = quick_flow.sample_labeled(4, given, seed=0)
    np.testing.assert_array_equal(same, given)


@pytest.mark.parametrize("which", ["flow", "fm"])
def test_save_load_round_trip(
    which: str, tmp_path: Path, quick_flow: FlowSurrogate, quick_fm: FlowMatchingSurrogate
) -> None:
    model: Surrogate = quick_flow if which == "flow" else quick_fm
    path = model.save(tmp_path / "m.safetensors")
    back = load_surrogate(path)
    assert type(back) is type(model)
    assert back.get_params() == model.get_params()
    assert back.history_ == model.history_
    np.testing.assert_array_equal(back.sample(20, 1, seed=5), model.sample(20, 1, seed=5))
    x = model.sample(10, 0, seed=1)
    np.testing.assert_allclose(back.log_prob(x, np.zeros(10, int)), model.log_prob(x, np.zeros(10, int)))
    assert type(model).load(path).n_features_ == 2
    other = FlowMatchingSurrogate if which == "flow" else FlowSurrogate
    with pytest.raises(ValueError, match="not a"):
        other.load(path)


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError):
        load_surrogate(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_surrogate(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not an aalearn surrogate"):
        load_surrogate(other)


def test_bad_input_errors(banana: tuple[np.ndarray, ...], quick_flow: FlowSurrogate) -> None:
    x, y, _, _ = banana
    with pytest.raises(ValueError, match="NaN"):
        _small_flow().fit(np.array([[np.nan, 1.0]] * 50), epochs=1)
    with pytest.raises(ValueError, match="2 dimensions"):
        _small_flow().fit(np.zeros(50), epochs=1)
    with pytest.raises(ValueError, match="labels"):
        _small_flow().fit(x, y[:-1], epochs=1)
    with pytest.raises(ValueError, match="no rows"):
        _small_flow().fit(x, np.where(y == 1, 2, 0), epochs=1)
    with pytest.raises(ValueError, match="too few"):
        _small_flow().fit(x[:2], epochs=1)
    with pytest.raises(ValueError, match="flow must be"):
        FlowSurrogate(flow="glow").fit(x, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        FlowSurrogate(log_features=[5]).fit(x, epochs=1)
    with pytest.raises(TypeError, match="epochs"):
        _small_flow().fit(x, epochs=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="val_fraction"):
        _small_flow().fit(x, epochs=1, val_fraction=0.95)
    with pytest.raises(RuntimeError, match="not fitted"):
        _small_fm().sample(3)
    with pytest.raises(ValueError, match="fitted on 2"):
        quick_flow.log_prob(np.zeros((3, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match="conditional"):
        quick_flow.log_prob(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="unknown"):
        quick_flow.sample(3, 2)
    with pytest.raises(ValueError, match="without y"):
        FlowSurrogate(transforms=1, hidden=(4,)).fit(x[:100], epochs=1).sample(3, 1)
    with pytest.raises(ValueError, match="unknown surrogate kind"):
        make_surrogate("gan")


# --------------------------------------------------------------------------------------
# workflow and command line
# --------------------------------------------------------------------------------------
def _jet_file(tmp_path: Path, challenge_jets: Callable[..., np.ndarray], n: int = 400) -> Path:
    from aalearn.data.dataset import JetDataset
    from aalearn.data.io import save_dataset
    from aalearn.physics import challenge_feature_names

    x = np.concatenate([challenge_jets(n // 2, seed=1), 0.6 * challenge_jets(n // 2, seed=2)])
    y = np.repeat([0, 1], n // 2)
    path = tmp_path / "jets.feather"
    save_dataset(JetDataset(x.astype(np.float32), y, tuple(challenge_feature_names())), path)
    return path


def test_jet_observables(challenge_jets: Callable[..., np.ndarray]) -> None:
    from aalearn.apps.surrogate import JET_OBSERVABLES, jet_observables
    from aalearn.surrogates.features import JET_FEATURES, jet_features

    x = challenge_jets(50, seed=0)
    obs = jet_observables(x)
    assert obs.shape == (50, len(JET_OBSERVABLES))
    assert np.all(obs > 0)
    base = jet_features(x)
    np.testing.assert_allclose(obs[:, 0], base[:, JET_FEATURES.index("jet_mass")])
    # e2 and d2 by brute force for one jet
    from aalearn.physics.preprocessing import features_to_constituents

    c = features_to_constituents(x[:1], pt_scale=1.0)[0]
    z = c[:, 0] / c[:, 0].sum()
    r = np.hypot(c[:, None, 1] - c[None, :, 1], c[:, None, 2] - c[None, :, 2])
    idx = range(30)
    e2 = sum(z[i] * z[j] * r[i, j] for i in idx for j in idx if i < j)
    e3 = sum(
        z[i] * z[j] * z[k] * r[i, j] * r[i, k] * r[j, k] for i in idx for j in idx for k in idx if i < j < k
    )
    assert obs[0, 3] == pytest.approx(e2)
    assert obs[0, 4] == pytest.approx(e3 / e2**3)
    with pytest.raises(ValueError, match="87"):
        jet_observables(np.ones((3, 5)))


def test_train_surrogate_file_writes_a_candidate(
    tmp_path: Path, challenge_jets: Callable[..., np.ndarray]
) -> None:
    from aalearn.apps.surrogate import JET_OBSERVABLES, train_surrogate_file
    from aalearn.data.io import load_dataset

    data = _jet_file(tmp_path, challenge_jets)
    res = train_surrogate_file(data, kind="flow-matching", out=tmp_path / "out", epochs=1, seed=0)
    cand, ref = load_dataset(res["candidate"]), load_dataset(res["reference"])
    assert cand.feature_names == ref.feature_names == JET_OBSERVABLES
    assert len(cand) == len(ref) == res["n_reference"] == 120
    assert cand.labels is not None
    assert ref.labels is not None
    assert np.bincount(cand.labels).tolist() == np.bincount(ref.labels).tolist()
    assert np.all(cand.features > 0)
    assert type(load_surrogate(res["model"])) is FlowMatchingSurrogate
    assert (tmp_path / "out" / "summary.json").is_file()
    with pytest.raises(ValueError, match="kind"):
        train_surrogate_file(data, kind="gan", out=tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="representation"):
        train_surrogate_file(data, out=tmp_path / "x", representation="images")  # type: ignore[arg-type]


def test_cli_train(tmp_path: Path, challenge_jets: Callable[..., np.ndarray]) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from aalearn.cli.surrogate_train import closure, train

    app = typer.Typer()
    app.command()(train)
    app.command()(closure)
    data = _jet_file(tmp_path, challenge_jets)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--samples", "50", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_samples"] == 50
    assert payload["kind"] == "flow"
    bad = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(out), "--kind", "gan"])
    assert bad.exit_code == 2
    assert "--kind" in bad.output
    missing = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope.h5"), "--out", str(out)])
    assert missing.exit_code == 2
