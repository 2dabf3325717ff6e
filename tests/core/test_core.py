"""aalearn.core (atomic io, JSON policy, seeding, registry, TrainConfig, Result), report.write_run
and physics.jets, checked against hand computations."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aalearn.core.config import TrainConfig
from aalearn.core.io import atomic_path, atomic_write
from aalearn.core.jsonutil import dumps, to_jsonable, write_json
from aalearn.core.registry import Registry
from aalearn.core.result import DictResult, ReportBuilder, Result
from aalearn.core.seeding import MAX_SEED, check_seed, numpy_rng, seeded, spawn_seeds, torch_generator
from aalearn.physics.jets import JET_FEATURES, constituent_jet_features, delta_r, energy_correlations
from aalearn.report import write_run

# ---------------------------------------------------------------------------------------------
# core.io
# ---------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_bytes_text_parents_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.txt"
    assert atomic_write(target, "héllo") == target  # parents created
    assert target.read_bytes() == "héllo".encode()
    atomic_write(target, b"\x00\x01", mode=0o600)
    assert target.read_bytes() == b"\x00\x01"
    assert _mode(target) == 0o600
    atomic_write(target, "latin", encoding="latin-1")
    assert _mode(target) == 0o644  # the default mode, whatever the old file had
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]
    with pytest.raises(TypeError, match="bytes or str"):
        atomic_write(target, 3)  # type: ignore[arg-type]


def test_atomic_write_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write(tmp_path / "d", "x")
    with pytest.raises(IsADirectoryError), atomic_path(tmp_path / "d"):
        pass  # pragma: no cover - never reached
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert list((tmp_path / "d").iterdir()) == []


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    seen: list[Path] = []

    def failing_writer() -> None:
        with atomic_path(target) as tmp:
            seen.append(tmp)
            tmp.write_bytes(b"half-written")
            raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        failing_writer()
    assert seen[0].parent == tmp_path
    assert seen[0] != target
    assert target.read_bytes() == b"old"
    assert not seen[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_atomic_path_keyboard_interrupt_and_missing_temp(tmp_path: Path) -> None:
    target = tmp_path / "x.npz"
    names: list[str] = []

    def interrupted_writer() -> None:
        with atomic_path(target, suffix=".npz") as tmp:
            names.append(tmp.name)
            np.savez(tmp, a=np.arange(3))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_writer()
    assert names[0].endswith(".npz")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="did not create"), atomic_path(target):
        pass  # the writer wrote nothing
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, a=np.arange(3))
    np.testing.assert_array_equal(np.load(target)["a"], [0, 1, 2])


def test_atomic_write_failed_rename_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ---------------------------------------------------------------------------------------------
# core.jsonutil
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Point:
    x: float
    tags: tuple[str, ...]


def test_to_jsonable_policy() -> None:
    obj = {
        "nan": float("nan"),
        "inf": float("inf"),
        "minus_inf": -math.inf,
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "bool": np.bool_(True),
        "arr": np.array([[1.0, np.nan], [np.inf, 2.0]]),
        "path": Path("/tmp/x"),
        "tuple": (1, np.float64(2.5)),
        "point": _Point(1.5, ("a",)),
        3: "int key",
    }
    out = to_jsonable(obj)
    assert out == {
        "nan": None,
        "inf": None,
        "minus_inf": None,
        "f32": 0.5,
        "i64": 7,
        "bool": True,
        "arr": [[1.0, None], [None, 2.0]],
        "path": "/tmp/x",
        "tuple": [1, 2.5],
        "point": {"x": 1.5, "tags": ["a"]},
        "3": "int key",
    }
    assert type(out["i64"]) is int
    assert type(out["f32"]) is float
    assert type(out["bool"]) is bool
    assert json.loads(dumps(obj)) == out
    assert "NaN" not in dumps(obj)
    assert "Infinity" not in dumps(obj)


def test_write_json_atomic_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.json"
    data = {"auc": np.float64(0.75), "rejection": {"0.5": float("inf")}, "n": np.int32(3)}
    assert write_json(data, path) == path
    text = path.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"auc": 0.75, "rejection": {"0.5": None}, "n": 3}
    write_json([1, 2], path)  # overwrite in place
    assert json.loads(path.read_text()) == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
    with pytest.raises(IsADirectoryError):
        write_json({}, tmp_path)


# ---------------------------------------------------------------------------------------------
# core.seeding
# ---------------------------------------------------------------------------------------------


def test_seeded_restores_the_callers_rng_state() -> None:
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    with seeded(7):
        inside = torch.rand(3)
    after = torch.rand(4)
    assert torch.equal(after, expected)  # the caller's stream continues as if nothing happened
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(3))  # the block drew from seed 7
    with seeded(7):
        again = torch.rand(3)
    assert torch.equal(inside, again)


def test_spawn_seeds_are_independent_of_the_call_count() -> None:
    five = spawn_seeds(11, 5)
    assert spawn_seeds(11, 2) == five[:2]
    assert spawn_seeds(11, 1) == five[:1]
    assert len(set(five)) == 5
    assert all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in five)
    assert spawn_seeds(12, 5) != five
    assert spawn_seeds(11, 0) == []
    with pytest.raises(ValueError, match="non-negative"):
        spawn_seeds(11, -1)


def test_generators_are_seeded() -> None:
    assert numpy_rng(5).random() == np.random.default_rng(5).random()
    assert torch.equal(
        torch.rand(2, generator=torch_generator(5)), torch.rand(2, generator=torch_generator(5))
    )
    assert not torch.equal(
        torch.rand(2, generator=torch_generator(5)), torch.rand(2, generator=torch_generator(6))
    )


@pytest.mark.parametrize(
    ("seed", "error", "pattern"),
    [
        (True, TypeError, "seed must be an integer, got bool"),
        (1.0, TypeError, "seed must be an integer, got float"),
        ("3", TypeError, "got str"),
        (-1, ValueError, "between 0 and 4294967295, got -1"),
        (2**32, ValueError, "got 4294967296"),
    ],
)
def test_check_seed_errors(seed: Any, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        check_seed(seed)


def test_check_seed_accepts_numpy_integers_and_names_the_argument() -> None:
    value = check_seed(np.int64(7))
    assert value == 7
    assert type(value) is int
    assert check_seed(MAX_SEED) == MAX_SEED
    with pytest.raises(ValueError, match="member_seed must be between"):
        check_seed(-2, name="member_seed")


# ---------------------------------------------------------------------------------------------
# core.registry
# ---------------------------------------------------------------------------------------------


def test_registry_did_you_mean_and_duplicates() -> None:
    reg: Registry[int] = Registry("attack")
    assert reg.register("fgsm", 1) == 1
    reg.register("pgd", 2)
    assert reg["pgd"] == 2
    assert sorted(reg) == ["fgsm", "pgd"]
    assert len(reg) == 2
    with pytest.raises(KeyError) as info:
        reg.get("fgsn")
    assert info.value.args[0] == "unknown attack 'fgsn'; did you mean 'fgsm'? Known: fgsm, pgd"
    with pytest.raises(KeyError) as info:
        reg["zzzzzz"]
    assert info.value.args[0] == "unknown attack 'zzzzzz'; Known: fgsm, pgd"
    with pytest.raises(ValueError, match="attack named 'fgsm' is already registered"):
        reg.register("fgsm", 3)
    assert reg.register("fgsm", 1) == 1  # the same object again is fine
    reg.register("fgsm", 3, overwrite=True)
    assert reg["fgsm"] == 3
    with pytest.raises(ValueError, match="non-empty name"):
        reg.register("", 4)
    assert reg.get("missing", 9) == 9


# ---------------------------------------------------------------------------------------------
# core.config
# ---------------------------------------------------------------------------------------------


def test_train_config_defaults_and_replace() -> None:
    cfg = TrainConfig()
    assert cfg.to_dict() == {
        "epochs": 50,
        "batch_size": 256,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "l1": 0.0,
        "patience": 5,
        "seed": 0,
        "progress": True,
        "monitor": "val_loss",
    }
    new = cfg.replace(lr=3e-4, monitor="val_accuracy")
    assert (new.lr, new.monitor, new.epochs) == (3e-4, "val_accuracy", 50)
    assert (cfg.lr, cfg.monitor) == (1e-3, "val_loss")  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        cfg.replace(epochs=0)  # replace validates again


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"batch_size": True}, "batch_size must be a positive integer, got True"),
        ({"patience": 2.0}, "patience must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
        ({"lr": float("nan")}, "lr must be a positive number"),
        ({"weight_decay": -1e-4}, "weight_decay must be a non-negative number"),
        ({"l1": float("nan")}, "l1 must be a non-negative number"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        (
            {"monitor": "loss"},
            r"monitor must be one of val_loss, val_accuracy or a strategy's val_\* quantity, got 'loss'",
        ),
        ({"monitor": "val_"}, "got 'val_'"),
    ],
)
def test_train_config_validation(changes: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(**changes)


# ---------------------------------------------------------------------------------------------
# core.result and report.write_run
# ---------------------------------------------------------------------------------------------


class _Recorder:
    """A ReportBuilder that records the calls."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, dict[str, Any]]] = []
        self.metadata: dict[str, Any] = {}

    def add_section(
        self,
        title: str,
        *,
        text: str | None = None,
        table: Any = None,
        figures: Any = (),
        anchor: str | None = None,
    ) -> None:
        self.sections.append((title, {"text": text, "table": table}))

    def add_metadata(self, key: str, value: Any) -> None:
        self.metadata[key] = value


def test_dict_result_is_a_result() -> None:
    r = DictResult({"auc": 0.9, "n": 10, "curve": [1, 2], "name": "x", "missing": None}, title="Eval")
    assert isinstance(r, Result)
    assert not isinstance({"auc": 0.9}, Result)
    assert isinstance(_Recorder(), ReportBuilder)
    assert r.to_dict()["curve"] == [1, 2]
    assert r.summary() == [{"auc": 0.9, "n": 10, "name": "x", "missing": None}]  # scalars only
    rec = _Recorder()
    r.add_to(rec)
    assert rec.sections == [
        ("Eval", {"text": None, "table": {"auc": 0.9, "n": 10, "name": "x", "missing": None}})
    ]


def test_dict_result_rows_and_sections() -> None:
    rows = [{"attack": "fgsm", "fr": 0.5}, {"attack": "pgd", "fr": 0.7}]
    r = DictResult({"runs": rows}, title="Attacks", rows=rows, sections=[("Notes", {"text": "hello"})])
    assert r.summary() == rows
    rec = _Recorder()
    r.add_to(rec)
    assert rec.sections == [
        ("Attacks", {"text": None, "table": rows}),
        ("Notes", {"text": "hello", "table": None}),
    ]
    empty = _Recorder()
    DictResult({"curve": [1, 2]}).add_to(empty)  # no scalar entry: no summary table
    assert empty.sections == []


def test_write_run_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = DictResult({"auc": 0.875, "rejection": float("inf")}, title="Evaluation summary")
    built: list[Any] = []
    paths = write_run(
        result,
        out,
        title="My run title",
        metadata={"model": "topodnn-special"},
        build_report=built.append,
    )
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]
    assert paths.results == out / "results.json"
    assert paths.report == out / "report.html"
    assert paths.to_dict() == {"results": str(out / "results.json"), "report": str(out / "report.html")}
    assert json.loads(paths.results.read_text()) == {"auc": 0.875, "rejection": None}
    html = paths.report.read_text(encoding="utf-8")
    for text in ("My run title", "Evaluation summary", "topodnn-special", "0.875"):
        assert text in html
    assert len(built) == 1


def test_write_run_payload_names_and_no_report(tmp_path: Path) -> None:
    result = DictResult({"auc": 0.5})
    paths = write_run(
        result,
        tmp_path,
        title="t",
        payload={"auc": 0.5, "curve": [0, 1]},
        json_name="out.json",
        report_name=None,
    )
    assert paths.report is None
    assert paths.to_dict() == {"results": str(tmp_path / "out.json")}
    assert json.loads((tmp_path / "out.json").read_text()) == {"auc": 0.5, "curve": [0, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_run_refuses_non_results_and_files(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"write_run needs a Result.*got dict"):
        write_run({"auc": 0.5}, tmp_path / "a", title="t")  # type: ignore[arg-type]
    assert not (tmp_path / "a").exists()
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        write_run(DictResult({"a": 1}), not_a_dir, title="t")
    assert not_a_dir.read_text() == "x"


# ---------------------------------------------------------------------------------------------
# physics.jets
# ---------------------------------------------------------------------------------------------


def test_delta_r_wraps_phi() -> None:
    # Δφ = 3.0 - (-3.0) = 6.0 rad, which is 6.0 - 2π = -0.2832 rad the short way round
    expected = math.sqrt(0.3**2 + (2 * math.pi - 6.0) ** 2)
    assert float(delta_r(0.5, 3.0, 0.2, -3.0)) == pytest.approx(expected, rel=1e-12)
    assert float(delta_r(0.2, -3.0, 0.5, 3.0)) == pytest.approx(expected, rel=1e-12)
    assert float(delta_r(0.0, 0.0, 0.3, 0.4)) == pytest.approx(0.5, rel=1e-12)
    # broadcasting: one reference against three points
    out = delta_r(0.0, 0.0, np.array([0.0, 0.0, 1.0]), np.array([0.1, 2 * math.pi - 0.1, 0.0]))
    np.testing.assert_allclose(out, [0.1, 0.1, 1.0], rtol=1e-12)


def _three_prong() -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    parts = [(300.0, 0.0, 0.0), (100.0, 0.0, -0.2), (50.0, 0.1, 0.1)]
    c = np.zeros((1, 4, 3))  # one zero-pT padding constituent
    c[0, :3] = parts
    return c, parts


def test_energy_correlations_by_hand() -> None:
    c, parts = _three_prong()
    total = sum(p[0] for p in parts)
    z = [p[0] / total for p in parts]

    def dr(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return math.hypot(a[1] - b[1], a[2] - b[2])

    d01, d02, d12 = dr(parts[0], parts[1]), dr(parts[0], parts[2]), dr(parts[1], parts[2])
    e2 = z[0] * z[1] * d01 + z[0] * z[2] * d02 + z[1] * z[2] * d12
    e3 = z[0] * z[1] * z[2] * d01 * d02 * d12
    got_e2, got_d2 = energy_correlations(c)
    assert got_e2.shape == (1,)
    assert got_d2.shape == (1,)
    assert float(got_e2[0]) == pytest.approx(e2, rel=1e-12)
    assert float(got_e2[0]) == pytest.approx(0.047913, abs=1e-6)
    assert float(got_d2[0]) == pytest.approx(e3 / e2**3, rel=1e-10)
    # a single constituent: e2 = e3 = 0 and D2 = 0 (1 stands in for e2)
    one = np.zeros((1, 2, 3))
    one[0, 0] = (100.0, 0.3, 0.2)
    e2_one, d2_one = energy_correlations(one)
    assert float(e2_one[0]) == 0.0
    assert float(d2_one[0]) == 0.0


def test_constituent_jet_features_by_hand() -> None:
    # sub-leading constituent first and a padding one: the function sorts by pT
    c = np.array([[[10.0, 0.4, 0.0], [30.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    feats = constituent_jet_features(c)
    assert feats.shape == (1, len(JET_FEATURES))
    got = dict(zip(JET_FEATURES, feats[0].tolist(), strict=True))
    # pT-weighted axis: η = (10 * 0.4) / 40 = 0.1, φ = 0; ΔR = 0.1 and 0.3
    assert got["width"] == pytest.approx((30 * 0.1 + 10 * 0.3) / 40, rel=1e-12)
    assert got["lead_pt_frac"] == pytest.approx(0.75, rel=1e-12)
    assert got["sublead_pt_frac"] == pytest.approx(0.25, rel=1e-12)
    assert got["multiplicity"] == 2.0
    assert got["jet_pt"] == pytest.approx(40.0, rel=1e-12)  # both at φ = 0
    mass = math.sqrt(2 * 30 * 10 * (math.cosh(0.4) - math.cos(0.0)))
    assert got["jet_mass"] == pytest.approx(mass, rel=1e-9)
    # τ1 = 10 * 0.4 / (0.8 * 40) > 0, τ2 = 0 (both constituents are axes): τ21 = 0
    assert got["tau21"] == 0.0
    assert got["tau32"] == 0.0  # 0 / 0 -> 0 by convention


def test_constituent_jet_features_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="negative pT"):
        constituent_jet_features(np.array([[[-1.0, 0.0, 0.0]]]))
    with pytest.raises(ValueError, match="shape"):
        constituent_jet_features(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="NaN/inf"):
        constituent_jet_features(np.full((1, 2, 3), np.nan))
