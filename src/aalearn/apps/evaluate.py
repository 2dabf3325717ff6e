"""Evaluation app: accuracy, ROC AUC and background rejection of a model on a labelled file.

* :func:`evaluate_path` — a model (path or module) on a data file → an
  :class:`~aalearn.evaluation.EvaluationResult`;
* :func:`evaluate_file` — the ``aalearn evaluate`` command: the same, timed, as an
  :class:`EvaluationRun` (a :class:`~aalearn.core.result.Result`), with ``report.html`` and
  ``results.json`` when an output directory is given;
* :func:`metric_row` — the flat table row of an evaluation.

Every figure carries its confidence interval and the number of jets behind it
(:mod:`aalearn.evaluation.bootstrap`: Clopper–Pearson for the accuracy, the
label-stratified bootstrap with ``n_boot`` replicas for the AUC and the rejections; level
0.68 by default): ``intervals`` in the JSON, ``"<figure> 68% CI"`` columns in the table.

Example:
    >>> from aalearn.evaluation import evaluate_scores
    >>> metric_row(evaluate_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]))["auc"]
    1.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from aalearn.apps.inputs import load_data, load_model_arg
from aalearn.core.result import ReportBuilder
from aalearn.data.io import load_column_mapping
from aalearn.evaluation import EvaluationResult, evaluate_scores
from aalearn.evaluation.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, check_interval_options
from aalearn.models import predict_proba
from aalearn.report import plot_roc, plot_scores, write_run

__all__ = [
    "EvaluationRun",
    "evaluate_file",
    "evaluate_path",
    "evaluation_report",
    "labels_scores",
    "metric_row",
]


def metric_row(result: Any) -> dict[str, Any]:
    """Flat summary of an :class:`~aalearn.evaluation.EvaluationResult` for tables.

    Keys: ``n``, ``accuracy``, ``auc``, ``rejection@0.3``, ``rejection@0.5`` (1/ε_B at those
    signal efficiencies; ``inf`` when no background passes); when the evaluation has
    intervals, also ``"<figure> 68% CI"`` after each figure and ``n_boot``.

    Example:
        >>> from aalearn.evaluation import evaluate_scores
        >>> sorted(metric_row(evaluate_scores([0, 1], [0.2, 0.7])))
        ['accuracy', 'auc', 'n', 'rejection@0.3', 'rejection@0.5']
    """
    row: dict[str, Any] = result.summary()[0]
    return row


def evaluate_path(
    model: str | Path | nn.Module | Any,
    data: str | Path,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    **load_kwargs: Any,
) -> Any:
    """Evaluate a model (checkpoint, Keras HDF5 or module) on a labelled data file.

    Args:
        model: Checkpoint, Keras HDF5, ``aalearn:NAME`` or a module.
        data: Labelled data file.
        n_boot: Bootstrap replicas of the intervals (``0``: none).
        level: Confidence level of the intervals.
        seed: Seed of the bootstrap.
        **load_kwargs: Passed to :func:`aalearn.apps.inputs.load_data` (``columns``, ``tree``).

    Example:
        >>> evaluate_path  # doctest: +ELLIPSIS
        <function evaluate_path at ...>
    """
    net = load_model_arg(model)
    ds = load_data(data, require_labels=True, **load_kwargs)
    assert ds.labels is not None  # guaranteed by require_labels
    return evaluate_scores(ds.labels, predict_proba(net, ds.features), n_boot=n_boot, level=level, seed=seed)


def labels_scores(result: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.floating[Any]]]:
    """Labels and scores P(label = 1) back from an evaluation result (signal first).

    Example:
        >>> from aalearn.evaluation import evaluate_scores
        >>> labels_scores(evaluate_scores([0, 1], [0.2, 0.7]))[0].tolist()
        [0, 1]
    """
    labels = np.concatenate(
        [np.full(result.n_signal, result.signal_label), np.full(result.n_background, 1 - result.signal_label)]
    ).astype(np.int64)
    return labels, np.concatenate([result.scores_signal, result.scores_background])


@dataclass
class EvaluationRun:
    """An evaluation of a model on a data file (a :class:`~aalearn.core.result.Result`).

    Attributes:
        evaluation: The metrics.
        model: Model description.
        data: Data description.
        seconds: Wall-clock time of the evaluation (``None``: not timed).
        files: Paths written (``report``, ``results``), when any.
    """

    evaluation: EvaluationResult
    model: str
    data: str
    seconds: float | None = None
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``aalearn evaluate --json`` object: the metrics, ``seconds``, ``model``, ``data``, files."""
        out = self.evaluation.to_dict()
        if self.seconds is not None:
            out["seconds"] = self.seconds
        out["model"] = self.model
        out["data"] = self.data
        out.update(self.files)
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row: :func:`metric_row`, the time and the report path."""
        row = metric_row(self.evaluation)
        if self.seconds is not None:
            row["seconds"] = self.seconds
        if "report" in self.files:
            row["report"] = self.files["report"]
        return [row]

    def add_to(self, report: ReportBuilder) -> None:
        """The performance section: metrics table, ROC curve and score distributions."""
        result = self.evaluation
        figures = [plot_scores(*labels_scores(result))]
        if result.auc is not None:
            figures.insert(0, plot_roc({Path(self.data).name: (result.fpr, result.tpr, result.auc)}))
        report.add_section(
            "Performance",
            text="Accuracy at threshold 0.5, ROC AUC, background rejection 1/ε_B at fixed signal efficiency."
            + (
                " Intervals: Clopper–Pearson for the accuracy; percentile bootstrap stratified by label "
                "(n_boot replicas) for the AUC and the rejections; n is the number of jets."
                if result.intervals
                else ""
            ),
            table={**metric_row(result), "model": self.model, "data": self.data},
            figures=figures,
        )

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.html`` and ``results.json`` (metrics with curves) into ``out_dir``."""
        paths = write_run(
            self,
            out_dir,
            title="aalearn evaluation",
            subtitle=f"{self.model} on {self.data}",
            payload={**self.evaluation.to_dict(include_curves=True), "model": self.model, "data": self.data},
        )
        assert paths.report is not None  # a report name was given
        self.files = {"report": str(paths.report), "results": str(paths.results)}
        return {"report": paths.report, "results": paths.results}


def evaluation_report(result: Any, out_dir: str | Path, *, model: str, data: str) -> dict[str, Path]:
    """Write ``report.html`` (metrics, ROC, score distributions) and ``results.json``.

    Args:
        result: An :class:`~aalearn.evaluation.EvaluationResult`.
        out_dir: Output directory (created if needed).
        model: Model description for the report.
        data: Data description for the report.

    Returns:
        ``{"report": path, "results": path}``.

    Example:
        >>> evaluation_report  # doctest: +ELLIPSIS
        <function evaluation_report at ...>
    """
    return EvaluationRun(result, model, data).write(out_dir)


def evaluate_file(
    model: str,
    data: str | Path,
    *,
    columns: str | Path | None = None,
    tree: str | None = None,
    out: str | Path | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> EvaluationRun:
    """The ``aalearn evaluate`` command: evaluate ``model`` on ``data``, optionally writing a report.

    Args:
        model: Checkpoint, Keras HDF5 or ``aalearn:NAME``.
        data: Labelled data file.
        columns: JSON column mapping file (Parquet/ROOT).
        tree: TTree name (ROOT).
        out: Directory for ``report.html`` and ``results.json`` (``None``: nothing written).
        n_boot: Bootstrap replicas of the intervals (``0``: none; default 1000).
        level: Confidence level of the intervals (default 0.68).
        seed: Seed of the bootstrap (the intervals are reproducible given it).

    Returns:
        The :class:`EvaluationRun`.

    Example:
        >>> evaluate_file  # doctest: +ELLIPSIS
        <function evaluate_file at ...>
    """
    check_interval_options(n_boot, level)
    kwargs: dict[str, Any] = {}
    if columns is not None:
        kwargs["columns"] = load_column_mapping(columns)
    if tree is not None:
        kwargs["tree"] = tree
    start = time.perf_counter()
    evaluation = evaluate_path(model, data, n_boot=n_boot, level=level, seed=seed, **kwargs)
    run = EvaluationRun(evaluation, model, str(data), seconds=time.perf_counter() - start)
    if out is not None:
        run.write(out)
    return run
