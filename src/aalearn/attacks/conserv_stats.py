r"""Population statistics of CONSERVAttack: histogram JS distances and a running correlation matrix.

The search of :mod:`aalearn.attacks.conservattack` evaluates, for every candidate value of
every feature, how far the attacked population moves from the clean one. Two measures are
tracked here, each updated in closed form when a single value (or row) changes:

* :func:`js_distance_hist` and :func:`js_bin_terms`: the Jensen-Shannon distance (base 2)
  between a feature's clean and adversarial histograms, and its per-bin terms (a candidate's
  change is two table look-ups);
* :class:`CorrelationTracker`: the Pearson correlation matrix under rank-1/rank-2 updates,
  with the Frobenius norm of the change a candidate would cause.

Example:
    >>> import numpy as np
    >>> js_distance_hist([1, 0], [0, 1])
    1.0
    >>> tracker = CorrelationTracker(np.random.default_rng(0).normal(size=(20, 2)))
    >>> tracker.matrix().shape
    (2, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import xlogy

__all__ = ["CorrelationTracker", "js_bin_terms", "js_distance_hist"]

FloatArray = npt.NDArray[np.float64]

LN2 = math.log(2.0)


def js_distance_hist(p: npt.ArrayLike, q: npt.ArrayLike) -> FloatArray | float:
    r"""Jensen-Shannon distance (base 2) between histograms given as counts.

    Both inputs are normalised to sum 1 along the last axis;
    :math:`\mathrm{JSD}(p, q) = \sqrt{\tfrac12 \mathrm{KL}(p\,\|\,m) + \tfrac12
    \mathrm{KL}(q\,\|\,m)}` with :math:`m = (p + q)/2` and base-2 logarithms, so the result
    lies in ``[0, 1]`` (``scipy.spatial.distance.jensenshannon(p, q, base=2)``).

    Args:
        p: Non-negative counts, shape ``(..., K)``.
        q: Non-negative counts, broadcastable against ``p``.

    Returns:
        The distance, a float for 1-D input, else an array of the broadcast leading shape.

    Raises:
        ValueError: For negative or non-finite counts, an empty last axis or a histogram
            whose counts sum to 0.

    Example:
        >>> js_distance_hist([1, 2, 3], [1, 2, 3])
        0.0
        >>> js_distance_hist([1, 0], [0, 5])
        1.0
    """
    pa = np.asarray(p, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    if pa.ndim == 0 or qa.ndim == 0 or pa.shape[-1] == 0 or qa.shape[-1] == 0:
        raise ValueError("p and q must have at least one bin along their last axis")
    for name, arr in (("p", pa), ("q", qa)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must contain finite, non-negative counts")
    ps = pa.sum(axis=-1, keepdims=True)
    qs = qa.sum(axis=-1, keepdims=True)
    if np.any(ps == 0) or np.any(qs == 0):
        raise ValueError("a histogram with zero total count has no distribution")
    pn = pa / ps
    qn = qa / qs
    m = 0.5 * (pn + qn)
    m_safe = np.where(m > 0, m, 1.0)
    div = 0.5 * (xlogy(pn, pn / m_safe) + xlogy(qn, qn / m_safe)).sum(axis=-1) / LN2
    dist = np.sqrt(np.clip(div, 0.0, 1.0))
    if dist.ndim == 0:
        return float(dist)
    return np.asarray(dist, dtype=np.float64)


def js_bin_terms(h0: npt.ArrayLike, h: npt.ArrayLike) -> FloatArray:
    r"""Per-bin JS terms :math:`h_0 \ln\frac{2h_0}{h_0+h} + h \ln\frac{2h}{h_0+h}` (counts).

    With both histograms holding N entries, the JS divergence in nats is the sum of these
    terms over the bins divided by ``2 N``.

    Example:
        >>> float(js_bin_terms([2.0, 0.0], [2.0, 0.0]).sum())
        0.0
    """
    h0a = np.asarray(h0, dtype=np.float64)
    ha = np.asarray(h, dtype=np.float64)
    m = h0a + ha
    m_safe = np.where(m > 0, m, 1.0)
    return np.asarray(xlogy(h0a, 2.0 * h0a / m_safe) + xlogy(ha, 2.0 * ha / m_safe), dtype=np.float64)


class CorrelationTracker:
    r"""Pearson correlation matrix of a data set under single-row updates, without recomputing.

    Keeps the column sums :math:`S_f = \sum_i y_{if}` and the centred cross-products
    (co-moments) :math:`M_{fg} = \sum_i (y_{if} - \mu_f)(y_{ig} - \mu_g)` of the shifted data
    :math:`y = x - c` (``c``: the per-feature mean of the initial data, which limits
    cancellation; nothing below depends on it). Replacing row ``i`` by ``y'`` (change
    :math:`\delta = y' - y_i`) is the exact rank-2 update
    :math:`M \leftarrow M + \delta\,(y' - \mu')^\top + (y_i - \mu)\,\delta^\top` with the
    new mean :math:`\mu' = \mu + \delta/N` (O(F^2); O(F) for a single value). The covariance
    is :math:`M/N` (``ddof=0``; the correlation does not depend on it). A feature with zero
    variance has correlation 0 with every other feature and 1 with itself (``np.corrcoef``
    would give NaN).

    Args:
        x: Initial data, shape ``(N, F)`` with ``N >= 2``; copied as float64.

    Raises:
        ValueError: For a wrong shape or NaN/inf values.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(50, 3))
        >>> tracker = CorrelationTracker(x)
        >>> tracker.update_row(4, [1.0, -2.0, 0.5])
        >>> x[4] = [1.0, -2.0, 0.5]
        >>> bool(np.allclose(tracker.matrix(), np.corrcoef(x, rowvar=False)))
        True
        >>> new = x.copy(); new[7, 1] = 3.0
        >>> dfrob = tracker.frobenius_change_candidates(7, 1, [3.0])
        >>> direct = np.linalg.norm(np.corrcoef(new, rowvar=False) - np.corrcoef(x, rowvar=False))
        >>> bool(np.isclose(dfrob[0], direct))
        True
    """

    def __init__(self, x: npt.ArrayLike) -> None:
        arr = np.array(x, dtype=np.float64)  # copy
        if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
            raise ValueError(f"x must have shape (N, F) with N >= 2 and F >= 1, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x contains NaN/inf values")
        self._n = arr.shape[0]
        constant = np.all(arr == arr[:1], axis=0)
        # the exact value for a constant column keeps its variance exactly 0
        self._shift: FloatArray = np.where(constant, arr[0], arr.mean(axis=0))
        self._y: FloatArray = arr - self._shift
        self._s: FloatArray = self._y.sum(axis=0)
        centred = self._y - self._s / self._n
        self._m: FloatArray = centred.T @ centred

    # ---- state ---------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of rows ``N``."""
        return self._n

    @property
    def n_features(self) -> int:
        """Number of features ``F``."""
        return int(self._y.shape[1])

    @property
    def shift(self) -> FloatArray:
        """Per-feature shift ``c`` subtracted before summing, shape ``(F,)`` (copy)."""
        return self._shift.copy()

    @property
    def sums(self) -> FloatArray:
        """Column sums ``S`` of the shifted data, shape ``(F,)`` (copy)."""
        return self._s.copy()

    @property
    def cross_products(self) -> FloatArray:
        """Centred cross-products (co-moments) ``M``, shape ``(F, F)`` (copy).

        The raw cross-products of the shifted data are ``M + outer(S, S) / N``.
        """
        return self._m.copy()

    def row(self, i: int) -> FloatArray:
        """Row ``i`` in the original units (up to rounding of the shift), shape ``(F,)``."""
        return self._y[self._check_i(i)] + self._shift

    def covariance(self) -> FloatArray:
        """Population covariance matrix (``ddof=0``), shape ``(F, F)``."""
        cov = self._m / self._n
        return np.asarray(0.5 * (cov + cov.T), dtype=np.float64)

    @staticmethod
    def _inv_std(var: FloatArray) -> FloatArray:
        out = np.zeros_like(var)
        pos = var > 0
        np.sqrt(var, out=out, where=pos)
        np.divide(1.0, out, out=out, where=pos)
        return out

    def matrix(self) -> FloatArray:
        """Current Pearson correlation matrix, shape ``(F, F)``, unit diagonal."""
        cov = self.covariance()
        s = self._inv_std(np.diagonal(cov).copy())
        corr = cov * s[:, None] * s[None, :]
        np.fill_diagonal(corr, 1.0)
        return np.asarray(np.clip(corr, -1.0, 1.0), dtype=np.float64)

    # ---- updates -------------------------------------------------------------------------
    def _check_i(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < self._n:
            raise IndexError(f"row index must be an integer in [0, {self._n}), got {i!r}")
        return int(i)

    def _check_f(self, f: int) -> int:
        if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 0 <= f < self.n_features:
            raise IndexError(f"feature index must be an integer in [0, {self.n_features}), got {f!r}")
        return int(f)

    def update_row(self, i: int, new_row: npt.ArrayLike) -> None:
        """Replace row ``i`` by ``new_row`` (original units): a rank-2 update, O(F^2).

        Args:
            i: Row index.
            new_row: The new values, shape ``(F,)``, finite.

        Raises:
            IndexError: For a row index out of range.
            ValueError: For a wrong shape or non-finite values.
        """
        i = self._check_i(i)
        new = np.asarray(new_row, dtype=np.float64)
        if new.shape != (self.n_features,):
            raise ValueError(f"new_row must have shape ({self.n_features},), got {new.shape}")
        if not np.all(np.isfinite(new)):
            raise ValueError("new_row contains NaN/inf values")
        self._apply_row(i, new - self._shift)

    def _apply_row(self, i: int, y_new: FloatArray) -> None:
        y_old = self._y[i]
        inv_n = 1.0 / self._n
        dy = y_new - y_old
        centred_old = y_old - self._s * inv_n
        self._s += dy
        m = self._m
        m += np.outer(dy, y_new - self._s * inv_n)
        m += np.outer(centred_old, dy)
        self._y[i] = y_new

    def update_entry(self, i: int, f: int, value: float) -> None:
        """Replace the single value ``x[i, f]`` by ``value`` (original units): O(F).

        Raises:
            IndexError: For a row or feature index out of range.
            ValueError: For a non-finite value.
        """
        i, f = self._check_i(i), self._check_f(f)
        if not math.isfinite(value):
            raise ValueError(f"value must be finite, got {value!r}")
        y = self._y[i]
        inv_n = 1.0 / self._n
        v = float(value) - self._shift[f]
        d = v - y[f]
        centred_old = y - self._s * inv_n
        self._s[f] += d
        y[f] = v
        self._m[f, :] += d * (y - self._s * inv_n)
        self._m[:, f] += d * centred_old

    # ---- candidate evaluation ------------------------------------------------------------
    def _terms(self, i: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per-feature ``(var, 1/sigma, AA, AB, BB)`` for row ``i``, O(F^2).

        ``AA_f = sum_{g != f} cov_fg^2 / var_g``, ``AB_f = sum_{g != f} cov_fg u_g / var_g``,
        ``BB_f = sum_{g != f} u_g^2 / var_g`` with ``u = (y_i - mu) / N``.
        """
        inv_n = 1.0 / self._n
        m = self._m
        var = np.diagonal(m) * inv_n
        s = self._inv_std(var)
        s2 = s * s
        u = (self._y[i] - self._s * inv_n) * inv_n
        diag_s2 = var * s2  # cov_ff / var_f: 1, or 0 for a constant feature
        us2 = u * s2
        ab = (m @ us2) * inv_n - diag_s2 * u
        aa = (np.square(m) @ s2) * (inv_n * inv_n) - diag_s2 * var
        uus2 = u * us2
        bb = uus2.sum() - uus2
        return var, s, np.maximum(aa, 0.0), ab, np.maximum(bb, 0.0)

    def _terms_one(self, i: int, f: int) -> tuple[float, float, float, float, float]:
        """``(var, 1/sigma, AA, AB, BB)`` of feature ``f`` for row ``i``, O(F)."""
        inv_n = 1.0 / self._n
        var = np.diagonal(self._m) * inv_n
        s = self._inv_std(var)
        a = self._m[f] * (inv_n * s)  # cov_fg / sigma_g
        a[f] = 0.0
        b = (self._y[i] - self._s * inv_n) * (inv_n * s)
        b[f] = 0.0
        return float(var[f]), float(s[f]), float(a @ a), float(a @ b), float(b @ b)

    def frobenius_change_candidates(self, i: int, f: int, values: npt.ArrayLike) -> FloatArray:
        r"""Frobenius norm of the correlation change if ``x[i, f]`` became each of ``values``.

        Closed form, O(F + C): with the change :math:`d` of one value, only row/column ``f``
        of :math:`C` move, :math:`C'_{fg} = r\,(A_g + d\,B_g)` with
        :math:`A_g = \mathrm{cov}_{fg}/\sigma_g`, :math:`B_g = (y_{ig} - \mu_g)/(N\sigma_g)`
        and :math:`r = 1/\sigma'_f`, so
        :math:`\lVert C' - C\rVert_F^2 = 2\sum_{g\ne f} ((r - 1/\sigma_f) A_g + r d B_g)^2`,
        a quadratic form in three sums over ``g``; the new variance follows from the running
        sums, :math:`\sigma'^2_f = \sigma^2_f + d\,(y_{if} + y'_{if} - (2 S_f + d)/N)/N`.
        Both triangles of the matrix are counted.

        Args:
            i: Row index.
            f: Feature index.
            values: Candidate values (original units), any shape.

        Returns:
            The norms, same shape as ``values``; the state is not changed.

        Raises:
            IndexError: For a row or feature index out of range.
        """
        i, f = self._check_i(i), self._check_f(f)
        vals = np.asarray(values, dtype=np.float64)
        var_f, s_f, aa, ab, bb = self._terms_one(i, f)
        v = np.atleast_1d(vals) - self._shift[f]
        a = float(self._y[i, f])
        out = np.where(v == a, 0.0, self._fro(v, a, var_f, s_f, aa, ab, bb, float(self._s[f])))
        return np.asarray(out.reshape(vals.shape), dtype=np.float64)

    def frobenius_change_all(self, i: int, values: npt.ArrayLike) -> FloatArray:
        """:meth:`frobenius_change_candidates` for every feature at once, O(F * (F + C)).

        Args:
            i: Row index.
            values: Candidate values, shape ``(F, C)``: row ``f`` holds the candidates of
                feature ``f``, each evaluated as the only change from the current state.

        Returns:
            The norms, shape ``(F, C)``.

        Raises:
            IndexError: For a row index out of range.
            ValueError: For a wrong shape.
        """
        i = self._check_i(i)
        vals = np.asarray(values, dtype=np.float64)
        if vals.ndim != 2 or vals.shape[0] != self.n_features:
            raise ValueError(f"values must have shape ({self.n_features}, C), got {vals.shape}")
        v = vals - self._shift[:, None]
        out = self._fro_all(i, v)
        return np.asarray(np.where(v == self._y[i][:, None], 0.0, out), dtype=np.float64)

    def _fro_all(self, i: int, v: FloatArray) -> FloatArray:
        """Core of :meth:`frobenius_change_all` on shifted values ``v`` (F, C), no checks."""
        var, s, aa, ab, bb = self._terms(i)
        col = np.newaxis
        return self._fro(
            v, self._y[i][:, col], var[:, col], s[:, col], aa[:, col], ab[:, col], bb[:, col], self._s[:, col]
        )

    def _fro(self, v: Any, a: Any, var_f: Any, s_f: Any, aa: Any, ab: Any, bb: Any, s_sum: Any) -> FloatArray:
        """Closed form of the correlation change for shifted old value ``a`` and new ``v``."""
        inv_n = 1.0 / self._n
        d = v - a
        # var' = var + d (v + a - (d + 2 S)/N)/N = var + d (v (1 - 1/N) + a (1 + 1/N) - 2 S/N)/N
        var_new = v * (1.0 - inv_n)
        var_new += a * (1.0 + inv_n) - 2.0 * inv_n * s_sum
        var_new *= d
        var_new *= inv_n
        var_new += var_f
        np.maximum(var_new, 1e-200, out=var_new)  # > 0 for d != 0; d == 0 gives 0 below
        r = np.sqrt(var_new, out=var_new)
        np.divide(1.0, r, out=r)
        q = r - s_f
        r *= d  # r * d from here on
        fro2 = q * aa
        fro2 += r * (2.0 * ab)
        fro2 *= q
        r *= r
        r *= bb
        fro2 += r
        np.maximum(fro2, 0.0, out=fro2)
        fro2 *= 2.0
        return np.asarray(np.sqrt(fro2, out=fro2), dtype=np.float64)
