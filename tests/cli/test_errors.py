"""The CLI's single error path (issue 18, item 5 and the CLI parts of item 7).

Every user error (bad value, unwritable output, file-system error, lost Dask scheduler) must end as one
line ``error: ...`` on stderr with exit code 2 and no traceback, and output paths must be checked before
any work starts (the work functions are replaced by ones that fail the test if they are ever called).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import aalearn.apps.audit as audit_app
import aalearn.apps.train as train_app
from aalearn.cli._common import is_user_error, user_errors
from aalearn.cli.main import app
from aalearn.core.validation import check_output_path
from aalearn.data import JetDataset
from aalearn.data.io import save_dataset
from aalearn.physics import challenge_features

runner = CliRunner()


def _one_line_error(res: Any, fragment: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), res.output
    assert fragment in lines[0], lines[0]


def _must_not_run(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("the work started before the output path was checked")


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory: pytest.TempPathFactory, challenge_jets: Any) -> Path:
    x = challenge_jets(60, seed=3)
    y = (np.arange(60) % 2).astype(np.int64)
    names = tuple(s.name for s in challenge_features())
    path = tmp_path_factory.mktemp("errors") / "jets.feather"
    save_dataset(JetDataset(features=x.astype(np.float32), labels=y, feature_names=names, source="t"), path)
    return path


class CommClosedError(OSError):
    """Stand-in with distributed's class name (distributed's is an OSError)."""


class FutureCancelledError(Exception):
    """Stand-in with distributed's class name (not an OSError: matched by name)."""


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(13, "Permission denied", "/root/x"),
        NotADirectoryError(20, "Not a directory", "a.txt/b"),
        FileExistsError(17, "File exists", "out"),
        IsADirectoryError(21, "Is a directory", "out"),
        TimeoutError("timed out connecting to tcp://127.0.0.1:9999"),
        ConnectionRefusedError(111, "Connection refused"),
        CommClosedError("in <TCP>: Stream is closed"),
        FutureCancelledError("task cancelled"),
    ],
)
def test_user_errors_one_line_for_os_and_dask_errors(exc: BaseException, capsys: Any) -> None:
    @user_errors
    def command() -> None:
        raise exc

    with pytest.raises(typer.Exit) as info:
        command()
    assert info.value.exit_code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert is_user_error(exc)


def test_user_errors_keeps_programming_errors() -> None:
    @user_errors
    def command() -> None:
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        command()
    assert not is_user_error(ZeroDivisionError())


def test_check_output_path(tmp_path: Path) -> None:
    assert (
        check_output_path(tmp_path / "new" / "m.safetensors", suffixes=[".safetensors"]).name
        == "m.safetensors"
    )
    with pytest.raises(ValueError, match=r"must end in \.safetensors"):
        check_output_path(tmp_path / "m.pt", suffixes=[".safetensors"])
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError):
        check_output_path(tmp_path / "file.txt" / "m.safetensors", suffixes=[".safetensors"])
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(IsADirectoryError):
        check_output_path(tmp_path / "d.safetensors", suffixes=[".safetensors"])


def test_train_checks_out_before_training(tmp_path: Path, jets_file: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(train_app, "train_classifier", _must_not_run)
    monkeypatch.setattr(train_app, "load_datasets", _must_not_run)
    (tmp_path / "file.txt").write_text("x")
    bad = tmp_path / "file.txt" / "m.safetensors"
    res = runner.invoke(app, ["train", "--data", str(jets_file), "--out", str(bad), "--no-progress"])
    _one_line_error(res, "not a directory")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys")
def test_train_out_in_sys_fails_at_once(jets_file: Path, monkeypatch: Any) -> None:
    try:
        Path("/sys/aalearn-probe").touch()
    except OSError:
        pass
    else:
        Path("/sys/aalearn-probe").unlink()
        pytest.skip("/sys is writable here")
    monkeypatch.setattr(train_app, "train_classifier", _must_not_run)
    res = runner.invoke(app, ["train", "--data", str(jets_file), "--out", "/sys/m.safetensors"])
    _one_line_error(res, "not writable")


def test_attack_h5_out_rejected_before_attack(tmp_path: Path, jets_file: Path, monkeypatch: Any) -> None:
    help_text = runner.invoke(app, ["attack", "--help"]).output
    assert ".h5" not in help_text
    monkeypatch.setattr(audit_app, "attack_file", _must_not_run)
    args = [
        "attack",
        "--model",
        "aalearn:robust",
        "--data",
        str(jets_file),
        "--out",
        str(tmp_path / "adv.h5"),
    ]
    _one_line_error(runner.invoke(app, args), ".h5")


def test_attack_none_combined_rejected(jets_file: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(audit_app, "attack_file", _must_not_run)
    args = ["attack", "--model", "aalearn:robust", "--data", str(jets_file), "--constraints", "none,energy"]
    _one_line_error(runner.invoke(app, args), "cannot be combined")


@pytest.mark.parametrize(("constraints", "applied"), [("pt-sum,energy", ["pt-sum", "energy"]), ("none", [])])
def test_attack_json_records_constraints(
    jets_file: Path, constraints: str, applied: list[str], single_torch_thread: None
) -> None:
    args = ["attack", "--attack", "fgsm", "--model", "aalearn:robust", "--data", str(jets_file)]
    res = runner.invoke(app, [*args, "--n-max", "20", "--constraints", constraints, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert payload["constraints_applied"] == applied


def test_measure_negative_toys_rejected(jets_file: Path) -> None:
    args = [
        "measure",
        "--model",
        "aalearn:robust",
        "--signal",
        str(jets_file),
        "--background",
        str(jets_file),
    ]
    _one_line_error(runner.invoke(app, [*args, "--toys", "-5"]), "--toys")


def test_surrogate_validate_zero_threads_rejected(jets_file: Path) -> None:
    args = ["surrogate", "validate", "--reference", str(jets_file), "--candidate", str(jets_file)]
    _one_line_error(runner.invoke(app, [*args, "--threads", "0"]), "--threads")


def test_compare_help_hides_internal_argument() -> None:
    text = runner.invoke(app, ["compare", "--help"]).output
    assert "ctx_extra" not in text.lower()
    assert "--models" in text
