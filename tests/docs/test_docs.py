"""The documentation cannot drift from the code.

* Every ```` ```python ```` block of ``docs/**/*.md`` is executed, the blocks of one page in order
  in one namespace (a page may build on its earlier blocks), in a temporary working directory.
  A block that needs big data, minutes of training or the network is fenced ```` ```python skip ````
  instead; the page says so next to it, and :func:`test_skipped_blocks_are_rare` keeps them rare.
* Every option that a page shows for an ``aalearn`` command exists in that command's ``--help``.
* Every relative link between pages points to an existing page, every page is in the site's
  navigation (``mkdocs.yml``), and ``mkdocs build --strict`` (warnings are errors: broken
  cross-references, missing pages, unknown anchors) succeeds. The build is skipped, saying so, when
  mkdocs is not installed, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SKIP_MARKER = "python skip"
MAX_SKIPPED = 5  # blocks that need the network, minutes of training or a cluster
LINK = re.compile(r"\]\(([^)#\s]+\.md)(#[^)\s]*)?\)")


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts)


def blocks_of(text: str) -> list[tuple[str, str]]:
    """``(info, code)`` of every fenced block of ``text`` (info: the text after the backticks)."""
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def blocks(page: Path) -> list[tuple[str, str]]:
    return blocks_of(page.read_text(encoding="utf-8"))


def python_pages() -> list[Path]:
    return [p for p in pages() if any(info == "python" for info, _ in blocks(p))]


def test_fence_parser_finds_blocks(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("text ```` ```python ```` inline\n\n```python\na = 1\n```\n\n```python skip\nb\n```\n")
    assert blocks(page) == [("python", "a = 1\n"), ("python skip", "b\n")]


def test_only_known_python_markers() -> None:
    """A typo such as ```` ```python no-run ```` must not silently drop an example."""
    bad = [
        (p.relative_to(DOCS).as_posix(), info)
        for p in pages()
        for info, _ in blocks(p)
        if info.startswith("python") and info not in ("python", SKIP_MARKER)
    ]
    assert not bad, f"unknown python fence markers (use 'python' or '{SKIP_MARKER}'): {bad}"


def test_skipped_blocks_are_rare() -> None:
    skipped = [
        p.relative_to(DOCS).as_posix() for p in pages() for info, _ in blocks(p) if info == SKIP_MARKER
    ]
    assert len(skipped) <= MAX_SKIPPED, f"too many '{SKIP_MARKER}' blocks: {skipped}"


@pytest.fixture
def _quiet_torch() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("_quiet_torch")
@pytest.mark.parametrize("page", python_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for i, (info, code) in enumerate(blocks(page)):
        if info != "python":
            continue
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}[block {i}]", "exec"), namespace)
        except Exception as exc:  # re-raised with the page and block named
            raise AssertionError(f"{page.relative_to(ROOT)}: python block {i} failed: {exc!r}") from exc


def test_relative_links_resolve() -> None:
    broken = []
    for page in pages():
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target, _anchor in LINK.findall(text):
            if "://" in target:
                continue
            if not (page.parent / target).resolve().is_file():
                broken.append(f"{page.relative_to(DOCS).as_posix()} -> {target}")
    assert not broken, f"links to missing pages: {broken}"


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"([\w./-]+\.md)\s*$", nav, re.MULTILINE))
    missing = [
        p.relative_to(DOCS).as_posix() for p in pages() if p.relative_to(DOCS).as_posix() not in listed
    ]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"
    absent = sorted(name for name in listed if not (DOCS / name).is_file())
    assert not absent, f"nav entries without a page: {absent}"


COMMAND = re.compile(r"(?:\S+=\S+ )*aalearn ((?:surrogate|sbi|llm|challenge) [a-z0-9-]+|[a-z]+)\b(.*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def documented_flags() -> dict[str, set[str]]:
    """``command -> {--flag}`` of every ``aalearn COMMAND ... --flag`` line in the docs and README."""
    found: dict[str, set[str]] = {}
    for page in [*pages(), ROOT / "README.md"]:
        text = page.read_text(encoding="utf-8")
        shell = [code for info, code in blocks_of(text) if info in ("bash", "")]
        inline = re.findall(r"`(aalearn [^`]+)`", FENCE.sub("", text))
        for line in "\n".join([*shell, *inline]).replace("\\\n", " ").splitlines():
            m = COMMAND.match(line.strip())
            if m:
                found.setdefault(m.group(1), set()).update(FLAG.findall(m.group(2).split("#")[0]))
    return found


def test_documented_command_options_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option the guides show for a command is in that command's ``--help`` (no drift)."""
    from typer.testing import CliRunner

    from aalearn.cli.main import app

    monkeypatch.setenv("COLUMNS", "250")  # no wrapped option names in the help tables
    flags = documented_flags()
    assert {"attack", "audit", "measure", "generate"} <= set(flags)
    runner = CliRunner()
    missing = []
    for command, options in sorted(flags.items()):
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"aalearn {command} --help failed: {result.output[-500:]}"
        assert "--no-such-option" not in result.output
        missing += [f"aalearn {command} {opt}" for opt in sorted(options) if opt not in result.output]
    assert not missing, f"options shown in the docs but not in --help: {missing}"


def _mkdocs() -> list[str] | None:
    exe = Path(sys.executable).with_name("mkdocs")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("mkdocs")
    return [found] if found else None


def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` (what ``make docs`` runs), offline, into a temporary directory."""
    cmd = _mkdocs()
    if cmd is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mkdocs is not installed (make setup installs the pinned docs toolchain)")
        pytest.skip("mkdocs is not installed; `make setup` installs it (pins in the Makefile)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [*cmd, "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "attacks.html").is_file()


def test_docstring_rewrite_for_the_api_reference() -> None:
    """The griffe extension turns ``Example:`` into an examples section and Sphinx roles into code."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_docstrings", DOCS / "_ext" / "griffe_docstrings.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (
        "Uses :func:`~aalearn.attacks.get_attack` and :math:`\\sigma`.\n\n    Example:\n        >>> [1, 2]\n"
    )
    assert (
        module.rewrite(text)
        == "Uses `aalearn.attacks.get_attack` and `\\sigma`.\n\n    Examples:\n        >>> [1, 2]\n"
    )
    math = "Entropy\n\n    .. math::\n\n        H = -p \\log p\n\n    per jet.\n"
    assert module.rewrite(math) == "Entropy\n\n    ```latex\n    H = -p \\log p\n    ```\n\n    per jet.\n"
