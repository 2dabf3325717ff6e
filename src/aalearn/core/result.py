"""The one result model: what every command of aalearn returns.

Every pillar's result (an attack run, a calibration study, a measurement, a surrogate
validation, an LLM evaluation, ...) implements :class:`Result`:

* ``to_dict()`` -- the JSON object printed by ``--json`` and written as
  ``results.json`` (keys are part of the public interface: scripts read them);
* ``summary()`` -- the rows of the terminal table (a list of flat mappings);
* ``add_to(report)`` -- adds the result's sections to an HTML report.

The report is passed in as a :class:`ReportBuilder` (the methods of
:class:`aalearn.report.Report` that results use), so a pillar never imports the report
layer above it. :func:`aalearn.report.write_run` writes any result: ``results.json``
plus ``report.html``.

This follows scikit-learn's and pyhf's habit of small protocols over base classes: a
result is any object with these three methods, checked with ``isinstance(x, Result)``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Count:
    ...     n: int
    ...     def to_dict(self): return {"n": self.n}
    ...     def summary(self): return [{"n": self.n}]
    ...     def add_to(self, report): report.add_section("Count", table={"n": self.n})
    >>> isinstance(Count(3), Result)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["DictResult", "ReportBuilder", "Result"]


@runtime_checkable
class ReportBuilder(Protocol):
    """What a result may call on a report (implemented by :class:`aalearn.report.Report`)."""

    def add_section(
        self,
        title: str,
        *,
        text: str | None = None,
        table: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        figures: Sequence[Any] = (),
        anchor: str | None = None,
    ) -> None:
        """Append a titled section of text, one table and figures."""

    def add_metadata(self, key: str, value: Any) -> None:
        """Add a key/value pair to the run-information box."""


@runtime_checkable
class Result(Protocol):
    """The protocol every command's result implements (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the result (``--json`` and ``results.json``)."""

    def summary(self) -> list[dict[str, Any]]:
        """Rows of the terminal table."""

    def add_to(self, report: ReportBuilder) -> None:
        """Add the result's sections to ``report``."""


@dataclass
class DictResult:
    """A :class:`Result` around a plain mapping, for commands whose output is a flat record.

    Args:
        data: The JSON object.
        title: Section title in the report.
        rows: Terminal-table rows; defaults to one row of the scalar entries of ``data``.
        sections: Extra report sections as ``(title, kwargs)`` pairs for ``add_section``.

    Example:
        >>> r = DictResult({"auc": 0.9, "n": 10}, title="Evaluation")
        >>> r.summary()
        [{'auc': 0.9, 'n': 10}]
    """

    data: dict[str, Any]
    title: str = "Results"
    rows: list[dict[str, Any]] | None = None
    sections: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The mapping itself."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """The given rows, or one row of the scalar entries."""
        if self.rows is not None:
            return self.rows
        return [{k: v for k, v in self.data.items() if isinstance(v, str | int | float | bool) or v is None}]

    def add_to(self, report: ReportBuilder) -> None:
        """One summary table, then the extra sections."""
        rows = self.summary()
        if rows and any(rows[0]):
            report.add_section(self.title, table=rows if len(rows) > 1 else rows[0])
        for title, kwargs in self.sections:
            report.add_section(title, **kwargs)
