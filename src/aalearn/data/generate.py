r"""Boosted top and W jets from Pythia 8, smeared and preprocessed like the challenge files.

Physics (all settings in :func:`pythia_settings`):

* pp collisions at :math:`\sqrt{s}` = 13 TeV, Pythia 8.3 (Bierlich et al.,
  arXiv:2203.11601) through the ``pythia8mc`` wheel, default Monash 2013 tune;
* **top** class: :math:`t\bar t` (``Top:gg2ttbar``, ``Top:qqbar2ttbar``) with hadronic W
  decays (all-hadronic :math:`t\bar t`); **W** class: :math:`q\bar q \to W^+W^-`
  (``WeakDoubleBoson:ffbar2WW``) with hadronic W decays; ``PhaseSpace:pTHatMin`` = 350 GeV;
  multiparton interactions on by default; particles with :math:`c\tau` > 10 mm stable;
* jets: anti-:math:`k_t` (Cacciari, Salam, Soyez, arXiv:0802.1189) with R = 0.8 on all
  visible final-state particles with :math:`|\eta| < 5`, clustered by Pythia's
  ``SlowJet`` running the bundled FastJet core (Cacciari, Salam, Soyez,
  arXiv:1111.6097); only the **leading** jet is considered (``jets_per_event="all"``: every
  jet of the event) and kept if
  :math:`p_T` > 400 GeV (optionally below ``pt_max``) and :math:`|\eta|` < 2, optionally
  only when it lies within :math:`\Delta R` < 0.6 of a hard-process top (or W);
* truth constituents (``constituents_truth``, ``features_truth``): the 30
  highest-:math:`p_T` particles of the jet (zero-padded);
* detector-level constituents (``constituents``, ``features``): photons within
  ``calo_merge_radius`` = 0.02 of each other are merged into one object, as a calorimeter
  does with the photons of a :math:`\pi^0` (:func:`aalearn.physics.detector.merge_photons`),
  the 30 hardest objects are kept, then the
  detector smearing :meth:`aalearn.physics.ResolutionModel.smear` (not re-sorted
  afterwards, so, like the challenge files, the smeared constituents are only
  approximately :math:`p_T`-ordered), then the TopoDNN preprocessing
  (Pearkes et al., arXiv:1704.02124; :func:`aalearn.physics.topodnn_preprocess`) into
  the challenge's 87 columns.

Options added for the simulation calibrated to the challenge's CMS jets (issue 15; all off
by default, so the default output is unchanged): ``w_decays="inclusive"``,
``massless_clustering`` (clusters in η instead of rapidity: the cause of the stray soft
constituents far outside the jet, see :class:`GeneratorConfig`), a particle-flow-like
acceptance ``constituent_pt_min``, ``min_constituents`` and ``resort`` (re-sort by smeared
pT), ``w_decays="leptonic"``, ``jets_per_event="all"`` and a soft-particle overlay ``pileup``
(:mod:`aalearn.data.pileup`, added to the objects before the ``min_constituents`` requirement
and the smearing). :mod:`aalearn.data.presets` bundles them (``aalearn generate --preset
cms-challenge``). The sample's settings themselves live in :mod:`aalearn.data.generator_config`.

**pT scale:** the pT columns of ``features`` are in units of
:data:`~aalearn.physics.CHALLENGE_PT_SCALE_GEV` = 1679.1593 GeV, the scale of the
TopoDNN preprocessing, so that generated features are directly comparable with the
ECML-PKDD 2025 challenge files (``GeneratorConfig.pt_scale`` changes it; the raw
``constituents`` and ``jets`` arrays are always in GeV). Labels follow the challenge:
top = :data:`~aalearn.data.LABEL_TOP` (0), W = :data:`~aalearn.data.LABEL_W` (1).

**Chunks, seeds, resume:** the output is produced in chunks of ``chunk_size`` accepted
jets. Chunk ``i`` gets the seed :func:`chunk_seed(seed, i) <chunk_seed>`, used for
Pythia's ``Random:seed`` (a fresh Pythia initialisation per chunk, about 0.7 s) and for
the smearing random-number generator, so every chunk is exactly reproducible no matter
which worker runs it: the same seed gives bit-identical arrays with 1 or N workers.
Finished chunks are written atomically to ``OUT.parts/chunk_000012.h5``; a re-run with
the same settings reuses them (so a killed run resumes), and once all chunks exist they
are merged in chunk order into ``OUT`` (format: :mod:`aalearn.data.hdf5`) and the parts
directory is removed.

Cost (2-core VM, measured): about 50 top jets and 70 W jets per CPU-second with MPI on,
4-6 times more with ``mpi=False``; about 1.5 KB per jet on disk.

Example:
    >>> from aalearn.data.generate import GeneratorConfig, generate
    >>> cfg = GeneratorConfig(process="top", mpi=False)
    >>> summary = generate(cfg, 200, "top.h5", seed=3, workers=2)  # doctest: +SKIP
    >>> summary.n_jets, summary.path.name  # doctest: +SKIP
    (200, 'top.h5')

References:
    C. Bierlich et al., "A comprehensive guide to the physics and usage of PYTHIA 8.3",
    SciPost Phys. Codebases 8 (2022), arXiv:2203.11601.
    M. Cacciari, G. P. Salam, G. Soyez, "The anti-kt jet clustering algorithm",
    JHEP 04 (2008) 063, arXiv:0802.1189.
    M. Cacciari, G. P. Salam, G. Soyez, "FastJet user manual", EPJC 72 (2012) 1896,
    arXiv:1111.6097.
    J. Pearkes, W. Fedorko, A. Lister, C. Gay, "Jet constituents for deep neural network
    based top quark tagging", arXiv:1704.02124.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.parallel import map_tasks
from aalearn.core.stdio import redirect_fd1 as _redirect_fd1
from aalearn.data._lock import config_hash as _config_hash
from aalearn.data._lock import different_settings_error as _different_settings_error
from aalearn.data._lock import output_lock
from aalearn.data.generator_config import (
    _PARTICLE_ETA_MAX,
    _TRUTH_ID,
    MAX_EVENTS_WITHOUT_JET,
    MAX_PYTHIA_SEED,
    VARIATION_DESCRIPTIONS,
    VARIATIONS,
    GeneratorConfig,
    chunk_seed,
    pythia_settings,
)
from aalearn.data.hdf5 import (
    check_output_name,
    read_jets_hdf5,
    read_jets_metadata,
    software_versions,
    write_jets_hdf5,
)
from aalearn.data.pileup import overlay_pileup_jet
from aalearn.physics.detector import merge_photons, sort_by_pt
from aalearn.physics.features import challenge_feature_names
from aalearn.physics.preprocessing import topodnn_preprocess

__all__ = [
    "MAX_EVENTS_WITHOUT_JET",
    "MAX_PYTHIA_SEED",
    "VARIATIONS",
    "VARIATION_DESCRIPTIONS",
    "GenerationSummary",
    "GeneratorConfig",
    "chunk_seed",
    "generate",
    "generate_chunk",
    "pythia_settings",
    "sort_by_pt",
]

_MAX_CONSECUTIVE_FAILURES = 100
_FJCORE_BANNER_SILENCED = False


def _jet_matched(process: Any, pdg_id: int, eta: float, phi: float, radius: float) -> bool:
    """Whether a hard-process particle with ``|id| == pdg_id`` lies within ``radius`` of (η, φ)."""
    r2 = radius * radius
    for k in range(process.size()):
        particle = process[k]
        if abs(particle.id()) != pdg_id:
            continue
        deta = particle.eta() - eta
        dphi = (particle.phi() - phi + math.pi) % (2.0 * math.pi) - math.pi
        if deta * deta + dphi * dphi < r2:
            return True
    return False


def _accepted_jet(
    config: GeneratorConfig,
    pythia: Any,
    slow_jet: Any,
    j: int,
    pu_rng: np.random.Generator,
    rejected: dict[str, int],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], tuple[float, ...]] | None:
    """Jet ``j`` of the clustered event if it passes the selection, else ``None`` (counted in ``rejected``).

    Returns the particle-level constituents (pT, η, φ), the detector-level objects (photons
    merged, the acceptance applied, the pile-up overlay added, in descending pT) and the
    jet's row (pT, η, φ, m, number of particles).
    """
    pt = slow_jet.pT(j)
    if config.pt_max is not None and pt >= config.pt_max:
        rejected["pt_max"] += 1
        return None
    eta = slow_jet.p(j).eta()
    if abs(eta) >= config.eta_max:
        rejected["eta_max"] += 1
        return None
    phi = slow_jet.phi(j)
    if config.truth_match and not _jet_matched(
        pythia.process, _TRUTH_ID[config.process], eta, phi, config.match_radius
    ):
        rejected["truth_match"] += 1
        return None
    event = pythia.event
    particles = [event[i] for i in slow_jet.constituents(j)]
    kin = np.array([(q.pT(), q.eta(), q.phi()) for q in particles], dtype=np.float64)
    objects: npt.NDArray[np.float64] = np.asarray(
        merge_photons(kin, np.array([q.id() == 22 for q in particles]), radius=config.calo_merge_radius),
        dtype=np.float64,
    )
    if config.constituent_pt_min > 0:
        objects = objects[objects[:, 0] >= config.constituent_pt_min]
    if config.pileup is not None and len(objects):
        objects = overlay_pileup_jet(objects, config.pileup, pu_rng)
    if len(objects) < max(config.min_constituents, 1):
        rejected["min_constituents"] += 1
        return None
    row = (float(pt), float(eta), float(phi), float(slow_jet.m(j)), float(len(particles)))
    return kin, objects, row


def _impossible_cut_error(config: GeneratorConfig, n_events: int, rejected: Mapping[str, int]) -> ValueError:
    def cut(name: str) -> str:
        return "truth_match" if name == "truth_match" else f"{name}={getattr(config, name)}"

    counts = ", ".join(f"{cut(k)}: {n}" for k, n in sorted(rejected.items(), key=lambda kv: -kv[1]) if n)
    return ValueError(
        f"no {config.process} jet passed the selection in {n_events} consecutive events "
        f"(events rejected by {counts or 'none'}); loosen these cuts (pthat_min={config.pthat_min} GeV) "
        "or raise max_events_without_jet"
    )


def generate_chunk(
    config: GeneratorConfig,
    seed: int,
    chunk_index: int,
    n_jets: int,
    *,
    on_jet: Callable[[], None] | None = None,
    all_constituents: bool = False,
) -> dict[str, npt.NDArray[Any]]:
    """Generate one chunk of ``n_jets`` accepted jets (pure: same inputs, same arrays).

    A fresh Pythia instance is initialised with the seed :func:`chunk_seed(seed,
    chunk_index) <chunk_seed>`; events are generated until ``n_jets`` leading jets pass
    the selection; the constituents are smeared with a NumPy generator seeded with the
    same chunk seed and preprocessed.

    Args:
        config: Generator configuration.
        seed: Run seed.
        chunk_index: Chunk number.
        n_jets: Accepted jets to produce.
        on_jet: Called after every accepted jet (progress bars).
        all_constituents: Also return every particle-level constituent of every jet (not
            only the ``n_constituents`` hardest), for jet-substructure observables:
            ``all_constituents`` (M, 3) float64 (pT in GeV, η, φ, in Pythia's order) and
            ``all_constituents_offsets`` (N + 1,) int64; the constituents of jet ``i`` are
            rows ``offsets[i]:offsets[i + 1]``.

    Returns:
        ``features``, ``features_truth`` (N, 3K-3) float32; ``labels`` (N,) int8;
        ``constituents``, ``constituents_truth`` (N, K, 3) float32; ``jets`` (N, 5)
        float64 (pT, η, φ, m, n_constituents of the particle-level jet);
        ``constituents_unsmeared`` (N, K, 3) float32 (the detector-level objects before
        smearing, for ``aalearn calibrate``);
        ``chunk_index`` (N,) int32; and 0-d arrays ``n_events`` (events tried),
        ``cpu_seconds`` (CPU time of this call, initialisation included) and
        ``chunk_seed``.

    Raises:
        ValueError: If Pythia rejects a setting.
        RuntimeError: If Pythia fails to initialise, fails repeatedly, or no jet passes
            the selection.
        ValueError: If ``config.max_events_without_jet`` events in a row give no
            accepted jet (the message names the cut that rejected most of them).

    Example:
        >>> cfg = GeneratorConfig(mpi=False)
        >>> out = generate_chunk(cfg, seed=1, chunk_index=0, n_jets=2)  # doctest: +SKIP
        >>> out["features"].shape  # doctest: +SKIP
        (2, 87)
    """
    global _FJCORE_BANNER_SILENCED
    if isinstance(n_jets, bool) or not isinstance(n_jets, int | np.integer) or n_jets < 1:
        raise ValueError(f"n_jets must be a positive integer, got {n_jets!r}")
    pythia8mc = require("pythia8mc", purpose="Pythia 8 jet generation")
    cpu0 = time.thread_time()
    cseed = chunk_seed(seed, chunk_index)
    with _redirect_fd1("stderr"):
        pythia = pythia8mc.Pythia("", False)
        for setting in pythia_settings(config, cseed):
            if not pythia.readString(setting):
                raise ValueError(f"Pythia rejected the setting {setting!r} (unknown key or bad value)")
        if not pythia.init():
            raise RuntimeError(f"Pythia failed to initialise with the settings of {config.process!r} jets")
    mass_set = 0 if config.massless_clustering else 2  # 0: all massless (distance in η), 2: true masses
    slow_jet = pythia8mc.SlowJet(-1, config.jet_radius, config.pt_min, _PARTICLE_ETA_MAX, 2, mass_set)

    k_max = config.n_constituents
    # the overlay's own stream: a sample without pile-up keeps its smearing random numbers
    pu_rng = np.random.default_rng([cseed, 1])
    truth = np.zeros((n_jets, k_max, 3), dtype=np.float64)
    reco = np.zeros((n_jets, k_max, 3), dtype=np.float64)  # after photon merging, before smearing
    jets = np.zeros((n_jets, 5), dtype=np.float64)
    every_constituent: list[npt.NDArray[np.float64]] = []
    accepted = tried = failures = since_accepted = 0
    rejected = dict.fromkeys(("pt_min", "pt_max", "eta_max", "truth_match", "min_constituents"), 0)
    while accepted < n_jets:
        tried += 1
        if not pythia.next():
            failures += 1
            if failures > _MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(f"Pythia failed to generate {failures} events in a row")
            continue
        failures = 0
        event = pythia.event
        if _FJCORE_BANNER_SILENCED:
            ok = slow_jet.analyze(event)
        else:
            with _redirect_fd1("devnull"):  # fjcore prints its banner once per process
                ok = slow_jet.analyze(event)
            _FJCORE_BANNER_SILENCED = True
        if since_accepted >= config.max_events_without_jet:
            raise _impossible_cut_error(config, since_accepted, rejected)
        since_accepted += 1
        if not ok or slow_jet.sizeJet() == 0:
            rejected["pt_min"] += 1
            continue
        n_candidates = slow_jet.sizeJet() if config.jets_per_event == "all" else 1
        for j in range(n_candidates):
            if accepted == n_jets:
                break
            jet = _accepted_jet(config, pythia, slow_jet, j, pu_rng, rejected)
            if jet is None:
                continue
            kin, objects, jet_row = jet
            since_accepted = 0
            objects = objects[:k_max]
            if all_constituents:
                every_constituent.append(kin)
            consts = kin[np.argsort(-kin[:, 0], kind="stable")][:k_max]
            truth[accepted, : len(consts)] = consts
            reco[accepted, : len(objects)] = objects
            jets[accepted] = jet_row
            accepted += 1
            if on_jet is not None:
                on_jet()
    del pythia

    rng = np.random.default_rng(cseed)
    smeared = config.resolution.smear(reco, rng)
    if config.resort:
        smeared = sort_by_pt(smeared)
    features = topodnn_preprocess(smeared, pt_scale=config.pt_scale, n_constituents=k_max)
    features_truth = topodnn_preprocess(truth, pt_scale=config.pt_scale, n_constituents=k_max)
    extra: dict[str, npt.NDArray[Any]] = {}
    if all_constituents:
        extra["all_constituents"] = np.concatenate(every_constituent).reshape(-1, 3)
        extra["all_constituents_offsets"] = np.concatenate(
            [[0], np.cumsum([len(k) for k in every_constituent])]
        ).astype(np.int64)
    return {
        "features": features.astype(np.float32),
        "features_truth": features_truth.astype(np.float32),
        "labels": np.full(n_jets, config.label, dtype=np.int8),
        "constituents": smeared.astype(np.float32),
        "constituents_truth": truth.astype(np.float32),
        "constituents_unsmeared": reco.astype(np.float32),
        "jets": jets,
        "chunk_index": np.full(n_jets, chunk_index, dtype=np.int32),
        "n_events": np.array(tried, dtype=np.int64),
        "cpu_seconds": np.array(time.thread_time() - cpu0, dtype=np.float64),
        "chunk_seed": np.array(cseed, dtype=np.int64),
        **extra,
    }


@dataclass
class GenerationSummary:
    """What :func:`generate` did.

    Attributes:
        path: The output file.
        n_jets: Jets in the output.
        n_chunks: Chunks of the run.
        chunks_generated: Chunks generated by this call.
        chunks_reused: Chunks taken from an earlier, interrupted run (all of them when
            the output was already complete).
        jets_generated: Jets generated by this call.
        wall_seconds: Wall-clock time of this call.
        cpu_seconds: CPU time of the chunks generated by this call, summed over the
            workers (Pythia initialisation included; merging excluded).
        jets_per_second: ``jets_generated / wall_seconds``.
        jets_per_cpu_second: ``jets_generated / cpu_seconds`` (0 if nothing was generated).
        acceptance: Accepted jets / events tried, over the whole output.
        cached: The complete output already existed and was returned as is.
    """

    path: Path
    n_jets: int
    n_chunks: int
    chunks_generated: int
    chunks_reused: int
    jets_generated: int
    wall_seconds: float
    cpu_seconds: float
    jets_per_second: float
    jets_per_cpu_second: float
    acceptance: float
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (``path`` as a string)."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


# --------------------------------------------------------------------------- orchestration


def _chunk_sizes(n_jets: int, chunk_size: int) -> list[int]:
    full, rest = divmod(n_jets, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def _run_config(config: GeneratorConfig, seed: int, chunk_size: int, n_jets: int) -> dict[str, Any]:
    return {**config.to_dict(), "seed": seed, "chunk_size": chunk_size, "n_jets": n_jets}


def _chunk_path(parts: Path, index: int) -> Path:
    return parts / f"chunk_{index:06d}.h5"


def _chunk_task(
    index: int,
    *,
    config: GeneratorConfig,
    seed: int,
    sizes: tuple[int, ...],
    on_jet: Callable[[], None] | None = None,
) -> dict[str, npt.NDArray[Any]]:
    return generate_chunk(config, seed, index, sizes[index], on_jet=on_jet)


def _file_attrs(run_config: dict[str, Any], key: str, config: GeneratorConfig) -> dict[str, Any]:
    settings = [
        s if not s.startswith("Random:seed") else "Random:seed = <chunk seed>"
        for s in pythia_settings(config, 1)
    ]
    return {
        "feature_names": challenge_feature_names(config.n_constituents),
        "config": run_config,
        "config_hash": key,
        "pt_scale_gev": config.pt_scale,
        "pythia_settings": settings,
        "versions": software_versions(),
    }


def _reusable_chunk(
    path: Path, run_config: Mapping[str, Any], key: str, index: int, size: int, pythia_version: str
) -> dict[str, Any] | None:
    """Metadata of a valid chunk file of this run, or ``None`` if it is damaged.

    Raises:
        ValueError: If the file is a valid chunk of a run with other settings or of
            another pythia8mc version.
    """
    try:
        meta = read_jets_metadata(path)
    except (ValueError, OSError):
        return None
    if meta.get("config_hash") != key:
        raise _different_settings_error(path.parent, meta.get("config", {}), run_config)
    made_with = meta.get("versions", {}).get("pythia8mc")
    if made_with != pythia_version:
        raise ValueError(
            f"{path.parent} holds chunks made with pythia8mc {made_with}, but pythia8mc "
            f"{pythia_version} is installed; pass overwrite=True to regenerate them"
        )
    if meta.get("chunk") != index or meta.get("n_jets") != size or not isinstance(meta.get("n_events"), int):
        return None
    try:
        read_jets_hdf5(path)  # full validation: data readable and finite
    except (ValueError, OSError):
        return None
    return meta


def _cached_summary(out: Path, meta: Mapping[str, Any], n_chunks: int, t0: float) -> GenerationSummary:
    n = int(meta["n_jets"])
    n_events = int(meta.get("n_events", 0))
    return GenerationSummary(
        path=out,
        n_jets=n,
        n_chunks=n_chunks,
        chunks_generated=0,
        chunks_reused=n_chunks,
        jets_generated=0,
        wall_seconds=time.perf_counter() - t0,
        cpu_seconds=0.0,
        jets_per_second=0.0,
        jets_per_cpu_second=0.0,
        acceptance=n / n_events if n_events else 0.0,
        cached=True,
    )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def generate(
    config: GeneratorConfig,
    n_jets: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 1,
    chunk_size: int = 1000,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> GenerationSummary:
    """Generate ``n_jets`` jets of one class into an aalearn HDF5 file, resumably and in parallel.

    The jets are produced in chunks of ``chunk_size`` (the last one smaller) through
    :func:`aalearn.core.parallel.map_tasks`; every finished chunk is saved atomically in
    ``OUT.parts/``. A re-run with the same arguments reuses the saved chunks and
    regenerates missing or damaged ones; when all exist they are merged in chunk order
    into ``out`` and ``OUT.parts/`` is removed. If ``out`` already holds exactly this
    sample, it is returned at once (``summary.cached``).

    Args:
        config: Generator configuration (process, variation, cuts, ...).
        n_jets: Number of jets (exactly this many are written).
        out: Output file, ending in ``.h5`` or ``.hdf5``.
        seed: Run seed; the output depends only on ``(config, seed, chunk_size, n_jets)``,
            not on ``workers``.
        chunk_size: Jets per chunk (resume granularity and unit of parallel work).
        workers: Local worker processes (1 = in this process, no Dask).
        scheduler: Address of a running Dask scheduler (``"tcp://host:8786"``);
            see :mod:`aalearn.core.parallel`.
        progress: Show a progress bar (jets, jets/s, time left) on stderr.
        overwrite: Discard an existing output or parts directory, whatever its settings.

    Returns:
        A :class:`GenerationSummary`.

    Raises:
        ValueError: For invalid arguments (an ``out`` not ending in ``.h5``/``.hdf5`` included),
            or when ``out`` or ``OUT.parts`` were written with different settings (without
            ``overwrite``), or when another live process holds the lock ``OUT.parts/.lock``
            (that of a dead one is taken over).

    Example:
        >>> s = generate(GeneratorConfig(process="w"), 2000, "w.h5", workers=2)  # doctest: +SKIP
        >>> print(f"{s.jets_per_second:.0f} jets/s")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    if not isinstance(config, GeneratorConfig):
        raise ValueError(f"config must be a GeneratorConfig, got {type(config).__name__}")
    n_jets = _positive_int("n_jets", n_jets)
    chunk_size = _positive_int("chunk_size", chunk_size)
    workers = _positive_int("workers", workers)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    out_path = check_output_name(out)  # a directory or a non-HDF5 name (x.feather) is refused
    parts = out_path.with_name(out_path.name + ".parts")
    sizes = tuple(_chunk_sizes(n_jets, chunk_size))
    run_config = _run_config(config, seed, chunk_size, n_jets)
    key = _config_hash(run_config)
    with output_lock(parts, key):  # a second run on this output (live PID) gets a ValueError
        return _generate_locked(config, out_path, parts, sizes, run_config, key, seed, workers, scheduler,
                                progress, overwrite, t0)  # fmt: skip


def _generate_locked(
    config: GeneratorConfig, out_path: Path, parts: Path, sizes: tuple[int, ...], run_config: dict[str, Any],
    key: str, seed: int, workers: int, scheduler: str | None, progress: bool, overwrite: bool, t0: float,
) -> GenerationSummary:  # fmt: skip
    n_jets = sum(sizes)
    if overwrite:
        if out_path.exists():
            out_path.unlink()
        for old in parts.glob("chunk_*.h5"):
            old.unlink()
    if out_path.exists():
        try:
            meta = read_jets_metadata(out_path)
        except ValueError as exc:
            raise ValueError(
                f"output {out_path} exists but is not a valid aalearn jet file ({exc}); "
                "pass overwrite=True to replace it"
            ) from exc
        if meta.get("config_hash") != key or meta.get("config") != run_config:
            raise _different_settings_error(out_path, meta.get("config", {}), run_config)
        shutil.rmtree(parts, ignore_errors=True)
        return _cached_summary(out_path, meta, len(sizes), t0)

    # ---- inspect the parts directory (and drop temporary files of killed runs)
    # (temporary names of aalearn.core.io.atomic_path: ".<name>.<random>.tmp"; older
    # versions wrote "<name>.tmp-<pid>-<hex>")
    name = glob.escape(out_path.name)
    stale = [*out_path.parent.glob(name + ".tmp-*"), *out_path.parent.glob(f".{name}.*.tmp")]
    for leftover in stale:
        with contextlib.suppress(OSError):
            leftover.unlink()
    for leftover in [*parts.glob("*.tmp-*"), *parts.glob(".*.tmp")]:
        with contextlib.suppress(OSError):
            leftover.unlink()
    pythia_version = software_versions()["pythia8mc"]
    todo: list[int] = []
    n_events: dict[int, int] = {}
    for index, size in enumerate(sizes):
        path = _chunk_path(parts, index)
        if not path.exists():
            todo.append(index)
            continue
        chunk_meta = _reusable_chunk(path, run_config, key, index, size, pythia_version)
        if chunk_meta is not None:
            n_events[index] = int(chunk_meta["n_events"])
        else:
            path.unlink()
            todo.append(index)
    reused = len(sizes) - len(todo)

    # ---- generate the missing chunks
    tqdm = require("tqdm", purpose="progress bars").tqdm
    seeds = np.array([chunk_seed(seed, i) for i in range(len(sizes))], dtype=np.int64)
    base_attrs = _file_attrs(run_config, key, config)
    cpu_seconds = 0.0
    jets_generated = 0
    in_process = workers == 1 and scheduler is None
    with tqdm(
        total=n_jets,
        initial=sum(sizes[i] for i in range(len(sizes)) if i not in todo),
        unit="jet",
        desc=f"{config.process} jets",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        on_jet: Callable[[], None] | None = (
            functools.partial(bar.update, 1) if in_process and progress else None
        )
        task = functools.partial(_chunk_task, config=config, seed=seed, sizes=sizes, on_jet=on_jet)
        for index, result in map_tasks(task, todo, workers=workers, scheduler=scheduler):
            attrs = {
                **base_attrs,
                "chunk": index,
                "n_events": int(result["n_events"]),
                "cpu_seconds": float(result["cpu_seconds"]),
            }
            write_jets_hdf5(_chunk_path(parts, index), {**result, "chunk_seeds": seeds}, attrs)
            n_events[index] = int(result["n_events"])
            cpu_seconds += float(result["cpu_seconds"])
            jets_generated += sizes[index]
            if on_jet is None:
                bar.update(sizes[index])

    # ---- merge in chunk order
    datasets = [read_jets_hdf5(_chunk_path(parts, i)) for i in range(len(sizes))]
    for i, d in enumerate(datasets):  # per-chunk settings: never merge another run's chunk
        if d.metadata.get("config_hash") != key or d.metadata.get("chunk") != i:
            raise _different_settings_error(_chunk_path(parts, i), d.metadata.get("config", {}), run_config)
    arrays: dict[str, npt.NDArray[Any]] = {
        "features": np.concatenate([d.features for d in datasets]),
        "labels": np.concatenate([np.asarray(d.labels) for d in datasets]),
        "chunk_seeds": seeds,
    }
    for name in datasets[0].extras:
        arrays[name] = np.concatenate([d.extras[name] for d in datasets])
    total_events = sum(n_events.values())
    final_attrs = {
        **base_attrs,
        "n_events": total_events,
        "cpu_seconds": sum(float(d.metadata.get("cpu_seconds", 0.0)) for d in datasets),
    }
    write_jets_hdf5(out_path, arrays, final_attrs)
    shutil.rmtree(parts, ignore_errors=True)
    wall = time.perf_counter() - t0
    return GenerationSummary(
        path=out_path,
        n_jets=n_jets,
        n_chunks=len(sizes),
        chunks_generated=len(todo),
        chunks_reused=reused,
        jets_generated=jets_generated,
        wall_seconds=wall,
        cpu_seconds=cpu_seconds,
        jets_per_second=jets_generated / wall if wall > 0 else 0.0,
        jets_per_cpu_second=jets_generated / cpu_seconds if cpu_seconds > 0 else 0.0,
        acceptance=n_jets / total_events if total_events else 0.0,
    )
