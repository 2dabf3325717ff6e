"""The architecture stays as docs/architecture.md describes it.

* no function-level import of an aalearn module (they hide import cycles; the layer
  contract of import-linter, run by ``make lint``, only sees what is imported);
* no module over 1000 lines (split along seams);
* the layer contract itself, when import-linter is installed.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aalearn"
MAX_LINES = 1000


def _function_level_aalearn_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module or ""]
                )
                if getattr(child, "level", 0) or any(
                    n == "aalearn" or n.startswith("aalearn.") for n in names
                ):
                    found.append(f"{path.relative_to(SRC.parent)}:{child.lineno}")
            visit(child, inside)

    visit(tree, False)
    return found


def test_no_function_level_aalearn_imports() -> None:
    offenders = [hit for p in sorted(SRC.rglob("*.py")) for hit in _function_level_aalearn_imports(p)]
    assert offenders == [], (
        "aalearn modules imported inside functions (move the import to the top of the module; "
        f"if that makes a cycle, the code is in the wrong layer): {offenders}"
    )


def test_detector_finds_a_function_level_import(tmp_path: Path) -> None:
    bad = SRC / "_probe_function_import.py"
    try:
        bad.write_text("def f():\n    from aalearn.core import io\n    return io\n", encoding="utf-8")
        assert _function_level_aalearn_imports(bad) == ["aalearn/_probe_function_import.py:2"]
    finally:
        bad.unlink()


def test_no_module_over_the_size_limit() -> None:
    sizes = {
        str(p.relative_to(SRC.parent)): len(p.read_text(encoding="utf-8").splitlines())
        for p in SRC.rglob("*.py")
    }
    too_long = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines (split them along their seams): {too_long}"


def test_layer_contract_holds() -> None:
    exe = shutil.which("lint-imports") or str(
        Path(__file__).resolve().parents[1] / ".venv" / "bin" / "lint-imports"
    )
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (make setup installs it)")
    proc = subprocess.run(
        [exe, "--no-cache"], cwd=SRC.parents[1], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
