r"""INFERNO with histosys templates from *separate* varied samples (``"inferno-templates"``).

:class:`~aalearn.training.inferno.InfernoStrategy` (de Castro & Dorigo, arXiv:1806.04743)
reads a histosys variation from row-paired copies of the batch (``Batch.aux[up]``): the
same events with varied features. A Pythia modelling variation (``aalearn generate
--variation fsr-up``) gives *different* jets, not varied copies of the nominal ones. This
strategy therefore holds the varied samples themselves and, at every step, draws from each
of them as many rows of each class as the batch has nominal rows of that class; the soft
histograms of those rows are the up/down templates, interpolated with pyhf's ``code4p``
exactly as in the base class (:func:`~aalearn.training.inferno.expected_counts`).

Two more things the jets need:

* **one nuisance acting on both samples**: a modelling variation moves the signal (top)
  and the background (W) templates together. ``{"sample": "both"}`` makes one parameter
  :math:`\alpha` whose ``code4p`` shifts are added to both samples (internally two
  histosys terms, ``name@signal`` and ``name@background``, sharing :math:`\alpha`);
* **a one-output tagger**: for a model without ``bin_logits`` (TopoDNN) the histogram is
  the kernel-density relaxed histogram of the score :math:`\sigma(\text{logit})` in
  ``n_bins`` equal bins of [0, 1] (neos, Simpson & Heinrich, arXiv:2203.05570), the
  score ``aalearn measure`` bins. All rows of a step (nominal and varied) go through the
  network in one forward pass, so batch normalisation sees one batch.

Where the varied samples come from:

* ``templates={"fsr-up": (X, y), ...}`` (arrays, for the library), or
* the training data itself (``aalearn train --nuisance-file 1=fsr_up.h5 ...``): rows whose
  auxiliary array ``source_key`` (default ``"z"``) equals ``nominal_source`` (0) are the
  nominal rows; a histosys ``up``/``down`` given as a number names the rows with that
  value of ``z`` (their validation rows likewise from ``aux_val``).

* **per-row weights of the nominal rows**: a histosys ``up``/``down`` written
  ``"weight:KEY"`` is the histogram of the step's *own* nominal rows, each weighted by the
  auxiliary array ``KEY`` (times its sample weight). This is a modelling variation given as
  event weights — Pythia's shower-variation weights, or a classifier's density ratio
  :math:`p_\text{var}(x)/p_\text{nom}(x)` fitted between the nominal and the varied sample
  (CARL, Cranmer, Pavez & Louppe, arXiv:1506.02169; DCTR, Andreassen & Nachman,
  arXiv:1907.08209). The varied template then shares the nominal one's rows, so the
  difference between them carries no statistical noise of a separate sample: the loss
  sees the variation itself, not two samples' fluctuations.

* **row-paired varied copies of the nominal rows**: ``"paired:KEY"`` is the histogram of
  the auxiliary feature array ``KEY`` ``(N, F)``, row ``i`` being nominal row ``i`` with
  varied features (a jet-energy scale: every constituent pT × 1.02), as the base class
  reads ``Batch.aux``; like a weight source, it shares the nominal rows.

A one-sided variation (a different tune) takes ``"down": "mirror"``: the down template is
:math:`2\,\text{nominal} - \text{up}`, as ``aalearn measure --histosys auto`` treats it
(not combined with ``shift``/``rate`` nuisances of the same sample).

Sample weights (``train_classifier(..., sample_weight=...)``, ``aalearn train --reweight-to``)
have the meaning they have in ``inferno``: every histogram, nominal or varied, is the weighted
sum of its rows scaled by :math:`N_k/\sum w` of *its own* rows, so an integer weight counts a
row as that many copies. The batch's nominal rows carry ``Batch.weight``; the pools of varied
rows built from the training data carry the weights of their rows (rows of weight 0 are left
out of the pools, as 0 copies); the validation σ_μ uses the validation weights when the run
has them. Rows handed over as ``templates=`` arrays count with weight 1.

Example:
    >>> s = InfernoTemplateStrategy(100, 1000, [
    ...     {"name": "fsr", "kind": "histosys", "sample": "both", "up": 1, "down": -1}])
    >>> s.parameter_names, s.sources
    (['mu', 'fsr'], ('-1', '1'))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn.data.dataset import LABEL_TOP
from aalearn.training.inferno import (
    InfernoStrategy,
    Nuisance,
    fisher_information,
    kde_histogram,
    sample_counts,
    soft_histogram,
)
from aalearn.training.strategy import TrainingData, logits_of, register_strategy

__all__ = ["HISTOGRAMS", "PAIRED_PREFIX", "WEIGHT_PREFIX", "InfernoTemplateStrategy"]

#: Relaxed histograms: ``auto`` (softmax of ``bin_logits`` when the model has them, else
#: KDE of the score), ``softmax`` (INFERNO), ``kde`` (neos).
HISTOGRAMS = ("auto", "softmax", "kde")
_SAMPLES = ("signal", "background")
_BOTH = "both"
_MIRROR = "mirror"
#: Prefix of a histosys ``up``/``down`` that is a per-row weight array of the nominal rows.
WEIGHT_PREFIX = "weight:"
#: Prefix of a histosys ``up``/``down`` that is a row-paired varied copy of the nominal features.
PAIRED_PREFIX = "paired:"

#: Template rows of one call: source name → (features, labels) or (features, labels, weights).
TemplateRows = Mapping[str, tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]]


def _source_name(value: Any) -> str:
    """A histosys ``up``/``down`` as a source name (numbers: the ``z`` value, as a string)."""
    if isinstance(value, bool):
        raise ValueError(f"a histosys up/down must name a varied sample, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"a histosys up/down value must be finite, got {value!r}")
        return f"{v:g}"
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"a histosys up/down must name a varied sample, got {value!r}")


class InfernoTemplateStrategy(InfernoStrategy):
    r"""INFERNO whose histosys templates come from separate varied samples (arXiv:1806.04743).

    The loss is the base class's :math:`[I^{-1}]_{\mu\mu}` (or :math:`\sigma_\mu`) of the
    Asimov likelihood :math:`n_i = \mu S_i(\nu) + B_i(\nu)`, with each histosys template the
    relaxed histogram of a batch drawn from its varied sample (as many rows per class as the
    batch's nominal rows, so the base class's normalisation applies unchanged). With sample
    weights each histogram is the weighted sum of its rows scaled by the sample's total over
    the Σw of those rows (the drawn varied rows carry their training weights).

    Args:
        signal_expected: Expected signal events :math:`N_s` at :math:`\mu = 1`.
        background_expected: Expected background events :math:`N_b`.
        nuisances: As :class:`~aalearn.training.inferno.Nuisance` dicts; a histosys
            ``up``/``down`` names a varied sample (a key of ``templates``, or a number: the
            value of ``source_key`` of its rows), and ``"sample": "both"`` makes one
            parameter act on signal and background.
        templates: Varied samples as ``name -> (X, y)`` arrays (default: from the training
            data's ``source_key`` array).
        source_key: Auxiliary array that tells nominal and varied rows apart.
        nominal_source: Value of ``source_key`` of the nominal rows.
        histogram: One of :data:`HISTOGRAMS`.
        n_bins: Bins of the KDE histogram (equal width on [0, 1]).
        bandwidth: KDE bandwidth.
        tau: Softmax temperature of the softmax histogram.
        signal_label: Label of the signal rows (default top = 0).
        loss: ``"variance"`` or ``"sigma"``.
        mc_events: Simulated events per sample of the measurement's templates (their MC
            statistical uncertainty, pyhf ``staterror``, in the loss), as in
            :class:`~aalearn.training.inferno.InfernoStrategy`; ``None``: none.
        histosys: The measurement's treatment of one-sided/asymmetric variations, as in
            :class:`~aalearn.training.inferno.InfernoStrategy`; a ``"both"`` nuisance is
            classified over both samples together, as ``aalearn measure`` does. ``auto``
            mirrors a variation whose up and down samples shift the score the same way, so
            the loss sees the systematic the measurement will count; ``none`` (default) is
            ``code4p`` of the templates as given, whose slope at 0 nearly vanishes for such a
            variation. On the project's jets ``auto`` trained worse taggers (σ_μ ratio to
            the nominal tagger 1.44 ± 0.69 over 6 seeds against 0.96 ± 0.17;
            ``benchmarks/bench_inferno_jets.py``): a treatment decided on each batch's
            templates (about a thousand jets per class and variation) mirrors their noise.

    Example:
        >>> InfernoTemplateStrategy(templates={"up": (np.zeros((2, 3)), np.array([0, 1]))}).sources
        ()
    """

    name: ClassVar[str] = "inferno-templates"
    #: Sample weights weight the nominal histograms (``Batch.weight``) and the varied ones (the
    #: pools of varied rows carry the weights of their training rows).
    supports_sample_weight: ClassVar[bool] = True

    def __init__(
        self,
        signal_expected: float = 100.0,
        background_expected: float = 1000.0,
        nuisances: Sequence[Mapping[str, Any] | Nuisance] = (),
        *,
        templates: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
        source_key: str = "z",
        nominal_source: float = 0.0,
        histogram: str = "auto",
        n_bins: int = 10,
        bandwidth: float = 0.05,
        tau: float = 0.1,
        signal_label: int = LABEL_TOP,
        loss: str = "sigma",
        mc_events: Mapping[str, float] | None = None,
        histosys: str = "none",
    ) -> None:
        specs, internal, index = self._expand(nuisances)
        super().__init__(
            signal_expected,
            background_expected,
            internal,
            tau=tau,
            signal_label=signal_label,
            loss=loss,
            mc_events=mc_events,
            histosys=histosys,
        )
        if histogram not in HISTOGRAMS:
            raise ValueError(f"histogram must be one of {', '.join(HISTOGRAMS)}, got {histogram!r}")
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
            raise ValueError(f"n_bins must be an integer ≥ 2, got {n_bins!r}")
        if not (isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool) and bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number, got {bandwidth!r}")
        if not isinstance(source_key, str) or not source_key:
            raise ValueError(f"source_key must be a non-empty string, got {source_key!r}")
        self.histogram_kind = histogram
        self.n_bins = n_bins
        self.bandwidth = float(bandwidth)
        self.source_key = source_key
        self.nominal_source = float(nominal_source)
        self.specs = specs
        self.parameters = [Nuisance.from_dict({**s, "sample": "background"}) for s in specs]
        self.parameter_names = ["mu", *(p.name for p in self.parameters)]
        self._index = torch.tensor(index, dtype=torch.long)
        named = {str(v) for n in internal if n.kind == "histosys" for v in (n.up, n.down)}
        self.sources = tuple(sorted(v for v in named if not v.startswith(f"{_MIRROR}:")))
        # "weight:KEY": the nominal rows weighted by aux[KEY]; the others have rows of their own
        self._weight_sources = tuple(v for v in self.sources if v.startswith(WEIGHT_PREFIX))
        self._paired_sources = tuple(v for v in self.sources if v.startswith(PAIRED_PREFIX))
        self._row_sources = tuple(v for v in self.sources if not v.startswith((WEIGHT_PREFIX, PAIRED_PREFIX)))
        # source → its auxiliary array (weights, or varied copies of the nominal rows)
        self._aux_key = {v: v.split(":", 1)[1] for v in (*self._weight_sources, *self._paired_sources)}
        for v, key in self._aux_key.items():
            if not key:
                raise ValueError(f"a histosys {v!r} source must name its array, e.g. '{v}w_fsr_up'")
        self._mirrors = tuple(sorted(v for v in named if v.startswith(f"{_MIRROR}:")))
        mirrored = {n.sample for n in internal if n.kind == "histosys" and str(n.down).startswith(_MIRROR)}
        shifted = {n.sample for n in internal if n.kind in ("shift", "rate")}
        if mirrored & shifted:  # the mirrored template is not re-histogrammed under the transform
            raise ValueError(
                f"a mirrored histosys cannot be combined with a shift/rate nuisance of the same sample "
                f"({', '.join(sorted(mirrored & shifted))}); give the down variation's rows instead"
            )
        self._arrays: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]] | None = None
        if templates is not None:
            self._arrays = {}
            for key, pair in templates.items():
                x_arr = np.asarray(pair[0], dtype=np.float32)
                y_arr = np.asarray(pair[1]).astype(np.int64)
                if x_arr.ndim != 2 or y_arr.shape != (x_arr.shape[0],):
                    raise ValueError(f"template {key!r} must be (X of shape (N, F), y of shape (N,))")
                self._arrays[str(key)] = (x_arr, y_arr)
            missing = [s for s in self._row_sources if s not in self._arrays]
            if missing:
                raise ValueError(
                    f"histosys sample(s) {missing} not among the templates {sorted(self._arrays)}"
                )
        needs = () if self._arrays is not None or not self._row_sources else (source_key,)
        self.requires_aux = needs + tuple(self._aux_key.values())  # type: ignore[misc]
        self._pools: dict[str, dict[str, Tensor]] = {}
        self._val_pools: dict[str, dict[str, Tensor]] = {}
        # weights of the pooled rows (source → sample → (rows,)); empty for an unweighted run
        self._pool_weights: dict[str, dict[str, Tensor]] = {}
        self._val_pool_weights: dict[str, dict[str, Tensor]] = {}
        self._gen = torch.Generator().manual_seed(0)

    @staticmethod
    def _expand(
        nuisances: Sequence[Mapping[str, Any] | Nuisance],
    ) -> tuple[list[dict[str, Any]], list[Nuisance], list[int]]:
        """(JSON specs, per-sample nuisances, parameter index of each) from the user's nuisances."""
        specs: list[dict[str, Any]] = []
        internal: list[Nuisance] = []
        index = [0]
        for k, raw in enumerate(nuisances):
            spec = (
                raw.to_dict()
                if isinstance(raw, Nuisance)
                else dict(raw)
                if isinstance(raw, Mapping)
                else None
            )
            if spec is None:
                raise ValueError(
                    f"a nuisance must be a mapping such as {{'name': ..., 'kind': ...}}, got {raw!r}"
                )
            if spec.get("kind") == "histosys":
                spec["up"], spec["down"] = _source_name(spec.get("up")), _source_name(spec.get("down"))
                if spec["down"] == _MIRROR:
                    spec["down"] = f"{_MIRROR}:{spec['up']}"
            specs.append(spec)
            samples = _SAMPLES if spec.get("sample") == _BOTH else (spec.get("sample", "background"),)
            for sample in samples:
                name = f"{spec.get('name')}@{sample}" if len(samples) > 1 else spec.get("name")
                internal.append(Nuisance.from_dict({**spec, "name": name, "sample": sample}))
                index.append(k + 1)
        return specs, internal, index

    # ---- histograms
    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        """Bin logits ``(B, n)`` (softmax histogram) or scores :math:`\\sigma(z)` ``(B,)`` (KDE)."""
        bins = getattr(model, "bin_logits", None)
        if self.histogram_kind == "softmax" or (self.histogram_kind == "auto" and callable(bins)):
            out: Tensor = bins(x) if callable(bins) else model(x)
            return out
        return torch.sigmoid(logits_of(model, x))

    def histogram_of(self, out: Tensor, weight: Tensor | None = None) -> Tensor:
        """Relaxed histogram of :meth:`outputs` (sums to the rows, or to Σw with ``weight``)."""
        if out.ndim == 2:
            return soft_histogram(out, self.tau, weight)
        edges = torch.linspace(0.0, 1.0, self.n_bins + 1, dtype=out.dtype, device=out.device)
        return kde_histogram(out, edges, self.bandwidth, weight)

    def histogram(self, model: nn.Module, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """Relaxed histogram of the model's outputs on ``x``."""
        return self.histogram_of(self.outputs(model, x), weight)

    def p0(self, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
        """Nominal parameters :math:`(\\mu_0 = 1, \\nu_0)` (one per parameter, not per sample)."""
        return torch.tensor([1.0] + [float(p.nominal) for p in self.parameters], dtype=dtype, device=device)  # type: ignore[arg-type]

    def _constraints(self, p: Tensor) -> Tensor:
        total = p.sum() * 0.0
        for j, nu in enumerate(self.parameters):
            if nu.sigma is not None:
                total = total + 0.5 * ((p[j + 1] - float(nu.nominal)) / nu.sigma) ** 2  # type: ignore[arg-type]
        return total

    # ---- the template rows
    def _draw(self, source: str, sample: str, n: int) -> tuple[Tensor, Tensor | None]:
        """``n`` rows of a training pool (without replacement when it has that many) and their weights."""
        pool = self._pools[source][sample]
        if n <= pool.shape[0]:
            idx = torch.randperm(pool.shape[0], generator=self._gen)[:n]
        else:
            idx = torch.randint(pool.shape[0], (n,), generator=self._gen)
        idx = idx.to(pool.device)
        w = self._pool_weights.get(source, {}).get(sample)
        return pool[idx], None if w is None else w[idx]

    def fisher(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        aux: Mapping[str, Tensor],
        *,
        weight: Tensor | None = None,
        update_log_odds: bool = False,
        create_graph: bool | None = None,
        templates: TemplateRows | None = None,
    ) -> Tensor | None:
        r"""Fisher information of the Asimov likelihood (``None`` if a class is missing).

        The nominal rows are ``x`` (those whose ``aux[source_key]`` is ``nominal_source``
        when that array is given); each varied sample contributes as many rows per class as
        there are nominal rows: ``templates[name]`` rows when given (all of them; then each
        class must have exactly the nominal count, unless the call is weighted), else the
        fixed validation draw when ``x`` is the validation set, else a fresh random draw from
        the training pools.

        Sample weights: ``weight`` ``(N,)`` weights the rows of ``x``, a ``templates[name]``
        of three tensors ``(X, y, w)`` weights its rows, and a weighted call (either given)
        weights the drawn pool rows with their training (or validation) weights; rows without
        weights count 1. Each histogram is then the weighted sum of its rows scaled by the
        sample's total over its own Σw (an integer weight counts a row as that many copies,
        and the row counts need not match); a class of zero total weight in any of them gives
        ``None`` (no information). Without weights the computation is the unweighted one.
        """
        weighted = (
            weight is not None
            or bool(self._weight_sources)
            or (templates is not None and any(len(t) > 2 for t in templates.values()))
        )
        row_weights = {s: aux[self._aux_key[s]] for s in self._weight_sources}
        paired = {s: aux[self._aux_key[s]] for s in self._paired_sources}
        if self.source_key in aux and x.shape[0] == aux[self.source_key].shape[0]:
            keep = aux[self.source_key] == self.nominal_source
            x, y = x[keep], y[keep]
            weight = None if weight is None else weight[keep]
            row_weights = {s: w[keep] for s, w in row_weights.items()}
            paired = {s: v[keep] for s, v in paired.items()}
        is_val = self._val is not None and x is self._val[0]
        samples: dict[str, dict[str, Tensor]] = {}
        weights: dict[str, dict[str, Tensor]] = {}

        def weights_of(w: Tensor | None, n: int) -> Tensor | None:
            """The rows' weights in x's dtype (ones if none); ``None`` when they sum to 0."""
            out = x.new_ones(n) if w is None else w.to(device=x.device, dtype=x.dtype)
            return out if float(out.sum()) > 0 else None

        for sample in _SAMPLES:
            mask = self._in_class(y, sample)
            n = int(mask.sum())
            if n == 0:
                return None
            rows = {"x": x[mask]}
            row_w: dict[str, Tensor | None] = {}
            if weighted:
                row_w["x"] = weights_of(None if weight is None else weight[mask], n)
            for src in self._weight_sources:  # the same rows, reweighted (no forward pass of their own)
                rows[src] = rows["x"][:]
                w_var = row_weights[src][mask].to(device=x.device, dtype=x.dtype)
                row_w[src] = weights_of(w_var if weight is None else weight[mask] * w_var, n)
            for src in self._paired_sources:  # varied copies of the same rows (their weights too)
                rows[src] = paired[src][mask].to(device=x.device, dtype=x.dtype)
                if weighted:
                    row_w[src] = row_w["x"]
            for src in self._row_sources:
                w_src: Tensor | None = None
                if templates is not None:
                    entry = templates[src]
                    tx, ty = entry[0], entry[1]
                    tmask = self._in_class(ty, sample)
                    rows[src] = tx[tmask]
                    if len(entry) > 2:
                        w_src = entry[2][tmask]
                    if not weighted and rows[src].shape[0] != n:
                        raise ValueError(
                            f"template {src!r} must have {n} {sample} rows, got {rows[src].shape[0]}"
                        )
                elif is_val:
                    rows[src] = self._val_pools[src][sample]
                    w_src = self._val_pool_weights.get(src, {}).get(sample)
                else:
                    drawn, w_src = self._draw(src, sample, n)
                    rows[src] = drawn.to(x.dtype)
                if weighted:
                    row_w[src] = weights_of(w_src, rows[src].shape[0])
            if weighted:
                if any(w is None for w in row_w.values()):
                    return None  # no weight in one class of a histogram: no information
                weights[sample] = {k: w for k, w in row_w.items() if w is not None}
            samples[sample] = rows

        # One forward pass over every row of the step (batch normalisation sees one batch).
        keyed = [
            (sample, key, t)
            for sample, rows in samples.items()
            for key, t in rows.items()
            if key not in self._weight_sources
        ]
        out = self.outputs(model, torch.cat([t for _, _, t in keyed]))
        memo: dict[int, Tensor] = {}
        nominal_out: dict[str, Tensor] = {}
        start = 0
        for sample, key, t in keyed:
            w_t = weights[sample][key] if weighted else None
            piece = out[start : start + t.shape[0]]
            memo[id(t)] = self.histogram_of(piece, w_t)
            if key == "x":
                nominal_out[sample] = piece
            start += t.shape[0]
        for sample, rows in samples.items():  # the weight sources: the nominal outputs, reweighted
            for src in self._weight_sources:
                memo[id(rows[src])] = self.histogram_of(nominal_out[sample], weights[sample][src])

        for sample, rows in samples.items():  # one-sided variations: down = 2·nominal − up
            for mirror in self._mirrors:
                sentinel = x.new_empty((0, x.shape[1]))
                rows[mirror] = sentinel
                up_key = mirror.split(":", 1)[1]
                up = memo[id(rows[up_key])]
                if weighted:  # scaled with the nominal rows' Σw: the up histogram to that Σw
                    w_rows = weights[sample]
                    w_rows[mirror] = w_rows["x"]
                    up = up * (w_rows["x"].sum() / w_rows[up_key].sum())
                memo[id(sentinel)] = 2.0 * memo[id(rows["x"])] - up

        def hist(rows: Tensor, w: Tensor | None = None) -> Tensor:
            cached = memo.get(id(rows))
            return cached if cached is not None else self.histogram(model, rows, w)

        if update_log_odds:
            nominal_w = {sample: w_rows["x"] for sample, w_rows in weights.items()} if weighted else None
            self._update_log_odds(model, samples, nominal_w)
        index = self._index.to(x.device)
        per_key = weights if weighted else None

        p0 = self.p0(x.dtype, x.device)
        plan = self.histosys_plan(p0[index], self.nuisances, hist, samples, per_key)

        def counts(p: Tensor) -> dict[str, Tensor]:
            return sample_counts(p[index], self.nuisances, hist, samples, self.totals, per_key, plan)

        poisson = self.poisson_nll(counts(p0))  # with mc_events: the templates' staterror

        def nll(p: Tensor) -> Tensor:
            n = counts(p)
            return poisson(n["signal"] + n["background"]) + self._constraints(p)

        keep_graph = torch.is_grad_enabled() if create_graph is None else create_graph
        return fisher_information(nll, p0, create_graph=keep_graph)

    # ---- loop hooks
    def _split(
        self,
        x: npt.NDArray[Any],
        y: npt.NDArray[Any],
        z: npt.NDArray[Any] | None,
        source: str,
        w: npt.NDArray[Any] | None = None,
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any] | None]:
        """Rows (and weights) of a varied sample: ``templates=`` arrays (unweighted) or ``z == source``."""
        if self._arrays is not None:
            return (*self._arrays[source], None)
        assert z is not None
        rows = np.isclose(z, float(source))
        return x[rows], y[rows], None if w is None else w[rows]

    def _in_class(self, y: Any, sample: str) -> Any:
        """Mask of the rows of ``sample``'s class (labels as an array or a tensor)."""
        return (y == self.signal_label) if sample == "signal" else (y != self.signal_label)

    def _of_class(
        self, y: npt.NDArray[Any], w: npt.NDArray[Any] | None, sample: str
    ) -> npt.NDArray[np.bool_]:
        """Rows of ``sample``'s class (of positive weight when weighted: a weight-0 row is 0 copies)."""
        rows: npt.NDArray[np.bool_] = self._in_class(y, sample)
        return rows if w is None else rows & (w > 0)

    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Hold the varied samples (per class, with weights) on the model's device; fix the validation draw.

        With sample weights (``data.weight``) the pools carry the weights of their rows; the
        validation draw carries ``data.weight_val`` (the training weights for varied rows that
        come from the training data), and is unweighted when the run has no validation weights.
        """
        if set(np.unique(data.y).tolist()) != {0, 1}:
            raise ValueError("the inferno-templates strategy needs training rows of both classes")
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self._gen = torch.Generator().manual_seed(int(data.seed) + 7919)
        z_tr = data.aux.get(self.source_key)
        z_va = data.aux_val.get(self.source_key)
        if self._row_sources and self._arrays is None and z_tr is None:
            raise ValueError(f"the varied samples need the auxiliary array {self.source_key!r} or templates=")
        w_tr = None if data.weight is None else np.asarray(data.weight, dtype=np.float64)
        w_va = None if data.weight_val is None else np.asarray(data.weight_val, dtype=np.float64)
        self._pools, self._val_pools = {}, {}
        self._pool_weights, self._val_pool_weights = {}, {}
        val_nominal = (
            np.ones(len(data.y_val), bool) if z_va is None else np.isclose(z_va, self.nominal_source)
        )
        x_val, y_val = data.X_val[val_nominal], data.y_val[val_nominal]
        w_val = None if w_va is None else w_va[val_nominal]
        val_src: dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any] | None]] = {}
        for src, key in self._aux_key.items():  # weights (N,) ≥ 0, or varied copies of X's shape
            is_weight = src in self._weight_sources
            for part, arrays, x_part in (
                ("aux_train", data.aux, data.X),
                ("aux_val", data.aux_val, data.X_val),
            ):
                arr = arrays.get(key)
                if part == "aux_val" and arr is None and len(x_part) == 0:
                    continue
                values = None if arr is None else np.asarray(arr, dtype=np.float64)
                if (
                    values is None
                    or values.shape != ((len(x_part),) if is_weight else x_part.shape)
                    or not np.all(np.isfinite(values))
                    or (is_weight and np.any(values < 0))
                ):
                    raise ValueError(
                        f"histosys weights {key!r} must be in {part} as finite, non-negative per-row "
                        f"weights of shape ({len(x_part)},)"
                        if is_weight
                        else f"histosys copies {key!r} must be in {part} as finite varied features of the "
                        f"shape of X {x_part.shape}"
                    )
        for src in self._row_sources:
            x_s, y_s, w_s = self._split(data.X, data.y, None if z_tr is None else np.asarray(z_tr), src, w_tr)
            pools, pool_w = {}, {}
            for sample in _SAMPLES:
                in_class = self._of_class(y_s, w_s, sample)
                if not in_class.any():
                    weight_note = "" if w_s is None else " of positive weight"
                    raise ValueError(f"the varied sample {src!r} has no {sample} rows{weight_note}")
                pools[sample] = torch.as_tensor(x_s[in_class], device=device, dtype=dtype)
                if w_s is not None:
                    pool_w[sample] = torch.as_tensor(w_s[in_class], device=device, dtype=dtype)
            self._pools[src] = pools
            if pool_w:
                self._pool_weights[src] = pool_w
            if self._arrays is None and z_va is not None:
                val_src[src] = self._split(data.X_val, data.y_val, np.asarray(z_va), src, w_va)
            else:  # the validation σ_μ is weighted only when the run has validation weights
                val_src[src] = (x_s, y_s, None if w_va is None else w_s)
        self._model = model
        self._val = None
        self._val_weight = None
        if set(np.unique(y_val).tolist()) != {0, 1}:
            return
        rng = np.random.default_rng(int(data.seed) + 104729)
        keep: list[npt.NDArray[np.int64]] = []
        for sample in _SAMPLES:
            rows = np.flatnonzero(self._in_class(y_val, sample))
            sizes = [int(np.sum(self._of_class(ys, ws, sample))) for _, ys, ws in val_src.values()]
            n = min([len(rows), *sizes])
            if n == 0:
                return
            keep.append(rng.permutation(rows)[:n])
            for src, (xs, ys, ws) in val_src.items():
                cls = np.flatnonzero(self._of_class(ys, ws, sample))
                chosen = rng.permutation(cls)[:n]
                self._val_pools.setdefault(src, {})[sample] = torch.as_tensor(
                    xs[chosen], device=device, dtype=dtype
                )
                if ws is not None:
                    self._val_pool_weights.setdefault(src, {})[sample] = torch.as_tensor(
                        ws[chosen], device=device, dtype=dtype
                    )
        idx = np.concatenate(keep)
        val_weights = {  # the weight and paired sources' arrays of the chosen validation rows
            key: torch.as_tensor(np.asarray(data.aux_val[key])[val_nominal][idx], device=device, dtype=dtype)
            for key in self._aux_key.values()
        }
        self._val = (
            torch.as_tensor(x_val[idx], device=device, dtype=dtype),
            torch.as_tensor(y_val[idx], device=device),
            val_weights,
        )
        if w_val is not None:  # the validation σ_μ of a weighted run is weighted too
            self._val_weight = torch.as_tensor(w_val[idx], device=device, dtype=dtype)

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        out = super().config()
        out.update(
            {
                "nuisances": self.specs,
                "templates": None if self._arrays is None else sorted(self._arrays),
                "source_key": self.source_key,
                "nominal_source": self.nominal_source,
                "histogram": self.histogram_kind,
                "n_bins": self.n_bins,
                "bandwidth": self.bandwidth,
            }
        )
        return out


register_strategy(InfernoTemplateStrategy)
