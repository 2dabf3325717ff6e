r"""Entropy-based decomposition of predictive uncertainty into aleatoric and epistemic parts.

Given :math:`M` predictive distributions :math:`p_m(y \mid x)` for the same input — the
members of a deep ensemble, Monte-Carlo dropout passes or samples from a Laplace
posterior — the entropy of their mean splits into two non-negative terms:

.. math::

    \underbrace{H\Bigl[\tfrac{1}{M}\sum_m p_m\Bigr]}_{\text{total}}
    = \underbrace{\tfrac{1}{M}\sum_m H[p_m]}_{\text{aleatoric}}
    + \underbrace{I(y; \theta \mid x)}_{\text{epistemic}},
    \qquad
    H[p] = -\sum_k p_k \ln p_k .

The aleatoric part is what every member agrees is irreducible (class overlap); the
epistemic part, the mutual information between the label and the model parameters,
measures how much the members disagree, and vanishes when they are identical. All
entropies are in nats: a binary prediction has :math:`0 \le H \le \ln 2`.

Binary models, aalearn's main case, are described by the score
:math:`p = P(\text{label} = 1)` alone, with
:math:`H(p) = -p \ln p - (1 - p)\ln(1 - p)`; multi-class models by probability vectors
on the last axis.

References:
    S. Depeweg, J. M. Hernández-Lobato, F. Doshi-Velez, S. Udluft, "Decomposition of
    Uncertainty in Bayesian Deep Learning for Efficient and Risk-sensitive Learning",
    ICML 2018, arXiv:1710.07283.

    N. Houlsby, F. Huszár, Z. Ghahramani, M. Lengyel, "Bayesian Active Learning for
    Classification and Preference Learning", arXiv:1112.5745 (the mutual-information form).

Example:
    >>> import numpy as np
    >>> d = decompose(np.array([[0.0, 0.5], [1.0, 0.5]]))  # 2 members, 2 jets
    >>> np.round(d.epistemic, 4).tolist(), np.round(d.aleatoric, 4).tolist()
    ([0.6931, 0.0], [0.0, 0.6931])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import xlogy

__all__ = ["UncertaintyDecomposition", "decompose", "entropy"]

FloatArray = npt.NDArray[np.float64]

#: Tolerance on :math:`|\sum_k p_k - 1|` for multi-class probability vectors (float32 softmax).
SIMPLEX_ATOL = 1e-3


def _as_probs(probs: Any, *, name: str) -> FloatArray:
    """Float64 array of probabilities, checked for type, emptiness, NaN/inf and range [0, 1]."""
    arr = np.asarray(probs)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must be numeric probabilities, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real probabilities, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s); probabilities must be finite")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1], found values in [{arr.min():.6g}, {arr.max():.6g}]; "
            "pass probabilities, not logits (apply a sigmoid/softmax first)"
        )
    return arr


def _check_simplex(arr: FloatArray, *, name: str) -> None:
    if arr.shape[-1] < 2:
        raise ValueError(
            f"{name}: multi-class probabilities need at least 2 classes on the last axis, got shape "
            f"{arr.shape}; for a binary score P(label=1) use binary=True"
        )
    dev = np.abs(arr.sum(axis=-1) - 1.0)
    if dev.max() > SIMPLEX_ATOL:
        raise ValueError(
            f"{name}: multi-class probabilities must sum to 1 over the last axis (classes), largest "
            f"deviation {dev.max():.3g}; for binary scores P(label=1) of shape (M, N) use binary=True"
        )


def entropy(probs: npt.ArrayLike, *, binary: bool | None = None) -> FloatArray:
    r"""Shannon entropy in nats, with :math:`0 \ln 0 = 0`.

    .. math::

        H(p) = -p\ln p - (1-p)\ln(1-p) \quad\text{(binary)}, \qquad
        H(p) = -\sum_{k=1}^{C} p_k \ln p_k \quad\text{(multi-class)}.

    Args:
        probs: Binary scores :math:`P(\text{label}=1)` of any shape ``(...)``, or
            multi-class probability vectors of shape ``(..., C)`` summing to 1.
        binary: Interpretation of ``probs``. ``None`` (default): a 0- or 1-dimensional
            input is binary, an input with two or more dimensions is multi-class with the
            classes on the last axis. Pass ``binary=True`` for binary scores of higher
            dimension, for example member probabilities ``(M, N)``.

    Returns:
        float64 entropies, shape ``(...)`` (the class axis removed for multi-class).

    Raises:
        TypeError: For non-numeric input.
        ValueError: For empty input, NaN/inf, values outside [0, 1] or multi-class rows
            that do not sum to 1.

    Example:
        >>> float(entropy(0.5)) == float(np.log(2))
        True
        >>> entropy([[0.5, 0.5], [1.0, 0.0]]).round(4).tolist()
        [0.6931, 0.0]
    """
    arr = _as_probs(probs, name="probs")
    if binary is None:
        binary = arr.ndim <= 1
    if binary:
        q = 1.0 - arr
        return np.asarray(0.0 - (xlogy(arr, arr) + xlogy(q, q)), dtype=np.float64)  # 0.0 - …: no -0.0
    if arr.ndim < 1:
        raise ValueError("multi-class probabilities need a class axis, got a scalar")
    _check_simplex(arr, name="probs")
    return np.asarray(0.0 - xlogy(arr, arr).sum(axis=-1), dtype=np.float64)


@dataclass
class UncertaintyDecomposition:
    r"""Per-jet total, aleatoric and epistemic uncertainty of an ensemble of predictions.

    Attributes:
        mean: Mean prediction :math:`\bar p = \frac{1}{M}\sum_m p_m`: shape ``(N,)``
            (binary, :math:`P(\text{label}=1)`) or ``(N, C)`` (multi-class).
        total: Predictive entropy :math:`H[\bar p]`, shape ``(N,)``, nats.
        aleatoric: Expected entropy :math:`\frac{1}{M}\sum_m H[p_m]`, shape ``(N,)``.
        epistemic: Mutual information ``total - aleatoric``, clipped at 0 against
            round-off, shape ``(N,)``.
        n_members: Number of members :math:`M` (ensemble members, dropout or posterior samples).
        method: Where the members came from (``"ensemble"``, ``"mc_dropout"``, ``"laplace"``, …).

    Example:
        >>> d = decompose(np.array([[0.2, 0.9], [0.4, 0.9]]))
        >>> d.summary()["n"], d.binary
        (2, True)
    """

    mean: FloatArray
    total: FloatArray
    aleatoric: FloatArray
    epistemic: FloatArray
    n_members: int
    method: str

    @property
    def binary(self) -> bool:
        """Whether the decomposition is of binary scores (``mean`` has shape ``(N,)``)."""
        return bool(self.mean.ndim == 1)

    def __len__(self) -> int:
        return int(self.total.shape[0])

    def summary(self) -> dict[str, Any]:
        """Means over jets of the three uncertainties, with the jet and member counts.

        Returns:
            ``{"mean_total", "mean_aleatoric", "mean_epistemic"}`` (floats, nats),
            ``"n"`` (jets), ``"n_members"`` and ``"method"``.

        Example:
            >>> d = decompose(np.array([[0.5], [0.5]]))
            >>> d.summary()["mean_epistemic"]
            0.0
        """
        return {
            "mean_total": float(np.mean(self.total)),
            "mean_aleatoric": float(np.mean(self.aleatoric)),
            "mean_epistemic": float(np.mean(self.epistemic)),
            "n": len(self),
            "n_members": int(self.n_members),
            "method": str(self.method),
        }

    def to_dict(self, per_jet: bool = False) -> dict[str, Any]:
        """JSON-serialisable dictionary: the :meth:`summary`, and with ``per_jet`` the arrays as lists.

        Args:
            per_jet: Also include ``mean``, ``total``, ``aleatoric`` and ``epistemic``
                per jet (lists; ``mean`` is a list of lists for multi-class).

        Example:
            >>> sorted(decompose(np.array([[0.1], [0.3]])).to_dict(per_jet=True))[:3]
            ['aleatoric', 'epistemic', 'mean']
        """
        out = self.summary()
        if per_jet:
            out.update(
                mean=self.mean.tolist(),
                total=self.total.tolist(),
                aleatoric=self.aleatoric.tolist(),
                epistemic=self.epistemic.tolist(),
            )
        return out


def decompose(
    member_probs: npt.ArrayLike, *, binary: bool | None = None, method: str = "ensemble"
) -> UncertaintyDecomposition:
    r"""Split the predictive entropy of :math:`M` members into aleatoric and epistemic parts.

    .. math::

        \text{total}_i = H[\bar p_i], \quad
        \text{aleatoric}_i = \frac{1}{M}\sum_{m=1}^{M} H[p_{mi}], \quad
        \text{epistemic}_i = \max(0,\ \text{total}_i - \text{aleatoric}_i),

    with :math:`\bar p_i = \frac{1}{M}\sum_m p_{mi}`. The epistemic term is the mutual
    information :math:`I(y_i; \theta)`, non-negative by the concavity of :math:`H`; the
    clip only removes round-off. A single member (:math:`M = 1`) is allowed and has zero
    epistemic uncertainty.

    Args:
        member_probs: Member predictions, shape ``(M, N)`` (binary scores
            :math:`P(\text{label}=1)`) or ``(M, N, C)`` (multi-class, summing to 1 over ``C``).
        binary: ``None`` infers the case from the number of dimensions (2: binary,
            3: multi-class); ``True``/``False`` additionally checks it.
        method: Name of the source of the members, stored in the result.

    Returns:
        The :class:`UncertaintyDecomposition` (float64 arrays).

    Raises:
        TypeError: For non-numeric input or a non-string ``method``.
        ValueError: For a wrong number of dimensions, no members or no jets, NaN/inf,
            values outside [0, 1] or multi-class rows that do not sum to 1.

    Example:
        >>> members = np.array([[0.9, 0.5], [0.7, 0.5]])  # M=2 members, N=2 jets
        >>> d = decompose(members)
        >>> d.mean.tolist()
        [0.8, 0.5]
        >>> bool(d.epistemic[0] > 0), float(d.epistemic[1])
        (True, 0.0)
    """
    if not isinstance(method, str) or not method:
        raise TypeError(f"method must be a non-empty string, got {method!r}")
    arr = _as_probs(member_probs, name="member_probs")
    if binary is None:
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"member_probs must have shape (M, N) (binary) or (M, N, C) (multi-class), got {arr.shape}"
            )
        binary = arr.ndim == 2
    elif binary and arr.ndim != 2:
        raise ValueError(f"binary member_probs must have shape (M members, N jets), got {arr.shape}")
    elif not binary and arr.ndim != 3:
        raise ValueError(f"multi-class member_probs must have shape (M, N, C), got {arr.shape}")
    if not binary:
        _check_simplex(arr, name="member_probs")
    mean = arr.mean(axis=0)
    total = entropy(mean, binary=binary)
    aleatoric = entropy(arr, binary=binary).mean(axis=0)
    epistemic = np.maximum(total - aleatoric, 0.0)
    return UncertaintyDecomposition(
        mean=mean,
        total=total,
        aleatoric=aleatoric,
        epistemic=epistemic,
        n_members=int(arr.shape[0]),
        method=method,
    )
