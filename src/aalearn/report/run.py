"""``write_run``: the one place where a command's result becomes files on disk.

Every CLI command that takes ``--out`` hands its :class:`~aalearn.core.result.Result` to
:func:`write_run`, which writes the JSON object (``results.json`` by default) and the
HTML report (``report.html``) atomically into the output directory. The report is
built by the result itself (:meth:`~aalearn.core.result.Result.add_to`), so the
terminal table, the JSON and the page never disagree.

Example:
    >>> import pathlib, tempfile
    >>> from aalearn.core.result import DictResult
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> paths = write_run(DictResult({"auc": 0.91}, title="Evaluation"), out, title="Demo")
    >>> sorted(p.name for p in out.iterdir())
    ['report.html', 'results.json']
    >>> paths.to_dict()["results"].endswith("results.json")
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aalearn.core.jsonutil import write_json
from aalearn.core.result import Result
from aalearn.report.html import Report

__all__ = ["RunPaths", "write_run"]


@dataclass(frozen=True)
class RunPaths:
    """Where :func:`write_run` put the files."""

    results: Path
    report: Path | None

    def to_dict(self) -> dict[str, str]:
        """``{"results": ..., "report": ...}`` as strings (``report`` left out when none)."""
        out = {"results": str(self.results)}
        if self.report is not None:
            out["report"] = str(self.report)
        return out


def write_run(
    result: Result,
    out_dir: str | os.PathLike[str],
    *,
    title: str,
    subtitle: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
    json_name: str = "results.json",
    report_name: str | None = "report.html",
    build_report: Callable[[Report], None] | None = None,
) -> RunPaths:
    """Write ``result`` as JSON and as an HTML report into ``out_dir``.

    Args:
        result: Any :class:`~aalearn.core.result.Result`.
        out_dir: Output directory (created when missing).
        title: Report title.
        subtitle: Optional line under the title.
        metadata: Run information shown at the top of the report (model, data, seed).
        payload: The JSON object to write instead of ``result.to_dict()`` (for commands
            whose file holds more than their ``--json`` object, such as curves).
        json_name: File name of the JSON object.
        report_name: File name of the report; ``None`` writes no report.
        build_report: Called with the report after ``result.add_to``, for sections
            that need the command's inputs (overlays of the input files, ...).

    Returns:
        The paths written.

    Raises:
        TypeError: If ``result`` does not implement the Result protocol.
        NotADirectoryError: If ``out_dir`` exists and is not a directory.
    """
    if not isinstance(result, Result):
        raise TypeError(f"write_run needs a Result (to_dict, summary, add_to), got {type(result).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    report_path: Path | None = None
    if report_name is not None:
        report = Report(title, subtitle=subtitle)
        for key, value in (metadata or {}).items():
            report.add_metadata(str(key), value)
        result.add_to(report)
        if build_report is not None:
            build_report(report)
        report_path = report.write(out / report_name)
    data = dict(payload) if payload is not None else result.to_dict()
    results_path = write_json(data, out / json_name)
    return RunPaths(results=results_path, report=report_path)
