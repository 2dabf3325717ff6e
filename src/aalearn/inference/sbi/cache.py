"""Reproducible, parallel and cached simulation runs: :func:`simulate`.

A run of ``n`` simulations is cut into chunks of ``sim.chunk_size`` rows (the last one
smaller). Chunk ``i`` gets its own seed derived from ``(seed, i)`` with
:class:`numpy.random.SeedSequence` (like the jet generator's
:func:`aalearn.data.generate.chunk_seed`): one stream draws the chunk's parameters from
the prior, an independent one drives the simulator. The numbers therefore depend only on
``(simulator, seed, chunk_size, chunk index, chunk length)``, never on the number of
workers or on which worker ran a chunk. Chunks run through
:func:`aalearn.core.parallel.map_tasks` (in this process, on a local Dask cluster, or on an
existing Dask scheduler).

With a ``cache`` directory every finished chunk is written atomically (temporary file,
``fsync``, :func:`os.replace`) as an ``.npz`` file (read back with
``allow_pickle=False``) under ``CACHE/<name>-<key>/``, where the key hashes the
simulator's name, version and prior, the seed and the chunk size. A run that was killed
resumes with the chunks that are missing; a later run with the same settings (or a
larger ``n``: the first chunks are shared) simulates nothing again.

Example:
    >>> import numpy as np, torch
    >>> prior = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
    >>> sim = Simulator("noise", prior, lambda th, rng: th + rng.normal(size=th.shape), ("mu",), ("x",), 50)
    >>> theta, x = simulate(sim, 120, seed=0, progress=False)
    >>> theta.shape, x.shape
    ((120, 1), (120, 1))
    >>> bool((simulate(sim, 120, seed=0, progress=False)[1] == x).all())
    True
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.io import atomic_path, atomic_write
from aalearn.core.optional import require
from aalearn.core.parallel import map_tasks
from aalearn.inference.sbi.simulator import Simulator, run_simulator, sample_prior

__all__ = ["SimulationStats", "chunk_seeds", "last_run_stats", "simulate", "simulation_cache_key"]

FloatArray = npt.NDArray[np.float64]
_FORMAT = "aalearn-sbi-chunk-1"


@dataclass(frozen=True)
class SimulationStats:
    """Bookkeeping of the last :func:`simulate` call (for benchmarks and reports).

    Attributes:
        n: Simulations returned.
        n_chunks: Chunks in the run.
        chunks_simulated: Chunks simulated by this call.
        chunks_reused: Chunks read from the cache.
        wall_seconds: Wall-clock time of the call.
        simulations_per_second: Simulated rows per wall-clock second (0 if all cached).
        cache_dir: Directory of the chunk files (``None`` without cache).
    """

    n: int
    n_chunks: int
    chunks_simulated: int
    chunks_reused: int
    wall_seconds: float
    simulations_per_second: float
    cache_dir: Path | None


_LAST: list[SimulationStats] = []


def last_run_stats() -> SimulationStats | None:
    """Statistics of the most recent :func:`simulate` call in this process (``None`` before the first).

    Example:
        >>> s = last_run_stats()
    """
    return _LAST[-1] if _LAST else None


def chunk_seeds(seed: int, chunk_index: int) -> tuple[int, int]:
    """Seeds of chunk ``chunk_index``: one for the prior draw, one for the simulator's generator.

    Args:
        seed: Run seed (non-negative).
        chunk_index: Chunk number (non-negative).

    Returns:
        ``(prior_seed, simulator_seed)``, two unrelated 63-bit integers.

    Example:
        >>> chunk_seeds(0, 1) == chunk_seeds(0, 1), chunk_seeds(0, 1) != chunk_seeds(0, 2)
        (True, True)
    """
    for name, value in (("seed", seed), ("chunk_index", chunk_index)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    state = np.random.SeedSequence([int(seed), int(chunk_index)]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1)), int(state[1] >> np.uint64(1))


def _prior_fingerprint(prior: Any) -> str:
    """Hash of a fixed-seed draw and its log-density: changes whenever the prior does."""
    import torch

    theta = sample_prior(prior, 16, 12345)
    with torch.no_grad():
        logp = prior.log_prob(torch.as_tensor(theta, dtype=torch.float32)).double().numpy()
    h = hashlib.sha256(np.ascontiguousarray(theta).tobytes())
    h.update(np.ascontiguousarray(np.nan_to_num(logp, neginf=-1e300)).round(6).tobytes())
    h.update(type(prior).__name__.encode())
    return h.hexdigest()[:16]


def simulation_cache_key(sim: Simulator, seed: int) -> dict[str, Any]:
    """The settings that determine a run's chunks (hashed into the cache directory name).

    Example:
        >>> import torch
        >>> p = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
        >>> sorted(simulation_cache_key(Simulator("s", p, np.add, ("a",), ("x",)), 0))
        ['chunk_size', 'dim_observables', 'dim_parameters', 'format', 'name', 'prior', 'seed', 'version']
    """
    return {
        "format": _FORMAT,
        "name": sim.name,
        "version": sim.version,
        "prior": _prior_fingerprint(sim.prior),
        "seed": int(seed),
        "chunk_size": sim.chunk_size,
        "dim_parameters": sim.dim_parameters,
        "dim_observables": sim.dim_observables,
    }


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _chunk_sizes(n: int, chunk_size: int) -> list[int]:
    full, rest = divmod(n, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def _chunk_task(item: tuple[int, int], *, sim: Simulator, seed: int) -> tuple[FloatArray, FloatArray, float]:
    """Simulate one chunk ``(index, size)``; module level so that Dask workers can import it."""
    index, size = item
    t0 = time.process_time()
    prior_seed, sim_seed = chunk_seeds(seed, index)
    theta = sample_prior(sim.prior, size, prior_seed)
    x = run_simulator(sim, theta, np.random.default_rng(sim_seed), offset=index * sim.chunk_size)
    return theta, x, time.process_time() - t0


def _chunk_path(directory: Path, index: int, size: int) -> Path:
    return directory / f"chunk_{index:06d}_n{size}.npz"


def _write_chunk(path: Path, theta: FloatArray, x: FloatArray, meta: dict[str, Any]) -> None:
    """Write one chunk atomically (:func:`aalearn.core.io.atomic_path`: temporary file, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, theta=theta, x=x, meta=np.array(json.dumps(meta, sort_keys=True)))


def _read_chunk(path: Path, meta: dict[str, Any], sim: Simulator) -> tuple[FloatArray, FloatArray] | None:
    """A cached chunk if it is intact and was written with ``meta``; ``None`` otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["meta"]))
            theta = np.asarray(data["theta"], dtype=np.float64)
            x = np.asarray(data["x"], dtype=np.float64)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    size = meta["size"]
    if stored != meta or theta.shape != (size, sim.dim_parameters) or x.shape != (size, sim.dim_observables):
        return None
    return theta, x


@contextlib.contextmanager
def _progress(total: int, initial: int, desc: str, enabled: bool) -> Iterator[Any]:
    tqdm = require("tqdm", purpose="progress bars").tqdm
    with tqdm(
        total=total,
        initial=initial,
        unit="sim",
        desc=desc,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    ) as bar:
        yield bar


def simulate(
    sim: Simulator,
    n: int,
    *,
    seed: int,
    cache: str | os.PathLike[str] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Draw ``n`` parameter rows from the prior and simulate them, in seeded, cached, parallel chunks.

    Args:
        sim: The simulator (prior + vectorised simulate function).
        n: Number of simulations.
        seed: Run seed; the result depends only on ``(sim, seed, sim.chunk_size, n)``,
            not on ``workers`` or ``scheduler``.
        cache: Directory for the chunk files (created if needed); ``None`` keeps
            everything in memory.
        workers: Local worker processes (1 = in this process, no Dask); see
            :mod:`aalearn.core.parallel`.
        scheduler: Address of a running Dask scheduler (``"tcp://host:8786"``).
        progress: Show a progress bar on stderr.

    Returns:
        ``(theta, x)``: ``(n, D)`` parameters and ``(n, X)`` observations (float64), in
        chunk order.

    Raises:
        ValueError: For a non-positive ``n``, a negative ``seed``, or a simulator whose
            output has the wrong shape or NaN/inf values (the message names the
            run-wide row indices).

    Example:
        >>> import torch
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> noisy = lambda th, rng: th + rng.normal(size=th.shape)
        >>> sim = Simulator("g", prior, noisy, ("a", "b"), ("u", "v"))
        >>> theta, x = simulate(sim, 10, seed=1, progress=False)
        >>> x.shape
        (10, 2)
    """
    t0 = time.perf_counter()
    if not isinstance(sim, Simulator):
        raise TypeError(f"sim must be an aalearn.inference.sbi.Simulator, got {type(sim).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer (number of simulations), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n, seed = int(n), int(seed)
    sizes = _chunk_sizes(n, sim.chunk_size)
    results: dict[int, tuple[FloatArray, FloatArray]] = {}
    directory: Path | None = None
    key: dict[str, Any] = {}
    if cache is not None:
        key = simulation_cache_key(sim, seed)
        directory = Path(cache) / f"{_safe(sim.name)}-{_key_hash(key)}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "key.json"
        if not config.exists():
            atomic_write(config, json.dumps(key, indent=1, sort_keys=True))
        for leftover in directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        for index, size in enumerate(sizes):
            path = _chunk_path(directory, index, size)
            if path.exists():
                chunk = _read_chunk(path, {**key, "index": index, "size": size}, sim)
                if chunk is not None:
                    results[index] = chunk
    todo = [(i, s) for i, s in enumerate(sizes) if i not in results]
    reused = len(results)
    task = functools.partial(_chunk_task, sim=sim, seed=seed)
    with _progress(n, sum(len(results[i][0]) for i in results), sim.name, progress) as bar:
        for (index, size), (theta, x, _cpu) in map_tasks(task, todo, workers=workers, scheduler=scheduler):
            if directory is not None:
                _write_chunk(
                    _chunk_path(directory, index, size), theta, x, {**key, "index": index, "size": size}
                )
            results[index] = (theta, x)
            bar.update(size)
    theta_all = np.concatenate([results[i][0] for i in range(len(sizes))])
    x_all = np.concatenate([results[i][1] for i in range(len(sizes))])
    wall = time.perf_counter() - t0
    simulated = sum(s for _, s in todo)
    _LAST.append(
        SimulationStats(
            n=n,
            n_chunks=len(sizes),
            chunks_simulated=len(todo),
            chunks_reused=reused,
            wall_seconds=wall,
            simulations_per_second=simulated / wall if simulated and wall > 0 else 0.0,
            cache_dir=directory,
        )
    )
    del _LAST[:-1]
    return theta_all, x_all


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]
