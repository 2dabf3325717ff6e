"""Fault injection for jet generation (issue 18): impossible cuts, damaged chunk files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from aalearn.core.parallel import SchedulerUnreachableError
from aalearn.data.generate import MAX_EVENTS_WITHOUT_JET, GeneratorConfig, generate, generate_chunk
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.io import load_dataset


def test_impossible_pt_min_is_rejected_before_any_event() -> None:
    with pytest.raises(ValueError, match=r"pt_min \(7000.0 GeV\) is impossible"):
        GeneratorConfig(process="w", pt_min=7000.0)


def test_a_pt_window_too_narrow_stops_after_a_bounded_number_of_events(tmp_path: Path) -> None:
    cfg = GeneratorConfig(process="w", mpi=False, pt_min=500.0, pt_max=500.0001, max_events_without_jet=30)
    with pytest.raises(
        ValueError, match=r"in 30 consecutive events \(events rejected by .*pt_max=500.0001: [1-9]"
    ):
        generate_chunk(cfg, seed=1, chunk_index=0, n_jets=5)
    # through generate() as well (the CLI path), and the guard is not part of the sample's hash
    with pytest.raises(ValueError, match=r"rejected by .*pt_max=500.0001"):
        generate(cfg, 5, tmp_path / "w.h5", chunk_size=5, progress=False)
    assert GeneratorConfig().max_events_without_jet == MAX_EVENTS_WITHOUT_JET
    assert "max_events_without_jet" not in cfg.to_dict()


def test_max_events_without_jet_is_validated() -> None:
    with pytest.raises(ValueError, match="max_events_without_jet must be an integer >= 1"):
        GeneratorConfig(max_events_without_jet=0)


def _interrupted_after(n_chunks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import aalearn.data.generate as gen

    real_map_tasks = gen.map_tasks

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        for k, pair in enumerate(real_map_tasks(*args, **kwargs)):
            if k == n_chunks:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(gen, "map_tasks", interrupted)


def test_a_bit_flipped_chunk_is_detected_and_regenerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = GeneratorConfig(process="w", mpi=False)
    run: dict[str, Any] = {"n_jets": 4, "seed": 5, "chunk_size": 2, "progress": False}
    reference = generate(cfg, out=tmp_path / "ref.h5", **run).path
    out = tmp_path / "jets.h5"
    with monkeypatch.context() as m:
        _interrupted_after(1, m)
        with pytest.raises(KeyboardInterrupt):
            generate(cfg, out=out, **run)
    chunk = tmp_path / "jets.h5.parts" / "chunk_000000.h5"
    data = bytearray(chunk.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 256] = bytes(b ^ 0xFF for b in data[middle : middle + 256])
    chunk.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"chunk_000000\.h5 is truncated or corrupt: .* cannot be read"):
        read_jets_hdf5(chunk)
    with pytest.raises(ValueError, match=r"chunk_000000\.h5 is truncated or corrupt"):
        load_dataset(chunk)
    summary = generate(cfg, out=out, **run)
    assert (summary.chunks_reused, summary.chunks_generated) == (0, 2)
    a, b = read_jets_hdf5(out), read_jets_hdf5(reference)
    np.testing.assert_array_equal(a.features, b.features)
    for name in b.extras:
        np.testing.assert_array_equal(a.extras[name], b.extras[name])


@pytest.mark.parametrize("error", [KeyError("Unable to synchronously open object"), RuntimeError("bad attr")])
def test_reader_names_the_file_for_every_h5py_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import aalearn.data.hdf5 as h5

    path = tmp_path / "x.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(h5, "_header", broken)
    for read in (h5.read_jets_hdf5, h5.read_jets_metadata):
        with pytest.raises(ValueError, match=r"x\.h5 is truncated or corrupt: its header cannot be read"):
            read(path)


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from aalearn.data._lock import output_lock
with output_lock(Path(sys.argv[1]), sys.argv[2]):
    (Path(sys.argv[1]) / ".jets.h5.abc.tmp").write_bytes(b"the owner's temporary file")
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_run_on_a_locked_output_gets_a_clear_error_and_a_stale_lock_is_taken_over(
    tmp_path: Path,
) -> None:
    cfg = GeneratorConfig(process="w", mpi=False)
    out, parts = tmp_path / "jets.h5", tmp_path / "jets.h5.parts"
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(parts), "0123456789abcdef"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(
            ValueError, match=rf"jets.h5 is being generated by another run \(PID {other.pid}, other settings"
        ):
            generate(cfg, 2, out, seed=5, chunk_size=2, progress=False)
        assert (parts / ".jets.h5.abc.tmp").exists()  # the other run's files are left alone
        assert json.loads((parts / ".lock").read_text())["pid"] == other.pid
    finally:
        other.kill()  # SIGKILL: the owner cannot clean up; the kernel releases its lock
        other.wait()
    assert (parts / ".lock").exists()
    # the owner is dead: its lock is stale and taken over
    summary = generate(cfg, 2, out, seed=5, chunk_size=2, progress=False)
    assert summary.n_jets == 2
    assert not parts.exists()


def test_a_run_that_fails_before_its_first_chunk_leaves_no_parts_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aalearn.data.generate as gen

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise SchedulerUnreachableError("could not reach the Dask scheduler at tcp://127.0.0.1:9999")

    monkeypatch.setattr(gen, "map_tasks", unreachable)
    with pytest.raises(SchedulerUnreachableError, match="could not reach"):
        generate(GeneratorConfig(process="w", mpi=False), 2, tmp_path / "w.h5", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_merge_refuses_a_chunk_of_other_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aalearn.data.generate as gen

    cfg = GeneratorConfig(process="w", mpi=False)
    top = GeneratorConfig(process="top", mpi=False)
    foreign = generate(top, 2, tmp_path / "top.h5", seed=5, chunk_size=2, progress=False).path
    real_write = gen.write_jets_hdf5

    def swap(path: Path, arrays: Any, attrs: Any) -> Any:  # another run replaced the chunk meanwhile
        real_write(path, arrays, attrs)
        if path.name == "chunk_000000.h5":
            path.write_bytes(foreign.read_bytes())

    monkeypatch.setattr(gen, "write_jets_hdf5", swap)
    with pytest.raises(
        ValueError, match=r"chunk_000000.h5 was generated with different settings \(.*process"
    ):
        generate(cfg, 2, tmp_path / "w.h5", seed=5, chunk_size=2, progress=False)
