r"""Deep ensembles of any training strategy, resumable member by member.

:func:`train_ensemble` trains :math:`M` networks with :func:`aalearn.training.train_classifier`
and the same strategy (nominal, adversarial, RDSA augmentation, ...), differing by their
seed (initialisation, batch order, dropout masks, the strategy's random draws) and/or
their dropout rate, and returns them as an :class:`aalearn.uncertainty.DeepEnsemble`:
the averaged probability is the prediction and the members' disagreement the epistemic
uncertainty (Lakshminarayanan, Pritzel, Blundell, arXiv:1612.01474). The challenge's
winning robust solution was such an ensemble of models with different dropout rates
(arXiv:2510.16443).

With ``checkpoint_dir`` every member trains resumably in ``checkpoint_dir/member-<k>``;
after a kill, the same call skips the finished members (it reloads them from their
checkpoints) and resumes the interrupted one.

:func:`train_topodnn_ensemble` is the recipe of ``aalearn uncertainty --train-data``: TopoDNN
members built by :func:`aalearn.models.build_tagger` with seeds ``seed, seed + 1, ...`` and
their input standardisation fitted on the training features. Training lives here only;
:mod:`aalearn.uncertainty` wraps already-trained members.

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = rng.normal(size=(200, 3)) + y[:, None]
    >>> ens = train_ensemble(lambda k, dropout=0.0: TopoDNN(3, (8,), dropout=dropout),
    ...                      X[:150], y[:150], X[150:], y[150:], n_members=2,
    ...                      dropouts=[0.0, 0.2], epochs=2, progress=False)
    >>> ens.n_members, ens.seeds
    (2, [0, 1])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aalearn.core.config import TrainConfig
from aalearn.core.seeding import seeded
from aalearn.core.validation import check_array
from aalearn.models.factory import build_tagger
from aalearn.training.configs import ENSEMBLE_CONFIG
from aalearn.training.strategy import Strategy
from aalearn.training.trainer import train_classifier
from aalearn.uncertainty.predictors import DeepEnsemble

__all__ = ["train_ensemble", "train_topodnn_ensemble"]


def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def train_ensemble(
    build_model: Callable[..., nn.Module],
    X_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    n_members: int = 5,
    strategy: str | Strategy = "nominal",
    strategy_options: Mapping[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
    dropouts: Sequence[float] | None = None,
    checkpoint_dir: str | Path | None = None,
    config: TrainConfig | None = None,
    **train_kwargs: Any,
) -> DeepEnsemble:
    r"""Train a deep ensemble of ``n_members`` classifiers with one training strategy.

    Member :math:`k` is built as ``build_model(k)`` (``build_model(k, dropout=dropouts[k])``
    when ``dropouts`` is given) with torch's RNG seeded with ``seeds[k]`` (inside
    :func:`torch.random.fork_rng`, so the caller's RNG is untouched), then trained with
    ``train_classifier(..., strategy=strategy, seed=seeds[k])``. A
    :class:`~aalearn.training.strategy.Strategy` instance is deep-copied for every member.

    Args:
        build_model: Builds member ``k`` (an ``nn.Module`` returning logits), for
            example ``lambda k, dropout=0.0: TopoDNN(dropout=dropout).fit_input_scaling(X)``.
            Move it to a device here if wanted.
        X_train: Training features ``(N, F)``.
        y_train: Training labels ``(N,)`` in {0, 1}.
        X_val: Validation features (early stopping).
        y_val: Validation labels.
        n_members: Number of members :math:`M \ge 2`.
        strategy: Training strategy name or instance (see :func:`train_classifier`).
        strategy_options: Settings of a strategy given by name.
        seeds: One seed per member (default ``seed, seed + 1, ...`` with ``seed`` from
            ``train_kwargs``, else from ``config``, default 0). Members with the same seed
            must differ in dropout.
        dropouts: One dropout rate per member, passed to ``build_model`` as ``dropout=``.
        checkpoint_dir: Members train resumably in ``checkpoint_dir/member-<k>`` (each
            also holds the member's final ``model.safetensors`` when its architecture
            is registered).
        config: Training settings of every member (default :data:`ENSEMBLE_CONFIG`).
        **train_kwargs: Further :func:`train_classifier` arguments (``aux_train``,
            ``monitor``, ...), or single settings overriding ``config`` (``epochs``,
            ``batch_size``, ``lr``, ``patience``, ...).

    Returns:
        An :class:`aalearn.uncertainty.DeepEnsemble` of the members (eval mode), with
        ``histories`` and ``seeds`` set.

    Raises:
        ValueError: For ``n_members < 2``, ``seeds``/``dropouts`` of the wrong length,
            two identical members (same seed and dropout), a ``build_model`` that does
            not return a module or does not accept ``dropout=``, or errors of
            :func:`train_classifier`.
        TypeError: If ``train_kwargs`` holds ``model``, ``seed`` together with
            ``seeds``, or ``checkpoint_dir``-like duplicates.
    """
    n_members = _check_int(n_members, name="n_members", minimum=2)
    if not callable(build_model):
        raise ValueError(f"build_model must be callable(k) -> nn.Module, got {build_model!r}")
    if "model" in train_kwargs:
        raise TypeError("train_kwargs must not contain 'model': the members are built by build_model")
    base_seed = train_kwargs.pop("seed", None)
    if seeds is None:
        first = base_seed if base_seed is not None else (config.seed if config is not None else 0)
        start = _check_int(first, name="seed", minimum=0)
        member_seeds = [start + k for k in range(n_members)]
    else:
        if base_seed is not None:
            raise TypeError("give either seeds=[...] (one per member) or seed=..., not both")
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) != n_members:
            raise ValueError(
                f"seeds must be a sequence of {n_members} integers (one per member), got {seeds!r}"
            )
        member_seeds = [_check_int(s, name="each seed", minimum=0) for s in seeds]
    member_dropouts: list[float | None]
    if dropouts is None:
        member_dropouts = [None] * n_members
    else:
        if (
            isinstance(dropouts, (str, bytes))
            or not isinstance(dropouts, Sequence)
            or len(dropouts) != n_members
        ):
            raise ValueError(
                f"dropouts must be a sequence of {n_members} rates (one per member), got {dropouts!r}"
            )
        member_dropouts = []
        for d in dropouts:
            if (
                isinstance(d, bool)
                or not isinstance(d, (int, float, np.floating))
                or not 0.0 <= float(d) < 1.0
            ):
                raise ValueError(f"each dropout rate must lie in [0, 1), got {d!r}")
            member_dropouts.append(float(d))
    pairs = list(zip(member_seeds, member_dropouts, strict=True))
    if len(set(pairs)) != len(pairs):
        raise ValueError(
            "two members would be identical (same seed and dropout); give distinct seeds or dropouts"
        )
    member_config = config if config is not None else ENSEMBLE_CONFIG
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None

    models: list[nn.Module] = []
    histories: list[Any] = []
    for k, (seed, dropout) in enumerate(pairs):
        with seeded(seed):
            try:
                model = build_model(k) if dropout is None else build_model(k, dropout=dropout)
            except TypeError as exc:
                if dropout is not None and "dropout" in str(exc):
                    raise ValueError(
                        "with dropouts=[...], build_model must accept a dropout keyword: "
                        f"build_model(k, dropout=rate) ({exc})"
                    ) from None
                raise
        if not isinstance(model, nn.Module):
            raise ValueError(f"build_model({k}) must return a torch.nn.Module, got {type(model).__name__}")
        if any(model is m for m in models):
            raise ValueError("build_model returned the same module twice; it must build a new model per call")
        member_strategy = copy.deepcopy(strategy) if isinstance(strategy, Strategy) else strategy
        history = train_classifier(
            model,
            X_train,
            y_train,
            X_val,
            y_val,
            strategy=member_strategy,
            strategy_options=strategy_options,
            config=member_config,
            seed=seed,
            checkpoint_dir=None if root is None else root / f"member-{k}",
            **train_kwargs,
        )
        histories.append(history)
        models.append(model.eval())
    ensemble = DeepEnsemble(models)
    ensemble.histories, ensemble.seeds = histories, member_seeds
    return ensemble


def train_topodnn_ensemble(
    x_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    x_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    n_members: int = 5,
    seed: int = 0,
    model_kwargs: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    config: TrainConfig | None = None,
    **train_kwargs: Any,
) -> DeepEnsemble:
    r"""Train ``n_members`` TopoDNNs with seeds ``seed, …, seed + n_members - 1``.

    Each member is built as the training workflow builds its tagger
    (:func:`aalearn.models.build_tagger`: the torch RNG seeded with the member's seed
    right before construction, ``TopoDNN(n_features=F, batchnorm_momentum=0.1,
    **model_kwargs)``, input standardisation fitted on ``x_train``), then trained by
    :func:`train_ensemble` (:func:`aalearn.training.train_classifier` with ``seed`` = the
    member's seed: data order and dropout). The caller's global torch RNG state is left
    untouched.

    Args:
        x_train: Training features ``(N, F)``.
        y_train: Training labels ``(N,)`` in {0, 1}.
        x_val: Validation features (early stopping).
        y_val: Validation labels.
        n_members: Number of members :math:`M \ge 2`.
        seed: Seed of the first member.
        model_kwargs: Extra :class:`~aalearn.models.TopoDNN` arguments (``hidden``,
            ``dropout``, ``batchnorm``, …; ``batchnorm_momentum`` defaults to 0.1 as
            in the workflow).
        device: Device to train on (default: CPU).
        config: Training settings of every member (default :data:`ENSEMBLE_CONFIG`;
            its ``seed`` is replaced by the members' seeds).
        **train_kwargs: Single settings overriding ``config`` (``epochs``,
            ``batch_size``, ``lr``, ``patience``, ``l1``, …) and further
            :func:`~aalearn.training.train_classifier` arguments.

    Returns:
        The trained :class:`~aalearn.uncertainty.DeepEnsemble`, with ``histories`` and
        ``seeds`` set.

    Raises:
        ValueError: For ``n_members < 2``, ``model_kwargs['n_features']`` other than the
            data's column count, or bad data (see ``train_classifier``).
        TypeError: If ``train_kwargs`` contains ``model``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 300)
        >>> x = rng.normal(size=(300, 3)) + y[:, None]
        >>> ens = train_topodnn_ensemble(x[:200], y[:200], x[200:], y[200:], n_members=2,
        ...                              model_kwargs={"hidden": (8,)}, epochs=2)
        >>> ens.seeds
        [0, 1]
    """
    n_members = _check_int(n_members, name="n_members", minimum=2)
    seed = _check_int(seed, name="seed", minimum=0)
    if "model" in train_kwargs:
        raise TypeError("train_kwargs must not contain 'model': the members are built here")
    x_tr = check_array(x_train, name="x_train", ndim=2)
    kwargs: dict[str, Any] = dict(model_kwargs or {})
    if "n_features" in kwargs:
        if kwargs["n_features"] != x_tr.shape[1]:
            raise ValueError(
                f"model_kwargs['n_features'] = {kwargs['n_features']} but x_train has {x_tr.shape[1]} columns"
            )
        del kwargs["n_features"]

    def build(k: int) -> nn.Module:
        return build_tagger("topodnn", x_tr.shape[1], seed + k, fit_x=x_tr, device=device, **kwargs)

    return train_ensemble(
        build, x_tr, y_train, x_val, y_val, n_members=n_members, seed=seed, config=config, **train_kwargs
    )
