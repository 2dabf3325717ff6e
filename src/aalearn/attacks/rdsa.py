r"""Core search of RDSA, the Random Distribution Shuffle Attack (arXiv:2501.05588).

RDSA (AI Safety Project Group, "Enforcing Fundamental Relations via Adversarial Attacks on Input
Parameter Correlations", `arXiv:2501.05588 <https://arxiv.org/abs/2501.05588>`_) is a black-box,
gradient-free **random search under a marginal-preserving proposal**. It needs only a yes/no
answer from the model ("does this candidate fool it?"), so it works with any classifier.

Algorithm:
    1. :meth:`Marginals.fit` builds one 1-D distribution per feature from a reference
       population (by default the rows being attacked): a feature with fewer than
       ``discrete_threshold`` unique values is *discrete* (its unique values with their
       frequencies); any other feature gets a histogram of ``bins`` equal-width bins over its
       ``[min, max]``. A constant feature is discrete with its one value.
    2. For every row and every try ``t = 1 .. max_tries``, a subset of ``n_features``
       distinct features is drawn uniformly among the mutable ones, and each of them is
       re-drawn from its marginal (:meth:`Marginals.sample`): a bin is picked with its
       frequency (inverse CDF), then a value uniformly inside the bin; a discrete feature
       takes one of its unique values with its frequency.
    3. Every try restarts from the **original** row (no hill-climbing, no gradient). An
       optional ``repair`` callback projects the candidate back onto the physical domain,
       then ``is_success`` decides; the search stops for that row at its first success.
    4. A row not fooled after ``max_tries`` tries is returned **unchanged** (by default).

What it preserves and what it breaks:
    A re-drawn feature value is an independent draw from that feature's 1-D marginal, so,
    among the rows and features that are re-drawn, **each feature's marginal distribution is
    kept** (up to the histogram's binning): per-feature histograms of the adversarial set
    look like those of the clean set. The draw is independent of the row's other features,
    so RDSA **breaks the correlations between features**: with every feature re-drawn, the
    correlation between any two of them drops to zero. An attack of this kind passes
    one-feature-at-a-time validation checks and probes whether a model relies on the joint
    structure of its inputs. Marginals are preserved for the re-drawn values only; the set
    of successful rows is selected by the model, so the adversarial set as a whole may still
    differ from the clean one.

Differences from the group's reference code (the implementation that accompanies the paper):
    * A row that is not fooled after ``max_tries`` tries is returned unchanged by default,
      so failures add no distortion (no MAD); the reference code returns its last failed
      draw, which ``keep_failed=True`` reproduces.
    * Discrete features: the reference code returns the **lower edge** of the drawn bin for
      every feature with fewer than 250 unique values (its "bins" are the unique values below
      50 unique values, 49 bins below 100, ``pdfBins - 1`` bins above), so for features with
      50 to 249 unique values it produces bin edges, which need not be observed values, and
      never a bin's upper part. Here a feature with fewer than ``discrete_threshold`` (50)
      unique values is sampled from its observed unique values with their frequencies, and
      every other feature uniformly inside the drawn bin, with ``bins`` bins throughout.
    * The reference code re-draws only "continuous" features (more than 100 unique values);
      here the caller chooses with the ``mutable`` mask (default: all features).

Reproducibility:
    The random numbers of row ``i`` at try ``t`` are the ``i``-th block of a generator seeded
    by ``SeedSequence(entropy, spawn_key=(t,))``, so the same seed gives bit-identical output,
    and a row's result does not depend on ``batch_size``, on which other rows are still being
    attacked, or on the rows after it (attacking ``x[:n]`` gives the first ``n`` rows of
    attacking ``x``, given the same ``marginals``). The feature subset uses Floyd's algorithm
    (``n_features`` <= 64) or the smallest of one uniform key per mutable feature.

Example:
    A toy model that is fooled when feature 0 exceeds 0.8; the marginals come from the whole
    population, the attack from the rows the "model" gets right:

    >>> import numpy as np
    >>> population = np.random.default_rng(1).random((200, 4))
    >>> x = population[population[:, 0] <= 0.8]
    >>> def fooled(candidates, rows):
    ...     return candidates[:, 0] > 0.8
    >>> marginals = Marginals.fit(population)
    >>> out = rdsa_search(x, fooled, n_features=2, max_tries=10, marginals=marginals, seed=0)
    >>> out.x_adv.shape == x.shape
    True
    >>> bool(np.all(out.x_adv[out.success, 0] > 0.8))
    True
    >>> bool(np.array_equal(out.x_adv[~out.success], x[~out.success]))  # failures unchanged
    True
    >>> int(out.success.sum()), int(out.tries.max())
    (103, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Marginals", "RDSAOutput", "rdsa_search"]

FloatArray = npt.NDArray[np.floating[Any]]
SuccessFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
RepairFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check_int(value: Any, *, name: str, minimum: int) -> int:
    """Return ``value`` as ``int`` after checking that it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_x(x: Any, *, name: str = "x") -> FloatArray:
    """Validate a 2-D finite numeric array; floats keep their dtype, other numbers become float64."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, features), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        preview = ", ".join(str(int(r)) for r in rows[:10])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s), first rows: "
            f"{preview}; drop or impute them before attacking"
        )
    return arr


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (the fields are arrays)
class Marginals:
    """Per-feature sampling distributions built from a reference population.

    Continuous features are histograms (``edges`` of length ``bins + 1``, ``probs`` per bin,
    ``values`` ``None``); discrete features are their unique values with their frequencies
    (``values`` and ``probs`` of equal length, ``edges`` empty). Build one with :meth:`fit`.

    Attributes:
        edges: Per feature, the bin edges (continuous) or an empty array (discrete).
        probs: Per feature, the probability of each bin or unique value (sums to 1).
        values: Per feature, the unique values of a discrete feature, else ``None``.

    Example:
        >>> m = Marginals.fit(np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]))
        >>> m.values[0], m.probs[0].round(3)
        (array([0., 1.]), array([0.333, 0.667]))
        >>> m.sample(np.array([[0, 1]]), np.array([[0.5, 0.9]]), np.array([[0.0, 0.0]]))
        array([[1., 1.]])
    """

    edges: list[np.ndarray]
    probs: list[np.ndarray]
    values: list[np.ndarray | None]
    # Flat lookup tables over all features' bins, built in __post_init__: the cumulative
    # probabilities, bin left edges and widths, each feature's first bin and last bin with
    # non-zero probability, and a guide table that brackets the inverse CDF (see ``sample``).
    _cdf: np.ndarray = field(init=False, repr=False, compare=False)
    _left: np.ndarray = field(init=False, repr=False, compare=False)
    _width: np.ndarray = field(init=False, repr=False, compare=False)
    _first: np.ndarray = field(init=False, repr=False, compare=False)
    _last: np.ndarray = field(init=False, repr=False, compare=False)
    _guide_lo: np.ndarray = field(init=False, repr=False, compare=False)
    _guide_hi: np.ndarray = field(init=False, repr=False, compare=False)
    _guide_size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the per-feature tables and build the flat lookup tables."""
        n = len(self.probs)
        if n == 0 or len(self.edges) != n or len(self.values) != n:
            raise ValueError(
                "edges, probs and values must be non-empty lists of equal length, got "
                f"{len(self.edges)}, {len(self.probs)} and {len(self.values)}"
            )
        cdfs, lefts, widths, sizes, last_nonzero = [], [], [], [], []
        for f in range(n):
            p = np.asarray(self.probs[f], dtype=np.float64)
            if p.ndim != 1 or p.size == 0 or np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
                raise ValueError(f"probs[{f}] must be a non-empty 1-D array of non-negative finite numbers")
            vals = self.values[f]
            if vals is not None:
                v = np.asarray(vals, dtype=np.float64)
                if v.shape != p.shape or np.any(~np.isfinite(v)):
                    raise ValueError(f"values[{f}] must be finite with the shape of probs[{f}], {p.shape}")
                left, width = v, np.zeros_like(v)
            else:
                e = np.asarray(self.edges[f], dtype=np.float64)
                if e.shape != (p.size + 1,) or np.any(~np.isfinite(e)) or np.any(np.diff(e) < 0):
                    raise ValueError(
                        f"edges[{f}] must be {p.size + 1} finite, non-decreasing bin edges for "
                        f"{p.size} bins, got shape {e.shape}"
                    )
                left, width = e[:-1], np.diff(e)
            cdf = np.cumsum(p)
            cdf /= cdf[-1]  # monotone, <= 1, and exactly 1 at the end
            cdfs.append(cdf)
            lefts.append(left)
            widths.append(width)
            sizes.append(p.size)
            last_nonzero.append(int(np.flatnonzero(p)[-1]))
        stop = np.cumsum(sizes)
        start = stop - np.asarray(sizes)
        cdf_flat = np.concatenate(cdfs)
        feature_of = np.repeat(np.arange(n), sizes)
        # Guide table with G cells per feature, G a power of two so that u * G and m / G are exact.
        # For u in cell m = floor(u * G), the bin searchsorted(cdf_f, u, "right") lies in
        # [lo, hi] with lo = #(cdf_f <= m / G) = #(ceil(cdf_f * G) <= m) and
        # hi = #(cdf_f < (m + 1) / G) = #(floor(cdf_f * G) <= m); usually lo == hi.
        g = 1 << int(np.ceil(np.log2(16 * max(sizes))))
        g = max(1, min(g, 1 << int(np.log2(max(1, 2**21 // n)))))
        scaled = cdf_flat * g

        def cumulative(cells: np.ndarray) -> np.ndarray:
            flat = feature_of * (g + 1) + np.minimum(cells.astype(np.intp), g)
            counts = np.bincount(flat, minlength=n * (g + 1)).reshape(n, g + 1)
            return (np.cumsum(counts, axis=1)[:, :g] + start[:, None]).ravel()

        object.__setattr__(self, "_cdf", cdf_flat)
        object.__setattr__(self, "_left", np.concatenate(lefts))
        object.__setattr__(self, "_width", np.concatenate(widths))
        object.__setattr__(self, "_first", start)
        object.__setattr__(self, "_last", start + np.asarray(last_nonzero))
        object.__setattr__(self, "_guide_lo", cumulative(np.ceil(scaled)))
        object.__setattr__(self, "_guide_hi", cumulative(np.floor(scaled)))
        object.__setattr__(self, "_guide_size", g)

    @property
    def n_features(self) -> int:
        """Number of features described."""
        return len(self.probs)

    @property
    def discrete(self) -> np.ndarray:
        """Boolean mask, ``True`` for the features sampled from their unique values."""
        return np.array([v is not None for v in self.values], dtype=bool)

    @classmethod
    def fit(cls, x: np.ndarray, *, bins: int = 100, discrete_threshold: int = 50) -> Marginals:
        """Build the marginals of every column of ``x``.

        Args:
            x: Reference population, shape ``(N, F)`` with ``N >= 1``, finite values.
            bins: Number of equal-width bins over ``[min, max]`` of a continuous feature (>= 2).
            discrete_threshold: A feature with fewer unique values than this is discrete
                (sampled from its unique values by frequency). Constant features are always
                discrete.

        Returns:
            The fitted :class:`Marginals`.

        Raises:
            TypeError: If ``x`` is not numeric or an argument is not an integer.
            ValueError: If ``x`` is not 2-D, is empty or holds NaN/inf, or ``bins < 2``.
        """
        arr = _check_x(x)
        bins = _check_int(bins, name="bins", minimum=2)
        discrete_threshold = _check_int(discrete_threshold, name="discrete_threshold", minimum=0)
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(
                f"x must have at least one row and one feature to fit marginals, got {arr.shape}"
            )
        edges: list[np.ndarray] = []
        probs: list[np.ndarray] = []
        values: list[np.ndarray | None] = []
        for col in arr.T.astype(np.float64):
            uniq, counts = np.unique(col, return_counts=True)
            if uniq.size < discrete_threshold or uniq.size == 1:
                edges.append(np.empty(0))
                probs.append(counts / counts.sum())
                values.append(uniq)
            else:
                hist, e = np.histogram(col, bins=bins, range=(uniq[0], uniq[-1]))
                edges.append(e)
                probs.append(hist / hist.sum())
                values.append(None)
        return cls(edges=edges, probs=probs, values=values)

    def sample(self, feature_idx: np.ndarray, u_bin: np.ndarray, u_pos: np.ndarray) -> np.ndarray:
        """Draw values of the given features from their marginals (vectorised).

        The bin (or unique value) is chosen by the inverse CDF of ``u_bin``; the value is
        ``left + u_pos * (right - left)`` inside that bin (``u_pos`` is ignored for discrete
        features).

        Args:
            feature_idx: Feature indices, integer array of any shape, e.g. ``(n, k)``.
            u_bin: Uniform numbers in ``[0, 1)``, same shape, choosing the bin.
            u_pos: Uniform numbers in ``[0, 1)``, same shape, choosing the position in the bin.

        Returns:
            Float64 values, same shape as ``feature_idx``.

        Raises:
            TypeError: If ``feature_idx`` is not an integer array.
            ValueError: For mismatched shapes or out-of-range feature indices.
        """
        idx = np.asarray(feature_idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"feature_idx must be an integer array, got dtype {idx.dtype}")
        ub = np.asarray(u_bin, dtype=np.float64)
        up = np.asarray(u_pos, dtype=np.float64)
        if ub.shape != idx.shape or up.shape != idx.shape:
            raise ValueError(
                "feature_idx, u_bin and u_pos must have the same shape, got "
                f"{idx.shape}, {ub.shape}, {up.shape}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_features):
            raise ValueError(
                f"feature_idx must lie in [0, {self.n_features}), got [{idx.min()}, {idx.max()}]"
            )
        # Inverse CDF: bin = searchsorted(cdf_f, u, "right"), exactly; the guide table gives a
        # bracket [lo, hi] per key, which is almost always one bin, else is bisected.
        shape = idx.shape
        idx = idx.astype(np.intp).ravel()
        ub = ub.ravel()
        g_size = self._guide_size
        cell = np.clip((ub * g_size).astype(np.intp), 0, g_size - 1)
        cell += idx * g_size
        lo = self._guide_lo[cell]
        todo = np.flatnonzero(lo != self._guide_hi[cell])
        if todo.size:
            low, high, u = lo[todo], self._guide_hi[cell[todo]], ub[todo]
            while True:
                open_ = low < high
                if not open_.any():
                    break
                mid = (low + high) >> 1
                right = self._cdf[mid] <= u  # the bin lies right of mid
                low = np.where(open_ & right, mid + 1, low)
                high = np.where(open_ & ~right, mid, high)
            lo[todo] = low
        np.clip(lo, self._first[idx], self._last[idx], out=lo)  # guards u outside [0, 1)
        return (self._left[lo] + up.ravel() * self._width[lo]).reshape(shape)


@dataclass
class RDSAOutput:
    """Result of :func:`rdsa_search`.

    Attributes:
        x_adv: Adversarial rows, shape ``(N, F)``, same float dtype as the input; failed rows
            are the original rows unless ``keep_failed=True``.
        success: ``(N,)`` bool, ``True`` where a candidate fooled the model.
        tries: ``(N,)`` int, the try at which the row succeeded, or ``max_tries`` for failures.
    """

    x_adv: np.ndarray
    success: np.ndarray
    tries: np.ndarray


def _seed_sequence(seed: int | np.random.SeedSequence | None) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int, a numpy SeedSequence or None, got {type(seed).__name__}")
    return np.random.SeedSequence(seed)


def rdsa_search(
    x: np.ndarray,
    is_success: SuccessFn,
    *,
    n_features: int = 15,
    max_tries: int = 25,
    bins: int = 100,
    discrete_threshold: int = 50,
    mutable: np.ndarray | None = None,
    marginals: Marginals | None = None,
    repair: RepairFn | None = None,
    keep_failed: bool = False,
    seed: int | np.random.SeedSequence | None = 0,
    batch_size: int = 4096,
    progress: bool = False,
) -> RDSAOutput:
    """Run the RDSA random search on every row of ``x``.

    Each try re-draws ``n_features`` random mutable features of every not-yet-fooled row
    from ``marginals``, starting again from the original row, and asks ``is_success``.

    Args:
        x: Rows to attack, shape ``(N, F)``, finite. Pass only rows the model gets right.
        is_success: ``is_success(candidates, rows)`` with candidates ``(n, F)`` and their row
            indices into ``x`` ``(n,)``; returns a bool array ``(n,)``, ``True`` where the
            candidate fools the model for that row. Called with at most ``batch_size`` rows.
        n_features: Number of features re-drawn per try (``1 <= n_features <= #mutable``).
        max_tries: Maximum number of tries per row (>= 1).
        bins: Histogram bins of a continuous feature when ``marginals`` is fitted here.
        discrete_threshold: Features with fewer unique values are discrete (see
            :meth:`Marginals.fit`).
        mutable: ``(F,)`` bool mask of the features that may be re-drawn (default all).
        marginals: Distributions to draw from; default ``Marginals.fit(x, bins=bins,
            discrete_threshold=discrete_threshold)``.
        repair: ``repair(candidates, originals)`` returning repaired candidates of the same
            shape, applied before ``is_success`` (e.g. physics constraints).
        keep_failed: Return the last failed draw for rows never fooled (reference code
            behaviour) instead of the original row.
        seed: Seed or :class:`numpy.random.SeedSequence`; the same seed gives bit-identical
            output, independent of ``batch_size``.
        batch_size: Rows per ``is_success`` call.
        progress: Show a tqdm progress bar over the tries.

    Returns:
        :class:`RDSAOutput` with the adversarial rows, success mask and tries used.

    Raises:
        TypeError: For non-numeric ``x``, non-integer sizes or a non-bool ``is_success`` result.
        ValueError: For a non-2-D ``x`` or one with NaN/inf, ``n_features`` outside
            ``[1, #mutable]``, ``max_tries < 1``, ``bins < 2``, ``batch_size < 1``, a ``mutable``
            mask or ``marginals`` of the wrong size, or callbacks returning the wrong shape.
    """
    arr = _check_x(x)
    n_rows, n_cols = arr.shape
    k = _check_int(n_features, name="n_features", minimum=1)
    max_tries = _check_int(max_tries, name="max_tries", minimum=1)
    bins = _check_int(bins, name="bins", minimum=2)
    discrete_threshold = _check_int(discrete_threshold, name="discrete_threshold", minimum=0)
    batch_size = _check_int(batch_size, name="batch_size", minimum=1)
    if not callable(is_success):
        raise TypeError("is_success must be callable: is_success(candidates, rows) -> bool array")
    if repair is not None and not callable(repair):
        raise TypeError("repair must be callable or None")
    if mutable is None:
        mutable_idx = np.arange(n_cols)
    else:
        mask = np.asarray(mutable)
        if mask.dtype != np.bool_:
            raise TypeError(f"mutable must be a bool mask, got dtype {mask.dtype}")
        if mask.shape != (n_cols,):
            raise ValueError(f"mutable must have shape ({n_cols},) like x's features, got {mask.shape}")
        mutable_idx = np.flatnonzero(mask)
    n_mutable = mutable_idx.size
    if k > n_mutable:
        raise ValueError(f"n_features={k} exceeds the number of mutable features ({n_mutable})")
    if marginals is not None and marginals.n_features != n_cols:
        raise ValueError(f"marginals describe {marginals.n_features} features, x has {n_cols}")
    ss = _seed_sequence(seed)
    n_subset = _subset_uniforms(n_mutable, k)

    x_adv = arr.copy()
    success = np.zeros(n_rows, dtype=bool)
    tries = np.zeros(n_rows, dtype=np.int64)
    if n_rows == 0:
        return RDSAOutput(x_adv=x_adv, success=success, tries=tries)
    if marginals is None:
        marginals = Marginals.fit(arr, bins=bins, discrete_threshold=discrete_threshold)

    from tqdm.auto import tqdm

    active = np.arange(n_rows)
    with tqdm(total=max_tries, desc="RDSA", unit="try", disable=not progress) as bar:
        for t in range(max_tries):
            # One row-major block for all rows: row i's numbers at try t are the i-th slice of the
            # stream, whatever the number of rows, the batch size or the rows still active.
            rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, t)))
            u = rng.random((n_rows, n_subset + 2 * k))[active]
            u_bin, u_pos = u[:, n_subset : n_subset + k], u[:, n_subset + k :]
            feat = mutable_idx[_random_subsets(u[:, :n_subset], n_mutable, k)]
            originals = arr[active]
            cand = originals.copy()
            np.put_along_axis(cand, feat, marginals.sample(feat, u_bin, u_pos).astype(arr.dtype), axis=1)
            if repair is not None:
                cand = _call_repair(repair, cand, originals)
            ok = np.empty(active.size, dtype=bool)
            for b in range(0, active.size, batch_size):
                ok[b : b + batch_size] = _call_success(
                    is_success, cand[b : b + batch_size], active[b : b + batch_size]
                )
            tries[active] = t + 1
            won = active[ok]
            x_adv[won] = cand[ok]
            success[won] = True
            if keep_failed and t == max_tries - 1:
                x_adv[active[~ok]] = cand[~ok]
            active = active[~ok]
            bar.update(1)
            bar.set_postfix(fooled=f"{int(success.sum())}/{n_rows}")
            if active.size == 0:
                break
    return RDSAOutput(x_adv=x_adv, success=success, tries=tries)


_FLOYD_MAX_K = 64


def _subset_uniforms(n: int, k: int) -> int:
    """Number of uniforms per row that :func:`_random_subsets` needs."""
    if k == n:
        return 0
    return k if k <= _FLOYD_MAX_K else n


def _random_subsets(u: np.ndarray, n: int, k: int) -> np.ndarray:
    """Per row, ``k`` distinct indices in ``range(n)`` drawn uniformly from the row's uniforms ``u``.

    Small ``k``: Floyd's algorithm (R. W. Floyd, J. Bentley, Commun. ACM 30, 754 (1987)),
    ``k`` uniforms per row and ``O(k^2)`` work, vectorised over rows; larger ``k``: the ``k``
    smallest of ``n`` uniform keys (``argpartition``). ``k == n``: all indices (``u`` unused).
    """
    rows = u.shape[0]
    if k == n:
        return np.broadcast_to(np.arange(n), (rows, n))
    if k > _FLOYD_MAX_K:
        return np.argpartition(u, k - 1, axis=1)[:, :k]
    sel = np.empty((rows, k), dtype=np.intp)
    for i in range(k):
        j = n - k + i  # draw t uniformly in [0, j]; if already taken, take j (new in this step)
        t = np.minimum((u[:, i] * (j + 1)).astype(np.intp), j)
        if i:
            t = np.where((sel[:, :i] == t[:, None]).any(axis=1), j, t)
        sel[:, i] = t
    return sel


def _call_repair(repair: RepairFn, cand: np.ndarray, originals: np.ndarray) -> np.ndarray:
    out = np.asarray(repair(cand, originals))
    if out.shape != cand.shape:
        raise ValueError(f"repair must return an array of shape {cand.shape}, got {out.shape}")
    out = out.astype(cand.dtype, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError("repair returned NaN/inf values")
    return out


def _call_success(is_success: SuccessFn, cand: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.asarray(is_success(cand, rows))
    if out.dtype != np.bool_:
        raise TypeError(f"is_success must return a bool array, got dtype {out.dtype}")
    if out.shape != (cand.shape[0],):
        raise ValueError(f"is_success must return shape ({cand.shape[0]},), got {out.shape}")
    return out
