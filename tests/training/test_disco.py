"""DisCo: the distance-correlation penalty against dcor, the strategy's objective and its errors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import torch

from aalearn.training.disco import DiscoStrategy, distance_correlation
from aalearn.training.strategy import Batch, TrainingData, get_strategy

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _textbook_dcor2(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Székely, Rizzo & Bakirov (2007), Definition 4, with NumPy: the V-statistic dCor²."""

    def centred(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        d = np.abs(v[:, None] - v[None, :])
        return d - d.mean(axis=0) - d.mean(axis=1)[:, None] + d.mean()

    a, b = centred(x), centred(y)
    return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))


def test_distance_correlation_equals_the_textbook_formula() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=80)
    y = np.exp(x) + rng.normal(size=80)
    ours = float(distance_correlation(torch.from_numpy(x), torch.from_numpy(y)))
    assert ours == pytest.approx(_textbook_dcor2(x, y), abs=1e-12)


# dcor compiles its numba kernels at import (about 10 CPU-seconds): slow.
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_correlation_equals_dcor_squared(seed: int) -> None:
    dcor = pytest.importorskip("dcor")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=150)
    y = np.sin(x) + 0.5 * rng.normal(size=150) if seed else rng.normal(size=150)  # dependent and independent
    ours = float(distance_correlation(torch.from_numpy(x), torch.from_numpy(y)))
    # The penalty is the SQUARED distance correlation: compare with dcor's dCor squared.
    ref = float(dcor.distance_correlation(x, y)) ** 2
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours == pytest.approx(float(dcor.distance_correlation_sqr(x, y)), abs=1e-6)
    not_squared = float(distance_correlation(torch.from_numpy(x), torch.from_numpy(y), squared=False))
    assert not_squared == pytest.approx(float(dcor.distance_correlation(x, y)), abs=1e-6)


@pytest.mark.slow
def test_integer_weights_equal_repeated_rows() -> None:
    dcor = pytest.importorskip("dcor")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=40), rng.normal(size=40) ** 2
    w = rng.integers(1, 4, size=40)
    ours = float(distance_correlation(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)))
    ref = float(dcor.distance_correlation(np.repeat(x, w), np.repeat(y, w))) ** 2
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours == pytest.approx(_textbook_dcor2(np.repeat(x, w), np.repeat(y, w)), abs=1e-12)


def test_distance_correlation_is_differentiable_and_bounded() -> None:
    x = torch.randn(64, dtype=torch.float64, requires_grad=True)
    y = x.detach() ** 2 + 0.1 * torch.randn(64, dtype=torch.float64)
    d = distance_correlation(x, y)
    d.backward()
    assert 0.0 < float(d.detach()) <= 1.0
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0
    assert float(distance_correlation(torch.ones(10), torch.randn(10))) == 0.0  # no spread: 0, not NaN
    assert float(distance_correlation(x.detach(), 3 * x.detach() + 1)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("x", "y", "w", "match"),
    [
        (torch.zeros(5), torch.zeros(4), None, "paired"),
        (torch.zeros(1), torch.zeros(1), None, "at least 2"),
        (torch.zeros(3), torch.zeros(3), torch.tensor([1.0, -1.0, 1.0]), "non-negative"),
        (torch.zeros(3), torch.zeros(3), torch.zeros(3), "sum to 0"),
    ],
)
def test_distance_correlation_errors(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        distance_correlation(x, y, w)
    with pytest.raises(TypeError, match="torch tensors"):
        distance_correlation(np.zeros(3), torch.zeros(3))  # type: ignore[arg-type]


def test_bad_configurations_give_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"lam \(λ\) must be a finite non-negative"):
        DiscoStrategy(lam=-0.1)
    with pytest.raises(ValueError, match="lam"):
        get_strategy("disco", lam=-1.0)
    with pytest.raises(ValueError, match="decorrelate_class must be 0, 1 or None"):
        DiscoStrategy(decorrelate_class=3)
    with pytest.raises(ValueError, match="aux_key"):
        DiscoStrategy(aux_key="")
    x = np.zeros((4, 2), np.float32)
    y = np.array([0, 1, 0, 1])
    data = TrainingData(x, y, {"pt": np.ones(4)}, x, y, {})
    with pytest.raises(ValueError, match=r"needs the auxiliary array 'mass' in aux_train .*available: pt"):
        DiscoStrategy().setup(torch.nn.Linear(2, 1), data)
    data = TrainingData(x, np.zeros(4, np.int64), {"mass": np.ones(4)}, x, y, {})
    with pytest.raises(ValueError, match="no training row has that label"):
        DiscoStrategy(decorrelate_class=1).setup(torch.nn.Linear(2, 1), data)
    batch = Batch(torch.zeros(4, 2), torch.zeros(4), torch.arange(4), {})
    with pytest.raises(ValueError, match="no auxiliary array 'mass'"):
        DiscoStrategy().loss(torch.nn.Linear(2, 1), batch)


def _mass_sculpting_data(
    n: int, seed: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """x0 separates the classes; x1 = mass separates them too: a plain tagger sculpts the background mass."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    mass = rng.normal(size=n) + 1.5 * (y == 0)  # class 0 ("top") heavier; class 1 is the background
    x0 = rng.normal(size=n) + 1.5 * (y == 0)
    return np.stack([x0, mass], axis=1).astype(np.float32), y.astype(np.int64), mass


def _train(strategy: DiscoStrategy, steps: int, seed: int = 0) -> tuple[torch.nn.Module, DiscoStrategy]:
    x, y, m = _mass_sculpting_data(512, seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    strategy.setup(model, TrainingData(x, y, {"mass": m}, x, y, {"mass": m}, seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt, mt = torch.from_numpy(x), torch.from_numpy(y).float(), torch.from_numpy(m)
    strategy.start_epoch(model, 0)
    for step in range(steps):
        idx = torch.arange(step * 128, (step + 1) * 128) % 512
        batch = Batch(xt[idx], yt[idx], idx, {"mass": mt[idx]})
        loss = strategy.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, strategy


def test_disco_reduces_its_objective_and_the_background_mass_dependence() -> None:
    x, y, m = _mass_sculpting_data(1024, seed=9)
    xt, yt, mt = torch.from_numpy(x), torch.from_numpy(y).float(), torch.from_numpy(m)
    full = Batch(xt, yt, torch.arange(1024), {"mass": mt})

    def objective(model: torch.nn.Module, lam: float) -> tuple[float, float]:
        with torch.no_grad():
            s = DiscoStrategy(lam=lam)
            total = float(s.loss(model, full))
            pen = float(s.penalty(torch.sigmoid(model(xt)[:, 0]), yt, mt))
        return total, pen

    disco_start, _ = _train(DiscoStrategy(lam=5.0), steps=0)
    before, _ = objective(disco_start, 5.0)
    disco, strategy = _train(DiscoStrategy(lam=5.0), steps=60)
    plain, _ = _train(DiscoStrategy(lam=0.0), steps=60)
    after, pen_disco = objective(disco, 5.0)
    _, pen_plain = objective(plain, 5.0)
    assert after < before
    assert pen_plain > 0.05  # the plain tagger uses the mass
    assert pen_disco < 0.5 * pen_plain
    metrics = strategy.epoch_metrics()
    assert set(metrics) == {"disco_penalty", "classifier_bce", "disco_val_dcor2", "disco_val_objective"}
    assert 0.0 <= metrics["disco_val_dcor2"] <= 1.0
