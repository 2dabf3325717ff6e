"""Simulator validation, seeded chunked simulation, and the resumable on-disk cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from aalearn.inference.sbi import Simulator, chunk_seeds, last_run_stats, run_simulator, sbibm_task, simulate

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _prior(dim: int = 2) -> torch.distributions.Distribution:
    return torch.distributions.MultivariateNormal(torch.zeros(dim), torch.eye(dim))


def _gauss(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return theta + rng.normal(size=theta.shape)


def _sim(simulate_fn=_gauss, chunk_size: int = 25, name: str = "gauss") -> Simulator:  # type: ignore[no-untyped-def]
    return Simulator(name, _prior(), simulate_fn, ("a", "b"), ("xa", "xb"), chunk_size=chunk_size)


class LoggingSimulator:
    """Records every call (first θ of the chunk) in a file; raises on call number ``crash_at``."""

    def __init__(self, log: Path, crash_at: int | None = None) -> None:
        self.log = log
        self.crash_at = crash_at

    def __call__(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        if self.crash_at is not None and len(calls) >= self.crash_at:
            raise RuntimeError("simulated crash")
        with self.log.open("a") as fh:
            fh.write(f"{theta[0, 0]:.17g}\n")
        return _gauss(theta, rng)


# --------------------------------------------------------------------------- Simulator
def test_simulator_validates_prior_dimension() -> None:
    with pytest.raises(ValueError, match=r"event_shape \(3,\) but the 2 parameter names"):
        Simulator("s", _prior(3), _gauss, ("a", "b"), ("x",))
    with pytest.raises(ValueError, match="batch_shape"):
        Simulator("s", torch.distributions.Normal(torch.zeros(2), torch.ones(2)), _gauss, ("a", "b"), ("x",))
    with pytest.raises(TypeError, match=r"torch\.distributions"):
        Simulator("s", "uniform", _gauss, ("a", "b"), ("x",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        Simulator("s", _prior(), _gauss, ("a", "b"), ("x",), chunk_size=0)
    with pytest.raises(ValueError, match="duplicates"):
        Simulator("s", _prior(), _gauss, ("a", "a"), ("x",))
    with pytest.raises(TypeError, match="callable"):
        Simulator("s", _prior(), 3, ("a", "b"), ("x",))  # type: ignore[arg-type]


def test_nan_output_names_the_rows() -> None:
    def nan_rows(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = theta.copy()
        x[[2, 7]] = np.nan
        x[5, 1] = np.inf
        return x

    sim = _sim(nan_rows, chunk_size=10)
    with pytest.raises(ValueError, match=r"NaN/inf in 3 row\(s\): 2, 5, 7 "):
        run_simulator(sim, np.zeros((10, 2)), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"NaN/inf in 3 row\(s\): 102, 105, 107 "):
        run_simulator(sim, np.zeros((10, 2)), np.random.default_rng(0), offset=100)


def test_nan_in_second_chunk_gives_run_wide_rows() -> None:
    first = simulate(_sim(chunk_size=10), 10, seed=3, progress=False)[0][0, 0]

    def late_nan(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = theta.copy()
        if theta[0, 0] != first:  # every chunk but the first
            x[4] = np.nan
        return x

    with pytest.raises(ValueError, match=r"1 row\(s\): 14 \(first offending parameters"):
        simulate(_sim(late_nan, chunk_size=10), 20, seed=3, progress=False)


def test_wrong_shape_is_reported() -> None:
    sim = _sim(lambda th, rng: np.zeros((th.shape[0], 3)), chunk_size=10)
    with pytest.raises(
        ValueError,
        match=r"returned shape \(10, 3\) for 10 parameter rows \(rows 0\.\.9\); expected \(10, 2\)",
    ):
        simulate(sim, 10, seed=0, progress=False)
    short = _sim(lambda th, rng: th[:-1], chunk_size=10)
    with pytest.raises(ValueError, match=r"shape \(9, 2\) for 10 parameter rows \(rows 10\.\.19\)"):
        run_simulator(short, np.zeros((10, 2)), np.random.default_rng(0), offset=10)
    with pytest.raises(TypeError, match="non-numeric"):
        run_simulator(
            _sim(lambda th, rng: np.array([["a"]] * len(th))), np.zeros((2, 2)), np.random.default_rng(0)
        )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        simulate(_sim(), 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        simulate(_sim(), 10, seed=-1)
    with pytest.raises(TypeError, match="Simulator"):
        simulate("sim", 10, seed=0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_numbers_and_chunks_independent() -> None:
    sim = _sim(chunk_size=30)
    t1, x1 = simulate(sim, 100, seed=7, progress=False)
    t2, x2 = simulate(sim, 100, seed=7, progress=False)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(x1, x2)
    t3, _ = simulate(sim, 100, seed=8, progress=False)
    assert not np.allclose(t1, t3)
    # a longer run shares its first chunks
    t4, x4 = simulate(sim, 130, seed=7, progress=False)
    np.testing.assert_array_equal(t4[:90], t1[:90])
    assert chunk_seeds(7, 0) != chunk_seeds(7, 1)
    # prior draws are N(0, I) and x - theta is N(0, I)
    assert abs(t4.mean()) < 0.3
    assert 0.7 < (x4 - t4).std() < 1.3


def test_torch_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    simulate(_sim(), 30, seed=0, progress=False)
    assert torch.rand(1) == expected


# --------------------------------------------------------------------------- cache
def test_cache_resumes_after_crash_without_resimulating(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    cache = tmp_path / "cache"
    crashing = _sim(LoggingSimulator(log, crash_at=3), chunk_size=20, name="logged")
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate(crashing, 100, seed=11, cache=cache, progress=False)
    assert len(log.read_text().splitlines()) == 3  # chunks 0, 1, 2 done and saved
    chunk_files = sorted(p.name for p in next(cache.iterdir()).glob("chunk_*.npz"))
    assert chunk_files == [f"chunk_{i:06d}_n20.npz" for i in range(3)]

    resumed = _sim(LoggingSimulator(log), chunk_size=20, name="logged")
    theta, x = simulate(resumed, 100, seed=11, cache=cache, progress=False)
    calls = log.read_text().splitlines()
    assert len(calls) == 5
    assert len(set(calls)) == 5
    stats = last_run_stats()
    assert stats is not None
    assert stats.chunks_reused == 3
    assert stats.chunks_simulated == 2

    # identical to an uninterrupted run without cache
    t_ref, x_ref = simulate(_sim(chunk_size=20, name="logged"), 100, seed=11, progress=False)
    np.testing.assert_array_equal(theta, t_ref)
    np.testing.assert_array_equal(x, x_ref)

    # a third run reads everything from the cache
    simulate(resumed, 100, seed=11, cache=cache, progress=False)
    assert len(log.read_text().splitlines()) == 5
    assert last_run_stats().chunks_simulated == 0  # type: ignore[union-attr]


def test_cache_ignores_damaged_chunks_and_tmp_leftovers(tmp_path: Path) -> None:
    sim = _sim(chunk_size=10)
    _theta, x = simulate(sim, 30, seed=1, cache=tmp_path, progress=False)
    directory = next(p for p in tmp_path.iterdir() if p.is_dir())
    (directory / "chunk_000001_n10.npz").write_bytes(b"not a zip file")
    (directory / "chunk_000002_n10.npz.abc.tmp").write_bytes(b"half written")
    _theta2, x2 = simulate(sim, 30, seed=1, cache=tmp_path, progress=False)
    assert last_run_stats().chunks_simulated == 1  # type: ignore[union-attr]
    np.testing.assert_array_equal(x, x2)
    assert not list(directory.glob("*.tmp"))


def test_cache_key_depends_on_prior_and_version(tmp_path: Path) -> None:
    simulate(_sim(chunk_size=10), 10, seed=0, cache=tmp_path, progress=False)
    other_prior = Simulator("gauss", _prior(2), _gauss, ("a", "b"), ("xa", "xb"), chunk_size=10, version="2")
    simulate(other_prior, 10, seed=0, cache=tmp_path, progress=False)
    assert last_run_stats().chunks_simulated == 1  # type: ignore[union-attr]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


@pytest.mark.slow
def test_same_numbers_with_two_dask_workers(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    # a library simulator: Dask workers must be able to import the function
    sim = dataclasses.replace(sbibm_task("two_moons").simulator, chunk_size=20)
    t1, x1 = simulate(sim, 100, seed=5, progress=False)
    t2, x2 = simulate(sim, 100, seed=5, workers=2, cache=tmp_path, progress=False)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(x1, x2)
    assert len(list(next(tmp_path.iterdir()).glob("chunk_*.npz"))) == 5
