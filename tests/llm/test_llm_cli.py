"""``aalearn llm score|evaluate|perturb`` on the tiny GPT-2 and a stub server; user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aalearn.cli.main import app

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FAST = ["--samples", "2", "--max-new-tokens", "4"]


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_score_local_model(tiny_model_dir: Path) -> None:
    payload = _json(
        runner.invoke(
            app,
            [
                "llm",
                "score",
                "--model",
                str(tiny_model_dir),
                "--question",
                "What is 2 plus 2?",
                *FAST,
                "--threads",
                "1",
                "--json",
            ],
        )
    )
    assert isinstance(payload["answer"], str)
    assert len(payload["samples"]) == 2
    from aalearn.llm.scores import ALL_METHODS

    assert set(payload["scores"]) == set(ALL_METHODS)
    assert all(v is not None for v in payload["scores"].values())
    assert payload["approximate"] is True
    assert payload["seconds"] > 0


def test_evaluate_local_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ["llm", "evaluate", "--model", str(tiny_model_dir), "--dataset", "arithmetic", "--limit", "3"]
    payload = _json(
        runner.invoke(
            app, [*args, *FAST, "--methods", "msp,semantic_entropy", "--out", str(tmp_path / "r"), "--json"]
        )
    )
    for key in ("accuracy", "auroc", "prr", "seconds"):
        assert key in payload
    assert set(payload["auroc"]) == set(payload["prr"]) == {"msp", "semantic_entropy"}
    assert payload["n_questions"] == 3
    assert 0.0 <= payload["accuracy"] <= 1.0
    assert (tmp_path / "r" / "report.html").is_file()


def test_perturb_cli(tiny_model_dir: Path) -> None:
    shown = _json(
        runner.invoke(
            app, ["llm", "perturb", "--question", "What is 2 plus 2?", "--perturbations", "typo", "--json"]
        )
    )
    assert [r["strength"] for r in shown["perturbed"]] == [0.1, 0.25, 0.5]
    payload = _json(
        runner.invoke(
            app,
            [
                "llm",
                "perturb",
                "--model",
                str(tiny_model_dir),
                "--dataset",
                "arithmetic",
                "--limit",
                "2",
                "--perturbations",
                "distractor",
                "--strengths",
                "1",
                "--max-new-tokens",
                "4",
                "--json",
            ],
        )
    )
    assert payload["curves"][0]["perturbation"] == "distractor"
    assert "flip_rate" in payload["curves"][0]


def test_score_against_a_stub_server(stub_server, chat_reply_fn) -> None:  # type: ignore[no-untyped-def]
    server = stub_server(lambda m, p, b: (200, chat_reply_fn(["4"] * (b or {}).get("n", 1)), 0.0))
    payload = _json(
        runner.invoke(
            app,
            [
                "llm",
                "score",
                "--model",
                server.url,
                "--model-name",
                "stub",
                "--question",
                "2+2?",
                "--samples",
                "3",
                "--json",
            ],
        )
    )
    assert payload["answer"] == "4"
    assert payload["scores"]["semantic_entropy"] == 0.0
    assert payload["scores"]["msp"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["llm", "score", "--model", "default", "--question", "  "], "--question is empty"),
        (
            [
                "llm",
                "score",
                "--model",
                "http://127.0.0.1:9/v1",
                "--model-name",
                "m",
                "--question",
                "q",
                "--methods",
                "magic",
            ],
            "unknown method",
        ),
        (
            [
                "llm",
                "evaluate",
                "--model",
                "http://127.0.0.1:9/v1",
                "--model-name",
                "m",
                "--dataset",
                "trivia",
            ],
            "unknown dataset",
        ),
        (["llm", "perturb", "--perturbations", "shout", "--question", "q"], "unknown perturbation"),
        (
            ["llm", "evaluate", "--model", "http://127.0.0.1:9/v1", "--model-name", "m", "--threads", "0"],
            "--threads",
        ),
        (["llm", "score", "--model", "/nonexistent/model", "--question", "q"], "does not exist"),
    ],
)
def test_user_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unknown_entailment_exits_2(tiny_model_dir: Path) -> None:
    result = runner.invoke(
        app, ["llm", "score", "--model", str(tiny_model_dir), "--question", "q", "--entailment", "magic"]
    )
    assert result.exit_code == 2
    assert "unknown entailment" in result.output


def test_unreachable_endpoint_exits_2(unused_port: int) -> None:
    result = runner.invoke(
        app,
        [
            "llm",
            "score",
            "--model",
            f"http://127.0.0.1:{unused_port}/v1",
            "--model-name",
            "m",
            "--question",
            "q",
            "--timeout",
            "1",
            "--methods",
            "msp",
        ],
    )
    assert result.exit_code == 2
    assert "could not reach" in result.output
