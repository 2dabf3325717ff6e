"""Pythia 8 jet generation: physics output, seeds, resume, caching, parallel identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.data.generate import (
    MAX_PYTHIA_SEED,
    VARIATION_DESCRIPTIONS,
    VARIATIONS,
    GenerationSummary,
    GeneratorConfig,
    chunk_seed,
    generate,
    generate_chunk,
    pythia_settings,
    sort_by_pt,
)
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.pileup import PileupModel
from aalearn.physics import CHALLENGE_PT_SCALE_GEV, challenge_feature_names

# A cheap configuration (no MPI: ~5x faster) for the bookkeeping tests.
FAST = GeneratorConfig(process="w", mpi=False)
FAST_RUN: dict[str, Any] = {"n_jets": 10, "seed": 7, "chunk_size": 2}  # 5 chunks
PER_JET = (
    "features",
    "labels",
    "features_truth",
    "constituents",
    "constituents_truth",
    "constituents_unsmeared",
    "jets",
    "chunk_index",
)


def _arrays(ds: JetDataset) -> dict[str, np.ndarray]:
    return {"features": ds.features, "labels": np.asarray(ds.labels), **ds.extras}


def assert_same_jets(a: Path, b: Path) -> None:
    da, db = read_jets_hdf5(a), read_jets_hdf5(b)
    xa, xb = _arrays(da), _arrays(db)
    assert set(xa) == set(PER_JET)
    for key in PER_JET:
        np.testing.assert_array_equal(xa[key], xb[key], err_msg=key)
    assert da.metadata["chunk_seeds"] == db.metadata["chunk_seeds"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, GenerationSummary]]:
    """A tiny real run with the default (full-physics) configuration: 24 top + 20 W jets."""
    out = tmp_path_factory.mktemp("tiny")
    return {
        proc: (
            out / f"{proc}.h5",
            generate(
                GeneratorConfig(process=proc), n, out / f"{proc}.h5", seed=3, chunk_size=12, progress=False
            ),
        )
        for proc, n in (("top", 24), ("w", 20))
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted in-process run of FAST/FAST_RUN."""
    path = tmp_path_factory.mktemp("reference") / "ref.h5"
    generate(FAST, out=path, progress=False, **FAST_RUN)
    return path


# --------------------------------------------------------------------------- configuration


def test_variations_registry() -> None:
    assert {"nominal", "fsr-up", "fsr-down", "tune-a14"} <= set(VARIATIONS)
    assert set(VARIATION_DESCRIPTIONS) == set(VARIATIONS)
    assert VARIATIONS["nominal"] == ()
    assert VARIATIONS["fsr-up"] == ("TimeShower:renormMultFac = 0.5",)
    assert VARIATIONS["fsr-down"] == ("TimeShower:renormMultFac = 2.0",)
    assert VARIATIONS["tune-a14"] == ("Tune:pp = 21",)
    for name, settings in VARIATIONS.items():
        assert all(" = " in s for s in settings), name
        assert VARIATION_DESCRIPTIONS[name]
    with pytest.raises(
        ValueError, match=r"unknown variation 'fsr-sideways'; valid variations: nominal, fsr-up"
    ):
        GeneratorConfig(variation="fsr-sideways")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"process": "zprime"}, "process must be 'top' or 'w'"),
        ({"pt_min": -1.0}, "pt_min must be positive"),
        ({"pt_min": float("nan")}, "pt_min must be a finite number"),
        ({"pt_max": 300.0}, r"pt_max \(300.0\) must be larger than pt_min \(400.0\)"),
        ({"eta_max": 7.0}, "eta_max must be at most 5"),
        ({"jet_radius": 0.0}, "jet_radius must be positive"),
        ({"pthat_min": -5.0}, "pthat_min must be non-negative"),
        ({"ecm": "13 TeV"}, "ecm must be a finite number"),
        ({"mpi": "yes"}, "mpi must be True or False"),
        ({"n_constituents": 1}, "n_constituents must be at least 2"),
        ({"resolution": {"pt_constant": 0.1}}, "resolution must be a ResolutionModel"),
        ({"extra_settings": "PartonLevel:ISR = off"}, "not a str"),
        ({"extra_settings": ("PartonLevel:ISR off",)}, "not of the form 'Key = value'"),
        ({"extra_settings": ("Random:seed = 5",)}, "aalearn sets the random seeds"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**kwargs)


def test_config_round_trip_and_settings() -> None:
    cfg = GeneratorConfig(
        process="w", variation="fsr-up", pt_max=800.0, extra_settings=["PartonLevel:ISR = on"]
    )
    assert cfg.extra_settings == ("PartonLevel:ISR = on",)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert GeneratorConfig(pt_min=400, ecm=13000).to_dict() == GeneratorConfig().to_dict()
    assert isinstance(GeneratorConfig(pt_min=400).pt_min, float)
    assert cfg.label == LABEL_W
    assert GeneratorConfig(process="top").label == LABEL_TOP
    s = pythia_settings(cfg, 42)
    assert s[0] == "TimeShower:renormMultFac = 0.5"
    assert s[-1] == "PartonLevel:ISR = on"
    assert {
        "WeakDoubleBoson:ffbar2WW = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "Random:seed = 42",
        "PhaseSpace:pTHatMin = 350.0",
        "PartonLevel:MPI = on",
        "ParticleDecays:tau0Max = 10",
        "Print:quiet = on",
        "Next:numberCount = 0",
    } <= set(s)
    assert "Top:gg2ttbar = on" not in s
    assert "PartonLevel:MPI = off" in pythia_settings(FAST, 1)
    with pytest.raises(ValueError, match="Pythia seed"):
        pythia_settings(cfg, 0)


def test_chunk_seeds() -> None:
    seeds = [chunk_seed(s, i) for s in range(3) for i in range(50)]
    assert len(set(seeds)) == len(seeds)
    assert all(1 <= x <= MAX_PYTHIA_SEED for x in seeds)
    assert chunk_seed(5, 3) == chunk_seed(5, 3)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        chunk_seed(-1, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_jets": 0}, "n_jets must be an integer >= 1"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"scheduler": "localhost"}, "no known scheme"),
    ],
)
def test_generate_argument_errors(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"n_jets": 5, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(FAST, out=tmp_path / "x.h5", **args)
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------- physics output


@pytest.mark.parametrize("proc", ["top", "w"])
def test_tiny_run_output(tiny: dict[str, tuple[Path, GenerationSummary]], proc: str) -> None:
    path, summary = tiny[proc]
    n = 24 if proc == "top" else 20
    assert summary.n_jets == n
    assert summary.n_chunks == 2
    assert summary.chunks_generated == 2
    assert 0.2 < summary.acceptance <= 1.0
    assert summary.jets_per_cpu_second > 0
    assert not path.with_name(path.name + ".parts").exists()
    ds = read_jets_hdf5(path)
    names = challenge_feature_names()
    assert ds.features.shape == (n, 87)
    assert ds.feature_names == tuple(names)
    assert not {"ConstEta_0", "ConstPhi_0", "ConstEta_1"} & set(ds.feature_names)
    assert np.all(ds.labels == (LABEL_TOP if proc == "top" else LABEL_W))
    meta = ds.metadata
    assert meta["config"]["process"] == proc
    assert meta["config"]["seed"] == 3
    assert meta["config"]["n_jets"] == n
    assert meta["pt_scale_gev"] == CHALLENGE_PT_SCALE_GEV
    assert meta["label_names"] == ["top", "w"]
    assert meta["versions"]["pythia8mc"].startswith("8.")
    jets, truth, smeared = ds.extras["jets"], ds.extras["constituents_truth"], ds.extras["constituents"]
    assert truth.shape == smeared.shape == (n, 30, 3)
    assert jets.shape == (n, 5)
    assert np.all(jets[:, 0] > 400.0)
    assert np.all(np.abs(jets[:, 1]) < 2.0)
    assert np.all(jets[:, 4] >= 2)
    np.testing.assert_array_equal(ds.extras["chunk_index"], np.repeat([0, 1], [12, n - 12]))
    # truth constituents descending in pT; smeared ones differ but stay non-negative
    assert np.all(np.diff(truth[..., 0], axis=1) <= 0)
    assert not np.array_equal(truth, smeared)
    assert not np.array_equal(ds.features, ds.extras["features_truth"])
    assert np.all(smeared[..., 0] >= 0)
    # detector objects (photons merged) never outnumber the particles; padding has zero angles
    assert np.all((smeared[..., 0] > 0).sum(axis=1) <= np.minimum(jets[:, 4], 30))
    assert np.all(smeared[smeared[..., 0] == 0] == 0)
    pt_cols = [i for i, c in enumerate(names) if c.startswith("ConstPT")]
    for feats in (ds.features, ds.extras["features_truth"]):
        assert np.all(feats[:, pt_cols] >= 0)
        assert np.all(feats[:, names.index("ConstPhi_1")] <= 0)
    # pT in challenge units: leading constituent pT / 1679.1593 GeV
    np.testing.assert_allclose(ds.features[:, 0], smeared[:, 0, 0] / CHALLENGE_PT_SCALE_GEV, rtol=1e-5)


def test_cached_rerun_and_changed_settings(tiny: dict[str, tuple[Path, GenerationSummary]]) -> None:
    path, _ = tiny["top"]
    mtime = path.stat().st_mtime_ns
    start = time.perf_counter()
    again = generate(GeneratorConfig(process="top"), 24, path, seed=3, chunk_size=12, progress=False)
    assert time.perf_counter() - start < 1.0
    assert again.cached
    assert again.chunks_generated == 0
    assert again.chunks_reused == 2
    assert again.acceptance == pytest.approx(tiny["top"][1].acceptance)
    assert path.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match=r"different settings \(seed: 3 -> 4\).*overwrite=True"):
        generate(GeneratorConfig(process="top"), 24, path, seed=4, chunk_size=12, progress=False)
    with pytest.raises(ValueError, match=r"different settings.*pt_min: 400.0 -> 450.0"):
        generate(
            GeneratorConfig(process="top", pt_min=450.0), 24, path, seed=3, chunk_size=12, progress=False
        )


def test_overwrite_and_foreign_output(tmp_path: Path) -> None:
    path = tmp_path / "jets.h5"
    path.write_text("not jets")
    with pytest.raises(ValueError, match=r"exists but is not a valid aalearn jet file.*overwrite=True"):
        generate(FAST, 2, path, progress=False)
    stale = tmp_path / "jets.h5.tmp-123-cafe"  # temporary file of a run killed while merging
    stale.write_bytes(b"partial")
    (tmp_path / ".jets.h5.x1y2z3.tmp").write_bytes(b"partial")  # the same from atomic_path
    summary = generate(FAST, 2, path, progress=False, overwrite=True)
    assert summary.n_jets == 2
    assert len(read_jets_hdf5(path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jets.h5"]


# --------------------------------------------------------------------------- resume and parallel


def test_resume_after_kill(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    code = (
        "from aalearn.data.generate import GeneratorConfig, generate\n"
        f"generate(GeneratorConfig(process='w', mpi=False), {FAST_RUN['n_jets']}, {str(out)!r}, "
        f"seed={FAST_RUN['seed']}, chunk_size={FAST_RUN['chunk_size']}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not list(parts.glob("chunk_*.h5")):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"generator ended before writing a chunk: {proc.communicate()[1].decode()[-2000:]}"
                )
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert stdout == b""  # Pythia and the fjcore banner kept off stdout
    assert not out.exists()
    done_before = sorted(p.name for p in parts.glob("chunk_*.h5"))
    assert 1 <= len(done_before) < 5

    summary = generate(FAST, out=out, progress=False, **FAST_RUN)
    assert summary.chunks_reused >= len(done_before) - 1  # a chunk may have been caught mid-write
    assert summary.chunks_reused + summary.chunks_generated == 5
    assert not parts.exists()
    assert_same_jets(out, reference)


def test_resume_repairs_damaged_parts_and_rejects_foreign_ones(
    tmp_path: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "jets.h5"
    parts = tmp_path / "jets.h5.parts"
    import aalearn.data.generate as gen

    real_map_tasks = gen.map_tasks

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        for k, pair in enumerate(real_map_tasks(*args, **kwargs)):
            if k == 3:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(gen, "map_tasks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(FAST, out=out, progress=False, **FAST_RUN)
    monkeypatch.setattr(gen, "map_tasks", real_map_tasks)
    assert sorted(p.name for p in parts.iterdir()) == [f"chunk_00000{i}.h5" for i in range(3)]

    # different settings → clear error, nothing touched
    with pytest.raises(
        ValueError, match=r"jets.h5.parts was generated with different settings \(seed: 7 -> 8\)"
    ):
        generate(FAST, out=out, progress=False, **{**FAST_RUN, "seed": 8})
    with pytest.raises(ValueError, match=r"n_jets: 10 -> 12"):
        generate(FAST, out=out, progress=False, **{**FAST_RUN, "n_jets": 12})
    # damage: truncate chunk 1, leave a stale temporary file for chunk 2
    chunk1 = parts / "chunk_000001.h5"
    data = chunk1.read_bytes()
    chunk1.write_bytes(data[: len(data) // 2])
    (parts / "chunk_000003.h5.tmp-999-deadbeef").write_bytes(b"partial")
    summary = generate(FAST, out=out, progress=False, **FAST_RUN)
    assert (summary.chunks_reused, summary.chunks_generated) == (2, 3)
    assert not parts.exists()
    assert_same_jets(out, reference)


def test_one_and_two_workers_identical(tmp_path: Path, reference: Path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "two.h5"
    summary = generate(FAST, out=out, workers=2, progress=False, **FAST_RUN)
    assert summary.chunks_generated == 5
    assert_same_jets(out, reference)
    ref = read_jets_hdf5(reference).metadata
    two = read_jets_hdf5(out).metadata
    assert two["config"] == ref["config"]
    assert two["n_events"] == ref["n_events"]


# --------------------------------------------------------------------------- physics sanity (slow)


@pytest.mark.slow
def test_physics_sanity(tmp_path: Path) -> None:
    """Top jets peak near 170 GeV, W jets near 80 GeV, and the classes are separable."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    n = 800
    data = {}
    for proc in ("top", "w"):
        generate(
            GeneratorConfig(process=proc),
            n,
            tmp_path / f"{proc}.h5",
            seed=11,
            chunk_size=200,
            workers=2,
            progress=False,
        )
        data[proc] = read_jets_hdf5(tmp_path / f"{proc}.h5")
    bins = np.arange(0.0, 300.0, 10.0)
    modes = {}
    for proc, ds in data.items():
        hist, edges = np.histogram(ds.extras["jets"][:, 3], bins=bins)
        modes[proc] = edges[np.argmax(hist)] + 5.0
    assert 150.0 <= modes["top"] <= 190.0, modes
    assert 65.0 <= modes["w"] <= 100.0, modes

    both = JetDataset.concatenate([data["top"], data["w"]])
    x = np.column_stack([both.features, both.extras["jets"][:, 3]])
    y = np.asarray(both.labels)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(x_tr, y_tr)
    auc = roc_auc_score(y_te, clf.predict_proba(x_te)[:, 1])
    assert auc > 0.85, auc


# --------------------------------------------------------------------------- issue 15 options

# The keys of GeneratorConfig.to_dict() before the issue-15 options: a default config must keep
# exactly this configuration (and hence the hash of every earlier sample's cache).
LEGACY_KEYS = {
    "process", "variation", "pt_min", "pt_max", "eta_max", "jet_radius", "pthat_min", "ecm", "mpi",
    "truth_match", "match_radius", "n_constituents", "resolution", "calo_merge_radius", "pt_scale",
    "extra_settings",
}  # fmt: skip


def test_new_options_keep_the_default_configuration_and_round_trip() -> None:
    assert set(GeneratorConfig().to_dict()) == LEGACY_KEYS
    cfg = GeneratorConfig(
        w_decays="inclusive", massless_clustering=True, constituent_pt_min=0.4, min_constituents=30,
        resort=True,
    )  # fmt: skip
    d = cfg.to_dict()
    assert {k: d[k] for k in set(d) - LEGACY_KEYS} == {
        "w_decays": "inclusive",
        "massless_clustering": True,
        "constituent_pt_min": 0.4,
        "min_constituents": 30,
        "resort": True,
    }
    assert GeneratorConfig.from_dict(d) == cfg
    hadronic = pythia_settings(GeneratorConfig(), 3)
    inclusive = pythia_settings(GeneratorConfig(w_decays="inclusive"), 3)
    assert [s for s in hadronic if not s.startswith("24:")] == inclusive
    assert {"24:onMode = off", "24:onIfAny = 1 2 3 4 5"} <= set(hadronic)
    leptonic = pythia_settings(GeneratorConfig(w_decays="leptonic"), 3)
    assert [s for s in leptonic if s.startswith("24:")] == ["24:onMode = off", "24:onIfAny = 11 13 15"]
    # the later options round-trip through the file configuration, the overlay as a dict
    later = GeneratorConfig(jets_per_event="all", pileup=PileupModel(mu=5.0, density=0.3))
    assert later.to_dict()["pileup"] == {
        "mu": 5.0, "density": 0.3, "pt_min": 0.4, "mean_excess": 0.45, "radius": 0.5,
    }  # fmt: skip
    assert later.to_dict()["jets_per_event"] == "all"
    assert GeneratorConfig.from_dict(later.to_dict()) == later


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"w_decays": "dileptonic"}, "w_decays"),
        ({"jets_per_event": "two"}, "jets_per_event"),
        ({"pileup": {"mu": 21.0}}, "pileup"),
        ({"constituent_pt_min": -1.0}, "constituent_pt_min"),
        ({"min_constituents": -2}, "min_constituents"),
        ({"resort": "yes"}, "resort"),
        ({"massless_clustering": 1}, "massless_clustering"),
    ],
)
def test_new_options_reject_bad_values(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GeneratorConfig(**kwargs)


def test_sort_by_pt_sorts_each_jet_and_keeps_rows_together() -> None:
    c = np.array([[[1.0, 0.1, 0.2], [3.0, 0.3, 0.4], [0.0, 0.0, 0.0], [2.0, 0.5, 0.6]]])
    out = sort_by_pt(c)
    np.testing.assert_array_equal(out[0], c[0, [1, 3, 0, 2]])


def _far_from_axis(out: dict[str, np.ndarray], radius: float) -> np.ndarray:
    """Per jet: the largest (η, φ) distance of a particle-level constituent from the jet axis, / R."""
    c, jets = out["constituents_truth"], out["jets"]
    d_phi = (c[..., 2] - jets[:, None, 2] + np.pi) % (2 * np.pi) - np.pi
    dr = np.where(c[..., 0] > 0, np.hypot(c[..., 1] - jets[:, None, 1], d_phi), 0.0)
    return dr.max(axis=1) / radius


@pytest.mark.slow
def test_massless_clustering_removes_the_stray_soft_constituents_far_outside_the_jet() -> None:
    # Cause (issue 15): with true masses SlowJet clusters in rapidity y; a soft massive hadron
    # (pT << m) has |y| << |eta|, so it joins the jet although it lies far outside in eta.
    cfg = GeneratorConfig(process="w", pt_min=300.0, pthat_min=270.0)
    legacy = generate_chunk(cfg, 11, 0, 120)
    fixed = generate_chunk(replace(cfg, massless_clustering=True), 11, 0, 120)
    far_legacy = _far_from_axis(legacy, cfg.jet_radius)
    far_fixed = _far_from_axis(fixed, cfg.jet_radius)
    # anti-kt: a constituent lies within R of the hard core; the final axis moves by a few % of R
    assert far_fixed.max() < 1.1
    assert (far_legacy > 1.2).sum() >= 1  # the bug this option fixes (measured: 4 % of jets)
    c, jets = legacy["constituents_truth"], legacy["jets"]
    d_phi = (c[..., 2] - jets[:, None, 2] + np.pi) % (2 * np.pi) - np.pi
    outside = np.hypot(c[..., 1] - jets[:, None, 1], d_phi) > 1.2 * cfg.jet_radius
    stray = c[..., 0][(c[..., 0] > 0) & outside]
    assert stray.size > 0
    assert np.median(stray) < 2.0  # they are soft (GeV)


def test_acceptance_threshold_min_constituents_and_resort() -> None:
    cfg = GeneratorConfig(
        process="top", mpi=False, constituent_pt_min=2.0, min_constituents=25, massless_clustering=True
    )
    out = generate_chunk(cfg, 5, 0, 12)
    unsmeared = out["constituents_unsmeared"]
    assert unsmeared.shape == (12, 30, 3)
    real = unsmeared[..., 0] > 0
    assert np.all(unsmeared[..., 0][real] >= np.float32(2.0))  # the acceptance threshold
    assert real.sum(axis=1).min() >= 25  # min_constituents
    truth_pt = out["constituents_truth"][..., 0]
    assert np.any((truth_pt > 0) & (truth_pt < 2.0))  # the threshold removed particles
    pt = out["constituents"][..., 0]
    assert np.any(np.diff(pt, axis=1) > 0)  # not re-sorted: smearing breaks the order
    resorted = generate_chunk(replace(cfg, resort=True), 5, 0, 12)
    np.testing.assert_array_equal(resorted["constituents_unsmeared"], unsmeared)  # same jets
    rpt = resorted["constituents"][..., 0]
    assert np.all(np.diff(rpt, axis=1) <= 0)
    np.testing.assert_allclose(np.sort(rpt, axis=1), np.sort(pt, axis=1), rtol=1e-6)


def _event_keys(out: dict[str, np.ndarray]) -> set[tuple[float, float, float]]:
    return {tuple(np.round(row[:3], 6)) for row in out["jets"]}


def test_all_jets_per_event_contains_the_leading_jets_of_the_same_events() -> None:
    # Same seed, same Pythia events: keeping every jet must keep each event's leading jet too,
    # in event order, and add the others (two hard tops give events with two jets).
    cfg = GeneratorConfig(process="top", mpi=False, pt_min=200.0, pthat_min=250.0, massless_clustering=True)
    lead = generate_chunk(cfg, 3, 0, 20)
    every = generate_chunk(replace(cfg, jets_per_event="all"), 3, 0, 20)
    assert int(every["n_events"]) < int(lead["n_events"])  # more than one jet per event
    pts = every["jets"][:, 0]
    assert np.all(pts >= 200.0)
    assert np.all(np.abs(every["jets"][:, 1]) < cfg.eta_max)
    # the leading jets of the events the "all" run used are the first ones of the leading run
    common = _event_keys(every) & _event_keys(lead)
    assert 5 <= len(common) < 20  # leading jets of the same events, plus the events' other jets
    first = {tuple(np.round(r[:3], 6)) for r in lead["jets"][: len(common)]}
    assert first == common


def test_pileup_overlay_in_the_generator_adds_poisson_particles_in_the_disc() -> None:
    # No truncation (n_constituents 200): the overlaid objects are exactly the extra rows; their
    # number is Poisson(mu * density * pi R^2), they lie within R of the pT-weighted axis and
    # their pT - pt_min is exponential. The particle level and the event stream are unchanged.
    base = GeneratorConfig(process="w", mpi=False, pt_min=200.0, pthat_min=180.0, n_constituents=200)
    model = PileupModel(mu=10.0, density=0.4, pt_min=0.5, mean_excess=2.0, radius=0.4)
    plain = generate_chunk(base, 4, 0, 60)
    pu = generate_chunk(replace(base, pileup=model), 4, 0, 60)
    np.testing.assert_array_equal(pu["constituents_truth"], plain["constituents_truth"])
    np.testing.assert_array_equal(pu["jets"], plain["jets"])
    n_plain = (plain["constituents_unsmeared"][..., 0] > 0).sum(axis=1)
    n_pu = (pu["constituents_unsmeared"][..., 0] > 0).sum(axis=1)
    extra = n_pu - n_plain
    lam = model.expected_particles()  # 2.01 particles per jet
    assert np.all(extra >= 0)
    assert abs(extra.mean() - lam) < 4 * np.sqrt(lam / len(extra))
    added_pt = []
    for a, b in zip(plain["constituents_unsmeared"], pu["constituents_unsmeared"], strict=True):
        obj = a[a[:, 0] > 0].astype(np.float64)
        rows_a = {tuple(r) for r in a[a[:, 0] > 0]}
        new = np.array([r for r in b[b[:, 0] > 0] if tuple(r) not in rows_a])
        assert len(new) == len(b[b[:, 0] > 0]) - len(rows_a)  # the jet's own objects are all kept
        if len(new):
            added_pt.extend(new[:, 0])
            w = obj[:, 0] / obj[:, 0].sum()  # axis: pT-weighted centroid, phi about the hardest
            phi_ref = obj[np.argmax(obj[:, 0]), 2]
            eta0 = w @ obj[:, 1]
            phi0 = phi_ref + w @ ((obj[:, 2] - phi_ref + np.pi) % (2 * np.pi) - np.pi)
            dphi = (new[:, 2] - phi0 + np.pi) % (2 * np.pi) - np.pi
            assert np.all(np.hypot(new[:, 1] - eta0, dphi) <= model.radius + 1e-4)
    added = np.asarray(added_pt)
    assert added.min() >= np.float32(model.pt_min)
    excess = (added - model.pt_min).mean()
    assert abs(excess - model.mean_excess) < 4 * model.mean_excess / np.sqrt(len(added))
