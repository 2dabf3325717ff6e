r"""Neural posterior, likelihood and ratio estimation through sbi: :func:`train_posterior`.

aalearn does not implement flows or estimators; it calls sbi (Tejero-Cantero et al.,
"sbi: A toolkit for simulation-based inference", JOSS 5 (2020) 2505; Boelts et al.,
arXiv:2411.17337) with seeded, validated inputs and wraps the result in a small
:class:`Posterior` with NumPy in- and outputs:

* ``"npe"`` -- neural posterior estimation, sbi's ``NPE`` (= NPE-C, Greenberg, Nonnenmacher,
  Macke, arXiv:1905.07488; single round it is Papamakarios & Murray, arXiv:1605.06376):
  a conditional flow :math:`q(\theta \mid x)`, sampled directly (rejecting samples outside
  the prior support);
* ``"nle"`` -- neural likelihood estimation, sbi's ``NLE`` (Papamakarios, Sterratt, Macke,
  arXiv:1805.07226): a flow :math:`q(x \mid \theta)`, posterior by MCMC (sbi's vectorised
  slice sampler);
* ``"nre"`` -- neural ratio estimation, sbi's ``NRE`` (= NRE-B, Durkan, Murray, Papamakarios,
  arXiv:2002.03712; Hermans, Begy, Louppe, arXiv:1903.04057): a classifier
  :math:`\log r(\theta, x)`, posterior by MCMC;
* ``"bnre"`` -- balanced NRE, sbi's ``BNRE`` (Delaunoy et al., arXiv:2208.13624), which biases
  the ratio towards conservative posteriors.

Ensembles (``ensemble > 1``) train members with different seeds and combine them with
sbi's ``EnsemblePosterior`` (equal weights), one of the remedies against overconfidence
of Hermans et al., "A Trust Crisis in Simulation-Based Inference?", arXiv:2110.06581.

For a set of i.i.d. observations :math:`x_1..x_k` (an array ``(k, X)``) NLE and NRE sample
:math:`p(\theta) \prod_j q(x_j \mid \theta)` (or :math:`\prod_j r(\theta, x_j)`), which sbi
does natively; NPE would need a permutation-invariant embedding and raises.

Example:
    >>> import numpy as np, torch
    >>> prior = torch.distributions.MultivariateNormal(torch.zeros(1), torch.eye(1))
    >>> theta = prior.sample((500,)).numpy()
    >>> x = theta + 0.5 * np.random.default_rng(0).normal(size=theta.shape)
    >>> post = train_posterior(theta, x, prior=prior, density_estimator="mdn", max_epochs=5)  # doctest: +SKIP
    >>> post.sample(100, np.array([0.3]), seed=0).shape  # doctest: +SKIP
    (100, 1)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.validation import check_array
from aalearn.inference.sbi.simulator import check_prior_dimension

__all__ = ["METHODS", "Method", "Posterior", "seeded", "train_posterior"]

FloatArray = npt.NDArray[np.float64]
Method = Literal["npe", "nle", "nre", "bnre"]

#: The supported methods and the sbi trainer behind each.
METHODS: dict[str, str] = {"npe": "NPE", "nle": "NLE", "nre": "NRE", "bnre": "BNRE"}
_FLOWS = ("maf", "nsf", "mdn", "made", "maf_rqs", "zuko_maf", "zuko_nsf")
_CLASSIFIERS = ("resnet", "mlp", "linear")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and NumPy's global generators for a block, restoring both afterwards.

    sbi draws from the global generators (training batches, MCMC initialisation, NumPy's
    slice sampler), so this makes its training and sampling reproducible without
    changing the caller's random state.

    Example:
        >>> import torch
        >>> with seeded(1):
        ...     a = torch.rand(1)
        >>> with seeded(1):
        ...     b = torch.rand(1)
        >>> bool(a == b)
        True
    """
    import torch

    state = np.random.get_state()  # noqa: NPY002 - restored below
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - sbi's slice sampler uses the legacy global state
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002


def _split_kwargs(kwargs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Route keyword arguments to the sbi call whose signature accepts them."""
    out: dict[str, dict[str, Any]] = {name: {} for name in targets}
    accepted: dict[str, set[str]] = {
        name: set(inspect.signature(fn).parameters) - {"self"} for name, fn in targets.items()
    }
    for key, value in kwargs.items():
        for name in targets:
            if key in accepted[name]:
                out[name][key] = value
                break
        else:
            valid = sorted(set().union(*accepted.values()) - {"prior", "density_estimator", "classifier"})
            raise TypeError(
                f"unknown sbi option {key!r}; options accepted by the trainer, train() and "
                "build_posterior(): "
                f"{', '.join(valid)}"
            )
    return out


class _NullTracker:
    """An sbi experiment tracker that records nothing.

    sbi's default tracker writes TensorBoard logs to ``./sbi-logs`` in the current
    directory on every training; aalearn passes this one unless the caller gives
    ``tracker=`` or ``summary_writer=``.
    """

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        return None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        return None

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        return None

    def flush(self) -> None:
        return None


class Posterior:
    """A trained sbi posterior (or an ensemble of them) with a NumPy interface.

    Attributes:
        method: ``"npe"``, ``"nle"``, ``"nre"`` or ``"bnre"``.
        seconds_train: Wall-clock training time (all members).
        n_simulations: Number of training simulations.
        ensemble: Number of members.
        prior: The prior (a torch distribution).
        sbi_posterior: The underlying sbi posterior (``EnsemblePosterior`` for ensembles).
        members: The members' sbi posteriors.
        epochs: Training epochs per member.

    Example:
        >>> post = train_posterior(theta, x, prior=prior)  # doctest: +SKIP
        >>> post.log_prob(post.sample(10, x_o, seed=0), x_o).shape  # doctest: +SKIP
        (10,)
    """

    def __init__(
        self,
        method: str,
        members: list[Any],
        *,
        prior: Any,
        seconds_train: float,
        n_simulations: int,
        dim_x: int,
        epochs: list[int] | None = None,
    ) -> None:
        if not members:
            raise ValueError("a Posterior needs at least one trained sbi posterior")
        self.method = method
        self.members = list(members)
        self.prior = prior
        self.seconds_train = float(seconds_train)
        self.n_simulations = int(n_simulations)
        self.ensemble = len(self.members)
        self.epochs = list(epochs or [])
        self._dim_x = int(dim_x)
        self._dim_theta = int(prior.event_shape[0])
        self._log_z_cache: dict[tuple[bytes, int, int, int], FloatArray] = {}
        if len(self.members) == 1:
            self.sbi_posterior = self.members[0]
        else:
            inference = require("sbi.inference", purpose="ensembles of sbi posteriors")
            self.sbi_posterior = inference.EnsemblePosterior(self.members)

    def __repr__(self) -> str:
        ens = f", ensemble={self.ensemble}" if self.ensemble > 1 else ""
        return f"Posterior(method={self.method!r}, n_simulations={self.n_simulations}{ens})"

    @property
    def dim_parameters(self) -> int:
        """Number of parameters."""
        return self._dim_theta

    @property
    def dim_observables(self) -> int:
        """Number of observables per observation."""
        return self._dim_x

    def _x(self, x_o: Any, *, allow_iid: bool = True) -> Any:
        import torch

        x = np.asarray(x_o, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self._dim_x:
            raise ValueError(
                f"x_o must have shape ({self._dim_x},) for one observation or (k, {self._dim_x}) for k "
                "i.i.d. "
                f"observations, got {np.asarray(x_o).shape}"
            )
        check_array(x, name="x_o", ndim=2, dtype=np.float64)
        if x.shape[0] > 1 and (self.method == "npe" or not allow_iid):
            raise ValueError(
                f"x_o holds {x.shape[0]} i.i.d. observations, but an NPE posterior q(theta | x) is "
                "conditioned "
                "on a single observation; train with method='nle' or 'nre' to combine i.i.d. observations"
            )
        return torch.as_tensor(x, dtype=torch.float32)

    def sample(self, n: int, x_o: npt.ArrayLike, *, seed: int) -> FloatArray:
        """Draw ``n`` posterior samples given one observation or a set of i.i.d. observations.

        Args:
            n: Number of samples.
            x_o: ``(X,)`` for one observation, or ``(k, X)`` for k i.i.d. observations
                (NLE/NRE: product of the per-observation likelihoods or ratios).
            seed: Seed of the draw (torch's and NumPy's global state are restored).

        Returns:
            ``(n, D)`` samples.

        Raises:
            ValueError: For a malformed ``x_o`` or ``k > 1`` with NPE.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return self._draw(self.sbi_posterior, int(n), self._x(x_o), seed=seed)

    def _draw(self, distribution: Any, n: int, x: Any, *, seed: int) -> FloatArray:
        """``n`` seeded samples of an sbi posterior (the ensemble or one member) given ``x``."""
        with seeded(seed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(unnormalized|iid|i.i.d).*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"nflows\.")
            samples = distribution.sample((n,), x=x, show_progress_bars=False)
        return np.asarray(samples.detach().cpu().numpy(), dtype=np.float64).reshape(n, self._dim_theta)

    def sample_batched(self, n: int, xs: npt.ArrayLike, *, seed: int) -> FloatArray:
        """``n`` samples for each of several observations (vectorised where sbi supports it).

        Args:
            n: Samples per observation.
            xs: ``(B, X)`` observations (each one a separate posterior, not i.i.d.).
            seed: Seed of the draw.

        Returns:
            ``(n, B, D)`` samples.
        """
        x = np.asarray(xs, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._dim_x:
            raise ValueError(f"xs must have shape (B, {self._dim_x}), got {x.shape}")
        check_array(x, name="xs", ndim=2, dtype=np.float64)
        import torch

        with seeded(seed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(unnormalized|max_sampling_batch_size|batched).*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"nflows\.")
            try:
                out = self.sbi_posterior.sample_batched(
                    (int(n),), x=torch.as_tensor(x, dtype=torch.float32), show_progress_bars=False
                )
            except (NotImplementedError, AssertionError):
                out = None
        if out is None:
            return np.stack([self.sample(n, row, seed=seed + i) for i, row in enumerate(x)], axis=1)
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float64).reshape(int(n), x.shape[0], -1)

    def _theta(self, theta: npt.ArrayLike) -> FloatArray:
        th = np.asarray(theta, dtype=np.float64)
        if th.ndim == 1:
            th = th.reshape(1, -1)
        if th.ndim != 2 or th.shape[1] != self._dim_theta:
            raise ValueError(f"theta must have shape (m, {self._dim_theta}), got {np.asarray(theta).shape}")
        return th

    def member_log_probs(
        self, theta: npt.ArrayLike, x_o: npt.ArrayLike, *, normalize: bool = False
    ) -> FloatArray:
        """Each member's log-density of parameter rows given ``x_o``, shape ``(members, m)``.

        NPE members give the flow's normalised :math:`\\log q_i(\\theta \\mid x)`; NLE/NRE
        members give sbi's unnormalised potential (see :meth:`log_prob`), whose normaliser
        differs from member to member.

        Example:
            >>> post.member_log_probs(theta, x_o).shape  # doctest: +SKIP
            (5, 100)
        """
        import torch

        th = self._theta(theta)
        if normalize and self.method != "npe":
            raise ValueError(
                f"normalize=True is only available for NPE; {self.method} posteriors are unnormalised"
            )
        x = self._x(x_o)
        t = torch.as_tensor(th, dtype=torch.float32)
        values = []
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(unnormalized|deprecated).*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"nflows\.")
            for member in self.members:
                if self.method == "npe":
                    values.append(member.log_prob(t, x=x, norm_posterior=normalize))
                else:
                    values.append(member.potential(t, x=x))
        stacked = torch.stack([v.reshape(-1).double() for v in values])
        return np.asarray(stacked.cpu().numpy(), dtype=np.float64)

    def log_normalizers(
        self, x_o: npt.ArrayLike, *, n_proposal: int = 4096, n_fit: int = 256, seed: int = 0
    ) -> FloatArray:
        r"""Log normalising constants :math:`\log Z_i(x_o)` of the members' potentials.

        NLE/NRE potentials :math:`u_i(\theta) = \log q_i(x_o \mid \theta) + \log p(\theta)`
        integrate to a different :math:`Z_i` for every member, so the ensemble density
        :math:`\frac{1}{M} \sum_i e^{u_i(\theta)} / Z_i` (the mixture that ``sample`` draws
        from) needs them. They are estimated by importance sampling,
        :math:`Z_i \approx \frac{1}{N} \sum_j e^{u_i(\theta_j)} / g(\theta_j)`, with a
        defensive proposal :math:`g = 0.9\,\mathcal{N}(\mu, 4\Sigma) + 0.1\,p(\theta)`
        (Hesterberg, Technometrics 37 (1995) 185) whose Gaussian is fitted to ``n_fit``
        posterior samples of every member. sbi's own importance-sampling normaliser
        proposes from the prior only, which fails for the narrow posteriors of many
        i.i.d. observations; hence this estimate. NPE members are normalised flows and
        give zeros. Results are cached per ``x_o``.

        Args:
            x_o: One observation ``(X,)`` or ``k`` i.i.d. observations ``(k, X)``.
            n_proposal: Proposal draws :math:`N`.
            n_fit: Posterior samples per member for fitting the proposal.
            seed: Seed of the draws.

        Returns:
            ``(members,)`` log normalisers.

        Example:
            >>> post.log_normalizers(x_o).shape  # doctest: +SKIP
            (5,)
        """
        for name, value in (("n_proposal", n_proposal), ("n_fit", n_fit)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        if self.method == "npe":
            return np.zeros(self.ensemble)
        import torch

        x = self._x(x_o)
        key = (np.asarray(x.numpy()).tobytes(), int(n_proposal), int(n_fit), int(seed))
        cache = self._log_z_cache
        if key in cache:
            return cache[key].copy()
        xx = x.numpy().astype(np.float64)
        fit = np.concatenate(
            [
                self._draw(member, int(n_fit), x, seed=int(seed) + 17 * i)
                for i, member in enumerate(self.members)
            ]
        )
        d = self._dim_theta
        mu = fit.mean(axis=0)
        cov = np.atleast_2d(np.cov(fit, rowvar=False)) + 1e-9 * np.eye(d) * max(1.0, float(np.abs(fit).max()))
        gauss = torch.distributions.MultivariateNormal(
            torch.as_tensor(mu, dtype=torch.float64), covariance_matrix=torch.as_tensor(4.0 * cov)
        )
        n_prior = max(1, round(0.1 * n_proposal))
        with seeded(int(seed) + 99991):
            draws = torch.cat(
                [
                    gauss.sample((int(n_proposal) - n_prior,)),
                    self.prior.sample((n_prior,)).double().reshape(n_prior, d),
                ]
            )
        draws_np = draws.numpy()
        inside = ~_outside_support(self.prior, draws_np)
        inside_t = torch.as_tensor(inside)
        log_prior = torch.full((len(draws_np),), -torch.inf, dtype=torch.float64)
        u = np.full((self.ensemble, len(draws_np)), -np.inf)
        if inside.any():
            with torch.no_grad():
                log_prior[inside_t] = self.prior.log_prob(draws[inside_t].float()).double().reshape(-1)
            u[:, inside] = self.member_log_probs(draws_np[inside], xx)
        log_g = torch.logsumexp(
            torch.stack([gauss.log_prob(draws) + np.log(0.9), log_prior + np.log(0.1)]), dim=0
        )
        logw = u - log_g.numpy()[None, :]
        out = np.asarray(
            torch.logsumexp(torch.as_tensor(logw), dim=1).numpy() - np.log(len(draws_np)), dtype=np.float64
        )
        if not np.all(np.isfinite(out)):
            raise ValueError(
                "could not estimate the ensemble members' normalising constants for this x_o "
                "(no proposal draw has a finite posterior density); check x_o"
            )
        if len(cache) > 256:
            cache.clear()
        cache[key] = out
        return out.copy()

    def log_prob(self, theta: npt.ArrayLike, x_o: npt.ArrayLike, *, normalize: bool = False) -> FloatArray:
        """Posterior log-density of parameter rows given ``x_o``.

        For NPE this is the flow's :math:`\\log q(\\theta \\mid x)` (exactly normalised
        unless mass leaks outside the prior support; ``normalize=True`` applies sbi's
        leakage correction, which costs a sampling run per call). For a single NLE/NRE
        estimator it is sbi's potential :math:`\\log q(x \\mid \\theta) + \\log p(\\theta)`
        (resp. :math:`\\log r + \\log p`), i.e. unnormalised: rankings of θ for the same
        ``x_o`` -- all the coverage diagnostics need -- are exact.

        For an ensemble it is the density of the equal-weight mixture of the members
        (the distribution ``sample`` draws from), :math:`\\log \\frac{1}{M} \\sum_i
        e^{u_i(\\theta)} / Z_i`. NPE members are normalised; NLE/NRE potentials are
        divided by their normalisers from :meth:`log_normalizers` (importance sampling,
        cached per ``x_o``), so that no member dominates through its arbitrary constant.

        Args:
            theta: ``(m, D)`` (or ``(D,)``) parameter rows.
            x_o: One observation ``(X,)`` or ``k`` i.i.d. observations ``(k, X)`` (NLE/NRE).
            normalize: Leakage-corrected normalised density (NPE only).

        Returns:
            ``(m,)`` log-densities (``-inf`` outside the prior support).
        """
        import torch

        values = self.member_log_probs(theta, x_o, normalize=normalize)
        if self.ensemble == 1:
            return values[0]
        if self.method != "npe":
            values = values - self.log_normalizers(x_o)[:, None]
        out = torch.logsumexp(torch.as_tensor(values), dim=0) - np.log(self.ensemble)
        return np.asarray(out.numpy(), dtype=np.float64)


def _outside_support(prior: Any, theta: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows of ``theta`` outside the prior's support (zero prior density)."""
    import torch

    t = torch.as_tensor(theta, dtype=torch.float32)
    with torch.no_grad():
        try:
            inside = torch.as_tensor(prior.support.check(t))
            if inside.ndim > 1:  # a support declared per component
                inside = inside.all(dim=-1)
        except (NotImplementedError, AttributeError):  # no declared support
            inside = torch.ones(len(t), dtype=torch.bool)
        inside = inside.reshape(-1).clone()
        if bool(inside.any()):
            # a ValueError here is torch's argument validation: the support check above decides
            with contextlib.suppress(ValueError):
                inside[inside.clone()] = torch.isfinite(prior.log_prob(t[inside]).reshape(-1))
    return np.asarray(~inside.numpy(), dtype=bool)


def train_posterior(
    theta: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    method: Method = "npe",
    prior: Any,
    seed: int = 0,
    ensemble: int = 1,
    density_estimator: str = "maf",
    max_epochs: int | None = None,
    progress: bool = False,
    estimator_kwargs: Mapping[str, Any] | None = None,
    **sbi_kwargs: Any,
) -> Posterior:
    """Train an sbi estimator on simulations and return its posterior.

    Args:
        theta: ``(n, D)`` parameters drawn from ``prior``.
        x: ``(n, X)`` simulated observations.
        method: ``"npe"``, ``"nle"``, ``"nre"`` or ``"bnre"`` (see the module docstring).
        prior: The prior (torch distribution with event shape ``(D,)``).
        seed: Seed of the training (member ``i`` of an ensemble uses ``seed + i``).
        ensemble: Number of independently trained members (> 1: an ensemble).
        density_estimator: For NPE/NLE the flow (``"maf"``, ``"nsf"``, ``"mdn"``, ...);
            for NRE/BNRE the classifier (``"resnet"``, ``"mlp"``, ``"linear"``; a flow
            name selects sbi's default ``"resnet"``).
        max_epochs: Upper limit on training epochs (``None``: sbi's early stopping only).
        progress: Show sbi's progress output.
        estimator_kwargs: Options of sbi's network builder (``posterior_nn``,
            ``likelihood_nn`` or ``classifier_nn``: ``hidden_features``,
            ``num_transforms``, ``embedding_net``, ``z_score_x``, ...); ``None`` uses
            sbi's defaults for ``density_estimator``.
        **sbi_kwargs: Passed on to sbi: options of the trainer's constructor, of
            ``train()`` (``training_batch_size``, ``learning_rate``, ``stop_after_epochs``,
            ``regularization_strength`` for BNRE, ...) or of ``build_posterior()``
            (``mcmc_method``, ``mcmc_parameters``, ``sample_with``, ...).

    Returns:
        A :class:`Posterior`.

    Raises:
        ValueError: For mismatched or non-finite inputs, a prior of the wrong dimension,
            an unknown method or estimator.
        TypeError: For unknown ``sbi_kwargs``.

    Example:
        >>> post = train_posterior(theta, x, method="nle", prior=prior, seed=1)  # doctest: +SKIP
    """
    import torch

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    th = check_array(theta, name="theta", ndim=2, dtype=np.float64)
    xx = check_array(x, name="x", ndim=2, dtype=np.float64)
    if th.shape[0] != xx.shape[0]:
        raise ValueError(
            f"theta has {th.shape[0]} rows but x has {xx.shape[0]}; give one x row per theta row"
        )
    if th.shape[0] < 2:
        raise ValueError(f"need at least 2 simulations to train, got {th.shape[0]}")
    check_prior_dimension(prior, th.shape[1], what=f"theta's {th.shape[1]} columns")
    if isinstance(ensemble, bool) or not isinstance(ensemble, int | np.integer) or ensemble < 1:
        raise ValueError(f"ensemble must be a positive integer, got {ensemble!r}")
    if max_epochs is not None and (
        isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1
    ):
        raise ValueError(f"max_epochs must be a positive integer or None, got {max_epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    outside = _outside_support(prior, th)
    if outside.any():
        rows = np.flatnonzero(outside)
        raise ValueError(
            f"{len(rows)} theta row(s) lie outside the prior's support (rows {rows[:10].tolist()}); "
            "theta must be drawn from the prior"
        )

    inference = require("sbi.inference", purpose="simulation-based inference (aalearn.inference.sbi)")
    trainer_cls = getattr(inference, METHODS[method])
    estimator_arg: dict[str, Any]
    if method in ("nre", "bnre"):
        choice = density_estimator if density_estimator in _CLASSIFIERS else "resnet"
        if density_estimator not in _CLASSIFIERS + _FLOWS:
            raise ValueError(
                f"unknown classifier {density_estimator!r} for {method}; choose one of {_CLASSIFIERS}"
            )
        estimator_arg = {"classifier": choice}
    else:
        if density_estimator not in _FLOWS:
            raise ValueError(f"unknown density estimator {density_estimator!r}; choose one of {_FLOWS}")
        estimator_arg = {"density_estimator": density_estimator}
    if estimator_kwargs:
        factory = require("sbi.neural_nets", purpose="configuring sbi's networks")
        builder = {"npe": "posterior_nn", "nle": "likelihood_nn"}.get(method, "classifier_nn")
        ((key, model),) = estimator_arg.items()
        try:
            estimator_arg = {key: getattr(factory, builder)(model=model, **dict(estimator_kwargs))}
        except TypeError as exc:
            raise TypeError(f"invalid estimator_kwargs for sbi's {builder}: {exc}") from exc
    routed = _split_kwargs(
        sbi_kwargs,
        {"init": trainer_cls.__init__, "train": trainer_cls.train, "build": trainer_cls.build_posterior},
    )
    init_kwargs = dict(routed["init"])
    if "tracker" not in init_kwargs and "summary_writer" not in init_kwargs:
        init_kwargs["tracker"] = _NullTracker()
    train_kwargs = {"show_train_summary": False, **routed["train"]}
    if max_epochs is not None:
        train_kwargs["max_num_epochs"] = int(max_epochs)
    t_theta = torch.as_tensor(th, dtype=torch.float32)
    t_x = torch.as_tensor(xx, dtype=torch.float32)
    members: list[Any] = []
    epochs: list[int] = []
    t0 = time.perf_counter()
    for member in range(int(ensemble)):
        # sbi prints its convergence message on stdout: keep stdout clean for --json output
        sink: Any = sys.stderr if progress else io.StringIO()
        with seeded(int(seed) + member), warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            if not progress:
                warnings.filterwarnings("ignore", category=UserWarning)
            trainer = trainer_cls(prior=prior, **estimator_arg, show_progress_bars=progress, **init_kwargs)
            trainer.append_simulations(t_theta, t_x).train(**train_kwargs)
            members.append(trainer.build_posterior(**routed["build"]))
            summary = getattr(trainer, "summary", {}) or {}
            epochs.append(int(summary.get("epochs_trained", [0])[-1]) if summary.get("epochs_trained") else 0)
    return Posterior(
        method,
        members,
        prior=prior,
        seconds_train=time.perf_counter() - t0,
        n_simulations=th.shape[0],
        dim_x=xx.shape[1],
        epochs=epochs,
    )
