"""The registry of reproductions (name → source, tolerance, runner)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aalearn.core.result import ReportBuilder

__all__ = ["REGISTRY", "Reproduction", "ReproductionResult", "get", "register", "run"]


@dataclass(frozen=True)
class ReproductionResult:
    """Outcome of one reproduction (a :class:`~aalearn.core.result.Result`).

    Attributes:
        name: Registry name.
        passed: Whether every measured value is within tolerance of its reference.
        values: Measured values.
        expected: Reference values (published numbers or peer-library outputs).
        tolerance: Absolute tolerance per compared key.
        source: Where the reference values come from.
        seconds: Wall-clock time of the run.
        details: Extra, non-compared information.
    """

    name: str
    passed: bool
    values: dict[str, float]
    expected: dict[str, float]
    tolerance: dict[str, float]
    source: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; the measured values are also top-level keys."""
        out: dict[str, Any] = dict(self.values)
        out.update(
            {
                "name": self.name,
                "passed": self.passed,
                "expected": self.expected,
                "tolerance": self.tolerance,
                "source": self.source,
                "seconds": round(self.seconds, 3),
                "details": self.details,
            }
        )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One terminal row per measured quantity: measured, reference and tolerance."""
        return [
            {
                "quantity": k,
                "measured": v,
                "reference": self.expected.get(k),
                "tolerance": self.tolerance.get(k),
            }
            for k, v in self.values.items()
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """A section with the verdict, the source and the comparison table."""
        report.add_section(
            f"Reproduction {self.name}: {'PASS' if self.passed else 'FAIL'}",
            text=f"Reference: {self.source}.",
            table=self.summary(),
        )


@dataclass(frozen=True)
class Reproduction:
    """A registered reproduction.

    Attributes:
        name: Command-line name.
        description: One line on what is reproduced.
        source: Publication or peer library behind the reference numbers.
        expected: Reference values.
        tolerance: Absolute tolerance per key of ``expected``.
        runner: Function computing the measured values (and optional details).
        floor: Keys compared one-sidedly: the value passes when it lies in
            ``[floor[key], expected[key] + tolerance[key]]``. For quantities with a known
            bound that a reproduction may approach more closely than the publication did
            (an expected uncertainty cannot go below the unbinned Cramér–Rao bound, but a
            better-trained model may come closer to it than the paper's median).
    """

    name: str
    description: str
    source: str
    expected: Mapping[str, float]
    tolerance: Mapping[str, float]
    runner: Callable[[], tuple[dict[str, float], dict[str, Any]]]
    floor: Mapping[str, float] = field(default_factory=dict)

    def within(self, key: str, value: float) -> bool:
        """Whether ``value`` passes the comparison of ``key`` (two-sided, or one-sided with a floor)."""
        ref, tol = self.expected[key], self.tolerance[key]
        if not math.isfinite(value):
            return False
        if key in self.floor:
            return self.floor[key] <= value <= ref + tol
        return abs(value - ref) <= tol

    def run(self) -> ReproductionResult:
        """Run the reproduction and compare with the reference values."""
        start = time.perf_counter()
        values, details = self.runner()
        passed = all(key in values and self.within(key, values[key]) for key in self.expected)
        return ReproductionResult(
            self.name,
            passed,
            values,
            dict(self.expected),
            dict(self.tolerance),
            self.source,
            time.perf_counter() - start,
            details,
        )

    def summary(self) -> dict[str, Any]:
        """Listing entry: name, description, source, reference values and tolerances."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "expected": dict(self.expected),
            "tolerance": dict(self.tolerance),
            "floor": dict(self.floor),
        }

    def table_row(self) -> dict[str, Any]:
        """Row of ``aalearn reproduce --list``: name, reference values, tolerances, source."""
        return {
            "name": self.name,
            "reference": ", ".join(f"{k} = {v}" for k, v in self.expected.items()),
            "tolerance": ", ".join(
                f"+{v} (floor {self.floor[k]})" if k in self.floor else f"±{v}"
                for k, v in self.tolerance.items()
            ),
            "source": self.source,
        }


REGISTRY: dict[str, Reproduction] = {}


def register(reproduction: Reproduction) -> Reproduction:
    """Add a reproduction to the registry (names must be unique)."""
    if reproduction.name in REGISTRY:
        raise ValueError(f"a reproduction named {reproduction.name!r} is already registered")
    if set(reproduction.expected) != set(reproduction.tolerance):
        raise ValueError(f"{reproduction.name}: every expected value needs a tolerance")
    REGISTRY[reproduction.name] = reproduction
    return reproduction


def get(name: str) -> Reproduction:
    """Look up a reproduction; ``ValueError`` listing the known names if unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown reproduction {name!r}; known: {', '.join(REGISTRY)}") from None


def run(name: str) -> ReproductionResult:
    """Run the reproduction called ``name``."""
    return get(name).run()


# Registration order is the listing order: the challenge model comes first (the modules
# are imported by name in this order; an import sorter must not reorder them).
import importlib  # noqa: E402

for _module in ("challenge", "attacks", "asimov", "pivot", "sbibm", "jetnet"):
    importlib.import_module(f"aalearn.reproduce.{_module}")
