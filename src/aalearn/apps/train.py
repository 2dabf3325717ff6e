"""Training app: train a tagger on labelled files with any architecture and training strategy.

* :func:`train_model` — train on a :class:`~aalearn.data.JetDataset` (split, input
  standardisation, the one training loop, checkpoint);
* :func:`train_topodnn` — the same with the challenge's reference network;
* :func:`train_files` — the ``aalearn train`` command: files in, checkpoint out.

Example:
    >>> from aalearn.apps.train import TrainRun, train_model
    >>> sorted(f for f in TrainRun.__dataclass_fields__)[:3]
    ['checkpoint', 'history', 'metadata']
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from aalearn import __version__
from aalearn.apps.inputs import finite_float, load_datasets, parse_name_value
from aalearn.core.config import TrainConfig
from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_output_path
from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.data.reweight import REFERENCE_ROWS, REWEIGHT_VARIABLES, reweight_to_reference
from aalearn.data.split import split_indices
from aalearn.models import ARCHITECTURES, save_checkpoint
from aalearn.physics import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.features import is_challenge_layout
from aalearn.physics.preprocessing import features_mass
from aalearn.report import plot_training_curves
from aalearn.training import train_classifier

__all__ = ["TrainRun", "train_files", "train_model", "train_topodnn"]


@dataclass
class TrainRun:
    """A trained tagger with its history, split and checkpoint (a :class:`~aalearn.core.result.Result`)."""

    model: Any
    history: Any
    split: dict[str, npt.NDArray[np.int64]]
    checkpoint: Path | None
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``aalearn train --json`` object: checkpoint, split sizes, best epoch, time."""
        hist = self.history
        out: dict[str, Any] = {
            "model": str(self.checkpoint) if self.checkpoint is not None else None,
            "n_train": len(self.split["train"]),
            "n_val": len(self.split["val"]),
            "epochs_run": hist.epochs_run,
            "best_epoch": hist.best_epoch,
            "best_val_loss": min(hist.val_loss),
            "best_val_accuracy": hist.val_accuracy[hist.best_epoch],
            "seconds": self.seconds,
            "architecture": self.metadata.get("architecture"),
            "strategy": self.metadata.get("strategy"),
        }
        rew = self.metadata.get("reweighting")
        if rew is not None:
            out["reweighted_to"] = (
                f"{rew.get('reference')} ({rew.get('reference_rows')} rows, {rew.get('variable')})"
            )
            for name, cls in rew.get("classes", {}).items():
                out[f"effective_n_{name}"] = round(float(cls["effective_n"]), 1)
            out["reweighting"] = rew
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row: the :meth:`to_dict` object."""
        return [self.to_dict()]

    def add_to(self, report: ReportBuilder) -> None:
        """A training section: split sizes and the training curves."""
        report.add_section(
            "Training",
            text=f"{self.metadata.get('architecture', 'model')}, Adam, early stopping; {self.seconds:.1f} s.",
            table=[{"split": k, "jets": len(v)} for k, v in self.split.items()],
            figures=[plot_training_curves(self.history.to_dict())],
        )


def _check_model_options(architecture: str, options: Mapping[str, Any]) -> None:
    """Refuse, before any work, a model option the architecture's constructor does not take."""
    params = inspect.signature(ARCHITECTURES[architecture]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the constructor takes any keyword
    unknown = sorted(set(options) - set(params))
    if unknown:
        names = ", ".join(p for p in params if p != "n_features")
        raise ValueError(
            f"{architecture} got an unexpected keyword argument {unknown[0]!r}; its model options are {names}"
        )


def train_model(
    dataset: JetDataset,
    *,
    architecture: str = "topodnn",
    strategy: str = "nominal",
    strategy_options: Mapping[str, Any] | None = None,
    model_options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    nuisance: npt.ArrayLike | None = None,
    fractions: Sequence[float] = (0.8, 0.2, 0.0),
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 1e-3,
    patience: int = 8,
    l1: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    sample_weight: npt.ArrayLike | None = None,
    reweighting: Mapping[str, Any] | None = None,
) -> TrainRun:
    """Train a tagger (any registered architecture) with any registered training strategy.

    The model is built from :data:`aalearn.models.ARCHITECTURES` (``"topodnn"``, the
    challenge's reference network, or ``"robust"``, the per-feature-type embedding network),
    its fixed input standardisation is fitted on the training split, and it is trained by
    the one training loop, :func:`aalearn.training.train_classifier`, with the strategy
    (``"nominal"``, ``"adversarial"``, ``"rdsa"``, ``"pivot"``, ``"disco"``, …).

    Args:
        dataset: Labelled jets in the 87-feature challenge layout.
        architecture: Registered architecture name.
        strategy: Registered training strategy name.
        strategy_options: Settings of the strategy (for example ``{"eps": 1.0, "mix": 0.5}``).
        model_options: Extra constructor arguments of the architecture.
        out: Where to save the safetensors checkpoint (``None``: do not save).
        checkpoint_dir: Directory of per-epoch resumable checkpoints (``None``: none).
        nuisance: Per-jet nuisance value ``(N,)`` (for example −1/0/+1 for the
            fsr-down/nominal/fsr-up samples), passed to the strategies as the auxiliary
            array ``"z"`` (learning to pivot's target). The jet mass in GeV is always
            passed as ``"mass"`` (DisCo's default decorrelation variable).
        fractions: Train/validation/test fractions of the stratified split.
        epochs: Maximum number of epochs (early stopping on the validation loss).
        batch_size: Mini-batch size.
        lr: Adam learning rate.
        patience: Early-stopping patience in epochs.
        l1: L1 penalty on the dense weights (the challenge model used 1e-3).
        seed: Seed of the split, the initialisation and the batch order.
        progress: Show a progress bar.
        sample_weight: Per-jet weights ``(N,)`` (for example spectrum weights of
            :func:`aalearn.data.reweight.reweight_to_reference`): the training loss and
            the validation loss/accuracy (early stopping) become weighted means.
        reweighting: Description of the weights, stored in the checkpoint's metadata.

    Returns:
        A :class:`TrainRun`.

    Raises:
        ValueError: For unlabelled or single-class data, an unknown architecture or
            strategy, or bad settings.

    Example:
        >>> train_model  # doctest: +ELLIPSIS
        <function train_model at ...>
    """
    if dataset.labels is None:
        raise ValueError(f"training needs labelled jets; {dataset.source} has no labels")
    if len(np.unique(dataset.labels)) < 2:
        raise ValueError(
            f"training needs both classes; {dataset.source} holds only label {dataset.labels[0]}"
        )
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    split = split_indices(dataset.labels, fractions=fractions, seed=seed)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"n_features": dataset.features.shape[1]}
    if architecture == "topodnn":
        # PyTorch's default BatchNorm momentum (0.1): Keras' 0.99 (momentum 0.01 here) needs far
        # more steps than a few thousand jets give for the running statistics to converge.
        kwargs["batchnorm_momentum"] = 0.1
    _check_model_options(architecture, model_options or {})
    kwargs.update(model_options or {})
    model = ARCHITECTURES[architecture](**kwargs)
    model.fit_input_scaling(dataset.features[split["train"]])  # type: ignore[operator]

    aux: dict[str, npt.NDArray[Any]] = {}
    if is_challenge_layout(dataset.features.shape[1]):
        aux["mass"] = features_mass(dataset.features, pt_scale=CHALLENGE_PT_SCALE_GEV)
    if nuisance is not None:
        z = np.asarray(nuisance, dtype=np.float64)
        if z.shape != (len(dataset.labels),) or not np.all(np.isfinite(z)):
            raise ValueError(
                f"nuisance must hold one finite value per jet, shape ({len(dataset.labels)},), got {z.shape}"
            )
        aux["z"] = z
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        l1=l1,
        seed=seed,
        progress=progress,
    )
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (len(dataset.labels),):
            raise ValueError(
                f"sample_weight must hold one weight per jet ({len(dataset.labels)}), got {weights.shape}"
            )
    # the strategies' own objectives are not TrainConfig monitors: passed to the loop directly
    monitor = {"pivot": "pivot_val_objective", "disco": "disco_val_objective"}.get(strategy, "val_loss")
    start = time.perf_counter()
    history = train_classifier(
        model,
        dataset.features[split["train"]],
        dataset.labels[split["train"]],
        dataset.features[split["val"]],
        dataset.labels[split["val"]],
        aux_train={k: v[split["train"]] for k, v in aux.items()},
        aux_val={k: v[split["val"]] for k, v in aux.items()},
        strategy=strategy,
        strategy_options=dict(strategy_options or {}),
        checkpoint_dir=checkpoint_dir,
        config=config,
        monitor=monitor,
        sample_weight=None if weights is None else weights[split["train"]],
        sample_weight_val=None if weights is None else weights[split["val"]],
    )
    seconds = time.perf_counter() - start
    metadata = {
        "data": dataset.source,
        "architecture": architecture,
        "n_train": len(split["train"]),
        "n_val": len(split["val"]),
        "n_test": len(split["test"]),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "patience": patience,
        "l1": l1,
        "feature_names": list(dataset.feature_names),
        "label_names": list(LABEL_NAMES),
        "history": history.to_dict(),
        "aalearn_version": __version__,
        "strategy": strategy,
        "strategy_options": to_jsonable(dict(strategy_options or {})),
        "train_seconds": seconds,
    }
    if reweighting is not None:
        metadata["reweighting"] = to_jsonable(dict(reweighting))
    path = None
    if out is not None:
        path = Path(out)
        save_checkpoint(model, path, metadata=metadata)
    return TrainRun(model, history, split, path, seconds, metadata)


def train_topodnn(dataset: JetDataset, **kwargs: Any) -> TrainRun:
    """Train the TopoDNN reference tagger: :func:`train_model` with ``architecture="topodnn"``.

    Example:
        >>> train_topodnn  # doctest: +ELLIPSIS
        <function train_topodnn at ...>
    """
    return train_model(dataset, architecture="topodnn", **kwargs)


def train_files(
    data: Sequence[str | Path],
    out: str | Path,
    *,
    val_fraction: float = 0.2,
    nuisance_files: Sequence[str] | None = None,
    reweight_to: str | Path | None = None,
    reweight_var: str = "sum-pt",
    reference_rows: str = "even",
    reweight_bins: int = 10,
    **train_kwargs: Any,
) -> TrainRun:
    """The ``aalearn train`` command: train on labelled files and save a safetensors checkpoint.

    Args:
        data: Labelled data files (concatenated); their jets get nuisance value 0.
        out: Output checkpoint (must end in ``.safetensors``).
        val_fraction: Validation fraction of the stratified split (no test split).
        nuisance_files: Labelled files of modelling variations as ``Z=FILE`` strings
            (``-1=fsr_down.h5``): their jets are added with nuisance value ``Z``.
        reweight_to: Labelled reference file: each class of the training jets is
            reweighted to that class's ``reweight_var`` spectrum in it
            (:func:`aalearn.data.reweight.reweight_to_reference`). Only its
            ``reference_rows`` inform the spectrum: ``"even"`` (default; the challenge's
            ``Clean_Test_Public.feather`` keeps its odd rows held out) or ``"all"``.
        reweight_var: ``"sum-pt"`` (constituent ΣpT) or ``"lead-pt"`` (leading constituent pT).
        reference_rows: ``"even"`` or ``"all"``.
        reweight_bins: Quantile bins of the reference per class.
        **train_kwargs: Further settings of :func:`train_model` (architecture, strategy,
            strategy_options, checkpoint_dir, epochs, ...).

    Returns:
        The :class:`TrainRun`.

    Raises:
        ValueError: For a bad output suffix, validation fraction or ``Z=FILE`` item, or
            data :func:`train_model` refuses.

    Example:
        >>> train_files(["a.h5"], "model.pt")
        Traceback (most recent call last):
        ...
        ValueError: --out must end in .safetensors, got 'model.pt'
    """
    out = check_output_path(out, suffixes=[".safetensors"], what="--out")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
    if reweight_var not in REWEIGHT_VARIABLES:
        raise ValueError(
            f"--reweight-var must be one of {', '.join(REWEIGHT_VARIABLES)}, got {reweight_var!r}"
        )
    if reference_rows not in REFERENCE_ROWS:
        raise ValueError(
            f"--reference-rows must be one of {', '.join(REFERENCE_ROWS)}, got {reference_rows!r}"
        )
    reference = None
    if reweight_to is not None:
        reference = load_datasets([Path(reweight_to)], require_labels=True)
    variations = parse_name_value(
        nuisance_files,
        option="--nuisance-file",
        form="Z=FILE with a number Z",
        example="-1=fsr_down.h5",
        name=finite_float,
    )
    dataset = load_datasets([Path(p) for p in data], require_labels=True)
    nuisance = None
    if variations:
        parts, values = [dataset], [np.zeros(len(dataset.features))]
        for z_value, path in variations:
            extra = load_datasets([Path(path)], require_labels=True)
            parts.append(extra)
            values.append(np.full(len(extra.features), z_value))
        dataset = JetDataset.concatenate(parts)
        nuisance = np.concatenate(values)
    weights, description = None, None
    if reference is not None:
        sw = reweight_to_reference(
            dataset, reference, variable=reweight_var, rows=reference_rows, n_bins=reweight_bins
        )
        weights, description = sw.weights, {"reference": str(reweight_to), **sw.to_dict()}
    return train_model(
        dataset,
        nuisance=nuisance,
        sample_weight=weights,
        reweighting=description,
        out=out,
        fractions=(1.0 - val_fraction, val_fraction, 0.0),
        **train_kwargs,
    )
