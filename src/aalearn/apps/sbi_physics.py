"""The workflow behind ``aalearn sbi physics``: infer Pythia parameters from top jets, write the outputs.

* :func:`physics_inference` -- check the command's options, run
  :func:`aalearn.inference.sbi.physics.infer_pythia_parameters` and, with an output
  directory, write ``report.html`` and ``result.json``;
* :func:`write_physics_outputs` -- the writer (through :func:`aalearn.report.write_run`).

Example:
    >>> result, data = physics_inference(simulations=2000, observed_jets=50)  # doctest: +SKIP
    >>> data["parameter"]  # doctest: +SKIP
    'top_mass'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

from aalearn.inference.sbi.physics import PhysicsInferenceResult, infer_pythia_parameters
from aalearn.report import write_run

__all__ = ["physics_inference", "write_physics_outputs"]

#: The Monash 2013 value of the FSR αs, the default true value when it is inferred.
_ALPHA_S_DEFAULT = 0.1365


def write_physics_outputs(result: PhysicsInferenceResult, out: str | Path) -> dict[str, str]:
    """Write ``report.html`` (posterior, held-out coverage, observables) and ``result.json`` into ``out``.

    ``result.json`` holds :meth:`PhysicsInferenceResult.to_dict` plus, when the coverage
    was measured, ``coverage_diagnostics`` (the full
    :class:`~aalearn.inference.sbi.diagnostics.CoverageReport`).

    Args:
        result: Result of :func:`~aalearn.inference.sbi.physics.infer_pythia_parameters`.
        out: Output directory (created if needed).

    Returns:
        ``{"report": path, "results": path}``.

    Raises:
        ValueError: If ``out`` is an existing file.

    Example:
        >>> write_physics_outputs(result, "sbi-physics")  # doctest: +SKIP
        {'report': 'sbi-physics/report.html', 'results': 'sbi-physics/result.json'}
    """
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"output {directory} is a file; give a directory")
    data = result.to_dict()
    if result.coverage_report is not None:
        data["coverage_diagnostics"] = result.coverage_report.to_dict()
    paths = write_run(
        result,
        directory,
        title="SBI with Pythia: top-quark mass from jets",
        subtitle=(
            f"{result.method.upper()}, {result.simulations} simulated jets, "
            f"{result.observed_jets} observed jets"
        ),
        metadata={
            key: getattr(result, key)
            for key in ("method", "simulations", "observed_jets", "jets_per_simulation")
        },
        payload=data,
        json_name="result.json",
    )
    return {"report": str(paths.report), "results": str(paths.results)}


def physics_inference(
    *,
    simulations: int = 10_000,
    observed_jets: int = 100,
    true_mass: float = 172.5,
    alpha_s: bool = False,
    true_alpha_s: float | None = None,
    method: str | None = None,
    observables: str | None = None,
    held_out_sets: int = 30,
    jets_per_simulation: int = 50,
    workers: int = 1,
    scheduler: str | None = None,
    seed: int = 0,
    ensemble: int = 1,
    max_epochs: int | None = None,
    cache: str | Path | None = None,
    no_cache: bool = False,
    out: str | Path | None = None,
    progress: bool = False,
) -> tuple[PhysicsInferenceResult, dict[str, Any]]:
    """Run ``aalearn sbi physics``: infer the top mass (and optionally the FSR αs) from Pythia jets.

    Args:
        simulations: Training jets.
        observed_jets: Jets in the observed set (and in each held-out set).
        true_mass: True top mass of the observed set (GeV).
        alpha_s: Also infer the FSR αs.
        true_alpha_s: True FSR αs of the observed set (needs ``alpha_s``; default 0.1365).
        method: ``None`` (``"summary"`` with ``alpha_s``, else ``"bnre"``), ``"bnre"``,
            ``"nle"``, ``"nre"`` or ``"summary"`` (the Gaussian synthetic likelihood of
            per-jet summary means; use it with ``alpha_s``: the per-jet
            networks' errors add up over the jets, see
            :mod:`aalearn.inference.sbi.physics.summary`).
        observables: Comma-separated subset of the observables (default: all).
        held_out_sets: Held-out sets for the coverage (0: skip).
        jets_per_simulation: Jets per Pythia run.
        workers: Local workers for the simulations.
        scheduler: Dask scheduler address.
        seed: Seed of everything.
        ensemble: Independently trained estimators.
        max_epochs: Limit on training epochs.
        cache: Simulation cache directory (default: the aalearn cache).
        no_cache: Neither read nor write the simulation cache.
        out: Directory for ``report.html`` and ``result.json`` (``None``: no files).
        progress: Progress bars on stderr.

    Returns:
        The result and its JSON object (with ``report`` and ``results`` paths when
        ``out`` is given).

    Raises:
        ValueError: For an unknown method, ``true_alpha_s`` without ``alpha_s``, or the
            errors of :func:`~aalearn.inference.sbi.physics.infer_pythia_parameters`.

    Example:
        >>> _, data = physics_inference(simulations=2000, out="sbi-physics")  # doctest: +SKIP
        >>> sorted(k for k in data if k in ("report", "results"))  # doctest: +SKIP
        ['report', 'results']
    """
    if method is not None and method not in ("nle", "nre", "bnre", "summary"):
        raise ValueError(f"--method must be summary, bnre, nle or nre, got {method!r}")
    if true_alpha_s is not None and not alpha_s:
        raise ValueError("--true-alpha-s needs --alpha-s (alpha_s is fixed at 0.1365 otherwise)")
    parameters = ("top_mass", "alpha_s_fsr") if alpha_s else ("top_mass",)
    truth = {"top_mass": true_mass}
    if alpha_s:
        truth["alpha_s_fsr"] = _ALPHA_S_DEFAULT if true_alpha_s is None else true_alpha_s
    result = infer_pythia_parameters(
        parameters=parameters,
        simulations=simulations,
        observed_jets=observed_jets,
        true_value=truth,
        method=cast("Literal['nle', 'nre', 'bnre', 'summary'] | None", method),  # checked above
        observables=observables,
        held_out_sets=held_out_sets,
        jets_per_simulation=jets_per_simulation,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        cache=None if no_cache else (cache if cache is not None else "default"),
        ensemble=ensemble,
        max_epochs=max_epochs,
        progress=progress,
    )
    data = result.to_dict()
    if out is not None:
        data.update(write_physics_outputs(result, out))
    return result, data
