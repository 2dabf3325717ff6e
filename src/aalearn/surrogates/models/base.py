r"""The common machinery of the surrogates: data scaling, fit/sample/log_prob, save/load.

:class:`Surrogate` is the base class of :class:`~aalearn.surrogates.models.flow.FlowSurrogate`
and :class:`~aalearn.surrogates.models.flow_matching.FlowMatchingSurrogate`; see
:mod:`aalearn.surrogates.models` for the representation (log map, then standardisation, of
:class:`_Standardiser`). Training settings travel as :class:`aalearn.core.config.TrainConfig`
(:data:`SURROGATE_TRAIN_CONFIG` holds the surrogates' own defaults).

Example:
    >>> import numpy as np
    >>> from aalearn.surrogates.models import FlowMatchingSurrogate
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> m = FlowMatchingSurrogate(hidden=(8,)).fit(x, config=SURROGATE_TRAIN_CONFIG.replace(epochs=1))
    >>> m.conditional
    False
"""

from __future__ import annotations

import abc
import contextlib
import copy
import inspect
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn import __version__
from aalearn.core.config import TrainConfig
from aalearn.core.io import atomic_path
from aalearn.core.optional import require
from aalearn.core.validation import check_array

__all__ = [
    "SURROGATE_FORMAT",
    "SURROGATE_TRAIN_CONFIG",
    "Surrogate",
    "load_surrogate",
]

SURROGATE_FORMAT = "surrogate"
"""Value of the ``aalearn_format`` header key of saved surrogates."""
SURROGATE_FORMAT_VERSION = "1"

SURROGATE_TRAIN_CONFIG = TrainConfig(epochs=50, batch_size=256, lr=1e-3, patience=50, seed=0, progress=False)
"""The surrogates' training defaults (those of :meth:`Surrogate.fit`'s keywords).

``patience`` equals ``epochs``: without a smaller patience every epoch runs (the fit keeps
the weights of the best validation epoch).
"""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
S = TypeVar("S", bound="Surrogate")


def _zuko() -> Any:
    return require("zuko", purpose="the normalizing-flow surrogates (aalearn.surrogates)")


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _float(value: Any, *, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ValueError(f"{name} must be a finite number in {rng}, got {value}")
    return v


def _hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, int | np.integer):
        value = (int(value),)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise TypeError(
            f"hidden must be a non-empty sequence of layer widths such as (64, 64), got {value!r}"
        )
    return tuple(_int(v, name="hidden layer width", minimum=1) for v in value)


def _indices(value: Any, *, name: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of column indices, got {value!r}")
    out = tuple(_int(v, name=f"{name} entry", minimum=0) for v in value)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated column indices: {list(out)}")
    return out


def _check_x(x: Any, *, name: str = "x", n_features: int | None = None) -> FloatArray:
    arr = check_array(x, name=name, ndim=2, dtype=np.float64)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features but the surrogate was fitted on {n_features}; "
            "pass the same columns in the same order"
        )
    return arr


def _check_y(y: Any, *, n: int, name: str = "y") -> IntArray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of {n} class labels, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"{name} must hold integer class labels 0, 1, ..., got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels 0, 1, ...; found non-integer values")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must hold non-negative class labels 0, 1, ..., found {int(out.min())}")
    return out


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``: leave it)."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------
class _Standardiser:
    """Log map of selected columns, then per-column standardisation (see the module doc)."""

    def __init__(
        self, log_features: tuple[int, ...], log_offset: float, mean: FloatArray, std: FloatArray
    ) -> None:
        self.log_features = log_features
        self.log_offset = log_offset
        self.mean = mean
        self.std = std

    @classmethod
    def fit(cls, x: FloatArray, log_features: tuple[int, ...], log_offset: float) -> _Standardiser:
        u = cls._log(x, log_features, log_offset)
        mean = u.mean(axis=0)
        std = u.std(axis=0)
        # a constant column (for example an always-empty constituent) keeps unit scale
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(log_features, log_offset, mean, std)

    @staticmethod
    def _log(x: FloatArray, log_features: tuple[int, ...], log_offset: float) -> FloatArray:
        u = np.array(x, dtype=np.float64, copy=True)
        if log_features:
            cols = list(log_features)
            shifted = u[:, cols] + log_offset
            if np.any(shifted <= 0):
                bad = int(np.sum(np.any(shifted <= 0, axis=1)))
                raise ValueError(
                    f"{bad} row(s) have log-space columns {cols} with x + log_offset <= 0 "
                    f"(log_offset = {log_offset}); these columns must be positive, or pass a "
                    "log_offset > 0 for columns that can be exactly zero"
                )
            u[:, cols] = np.log(shifted)
        return u

    def forward(self, x: FloatArray) -> FloatArray:
        return (self._log(x, self.log_features, self.log_offset) - self.mean) / self.std

    def inverse(self, z: FloatArray) -> FloatArray:
        u = z * self.std + self.mean
        if self.log_features:
            cols = list(self.log_features)
            u[:, cols] = np.clip(np.exp(u[:, cols]) - self.log_offset, 0.0, None)
        return u

    def log_abs_det(self, x: FloatArray) -> FloatArray:
        """:math:`\\log|\\det \\partial z/\\partial x|` per row."""
        out = np.full(x.shape[0], -float(np.log(self.std).sum()))
        if self.log_features:
            out -= np.log(x[:, list(self.log_features)] + self.log_offset).sum(axis=1)
        return out


# --------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------
class Surrogate(abc.ABC):
    """Common fit/sample/log_prob/save machinery of the surrogates (see the module doc).

    Subclasses build the torch module and define the training loss, the sampler and the
    log-density in standardised coordinates. Hyper-parameters are stored verbatim by
    ``__init__`` and validated in :meth:`fit` (scikit-learn's convention); fitted state
    lives in attributes with a trailing underscore.
    """

    _registry: ClassVar[dict[str, type[Surrogate]]] = {}
    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Surrogate._registry[cls.__name__] = cls

    def __init__(
        self,
        *,
        hidden: Sequence[int],
        log_features: Sequence[int] = (),
        log_offset: float = 0.0,
        nonnegative: Sequence[int] = (),
    ) -> None:
        self.hidden = hidden
        self.log_features = log_features
        self.log_offset = log_offset
        self.nonnegative = nonnegative
        self.module_: nn.Module | None = None
        self.preprocessing_: _Standardiser | None = None
        self.n_features_: int = 0
        self.n_classes_: int = 0
        self.class_prior_: FloatArray = np.zeros(0)
        self.history_: dict[str, list[float]] = {}
        self.fit_seconds_: float = math.nan
        self.n_train_: int = 0
        self.best_epoch_: int = -1

    # ---------------------------------------------------------------- hyper-parameters
    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as a JSON-friendly dict (those of ``__init__``)."""
        out: dict[str, Any] = {}
        for key in self._param_names():
            value = getattr(self, key)
            if isinstance(value, tuple | list | np.ndarray):
                value = [v.item() if isinstance(v, np.generic) else v for v in value]
            elif isinstance(value, np.generic):
                value = value.item()
            out[key] = value
        return out

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _validated(self) -> dict[str, Any]:
        """Validate the shared hyper-parameters (called by :meth:`fit`)."""
        return {
            "hidden": _hidden(self.hidden),
            "log_features": _indices(self.log_features, name="log_features"),
            "log_offset": _float(self.log_offset, name="log_offset", lo=0.0),
            "nonnegative": _indices(self.nonnegative, name="nonnegative"),
        }

    # ---------------------------------------------------------------- subclass hooks
    @abc.abstractmethod
    def _build(self, features: int, context: int) -> nn.Module:
        """The untrained torch module."""

    @abc.abstractmethod
    def _loss(
        self, module: nn.Module, z: Tensor, c: Tensor | None, generator: torch.Generator | None
    ) -> Tensor:
        """Mean training loss of a batch of standardised rows."""

    @abc.abstractmethod
    def _sample_std(self, module: nn.Module, n: int, c: Tensor | None) -> Tensor:
        """``n`` standardised samples (uses torch's global generator, seeded by the caller)."""

    @abc.abstractmethod
    def _log_prob_std(self, module: nn.Module, z: Tensor, c: Tensor | None) -> Tensor:
        """Log density of standardised rows."""

    # ---------------------------------------------------------------- fit
    def _context(self, y: IntArray | None, n: int) -> Tensor | None:
        if self.n_classes_ == 0:
            return None
        if y is None:  # pragma: no cover - guarded by the callers
            raise ValueError("this surrogate is conditional; pass class labels y")
        return torch.nn.functional.one_hot(torch.as_tensor(y, dtype=torch.int64), self.n_classes_).to(
            torch.float32
        )

    def fit(
        self: S,
        x: npt.ArrayLike,
        y: npt.ArrayLike | None = None,
        *,
        config: TrainConfig | None = None,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        val_fraction: float = 0.2,
        patience: int | None = None,
        progress: bool = False,
        num_threads: int | None = 1,
    ) -> S:
        """Train on rows ``x`` (optionally conditional on the labels ``y``).

        A fraction ``val_fraction`` of the rows (random, seeded) is held out; the weights of
        the epoch with the lowest validation loss are kept (the last epoch when
        ``val_fraction = 0``). Adam with a cosine learning-rate decay and gradient-norm
        clipping at 5. Everything random (split, initialisation, batches, noise) derives
        from ``seed``; torch's global generator is left untouched.

        Args:
            x: ``(N, D)`` finite training rows in physical units.
            y: ``(N,)`` integer class labels 0, …, K−1 (every class present) for a
                conditional model; ``None`` for an unconditional one.
            config: The training settings as one :class:`~aalearn.core.config.TrainConfig`
                (``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``patience``,
                ``seed``, ``progress``; ``l1`` and ``monitor`` do not apply). When given it
                replaces the keywords of the same names; :data:`SURROGATE_TRAIN_CONFIG`
                holds their defaults.
            epochs: Number of passes over the training rows.
            batch_size: Rows per gradient step.
            lr: Initial learning rate.
            seed: Seed of the whole fit.
            val_fraction: Held-out fraction in [0, 0.9).
            patience: Stop after this many epochs without a better validation loss
                (``None``: run all epochs).
            progress: Show a progress bar on stderr.
            num_threads: torch intra-op threads during the fit (restored afterwards).
                These networks are small: extra threads only add synchronisation
                overhead, which on a busy machine slows training by an order of
                magnitude. ``None`` keeps torch's setting.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: For non-finite or too few rows, labels of the wrong length or with
                a missing class, log-space columns that are not positive, or bad
                hyper-parameters.
            TypeError: For non-numeric input or hyper-parameters of the wrong type.
        """
        params = self._validated()
        weight_decay = 0.0
        if config is not None:
            if not isinstance(config, TrainConfig):
                raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
            epochs, batch_size, lr, seed = config.epochs, config.batch_size, config.lr, config.seed
            patience, progress, weight_decay = config.patience, config.progress, float(config.weight_decay)
        epochs = _int(epochs, name="epochs", minimum=1)
        batch_size = _int(batch_size, name="batch_size", minimum=1)
        lr = _float(lr, name="lr", lo=1e-12)
        seed = _int(seed, name="seed", minimum=0)
        val_fraction = _float(val_fraction, name="val_fraction", lo=0.0, hi=0.9)
        if val_fraction >= 0.9:
            raise ValueError(f"val_fraction must be below 0.9, got {val_fraction}")
        if patience is not None:
            patience = _int(patience, name="patience", minimum=1)
        if num_threads is not None:
            num_threads = _int(num_threads, name="num_threads", minimum=1)
        xa = _check_x(x)
        n, d = xa.shape
        for key in ("log_features", "nonnegative"):
            bad = [i for i in params[key] if i >= d]
            if bad:
                raise ValueError(f"{key} {bad} out of range for {d} feature columns (indices 0..{d - 1})")
        ya: IntArray | None = None
        if y is not None:
            ya = _check_y(y, n=n)
            n_classes = int(ya.max()) + 1 if ya.size else 0
            counts = np.bincount(ya, minlength=n_classes)
            if np.any(counts == 0):
                raise ValueError(
                    f"class label(s) {np.flatnonzero(counts == 0).tolist()} have no rows; labels must be "
                    f"0..K-1 with every class present (counts {counts.tolist()})"
                )
        rng = np.random.default_rng(seed)
        n_val = round(val_fraction * n) if val_fraction > 0 else 0
        if n - n_val < 2 or (val_fraction > 0 and n_val < 1):
            raise ValueError(
                f"{n} rows are too few to train with val_fraction={val_fraction}; pass more rows "
                "(at least a few hundred for a useful model)"
            )
        self.preprocessing_ = _Standardiser.fit(xa, params["log_features"], params["log_offset"])
        self.n_features_ = d
        if ya is not None:
            self.n_classes_ = int(ya.max()) + 1
            self.class_prior_ = np.bincount(ya, minlength=self.n_classes_) / n
        else:
            self.n_classes_ = 0
            self.class_prior_ = np.zeros(0)
        z_all = torch.as_tensor(self.preprocessing_.forward(xa), dtype=torch.float32)
        c_all = self._context(ya, n)
        order = rng.permutation(n)
        val_idx = torch.as_tensor(order[:n_val])
        tr_idx = torch.as_tensor(order[n_val:])
        self.n_train_ = int(tr_idx.shape[0])

        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]), _threads(num_threads):
            torch.manual_seed(seed)
            module = self._build(d, self.n_classes_)
            optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
            steps_per_epoch = math.ceil(self.n_train_ / batch_size)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
            history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_seconds": []}
            best_state: dict[str, Tensor] | None = None
            best_loss = math.inf
            best_epoch = -1
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=epochs, desc=f"{type(self).__name__}", unit="epoch", file=sys.stderr)
            for epoch in range(epochs):
                te = time.perf_counter()
                module.train()
                perm = tr_idx[torch.randperm(self.n_train_)]
                total = 0.0
                for start in range(0, self.n_train_, batch_size):
                    idx = perm[start : start + batch_size]
                    loss = self._loss(module, z_all[idx], None if c_all is None else c_all[idx], None)
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(module.parameters(), 5.0)
                    optimizer.step()
                    scheduler.step()
                    total += float(loss.detach()) * int(idx.shape[0])
                history["train_loss"].append(total / self.n_train_)
                if n_val:
                    val = self._eval_loss(
                        module, z_all[val_idx], None if c_all is None else c_all[val_idx], seed
                    )
                else:
                    val = history["train_loss"][-1]
                history["val_loss"].append(val)
                history["epoch_seconds"].append(time.perf_counter() - te)
                if val < best_loss:
                    best_loss, best_epoch = val, epoch
                    best_state = copy.deepcopy(module.state_dict())
                if bar is not None:
                    bar.set_postfix(train=f"{history['train_loss'][-1]:.4f}", val=f"{val:.4f}")
                    bar.update(1)
                if patience is not None and epoch - best_epoch >= patience:
                    break
            if bar is not None:
                bar.close()
            if best_state is not None:
                module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    _val_repeats: ClassVar[int] = 1

    def _eval_loss(self, module: nn.Module, z: Tensor, c: Tensor | None, seed: int) -> float:
        module.eval()
        gen = torch.Generator().manual_seed(seed + 7919)
        if self._val_repeats > 1:  # a stochastic loss: average several noise draws per row
            z = z.repeat(self._val_repeats, 1)
            c = None if c is None else c.repeat(self._val_repeats, 1)
        total = 0.0
        with torch.no_grad():
            for start in range(0, z.shape[0], 8192):
                sl = slice(start, start + 8192)
                loss = self._loss(module, z[sl], None if c is None else c[sl], gen)
                total += float(loss) * int(z[sl].shape[0])
        return total / int(z.shape[0])

    # ---------------------------------------------------------------- use
    def _check_fitted(self) -> tuple[nn.Module, _Standardiser]:
        if self.module_ is None or self.preprocessing_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")
        return self.module_, self.preprocessing_

    @property
    def conditional(self) -> bool:
        """Whether the model was fitted with class labels."""
        return self.n_classes_ > 0

    def _labels_for(self, n: int, y: int | npt.ArrayLike | None, rng: np.random.Generator) -> IntArray | None:
        if self.n_classes_ == 0:
            if y is not None:
                raise ValueError("this surrogate was fitted without labels; call sample(n) without y")
            return None
        if y is None:
            return rng.choice(self.n_classes_, size=n, p=self.class_prior_).astype(np.int64)
        if isinstance(y, int | np.integer) and not isinstance(y, bool):
            labels = np.full(n, int(y), dtype=np.int64)
        else:
            labels = _check_y(y, n=n)
        if labels.size and labels.max() >= self.n_classes_:
            raise ValueError(
                f"class label {int(labels.max())} unknown: the surrogate was fitted on labels "
                f"0..{self.n_classes_ - 1}"
            )
        return labels

    def sample_labeled(
        self,
        n: int,
        y: int | npt.ArrayLike | None = None,
        *,
        seed: int = 0,
        batch_size: int = 65_536,
        num_threads: int | None = 1,
    ) -> tuple[FloatArray, IntArray | None]:
        """Rows and the labels they were generated for.

        Args:
            n: Number of rows.
            y: ``None`` (a conditional model draws labels with the training class
                frequencies), one label for all rows, or ``(n,)`` labels.
            seed: Seed of the labels and the samples.
            batch_size: Rows generated per network call.
            num_threads: torch intra-op threads while sampling (see :meth:`fit`).

        Returns:
            ``(x, labels)``: ``(n, D)`` float64 rows in physical units and ``(n,)`` labels
            (``None`` for an unconditional model).

        Raises:
            ValueError: For ``n < 1``, labels of the wrong length or unknown classes, or
                labels given to an unconditional model.
            RuntimeError: If the model is not fitted.
        """
        module, prep = self._check_fitted()
        n = _int(n, name="n", minimum=1)
        seed = _int(seed, name="seed", minimum=0)
        batch_size = _int(batch_size, name="batch_size", minimum=1)
        rng = np.random.default_rng(seed)
        labels = self._labels_for(n, y, rng)
        out = np.empty((n, self.n_features_), dtype=np.float64)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), _threads(num_threads):
            torch.manual_seed(seed)
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                c = None if labels is None else self._context(labels[start:stop], stop - start)
                z = self._sample_std(module, stop - start, c).double().numpy()
                out[start:stop] = z
        x = prep.inverse(out)
        nonneg = list(_indices(self.nonnegative, name="nonnegative"))
        if nonneg:
            x[:, nonneg] = np.clip(x[:, nonneg], 0.0, None)
        return x, labels

    def sample(
        self,
        n: int,
        y: int | npt.ArrayLike | None = None,
        *,
        seed: int = 0,
        batch_size: int = 65_536,
        num_threads: int | None = 1,
    ) -> FloatArray:
        """``(n, D)`` generated rows in physical units (see :meth:`sample_labeled`)."""
        return self.sample_labeled(n, y, seed=seed, batch_size=batch_size, num_threads=num_threads)[0]

    def log_prob(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike | None = None,
        *,
        batch_size: int = 8192,
        num_threads: int | None = 1,
    ) -> FloatArray:
        """Log density :math:`\\log p(x \\mid y)` in the original units (per row).

        Args:
            x: ``(N, D)`` rows; log-space columns must satisfy ``x + log_offset > 0``.
            y: ``(N,)`` labels (required for a conditional model).
            batch_size: Rows per network call.
            num_threads: torch intra-op threads (see :meth:`fit`).

        Returns:
            ``(N,)`` float64 log densities.

        Raises:
            ValueError: For rows with the wrong number of columns, missing or unknown
                labels, or non-positive log-space columns.
            RuntimeError: If the model is not fitted.
        """
        module, prep = self._check_fitted()
        xa = _check_x(x, n_features=self.n_features_)
        if self.n_classes_ and y is None:
            raise ValueError("this surrogate is conditional; pass the class labels y")
        labels = None if self.n_classes_ == 0 else self._labels_for(xa.shape[0], y, np.random.default_rng(0))
        z = torch.as_tensor(prep.forward(xa), dtype=torch.float32)
        out = np.empty(xa.shape[0], dtype=np.float64)
        with torch.no_grad(), _threads(num_threads):
            for start in range(0, xa.shape[0], batch_size):
                stop = min(xa.shape[0], start + batch_size)
                c = None if labels is None else self._context(labels[start:stop], stop - start)
                out[start:stop] = self._log_prob_std(module, z[start:stop], c).double().numpy()
        return out + prep.log_abs_det(xa)

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted surrogate to a safetensors file (weights) with a JSON header.

        The header holds the class, the hyper-parameters and the fitted state (number of
        features and classes, class frequencies, training history); nothing is pickled.

        Args:
            path: Target file (conventionally ``.safetensors``); parent directories are
                created; written atomically.

        Returns:
            The path written.

        Raises:
            RuntimeError: If the model is not fitted.
        """
        from safetensors.torch import save_file

        module, prep = self._check_fitted()
        tensors = {
            f"module.{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()
        }
        tensors["preprocessing.mean"] = torch.as_tensor(prep.mean, dtype=torch.float64)
        tensors["preprocessing.std"] = torch.as_tensor(prep.std, dtype=torch.float64)
        tensors["class_prior"] = torch.as_tensor(self.class_prior_, dtype=torch.float64)
        header = {
            "aalearn_format": SURROGATE_FORMAT,
            "aalearn_format_version": SURROGATE_FORMAT_VERSION,
            "aalearn_version": __version__,
            "surrogate": type(self).__name__,
            "params": json.dumps(self.get_params(), sort_keys=True),
            "state": json.dumps(
                {
                    "n_features": self.n_features_,
                    "n_classes": self.n_classes_,
                    "n_train": self.n_train_,
                    "best_epoch": self.best_epoch_,
                    "fit_seconds": self.fit_seconds_ if math.isfinite(self.fit_seconds_) else None,
                    "history": self.history_,
                },
                sort_keys=True,
            ),
        }
        target = Path(path)
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp), metadata=header)
        return target

    @classmethod
    def load(cls: type[S], path: str | os.PathLike[str]) -> S:
        """Read a surrogate written by :meth:`save` (safetensors; never unpickles).

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the file is not a valid aalearn surrogate file, or holds another
                surrogate class than ``cls``.
        """
        model = load_surrogate(path)
        if not isinstance(model, cls):
            raise ValueError(
                f"{path} holds a {type(model).__name__}, not a {cls.__name__}; "
                "use aalearn.surrogates.models.load_surrogate to load any surrogate"
            )
        return model


def load_surrogate(path: str | os.PathLike[str]) -> Surrogate:
    """Load any surrogate saved by :meth:`Surrogate.save`.

    Args:
        path: The ``.safetensors`` file.

    Returns:
        The fitted :class:`FlowSurrogate` or :class:`FlowMatchingSurrogate` (eval mode).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For a corrupt file, a safetensors file that is not an aalearn
            surrogate, an unknown format version or class, or tensors that do not match.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from aalearn.surrogates.models import FlowMatchingSurrogate
        >>> x = np.random.default_rng(0).normal(size=(200, 2))
        >>> m = FlowMatchingSurrogate(hidden=(8,)).fit(x, epochs=1)
        >>> p = m.save(os.path.join(tempfile.mkdtemp(), "fm.safetensors"))
        >>> type(load_surrogate(p)).__name__
        'FlowMatchingSurrogate'
    """
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"surrogate file not found: {p}")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (no __iter__)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{p} is not a valid safetensors file (truncated or corrupt?): {exc}") from exc
    if header.get("aalearn_format") != SURROGATE_FORMAT:
        raise ValueError(f"{p} is a safetensors file but not an aalearn surrogate (no 'aalearn_format' key)")
    if header.get("aalearn_format_version") != SURROGATE_FORMAT_VERSION:
        raise ValueError(
            f"{p} has surrogate format version {header.get('aalearn_format_version')!r}; this aalearn reads "
            f"version {SURROGATE_FORMAT_VERSION}"
        )
    name = header.get("surrogate", "")
    if name not in Surrogate._registry:
        raise ValueError(f"{p}: unknown surrogate class {name!r} (known: {sorted(Surrogate._registry)})")
    try:
        params = json.loads(header["params"])
        state = json.loads(header["state"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{p}: corrupt params/state JSON in the header: {exc}") from exc
    cls = Surrogate._registry[name]
    try:
        model = cls(**params)
        validated = model._validated()
        n_features, n_classes = int(state["n_features"]), int(state["n_classes"])
        module = model._build(n_features, n_classes)
        module.load_state_dict(
            {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}, strict=True
        )
        mean = tensors["preprocessing.mean"].numpy().astype(np.float64)
        std = tensors["preprocessing.std"].numpy().astype(np.float64)
        prior = tensors["class_prior"].numpy().astype(np.float64)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{p}: the stored surrogate cannot be rebuilt: {exc}") from exc
    if mean.shape != (n_features,) or std.shape != (n_features,) or prior.shape != (n_classes,):
        raise ValueError(f"{p}: preprocessing or class-prior tensors do not match {n_features} features")
    model.module_ = module.eval()
    model.preprocessing_ = _Standardiser(validated["log_features"], validated["log_offset"], mean, std)
    model.n_features_ = n_features
    model.n_classes_ = n_classes
    model.class_prior_ = prior
    model.n_train_ = int(state.get("n_train", 0))
    model.best_epoch_ = int(state.get("best_epoch", -1))
    fit_seconds = state.get("fit_seconds")
    model.fit_seconds_ = float(fit_seconds) if fit_seconds is not None else math.nan
    model.history_ = {k: [float(v) for v in vals] for k, vals in dict(state.get("history", {})).items()}
    return model
