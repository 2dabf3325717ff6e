r"""Predictors that turn a binary aalearn classifier into an ensemble of predictions.

Three standard approximations of the Bayesian predictive distribution
:math:`p(y \mid x, \mathcal{D}) = \int p(y \mid x, \theta)\,p(\theta \mid \mathcal{D})\,d\theta`,
all with the same interface:

* ``member_probs(x, batch_size=8192)`` — member scores :math:`P(\text{label}=1)`, shape ``(M, N)``;
* ``predict(x, batch_size=8192)`` — the :class:`~aalearn.uncertainty.UncertaintyDecomposition`
  of those members (total = aleatoric + epistemic).

:class:`DeepEnsemble`
    :math:`M` networks trained from different random initialisations and batch orders
    (Lakshminarayanan et al., arXiv:1612.01474). The most reliable of the three, at
    :math:`M` times the training cost.
:class:`MCDropout`
    One network with dropout kept active at inference; each of the :math:`M` stochastic
    passes is a sample from an approximate variational posterior (Gal & Ghahramani,
    arXiv:1506.02142).
:class:`LastLayerLaplace`
    A Gaussian posterior :math:`\mathcal{N}(\theta_\text{MAP}, H^{-1})` over the weights
    and bias of the output layer only, everything else fixed at its trained value
    (Kristiadi et al., arXiv:2002.10118; Daxberger et al., arXiv:2106.14806). Post hoc,
    cheap, and it provably reduces over-confidence far from the data for ReLU networks.

Why the Laplace approximation is written here instead of using ``laplace-torch``:
``laplace-torch`` depends on ``torchvision``, and installing ``torchvision`` forces a
different (CUDA) build of torch than the CPU build ``torch==2.13.0`` the project pins.
For the case aalearn needs — the last layer of a binary classifier, with a full
:math:`(D+1)\times(D+1)` generalised Gauss–Newton Hessian — the method is about fifty lines
of linear algebra (:class:`LastLayerLaplace`), so a dependency is not worth it.

References:
    B. Lakshminarayanan, A. Pritzel, C. Blundell, "Simple and Scalable Predictive
    Uncertainty Estimation using Deep Ensembles", NeurIPS 2017, arXiv:1612.01474.

    Y. Gal, Z. Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
    Uncertainty in Deep Learning", ICML 2016, arXiv:1506.02142.

    A. Kristiadi, M. Hein, P. Hennig, "Being Bayesian, Even Just a Bit, Fixes
    Overconfidence in ReLU Networks", ICML 2020, arXiv:2002.10118.

    E. Daxberger, A. Kristiadi, A. Immer, R. Eschenhagen, M. Bauer, P. Hennig, "Laplace
    Redux — Effortless Bayesian Deep Learning", NeurIPS 2021, arXiv:2106.14806.

    D. J. C. MacKay, "The Evidence Framework Applied to Classification Networks",
    Neural Computation 4 (1992) (probit approximation, evidence).

Example:
    >>> import numpy as np, torch
    >>> from aalearn.models import TopoDNN
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> models = [TopoDNN(n_features=3, hidden=(4,)) for _ in range(2)]
    >>> d = DeepEnsemble(models).predict(np.zeros((5, 3)))
    >>> d.n_members, d.epistemic.shape
    (2, (5,))
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.linalg
import torch
from scipy.special import expit
from torch import Tensor, nn

from aalearn.core.validation import check_array, check_labels
from aalearn.models.checkpoint import load_model, save_checkpoint
from aalearn.models.predict import model_device, model_n_features, predict_proba
from aalearn.uncertainty.decomposition import UncertaintyDecomposition, decompose

__all__ = [
    "DEFAULT_PRIOR_PRECISION_GRID",
    "DROPOUT_TYPES",
    "DeepEnsemble",
    "LastLayerLaplace",
    "MCDropout",
    "UncertaintyPredictor",
    "add_dropout_before_output",
]

FloatArray = npt.NDArray[np.float64]

#: Dropout module types recognised by :class:`MCDropout`.
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

#: Prior precisions :math:`\tau` searched by :meth:`LastLayerLaplace.fit`: 10⁻⁴ … 10⁴,
#: ten points per decade.
DEFAULT_PRIOR_PRECISION_GRID: FloatArray = np.logspace(-4.0, 4.0, 81)


@runtime_checkable
class UncertaintyPredictor(Protocol):
    """Interface shared by :class:`DeepEnsemble`, :class:`MCDropout` and :class:`LastLayerLaplace`."""

    def member_probs(self, x: npt.ArrayLike, batch_size: int = 8192) -> FloatArray:
        """Member scores :math:`P(\\text{label}=1)`, shape ``(M, N)``."""
        ...

    def predict(self, x: npt.ArrayLike, batch_size: int = 8192) -> UncertaintyDecomposition:
        """Uncertainty decomposition of the members."""
        ...


# --------------------------------------------------------------------------- helpers
def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def _check_module(model: Any, *, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _weights_key(model: nn.Module) -> tuple[tuple[str, tuple[int, ...], bytes], ...]:
    return tuple(
        (name, tuple(t.shape), t.detach().cpu().contiguous().numpy().tobytes())
        for name, t in model.state_dict().items()
    )


def _check_distinct_weights(members: Sequence[nn.Module]) -> None:
    """Refuse members with identical weights (the same file twice): their epistemic spread is 0."""
    seen: dict[tuple[tuple[str, tuple[int, ...], bytes], ...], int] = {}
    for i, m in enumerate(members):
        j = seen.setdefault(_weights_key(m), i)
        if j != i:
            raise ValueError(
                f"ensemble members {j} and {i} have identical weights (the same model file twice?); "
                "identical members report an epistemic uncertainty of 0, so give distinct models"
            )


def _check_x(model: nn.Module, x: Any, *, name: str = "x") -> npt.NDArray[np.float32]:
    arr = check_array(x, name=name, ndim=2, dtype=np.float32)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    n_features = model_n_features(model)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} feature columns but the model expects {n_features}")
    return np.array(arr, copy=True) if not arr.flags.writeable else arr


def _logits_1d(out: Tensor, n: int) -> Tensor:
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (n,):
        raise ValueError(
            f"the model returned shape {tuple(out.shape)} for a batch of {n}; a binary classifier must "
            "return one logit of P(label=1) per row, shape (N,) or (N, 1)"
        )
    return out


def _model_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters()), torch.float32)


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


@contextmanager
def _preserve_modes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag on exit."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


# --------------------------------------------------------------------------- deep ensemble
class DeepEnsemble:
    r"""Deep ensemble of binary classifiers (Lakshminarayanan et al., arXiv:1612.01474).

    The members are averaged in probability space,
    :math:`\bar p(x) = \frac{1}{M}\sum_m \sigma(z_m(x))`, and their disagreement is the
    epistemic uncertainty (:func:`~aalearn.uncertainty.decompose`). Members differ by
    their random initialisation and mini-batch order only (no bootstrap), which the
    paper found sufficient.

    Args:
        models: At least two binary classifiers returning logits of
            :math:`P(\text{label}=1)`, all with the same number of input features (when it
            can be told, :func:`aalearn.models.model_n_features`). They are run in eval
            mode.

    Attributes:
        models: The members.
        histories: Training histories when built by
            :func:`aalearn.training.train_ensemble`, else ``None``.
        seeds: Member seeds when built by :func:`aalearn.training.train_ensemble`, else ``None``.

    Raises:
        TypeError: If a member is not an ``nn.Module``.
        ValueError: For fewer than two members, the same module twice, two members with
            identical weights (the same file loaded twice) or different input sizes.

    Example:
        >>> import numpy as np
        >>> from aalearn.models import TopoDNN
        >>> ens = DeepEnsemble([TopoDNN(n_features=2, hidden=(3,)) for _ in range(3)])
        >>> ens.member_probs(np.zeros((4, 2))).shape
        (3, 4)
    """

    method = "ensemble"

    def __init__(self, models: Sequence[nn.Module]) -> None:
        if isinstance(models, nn.Module) or not isinstance(models, Sequence):
            raise TypeError("models must be a sequence of torch.nn.Module (at least two)")
        members = [_check_module(m, name=f"models[{i}]") for i, m in enumerate(models)]
        if len(members) < 2:
            raise ValueError(f"a deep ensemble needs at least 2 models, got {len(members)}")
        if len({id(m) for m in members}) != len(members):
            raise ValueError("the same module appears more than once in models; members must be distinct")
        sizes = {n for n in (model_n_features(m) for m in members) if n is not None}
        if len(sizes) > 1:
            raise ValueError(f"all members must take the same number of input features, got {sorted(sizes)}")
        _check_distinct_weights(members)
        self.models: list[nn.Module] = members
        self.histories: list[Any] | None = None
        self.seeds: list[int] | None = None

    @property
    def n_members(self) -> int:
        """Number of members :math:`M`."""
        return len(self.models)

    def __len__(self) -> int:
        return self.n_members

    def member_probs(self, x: npt.ArrayLike, batch_size: int = 8192) -> FloatArray:
        r"""Scores :math:`P(\text{label}=1)` of every member, shape ``(M, N)``, float64.

        Args:
            x: Features ``(N, F)``.
            batch_size: Rows per forward pass.
        """
        _check_x(self.models[0], x)
        return np.stack([predict_proba(m, x, batch_size=batch_size).astype(np.float64) for m in self.models])

    def predict(self, x: npt.ArrayLike, batch_size: int = 8192) -> UncertaintyDecomposition:
        """Uncertainty decomposition of the members' scores (method ``"ensemble"``).

        Args:
            x: Features ``(N, F)``.
            batch_size: Rows per forward pass.
        """
        return decompose(self.member_probs(x, batch_size=batch_size), binary=True, method=self.method)

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | Path]) -> DeepEnsemble:
        """Load the members with :func:`aalearn.models.load_model` (safetensors or Keras HDF5).

        Args:
            paths: At least two model files.

        Raises:
            TypeError: If ``paths`` is a single path instead of a sequence.
            FileNotFoundError, ValueError: From :func:`~aalearn.models.load_model`.
        """
        if isinstance(paths, (str, Path)) or not isinstance(paths, Sequence):
            raise TypeError("paths must be a sequence of model files, not a single path")
        return cls([load_model(p) for p in paths])

    def save(self, directory: str | Path, *, metadata: Mapping[str, Any] | None = None) -> list[Path]:
        """Save every member as ``member_<i>.safetensors`` in ``directory`` (created if needed).

        Members must be of a registered architecture (:func:`aalearn.models.save_checkpoint`).
        Reload with ``DeepEnsemble.from_checkpoints(paths)``.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, model in enumerate(self.models):
            meta = {"ensemble_member": i, "n_members": self.n_members, **dict(metadata or {})}
            if self.seeds is not None:
                meta["seed"] = self.seeds[i]
            path = out / f"member_{i}.safetensors"
            save_checkpoint(model, path, metadata=meta)
            paths.append(path)
        return paths


# --------------------------------------------------------------------------- MC dropout
def _dropout_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, DROPOUT_TYPES) and float(getattr(m, "p", 0.0)) > 0]


def add_dropout_before_output(model: nn.Module, p: float) -> nn.Module:
    """Deep copy of ``model`` with ``nn.Dropout(p)`` in front of its last ``nn.Linear``.

    The last-registered :class:`torch.nn.Linear` (the output layer of a feed-forward
    network; for :class:`~aalearn.models.TopoDNN` its ``output``, so the dropout acts on
    the output of the last hidden block) is replaced in its parent by
    ``nn.Sequential(dropout=nn.Dropout(p), linear=<the layer>)``. The original model is
    not modified. The copy's ``state_dict`` keys of that layer change
    (``output.weight`` → ``output.linear.weight``), so save the original, not the copy.

    Args:
        model: The network.
        p: Dropout probability in (0, 1).

    Returns:
        The modified copy, in the original's train/eval mode.

    Raises:
        ValueError: For ``p`` outside (0, 1) or a model without an ``nn.Linear``.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> net = add_dropout_before_output(TopoDNN(n_features=2, hidden=(3,)), 0.2)
        >>> type(net.output.dropout).__name__
        'Dropout'
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < float(p) < 1.0:
        raise ValueError(f"dropout probability p must lie in (0, 1), got {p!r}")
    net = copy.deepcopy(_check_module(model))
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer in front of which dropout could be inserted")
    name = linears[-1]
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    if not child:  # the model itself is a Linear
        raise ValueError(
            "the model is a single nn.Linear; wrap it, e.g. nn.Sequential(nn.Dropout(p), linear)"
        )
    layer = getattr(parent, child)
    wrapped = nn.Sequential(OrderedDict(dropout=nn.Dropout(float(p)), linear=layer))
    wrapped.train(layer.training)
    setattr(parent, child, wrapped)
    return net


class MCDropout:
    r"""Monte-Carlo dropout (Gal & Ghahramani, arXiv:1506.02142).

    At inference every dropout module stays active (train mode) while the rest of the
    network — batch normalisation in particular — is in eval mode; each of the
    ``n_samples`` stochastic passes :math:`p_s(x) = \sigma(z(x; \hat\theta \odot m_s))`,
    with Bernoulli masks :math:`m_s`, is one member of the decomposition.

    If the model has no dropout module with :math:`p > 0` (TopoDNN with ``dropout=0``,
    the default), a ``ValueError`` is raised, unless ``p`` is given: then a **deep copy**
    of the model gets ``nn.Dropout(p)`` in front of its output layer
    (:func:`add_dropout_before_output`; for TopoDNN after the last hidden block) and the
    original is left untouched. That post-hoc insertion is a cheap heuristic, not
    the variational posterior of a network trained with dropout; prefer training with
    ``TopoDNN(dropout=…)``. Passing ``p`` for a model that already has dropout is an error
    (ambiguous).

    Results are reproducible: the torch RNG is seeded with ``seed`` inside
    :func:`torch.random.fork_rng` on every call (the caller's RNG state is untouched), so
    the same ``seed``, inputs and ``batch_size`` give the same output.

    Args:
        model: Binary classifier returning logits of :math:`P(\text{label}=1)`.
        n_samples: Number of stochastic passes :math:`M \ge 2`.
        p: Dropout rate to insert (see above), or ``None``.
        seed: Seed of the dropout masks (≥ 0).

    Attributes:
        model: The network used — the original, or the copy with inserted dropout.
        inserted: Whether dropout was inserted into a copy.

    Raises:
        TypeError: For a model that is not an ``nn.Module`` or non-integer counts.
        ValueError: For a model without dropout and ``p=None``, ``p`` given for a model
            with dropout, ``p`` outside (0, 1), or ``n_samples < 2``.

    Example:
        >>> import numpy as np
        >>> from aalearn.models import TopoDNN
        >>> mc = MCDropout(TopoDNN(n_features=2, hidden=(8,), dropout=0.3), n_samples=10)
        >>> mc.member_probs(np.ones((3, 2))).shape
        (10, 3)
        >>> bool((mc.member_probs(np.ones((3, 2))) == mc.member_probs(np.ones((3, 2)))).all())
        True
    """

    method = "mc_dropout"

    def __init__(self, model: nn.Module, n_samples: int = 30, p: float | None = None, seed: int = 0) -> None:
        model = _check_module(model)
        self.n_samples = _check_int(n_samples, name="n_samples", minimum=2)
        self.seed = _check_int(seed, name="seed", minimum=0)
        existing = _dropout_modules(model)
        if p is None:
            if not existing:
                raise ValueError(
                    "the model has no dropout layer (nn.Dropout with p > 0), so MC dropout would return "
                    "identical samples; train it with dropout (e.g. TopoDNN(dropout=0.1)) or pass p=… to "
                    "insert dropout in front of the output layer of a copy"
                )
            self.model: nn.Module = model
            self.inserted = False
        else:
            if existing:
                rates = sorted({float(getattr(m, "p", 0.0)) for m in existing})
                raise ValueError(
                    f"the model already has dropout (p = {rates}); pass p=None to use it, "
                    "or a model without dropout to insert one"
                )
            self.model = add_dropout_before_output(model, p)
            self.inserted = True
        self.p = None if p is None else float(p)
        self._dropouts = _dropout_modules(self.model)

    @property
    def dropout_rates(self) -> list[float]:
        """Rates of the dropout modules that are active at inference."""
        return [float(getattr(m, "p", 0.0)) for m in self._dropouts]

    @torch.no_grad()
    def member_probs(self, x: npt.ArrayLike, batch_size: int = 8192) -> FloatArray:
        r"""Scores :math:`P(\text{label}=1)` of the ``n_samples`` dropout passes, shape ``(M, N)``.

        Each forward pass holds at most ``batch_size`` rows: ``batch_size // n_samples``
        jets, each repeated ``n_samples`` times.

        Args:
            x: Features ``(N, F)``.
            batch_size: Rows per forward pass.
        """
        batch_size = _check_int(batch_size, name="batch_size", minimum=1)
        arr = _check_x(self.model, x)
        n, s = arr.shape[0], self.n_samples
        rows = max(1, batch_size // s)
        device, dtype = model_device(self.model), _model_dtype(self.model)
        out = np.empty((s, n), dtype=np.float64)
        with _preserve_modes(self.model), torch.random.fork_rng(devices=_cuda_devices(device)):
            self.model.eval()
            for module in self._dropouts:
                module.train()
            torch.manual_seed(self.seed)
            for start in range(0, n, rows):
                xb = torch.from_numpy(arr[start : start + rows]).to(device=device, dtype=dtype)
                b = xb.shape[0]
                logits = _logits_1d(self.model(xb.repeat(s, 1)), s * b)
                out[:, start : start + b] = torch.sigmoid(logits.double()).reshape(s, b).cpu().numpy()
        return out

    def predict(self, x: npt.ArrayLike, batch_size: int = 8192) -> UncertaintyDecomposition:
        """Uncertainty decomposition of the dropout passes (method ``"mc_dropout"``)."""
        return decompose(self.member_probs(x, batch_size=batch_size), binary=True, method=self.method)


# --------------------------------------------------------------------------- last-layer Laplace
class LastLayerLaplace:
    r"""Last-layer Laplace approximation for a binary classifier (Kristiadi et al. 2020; Daxberger 2021).

    The network is split into a fixed feature map :math:`\phi(x) \in \mathbb{R}^D` (the
    input of the final ``nn.Linear(D, 1)``, read with a forward hook) and the output
    layer :math:`z = w^\top\phi + b = \theta^\top\tilde\phi`, with
    :math:`\tilde\phi = [\phi, 1]` and :math:`\theta = [w, b]`. Around the trained
    :math:`\theta_\text{MAP}` the posterior over :math:`\theta` is approximated by
    :math:`\mathcal{N}(\theta_\text{MAP}, H^{-1})` with the generalised Gauss–Newton
    (= Fisher, exact for the logistic likelihood) Hessian of the negative log posterior

    .. math::

        H = \sum_{i=1}^{n} p_i (1 - p_i)\,\tilde\phi_i\tilde\phi_i^\top + \tau I,
        \qquad p_i = \sigma(\theta_\text{MAP}^\top \tilde\phi_i),

    summed over the fit data (the training set) and an isotropic Gaussian prior of
    precision :math:`\tau`. The predictive logit is Gaussian,
    :math:`z \sim \mathcal{N}(\mu, v)` with :math:`\mu = \theta_\text{MAP}^\top\tilde\phi`,
    :math:`v = \tilde\phi^\top H^{-1}\tilde\phi`.

    **Prior precision.** With ``prior_precision=None``, :math:`\tau` maximises the Laplace
    approximation of the log marginal likelihood over the grid
    :data:`DEFAULT_PRIOR_PRECISION_GRID` (10⁻⁴ … 10⁴, 10 points per decade),

    .. math::

        \ln p(\mathcal{D} \mid \tau) \approx \sum_i \ln p(y_i \mid \theta_\text{MAP})
        - \frac{\tau}{2}\lVert\theta_\text{MAP}\rVert^2 + \frac{P}{2}\ln\tau
        - \frac{1}{2}\ln\det H(\tau),

    (:math:`P = D + 1`; the :math:`2\pi` terms cancel), evaluated in closed form from the
    eigenvalues of the GGN. As in ``laplace-torch``'s post-hoc ``marglik``,
    :math:`\theta_\text{MAP}` is kept fixed although the network was not trained with
    that prior. A warning is issued when the maximum is on the edge of the grid.

    **Predictions.** :meth:`predict` draws ``n_samples`` parameter vectors
    :math:`\theta_s \sim \mathcal{N}(\theta_\text{MAP}, H^{-1})`, giving member scores
    :math:`\sigma(\theta_s^\top\tilde\phi)` (method ``"laplace"``); :meth:`probit_mean`
    gives MacKay's deterministic approximation of the predictive mean,

    .. math::

        P(y = 1 \mid x) \approx \sigma\Bigl(\mu / \sqrt{1 + \pi v / 8}\Bigr).

    The model is run in eval mode (batch norm with running statistics, dropout off).

    Args:
        model: Binary classifier whose **last registered module** is an ``nn.Linear``
            with one output whose output is the model's logit (TopoDNN's ``output``).
        prior_precision_grid: Grid of :math:`\tau` for the marginal-likelihood search.

    Attributes:
        theta_map: :math:`\theta_\text{MAP} = [w, b]`, shape ``(P,)`` (after :meth:`fit`).
        ggn: :math:`\sum_i p_i(1-p_i)\tilde\phi_i\tilde\phi_i^\top`, ``(P, P)``.
        prior_precision: The :math:`\tau` used.
        posterior_covariance: :math:`H^{-1}`, ``(P, P)``.
        log_marginal_likelihood_grid: Log marginal likelihood at each grid point (only
            when :math:`\tau` was selected from the grid).
        n_fit: Number of jets the Hessian was summed over.

    Raises:
        TypeError: If ``model`` is not an ``nn.Module``.
        ValueError: If the last module is not an ``nn.Linear`` with one output.

    Example:
        >>> import numpy as np
        >>> from aalearn.models import TopoDNN
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 200)
        >>> x = rng.normal(size=(200, 3)) + y[:, None]
        >>> la = LastLayerLaplace(TopoDNN(n_features=3, hidden=(8,))).fit(x, y)
        >>> la.predict(x[:5], n_samples=50).n_members, la.probit_mean(x[:5]).shape
        (50, (5,))
    """

    method = "laplace"

    def __init__(self, model: nn.Module, *, prior_precision_grid: npt.ArrayLike | None = None) -> None:
        model = _check_module(model)
        modules = list(model.modules())
        last = modules[-1]
        if not isinstance(last, nn.Linear) or last.out_features != 1:
            raise ValueError(
                "LastLayerLaplace needs a binary model whose last module is nn.Linear(D, 1) producing the "
                f"logit (like TopoDNN's `output`); the last module is {type(last).__name__}"
                + (f" with {last.out_features} outputs" if isinstance(last, nn.Linear) else "")
            )
        grid = DEFAULT_PRIOR_PRECISION_GRID if prior_precision_grid is None else prior_precision_grid
        grid_arr = check_array(grid, name="prior_precision_grid", ndim=1, dtype=np.float64)
        if grid_arr.size == 0 or (grid_arr <= 0).any():
            raise ValueError("prior_precision_grid must be a non-empty 1-D array of positive numbers")
        self.model = model
        self.last_layer: nn.Linear = last
        self.prior_precision_grid: FloatArray = np.sort(grid_arr)
        self.theta_map: FloatArray | None = None
        self.ggn: FloatArray | None = None
        self.prior_precision: float | None = None
        self.posterior_covariance: FloatArray | None = None
        self.log_marginal_likelihood_grid: FloatArray | None = None
        self.n_fit = 0
        self._log_lik = 0.0
        self._chol: FloatArray | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has been called."""
        return self.posterior_covariance is not None

    @property
    def n_params(self) -> int:
        """Number of last-layer parameters :math:`P` (weights plus bias)."""
        return int(self.last_layer.in_features + (self.last_layer.bias is not None))

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def _feature_batches(self, x: Any, batch_size: int) -> Iterator[FloatArray]:
        r""":math:`\tilde\phi` of ``x`` in batches, float64 ``(b, P)``; checks the model's output."""
        batch_size = _check_int(batch_size, name="batch_size", minimum=1)
        arr = _check_x(self.model, x)
        device, dtype = model_device(self.model), _model_dtype(self.model)
        captured: list[tuple[Tensor, Tensor]] = []

        def hook(_module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            captured.append((inputs[0].detach(), output.detach()))

        handle = self.last_layer.register_forward_hook(hook)
        try:
            with _preserve_modes(self.model):
                self.model.eval()
                for start in range(0, arr.shape[0], batch_size):
                    captured.clear()
                    xb = torch.from_numpy(arr[start : start + batch_size]).to(device=device, dtype=dtype)
                    logits = _logits_1d(self.model(xb), xb.shape[0])
                    if len(captured) != 1:
                        raise ValueError(
                            f"the last Linear layer ran {len(captured)} times in one forward pass; "
                            "LastLayerLaplace needs it to run exactly once"
                        )
                    phi, z_layer = captured[0]
                    if phi.ndim != 2 or phi.shape[0] != xb.shape[0]:
                        raise ValueError(
                            f"the last layer's input must have shape (N, D), got {tuple(phi.shape)}"
                        )
                    if not torch.allclose(z_layer.reshape(-1), logits, rtol=1e-4, atol=1e-5):
                        raise ValueError(
                            "the model's output is not the output of its last nn.Linear layer; "
                            "LastLayerLaplace needs the logit to be that layer's output"
                        )
                    feats = phi.double().cpu().numpy()
                    if self.last_layer.bias is not None:
                        feats = np.concatenate([feats, np.ones((feats.shape[0], 1))], axis=1)
                    yield feats
        finally:
            handle.remove()

    def _layer_theta(self) -> FloatArray:
        w = self.last_layer.weight.detach().double().cpu().numpy().reshape(-1)
        if self.last_layer.bias is None:
            return w
        return np.concatenate([w, self.last_layer.bias.detach().double().cpu().numpy().reshape(-1)])

    # ------------------------------------------------------------------ fit
    def log_marginal_likelihood(self, prior_precision: float) -> float:
        r"""Laplace log marginal likelihood :math:`\ln p(\mathcal{D} \mid \tau)` of the fit data."""
        if self.ggn is None or self.theta_map is None:
            raise RuntimeError("call fit(x, y) first")
        tau = float(prior_precision)
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"prior_precision must be a finite positive number, got {prior_precision!r}")
        eig = np.clip(np.linalg.eigvalsh(self.ggn), 0.0, None)
        return float(self._lml(np.array([tau]), eig, self.theta_map)[0])

    def _lml(self, taus: FloatArray, eig: FloatArray, theta: FloatArray) -> FloatArray:
        p = theta.size
        sq = float(theta @ theta)
        logdet = np.log(eig[None, :] + taus[:, None]).sum(axis=1)
        return np.asarray(self._log_lik - 0.5 * taus * sq + 0.5 * p * np.log(taus) - 0.5 * logdet)

    def fit(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        prior_precision: float | None = None,
        *,
        batch_size: int = 8192,
    ) -> LastLayerLaplace:
        r"""Compute the GGN Hessian of the last layer on ``(x, y)`` and the posterior covariance.

        Args:
            x: Features ``(N, F)``, normally the training set.
            y: Labels ``(N,)`` in {0, 1}.
            prior_precision: :math:`\tau > 0`, or ``None`` to maximise the marginal
                likelihood over ``prior_precision_grid``.
            batch_size: Rows per forward pass.

        Returns:
            ``self``.

        Raises:
            ValueError: For bad inputs or labels, a non-positive ``prior_precision`` or a
                model whose output is not the last layer's output.
        """
        if prior_precision is not None:
            tau_given = float(prior_precision)
            if not (math.isfinite(tau_given) and tau_given > 0):
                raise ValueError(f"prior_precision must be a finite positive number, got {prior_precision!r}")
        arr = _check_x(self.model, x)
        labels = check_labels(y, name="y", n=arr.shape[0]).astype(np.float64)
        theta = self._layer_theta()
        ggn = np.zeros((theta.size, theta.size))
        log_lik, start = 0.0, 0
        for feats in self._feature_batches(arr, batch_size):
            yb = labels[start : start + feats.shape[0]]
            start += feats.shape[0]
            z = feats @ theta
            p = expit(z)
            ggn += (feats * (p * (1.0 - p))[:, None]).T @ feats
            log_lik -= float(np.sum(np.logaddexp(0.0, -(2.0 * yb - 1.0) * z)))
        self.theta_map, self.ggn, self._log_lik, self.n_fit = theta, ggn, log_lik, arr.shape[0]
        if prior_precision is None:
            eig = np.clip(np.linalg.eigvalsh(ggn), 0.0, None)
            lml = self._lml(self.prior_precision_grid, eig, theta)
            best = int(np.argmax(lml))
            if best in (0, lml.size - 1) and lml.size > 1:
                warnings.warn(
                    f"the prior precision maximising the marginal likelihood lies on the edge of the grid "
                    f"({self.prior_precision_grid[best]:.3g}); consider a wider prior_precision_grid",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self.log_marginal_likelihood_grid = lml
            tau = float(self.prior_precision_grid[best])
        else:
            self.log_marginal_likelihood_grid = None
            tau = tau_given
        self.prior_precision = tau
        hessian = ggn + tau * np.eye(theta.size)
        chol = np.asarray(np.linalg.cholesky(hessian), dtype=np.float64)
        self._chol = chol
        self.posterior_covariance = np.asarray(
            scipy.linalg.cho_solve((chol, True), np.eye(theta.size)), dtype=np.float64
        )
        return self

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        if self.theta_map is None or self.posterior_covariance is None or self._chol is None:
            raise RuntimeError("LastLayerLaplace is not fitted: call fit(x_train, y_train) first")
        theta_now = self._layer_theta()
        if theta_now.shape != self.theta_map.shape or not np.allclose(theta_now, self.theta_map):
            raise RuntimeError("the last layer's weights changed since fit(); call fit again")
        return self.theta_map, self.posterior_covariance, self._chol

    def logit_mean_var(self, x: npt.ArrayLike, batch_size: int = 8192) -> tuple[FloatArray, FloatArray]:
        r"""Mean :math:`\mu` and variance :math:`\tilde\phi^\top H^{-1}\tilde\phi` of the logit, ``(N,)``."""
        theta, cov, _ = self._check_fitted()
        mus, vs = [], []
        for feats in self._feature_batches(x, batch_size):
            mus.append(feats @ theta)
            vs.append(np.einsum("nd,de,ne->n", feats, cov, feats))
        return np.concatenate(mus), np.clip(np.concatenate(vs), 0.0, None)

    def probit_mean(self, x: npt.ArrayLike, batch_size: int = 8192) -> FloatArray:
        r"""MacKay's probit approximation :math:`\sigma(\mu/\sqrt{1 + \pi v/8})` of the mean, ``(N,)``."""
        mu, var = self.logit_mean_var(x, batch_size=batch_size)
        return np.asarray(expit(mu / np.sqrt(1.0 + math.pi * var / 8.0)), dtype=np.float64)

    def member_probs(
        self, x: npt.ArrayLike, batch_size: int = 8192, *, n_samples: int = 100, seed: int = 0
    ) -> FloatArray:
        r"""Scores of ``n_samples`` draws :math:`\theta_s \sim \mathcal{N}(\theta_\text{MAP}, H^{-1})`.

        Draws :math:`\theta_s = \theta_\text{MAP} + L^{-\top}\varepsilon_s` with
        :math:`H = LL^\top` and :math:`\varepsilon_s \sim \mathcal{N}(0, I)` from
        ``numpy.random.default_rng(seed)``: the same ``seed`` gives the same draws.
        """
        n_samples = _check_int(n_samples, name="n_samples", minimum=2)
        seed = _check_int(seed, name="seed", minimum=0)
        theta, _, chol = self._check_fitted()
        eps = np.random.default_rng(seed).standard_normal((theta.size, n_samples))
        thetas = theta[:, None] + scipy.linalg.solve_triangular(chol, eps, lower=True, trans="T")
        return np.concatenate(
            [expit(feats @ thetas).T for feats in self._feature_batches(x, batch_size)], axis=1
        )

    def predict(
        self, x: npt.ArrayLike, batch_size: int = 8192, *, n_samples: int = 100, seed: int = 0
    ) -> UncertaintyDecomposition:
        """Uncertainty decomposition of :meth:`member_probs` (method ``"laplace"``)."""
        return decompose(
            self.member_probs(x, batch_size=batch_size, n_samples=n_samples, seed=seed),
            binary=True,
            method=self.method,
        )
