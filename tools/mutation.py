"""Mutation testing of aalearn's statistical core with mutmut 3 (issue 23): per-module scores.

A mutation score says how many small, deliberate bugs ("mutants": ``<`` for ``<=``, ``+`` for
``-``, a constant changed by one, a keyword argument dropped) the tests catch. mutmut 3 records
which test reaches which function and, for each mutant, runs only those tests; this script also
limits each module to the tests written for it (``GROUPS`` below), so that a mutant counts as
caught only when the module's own tests catch it, not when some slow end-to-end test does.

Each group runs in its own copy of ``src/``, ``tests/`` and ``pyproject.toml`` under
``--workdir`` (mutmut rewrites the code it tests into ``mutants/``; the checkout is never touched).
The copy's ``[tool.mutmut]`` section is the project's, plus the group's ``only_mutate`` files and
its ``pytest_add_cli_args_test_selection`` tests. Re-runs reuse mutmut's cache: only functions
whose source changed and mutants whose tests changed are re-tested.

Mutants listed in ``tools/mutation_equivalent.toml`` (each with the reason why no test can tell
it apart from the original) are excluded from the score. The score of a module is

    score = (killed + timeout) / (total - equivalent - skipped - not checked)

where "killed" counts mutants that made a selected test fail; "no tests" mutants (no selected
test reaches the function) count as survivors; "not checked" mutants are those a run stopped by
``--timeout`` did not reach (reported in their own column).

Usage (``make mutation`` installs mutmut==3.8.1 into the venv first; it is not part of CI)::

    python tools/mutation.py --out build/mutation                      # every group
    python tools/mutation.py --out build/mutation --group measurement  # one group
    python tools/mutation.py --out build/mutation --group calibration --sample 80   # an estimate
    python tools/mutation.py --out build/mutation --rerun-survivors    # after adding tests
    python tools/mutation.py --out build/mutation --report-only        # tables from the last run

Outputs in ``--out``: ``mutation.md`` (table per module, survivors with their diffs) and
``mutation.json`` (the same numbers, machine-readable).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = Path(__file__).resolve().parent / "mutation_equivalent.toml"

# Group name -> (source files to mutate, tests that are "the tests for that module").
# Source paths are relative to the repository root; tests are files or directories under tests/.
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "measurement": (
        ["src/aalearn/inference/measurement.py"],
        [
            "tests/inference/test_measurement.py",
            "tests/inference/test_measure_variations.py",
            "tests/inference/test_asimov.py",
            "tests/inference/test_mutants_measurement.py",
        ],
    ),
    "calibration": (
        ["src/aalearn/uncertainty/calibration.py"],
        ["tests/uncertainty/test_calibration.py", "tests/uncertainty/test_mutants_calibration.py"],
    ),
    "llm_scores": (
        ["src/aalearn/llm/scores.py"],
        ["tests/llm/test_scores.py", "tests/llm/test_mutants_scores.py"],
    ),
    "surrogate_metrics": (
        ["src/aalearn/surrogates/metrics.py"],
        [
            "tests/surrogates/test_metrics.py",
            "tests/surrogates/test_null.py",
            "tests/surrogates/test_mutants_metrics.py",
        ],
    ),
    "attacks": (
        [
            "src/aalearn/attacks/components.py",
            "src/aalearn/attacks/loop.py",
            "src/aalearn/attacks/result.py",
        ],
        [
            "tests/attacks/test_conformance.py",
            "tests/attacks/test_minimal.py",
            "tests/attacks/test_minifool.py",
            "tests/attacks/test_result.py",
            "tests/attacks/test_mutants_attacks.py",
        ],
    ),
    "constraints": (
        [
            "src/aalearn/constraints/base.py",
            "src/aalearn/constraints/budget.py",
            "src/aalearn/constraints/physics.py",
            "src/aalearn/constraints/tabular.py",
        ],
        [
            "tests/constraints/",
            # SpecBounds (tabular.py) is tested with the feature specifications of the trust audit
            "tests/apps/test_trust.py::test_spec_bounds_constraint_clamps_and_wraps",
            "tests/apps/test_trust.py::test_feature_spec_reads_sigma_bounds_period",
        ],
    ),
    "uncertainty": (
        ["src/aalearn/uncertainty/predictors.py", "src/aalearn/uncertainty/decomposition.py"],
        [
            "tests/uncertainty/test_predictors.py",
            "tests/uncertainty/test_decomposition.py",
            "tests/uncertainty/test_mutants_uncertainty.py",
        ],
    ),
    "llm_semantic": (
        ["src/aalearn/llm/semantic.py"],
        ["tests/llm/test_semantic.py", "tests/llm/test_mutants_semantic.py"],
    ),
    "surrogates": (
        ["src/aalearn/surrogates/amplification.py", "src/aalearn/surrogates/closure.py"],
        [
            "tests/surrogates/test_amplification.py",
            "tests/surrogates/test_closure.py",
            "tests/surrogates/test_mutants_surrogates.py",
        ],
    ),
    "sbi": (
        ["src/aalearn/inference/sbi/estimators.py", "src/aalearn/inference/sbi/diagnostics.py"],
        [
            "tests/inference/test_sbi_estimators.py",
            "tests/inference/test_diagnostics.py",
            "tests/inference/test_mutants_sbi.py",
        ],
    ),
}

# Tests left out of a group's mutation run, with the reason: a test that takes minutes would be
# re-run for every surviving mutant of every function it reaches (mutmut runs the fastest first
# and stops at the first failure, so only survivors pay for it).
DESELECT: dict[str, list[str]] = {
    # 200 and 1000 pyhf toy fits (minutes of CPU each); test_mutants_measurement.py checks the
    # coverage with 40 toys against the closed-form pulls of a one-bin experiment instead
    "measurement": [
        "tests/inference/test_measurement.py::test_coverage_is_68_percent",
        "tests/inference/test_measurement.py::test_coverage_with_systematic_comparable_to_statistics",
    ],
    # isinstance(obj, runtime_checkable Protocol) is False for mutmut's trampolined classes, so
    # this test fails on the unmutated copy and mutmut stops ("failed to collect stats")
    "uncertainty": ["tests/uncertainty/test_predictors.py::test_predictors_satisfy_the_protocol"],
}

# mutmut's exit-code vocabulary (mutmut/stats.py, version 3.8.1).
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    2: "interrupted",
    None: "not checked",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}


@dataclass
class ModuleScore:
    """Mutation counts of one source file; ``survivors`` are mutant names (equivalents excluded)."""

    module: str
    total: int = 0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    no_tests: int = 0
    equivalent: int = 0
    skipped: int = 0
    not_checked: int = 0
    other: int = 0
    sampled: bool = False
    survivors: list[str] = field(default_factory=list)

    @property
    def scored(self) -> int:
        """Mutants that count: all minus equivalents, mutmut-skipped and not (yet) checked ones."""
        return self.total - self.equivalent - self.skipped - self.not_checked

    @property
    def score(self) -> float:
        """Fraction of counted mutants that a test detected (killed or timed out)."""
        return (self.killed + self.timeout) / self.scored if self.scored else float("nan")

    def interval(self) -> tuple[float, float]:
        """Wilson 95 % interval of the score (the uncertainty of a random sample of mutants)."""
        n = self.scored
        if not n:
            return (float("nan"), float("nan"))
        z, p = 1.959964, self.score
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (centre - half, centre + half)


def load_equivalents(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """Mutant name -> reason, from ``[[equivalent]]`` tables with ``mutant`` and ``reason`` keys."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text("utf-8"))
    out: dict[str, str] = {}
    for entry in data.get("equivalent", []):
        name, reason = entry.get("mutant"), entry.get("reason", "")
        if not name or not reason.strip():
            raise ValueError(f"{path}: every equivalent mutant needs 'mutant' and a non-empty 'reason'")
        out[name] = reason
    return out


def _toml_value(value: object) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML as written by json.dumps.
    return json.dumps(value)


def group_config(
    base: dict[str, object], sources: list[str], tests: list[str], deselect: list[str] | None = None
) -> str:
    """The ``[tool.mutmut]`` section for one group: the project's settings plus its files and tests."""
    cfg = dict(base)
    if deselect:
        extra = [a for t in deselect for a in ("--deselect", t)]
        cfg["pytest_add_cli_args"] = list(base.get("pytest_add_cli_args", [])) + extra  # type: ignore[call-overload]
    cfg["only_mutate"] = [s.removeprefix("src/") for s in sources] + sources
    cfg["pytest_add_cli_args_test_selection"] = tests
    return "[tool.mutmut]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in cfg.items())


def _strip_section(text: str, header: str) -> str:
    pattern = re.compile(rf"^\[{re.escape(header)}\]\n(?:(?!^\[).*\n?)*", re.MULTILINE)
    return pattern.sub("", text)


def prepare_workdir(group: str, workdir: Path) -> Path:
    """Copy src/, tests/ and pyproject.toml into ``workdir/group`` and write the group's config."""
    sources, tests = GROUPS[group]
    tests = [t for t in tests if (ROOT / t).exists()]
    dest = workdir / group
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "tests"):
        shutil.copytree(ROOT / name, dest / name, dirs_exist_ok=True, ignore=ignore)
        # copytree never deletes: drop test files that no longer exist in the checkout
        for p in (dest / name).rglob("*.py"):
            if not (ROOT / p.relative_to(dest)).exists():
                p.unlink()
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    base = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    text = (
        _strip_section(text, "tool.mutmut").rstrip("\n")
        + "\n\n"
        + group_config(base, sources, tests, DESELECT.get(group))
    )
    (dest / "pyproject.toml").write_text(text, "utf-8")
    return dest


def _meta_path(workdir: Path, group: str, src: str) -> Path:
    meta = workdir / group / "mutants" / src
    return meta.with_name(meta.name + ".meta")


def _mutmut(dest: Path, args: list[str], timeout_s: float, log_name: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with (dest / log_name).open("w") as log:
        try:
            subprocess.run(
                [sys.executable, "-m", "mutmut", *args],
                cwd=dest,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(
                f"{dest.name}: mutmut stopped after {timeout_s:.0f} s; unfinished mutants are 'not checked'"
            )


def choose_sample(group: str, workdir: Path, n: int, seed: int) -> list[str]:
    """``n`` mutants per module drawn uniformly without replacement (all of them when fewer)."""
    rng = random.Random(seed)
    names: list[str] = []
    for src in GROUPS[group][0]:
        keys = sorted(json.loads(_meta_path(workdir, group, src).read_text("utf-8"))["exit_code_by_key"])
        names += sorted(rng.sample(keys, min(n, len(keys))))
    return names


def rerun_survivors(group: str, workdir: Path, max_children: int, timeout_s: float) -> float:
    """Re-test the survivors of the last run, and the mutants it did not reach, with the current tests.

    Restricted to the stored sample when the last run was a ``--sample`` run; killed mutants keep
    their result. Use it after adding tests, or to finish a run that was stopped.
    """
    dest = prepare_workdir(group, workdir)
    t0 = time.monotonic()
    sample_file = dest / "sample.json"
    sampled = set(json.loads(sample_file.read_text("utf-8"))["mutants"]) if sample_file.exists() else None
    names = []
    for src in GROUPS[group][0]:
        codes = json.loads(_meta_path(workdir, group, src).read_text("utf-8"))["exit_code_by_key"]
        names += [
            n
            for n, c in sorted(codes.items())
            if (sampled is None or n in sampled) and STATUS_BY_EXIT_CODE.get(c, "other") not in DETECTED
        ]
    if names:
        _mutmut(dest, ["run", "--max-children", str(max_children), *names], timeout_s, "mutmut-rerun.log")
    return time.monotonic() - t0


def run_group(
    group: str, workdir: Path, max_children: int, timeout_s: float, sample: int | None = None, seed: int = 0
) -> float:
    """Run ``mutmut run`` for one group (or a random sample of its mutants); returns the wall time (s).

    With ``sample``, a first pass that matches no mutant generates the mutants and the test
    statistics when they are missing; the drawn names are stored in ``sample.json``.
    """
    dest = prepare_workdir(group, workdir)
    t0 = time.monotonic()
    children = ["--max-children", str(max_children)]
    if sample is None:
        (dest / "sample.json").unlink(missing_ok=True)
        _mutmut(dest, ["run", *children], timeout_s, "mutmut-run.log")
        return time.monotonic() - t0
    if not all(_meta_path(workdir, group, src).exists() for src in GROUPS[group][0]):
        _mutmut(dest, ["run", *children, "no_such_mutant_*"], timeout_s, "mutmut-generate.log")
    names = choose_sample(group, workdir, sample, seed)
    (dest / "sample.json").write_text(json.dumps({"n": sample, "seed": seed, "mutants": names}, indent=1))
    left = max(timeout_s - (time.monotonic() - t0), 1.0)
    _mutmut(dest, ["run", *children, *names], left, "mutmut-run.log")
    return time.monotonic() - t0


def score_group(group: str, workdir: Path, equivalents: dict[str, str]) -> list[ModuleScore]:
    """Per-module counts from mutmut's ``mutants/<file>.meta`` files of one group."""
    sources, _ = GROUPS[group]
    sample_file = workdir / group / "sample.json"
    sampled = set(json.loads(sample_file.read_text("utf-8"))["mutants"]) if sample_file.exists() else None
    rows = []
    for src in sources:
        row = ModuleScore(module=src.removeprefix("src/"), sampled=sampled is not None)
        meta = _meta_path(workdir, group, src)
        if meta.exists():
            codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
            for name, code in sorted(codes.items()):
                if sampled is not None and name not in sampled:
                    continue
                status = STATUS_BY_EXIT_CODE.get(code, "other")
                row.total += 1
                if name in equivalents:
                    row.equivalent += 1
                elif status == "killed" or status in DETECTED - {"timeout"}:
                    row.killed += 1
                elif status == "timeout":
                    row.timeout += 1
                elif status == "skipped":
                    row.skipped += 1
                elif status == "not checked":
                    row.not_checked += 1
                elif status in {"survived", "no tests"}:
                    row.survived += status == "survived"
                    row.no_tests += status == "no tests"
                    row.survivors.append(name)
                else:
                    row.other += 1
                    row.survivors.append(name)
        rows.append(row)
    return rows


def mutant_diff(group: str, workdir: Path, name: str) -> str:
    """``mutmut show`` for one mutant (the unified diff against the original)."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=workdir / group,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return out.stdout.strip()


def write_report(
    results: dict[str, list[ModuleScore]], times: dict[str, float], out: Path, workdir: Path, diffs: bool
) -> None:
    """Write ``mutation.md`` and ``mutation.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Mutation scores (mutmut 3.8.1)",
        "",
        "score = (killed + timeout) / (total - equivalent - skipped - not checked); "
        "'no tests' counts as survived; 'not checked' are mutants a stopped run did not reach.",
        "",
        "With --sample, 'total' counts the sampled mutants and the score estimates the module's score;",
        "the 95 % interval is Wilson's for a binomial fraction.",
        "",
        "| module | group | killed | timeout | survived | no tests | equivalent | not checked | total "
        "| score | 95 % interval |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    payload: dict[str, object] = {"mutmut": "3.8.1", "groups": {}}
    for group, rows in results.items():
        for r in rows:
            lines.append(
                f"| {r.module} | {group} | {r.killed} | {r.timeout} | {r.survived} | {r.no_tests} | "
                f"{r.equivalent} | {r.not_checked} | {r.total}{' (sample)' if r.sampled else ''} | "
                f"{100 * r.score:.1f} % | {100 * r.interval()[0]:.0f}–{100 * r.interval()[1]:.0f} % |"
            )
        payload["groups"][group] = {  # type: ignore[index]
            "wall_s": round(times.get(group, float("nan")), 1),
            "modules": [dict(asdict(r), score=r.score, interval95=r.interval()) for r in rows],
        }
    lines += ["", "Wall time per group (s): " + ", ".join(f"{g} {t:.0f}" for g, t in times.items()), ""]
    for group, rows in results.items():
        for r in rows:
            if not r.survivors:
                continue
            lines += [f"## Survivors in {r.module}", ""]
            for name in r.survivors:
                if diffs:
                    lines += ["```diff", mutant_diff(group, workdir, name), "```", ""]
                else:
                    lines.append(f"- {name}")
            lines.append("")
    (out / "mutation.md").write_text("\n".join(lines) + "\n", "utf-8")
    (out / "mutation.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad arguments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for mutation.md and mutation.json")
    parser.add_argument("--group", action="append", choices=sorted(GROUPS), help="repeatable; default all")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aalearn-mutation"))
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per group")
    parser.add_argument("--sample", type=int, help="test N random mutants per module (estimate the score)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample")
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="re-test the last run's survivors and unreached mutants",
    )
    parser.add_argument("--report-only", action="store_true", help="only read the last run's results")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors by name only")
    args = parser.parse_args(argv)
    if args.max_children < 1:
        parser.error("--max-children must be at least 1")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    if not args.report_only and importlib.util.find_spec("mutmut") is None:
        parser.error("mutmut is not installed: run `make mutation` (installs mutmut==3.8.1 into .venv)")
    workdir = args.workdir.resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        parser.error("--workdir must lie outside the checkout (mutmut writes a mutated copy there)")
    equivalents = load_equivalents()
    groups = args.group or list(GROUPS)
    times: dict[str, float] = {}
    results: dict[str, list[ModuleScore]] = {}
    for group in groups:
        if args.rerun_survivors:
            times[group] = rerun_survivors(group, workdir, args.max_children, args.timeout)
        elif not args.report_only:
            times[group] = run_group(group, workdir, args.max_children, args.timeout, args.sample, args.seed)
        results[group] = score_group(group, workdir, equivalents)
        for r in results[group]:
            lo, hi = r.interval()
            detected = r.killed + r.timeout
            print(f"{r.module}: {detected}/{r.scored} = {100 * r.score:.1f} % (95 %: {lo:.2f}-{hi:.2f})")
    write_report(results, times, args.out, workdir, diffs=not args.no_diffs)
    print(f"wrote {args.out / 'mutation.md'} and {args.out / 'mutation.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
