"""Workflows behind ``aalearn sbi validate`` and ``aalearn sbi coverage``, with their report sections.

* :func:`validate_task` -- simulate an sbibm task, train a posterior, and compare its
  samples with sbibm's reference posterior samples by C2ST for each of the ten
  observations (the sbibm protocol of Lueckmann et al., arXiv:2101.04653), next to the
  published numbers.
* :func:`coverage_task` -- train on an sbibm task and run the coverage diagnostics
  (:func:`aalearn.inference.sbi.diagnostics.run_coverage`: SBC, expected HPD coverage,
  TARP, verdict) on fresh test simulations.
* :func:`add_coverage_section` / :func:`add_validation_section` -- report sections
  (also for other tasks, e.g. the physics task).

Example:
    >>> res = validate_task("gaussian_linear", simulations=2000, observations=[1])  # doctest: +SKIP
    >>> sorted(k for k in res if k.startswith("c2st"))  # doctest: +SKIP
    ['c2st', 'c2st_excess_vs_published', 'c2st_per_observation', 'c2st_std']
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from aalearn.inference.sbi.c2st import c2st
from aalearn.inference.sbi.cache import simulate
from aalearn.inference.sbi.diagnostics import CoverageReport, run_coverage
from aalearn.inference.sbi.estimators import METHODS, Method, train_posterior
from aalearn.inference.sbi.tasks import PUBLISHED_C2ST, PUBLISHED_SOURCE, SbibmTask, sbibm_task

if TYPE_CHECKING:  # pragma: no cover
    from aalearn.report import Report

__all__ = ["add_coverage_section", "add_validation_section", "coverage_task", "validate_task"]

FloatArray = npt.NDArray[np.float64]


def _task(task: str | SbibmTask) -> SbibmTask:
    return task if isinstance(task, SbibmTask) else sbibm_task(task)


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _threads(n: int | None) -> Any:
    """Context manager limiting torch's intra-op threads (``None``: leave as is)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx() -> Any:
        old = torch.get_num_threads()
        if n is not None:
            torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(old)

    return ctx()


def _published(task: str, method: str, simulations: int) -> dict[str, Any]:
    entry = PUBLISHED_C2ST.get(task, {}).get(method, {}).get(int(simulations))
    return {
        "published_c2st": entry[0] if entry else None,
        "published_c2st_std": entry[1] if entry else None,
        "published_source": PUBLISHED_SOURCE if entry else None,
        "published_table": {
            m: {str(k): v[0] for k, v in t.items()} for m, t in PUBLISHED_C2ST.get(task, {}).items()
        },
    }


def _validate(
    task: SbibmTask,
    *,
    method: str,
    simulations: int,
    seed: int,
    observations: Iterable[int],
    n_posterior_samples: int,
    cache: str | os.PathLike[str] | None,
    workers: int,
    progress: bool,
    threads: int | None,
    train_kwargs: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[int, FloatArray]]:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    simulations = _positive("simulations", simulations, 2)
    n_posterior_samples = _positive("n_posterior_samples", n_posterior_samples, 10)
    obs = [int(k) for k in observations]
    if not obs:
        raise ValueError("observations must name at least one observation number (1..10)")
    for k in obs:
        if not 1 <= k <= task.num_observations:
            raise ValueError(f"observation numbers must lie in 1..{task.num_observations}, got {k}")
    t0 = time.perf_counter()
    with _threads(threads):
        theta, x = simulate(
            task.simulator, simulations, seed=seed, cache=cache, workers=workers, progress=progress
        )
        t_sim = time.perf_counter() - t0
        post = train_posterior(
            theta,
            x,
            method=cast("Method", method),  # checked against METHODS above
            prior=task.simulator.prior,
            seed=seed,
            progress=progress,
            **dict(train_kwargs),
        )
        per_obs: dict[int, float] = {}
        samples: dict[int, FloatArray] = {}
        t_sample = t_c2st = 0.0
        for k in obs:
            t1 = time.perf_counter()
            s = post.sample(n_posterior_samples, task.observation(k), seed=seed + 1000 + k)
            t2 = time.perf_counter()
            reference = task.reference_samples(k)
            m = min(len(reference), len(s))  # equal sample sizes, as in sbibm (10,000 each)
            per_obs[k] = c2st(reference[:m], s[:m])
            t_c2st += time.perf_counter() - t2
            t_sample += t2 - t1
            samples[k] = s
            if progress:
                print(
                    f"{task.name} observation {k}: C2ST {per_obs[k]:.4f} ({time.perf_counter() - t2:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    values = np.array(list(per_obs.values()))
    pub = _published(task.name, method, simulations)
    mean = float(values.mean())
    result: dict[str, Any] = {
        "task": task.name,
        "method": method,
        "simulations": simulations,
        "seed": seed,
        "c2st": mean,
        "c2st_std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "c2st_per_observation": {str(k): v for k, v in per_obs.items()},
        "observations": obs,
        "n_posterior_samples": n_posterior_samples,
        **pub,
        "c2st_excess_vs_published": (
            max(0.0, mean - pub["published_c2st"]) if pub["published_c2st"] is not None else None
        ),
        "seconds": time.perf_counter() - t0,
        "seconds_simulate": t_sim,
        "seconds_train": post.seconds_train,
        "seconds_sample": t_sample,
        "seconds_c2st": t_c2st,
        "epochs": post.epochs,
        "training_settings": {
            k: v for k, v in train_kwargs.items() if isinstance(v, int | float | str | bool)
        },
        "c2st_protocol": "sbi.utils.metrics.c2st with sbibm's MLP settings (2x10*dim ReLU, adam, "
        "max_iter=10000, 5-fold KFold, z-scored by the reference)",
    }
    return result, samples


def validate_task(
    task: str | SbibmTask,
    *,
    method: str = "npe",
    simulations: int = 10_000,
    seed: int = 0,
    observations: Iterable[int] = range(1, 11),
    n_posterior_samples: int = 10_000,
    cache: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = False,
    threads: int | None = None,
    out: str | os.PathLike[str] | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Validate an estimator on an sbibm task by C2ST against the reference posteriors.

    Args:
        task: ``"two_moons"``, ``"slcp"``, ``"gaussian_linear"`` or an :class:`SbibmTask`.
        method: ``"npe"``, ``"nle"``, ``"nre"`` or ``"bnre"``.
        simulations: Training simulations (sbibm's budgets: 10³, 10⁴, 10⁵).
        seed: Seed of the simulations, the training and the posterior draws.
        observations: Observation numbers (1..10) to evaluate.
        n_posterior_samples: Posterior samples per observation (sbibm: 10,000, like the
            reference samples).
        cache: Simulation cache directory.
        workers: Worker processes for the simulations.
        progress: Progress output.
        threads: torch intra-op threads during the run (``None``: unchanged).
        out: Directory for ``report.html`` and ``result.json`` (``None``: no files).
        **train_kwargs: Passed on to :func:`~aalearn.inference.sbi.train_posterior`.

    Returns:
        A dict with at least ``c2st`` (mean over the observations),
        ``c2st_per_observation``, ``method``, ``simulations``, ``seconds``, the published
        NPE/NLE/NRE numbers (``published_c2st`` for this method and budget,
        ``published_table``) and ``c2st_excess_vs_published = max(0, c2st − published)``.

    Example:
        >>> validate_task("two_moons", simulations=10_000)["c2st"]  # doctest: +SKIP
        0.58
    """
    t = _task(task)
    result, samples = _validate(
        t,
        method=method,
        simulations=simulations,
        seed=seed,
        observations=observations,
        n_posterior_samples=n_posterior_samples,
        cache=cache,
        workers=workers,
        progress=progress,
        threads=threads,
        train_kwargs=train_kwargs,
    )
    if out is not None:
        from aalearn.core.jsonutil import to_jsonable
        from aalearn.report import Report

        directory = Path(out)
        report = Report(
            f"SBI validation: {t.name} ({method.upper()})", subtitle="C2ST against sbibm references"
        )
        for key in ("task", "method", "simulations", "seed"):
            report.add_metadata(key, result[key])
        add_validation_section(report, t, result, samples)
        result["report"] = str(report.write(directory / "report.html"))
        _write_json(directory / "result.json", to_jsonable(result))
    return result


def _write_json(path: Path, obj: Any) -> None:
    import json
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)


def add_validation_section(
    report: Report, task: SbibmTask, result: Mapping[str, Any], samples: Mapping[int, FloatArray]
) -> None:
    """Add the C2ST table and posterior-versus-reference plots of :func:`validate_task` to ``report``.

    Example:
        >>> add_validation_section(report, sbibm_task("two_moons"), result, samples)  # doctest: +SKIP
    """
    from aalearn.inference.sbi.plots import plot_c2st_per_observation, plot_posterior

    rows = [{"observation": int(k), "C2ST": v} for k, v in result["c2st_per_observation"].items()]
    pub = result.get("published_c2st")
    text = (
        f"C2ST accuracy between {result['n_posterior_samples']} posterior samples of aalearn's "
        f"{str(result['method']).upper()} ({result['simulations']} simulations) and sbibm's reference "
        f"posterior samples; 0.5 is perfect. Mean {result['c2st']:.3f} ± {result['c2st_std']:.3f} (sd over "
        f"{len(rows)} observations)"
        + (f"; sbibm published {pub:.3f} ({result['published_source']})." if pub is not None else ".")
        + f"\n\n{result['c2st_protocol']}."
    )
    figures = [plot_c2st_per_observation(result["c2st_per_observation"], published=pub)]
    first = min(samples)
    figures.append(
        plot_posterior(
            samples[first],
            reference=task.reference_samples(first),
            truth=task.true_parameters(first),
            names=task.simulator.parameter_names,
            title=f"{task.name}, observation {first}",
        )
    )
    report.add_section(f"C2ST on {task.name}", text=text, table=rows, figures=figures)


def coverage_task(
    task: str | SbibmTask,
    *,
    method: str = "npe",
    simulations: int = 10_000,
    test_simulations: int = 300,
    seed: int = 0,
    n_samples: int = 1000,
    significance: float = 0.01,
    ensemble: int = 1,
    cache: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = False,
    threads: int | None = None,
    out: str | os.PathLike[str] | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Train on an sbibm task and check the calibration of the posterior on fresh simulations.

    Args:
        task: An sbibm task name or :class:`SbibmTask`.
        method: ``"npe"``, ``"nle"``, ``"nre"`` or ``"bnre"``.
        simulations: Training simulations.
        test_simulations: Test pairs for the diagnostics (simulated with seed
            ``seed + 1``).
        seed: Seed of training simulations and training.
        n_samples: Posterior samples per test pair.
        significance: p-value threshold of the verdict.
        ensemble: Ensemble members.
        cache: Simulation cache directory.
        workers: Worker processes for the simulations.
        progress: Progress output.
        threads: torch intra-op threads (``None``: unchanged).
        out: Directory for ``report.html`` and ``result.json``.
        **train_kwargs: Passed on to :func:`~aalearn.inference.sbi.train_posterior`.

    Returns:
        :meth:`CoverageReport.to_dict` plus ``task``, ``method``, ``simulations``,
        ``seconds_train`` and ``seconds``.

    Example:
        >>> coverage_task("gaussian_linear", simulations=2000)["verdict"]  # doctest: +SKIP
        'calibrated'
    """
    t = _task(task)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    simulations = _positive("simulations", simulations, 2)
    test_simulations = _positive("test_simulations", test_simulations, 2)
    t0 = time.perf_counter()
    with _threads(threads):
        theta, x = simulate(
            t.simulator, simulations, seed=seed, cache=cache, workers=workers, progress=progress
        )
        post = train_posterior(
            theta,
            x,
            method=cast("Method", method),  # checked against METHODS above
            prior=t.simulator.prior,
            seed=seed,
            ensemble=ensemble,
            progress=progress,
            **train_kwargs,
        )
        rep = run_coverage(
            post,
            t.simulator,
            test_simulations,
            seed + 1,
            n_samples=n_samples,
            significance=significance,
            cache=None if cache is None else str(cache),
            workers=workers,
        )
        example = post.sample(n_samples, t.observation(1), seed=seed + 7)
    result = {
        "task": t.name,
        "method": method,
        "simulations": simulations,
        "test_simulations": test_simulations,
        "ensemble": ensemble,
        "seconds_train": post.seconds_train,
        **rep.to_dict(),
        "seconds": time.perf_counter() - t0,
    }
    if out is not None:
        from aalearn.core.jsonutil import to_jsonable
        from aalearn.inference.sbi.plots import plot_posterior
        from aalearn.report import Report

        directory = Path(out)
        report = Report(f"SBI coverage: {t.name} ({method.upper()})", subtitle=rep.verdict.message)
        for key in ("task", "method", "simulations", "test_simulations", "ensemble"):
            report.add_metadata(key, result[key])
        add_coverage_section(report, rep, title=f"Coverage of the {method.upper()} posterior on {t.name}")
        report.add_section(
            "Posterior for observation 1",
            text="aalearn's posterior samples against sbibm's reference posterior samples; the star marks "
            "the "
            "true parameters.",
            figures=[
                plot_posterior(
                    example,
                    reference=t.reference_samples(1),
                    truth=t.true_parameters(1),
                    names=t.simulator.parameter_names,
                    title=f"{t.name}, observation 1",
                )
            ],
        )
        result["report"] = str(report.write(directory / "report.html"))
        _write_json(directory / "result.json", to_jsonable(result))
    return result


def add_coverage_section(
    report: Report, coverage: CoverageReport, *, title: str = "Coverage diagnostics"
) -> None:
    """Add the verdict, SBC rank histograms, expected-coverage curve and TARP curve to ``report``.

    Args:
        report: The :class:`aalearn.report.Report` to extend.
        coverage: Result of :func:`aalearn.inference.sbi.diagnostics.run_coverage`.
        title: Section title.

    Example:
        >>> add_coverage_section(report, run_coverage(post, sim, 300, seed=1))  # doctest: +SKIP
    """
    from aalearn.inference.sbi.plots import plot_expected_coverage, plot_sbc_ranks, plot_tarp

    v = coverage.verdict
    table = {
        "verdict": v.verdict,
        "largest coverage deficit": v.max_deficit,
        "largest coverage excess": v.max_excess,
        "p (overconfident)": v.p_overconfident,
        "p (conservative)": v.p_conservative,
        "∫(coverage − level)": v.signed_area,
        "TARP area to diagonal": coverage.tarp.atc,
        "TARP KS p-value": coverage.tarp.ks_pvalue,
        **{
            f"SBC KS p ({n})": float(p)
            for n, p in zip(coverage.parameter_names, coverage.sbc.ks_pvalues, strict=True)
        },
        "test pairs": coverage.n_test,
        "posterior samples per pair": coverage.n_samples,
    }
    text = (
        f"{v.message}.\n\nExpected coverage of highest-posterior-density regions (Hermans et al., "
        "arXiv:2110.06581) via sbi's run_sbc with a -log q reduction; SBC ranks (Talts et al., "
        "arXiv:1804.06788) via sbi's run_sbc; TARP (Lemos et al., arXiv:2302.03026) via sbi's TARP core "
        "and check_tarp. The verdict "
        f"uses one-sided Kolmogorov-Smirnov tests of the coverage curve at significance {v.significance:g}: "
        "overconfident if significantly below the diagonal anywhere, conservative if significantly above."
    )
    figures = [
        plot_expected_coverage(coverage.expected_coverage, significance=v.significance),
        plot_tarp(coverage.tarp),
        plot_sbc_ranks(coverage.sbc),
    ]
    report.add_section(title, text=text, table=table, figures=figures)
