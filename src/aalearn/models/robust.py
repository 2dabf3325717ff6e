r"""RobustJetTagger: per-type shared feature embeddings followed by a dense fusion tail.

The winning solution of Task 2 ("robust model") of the ECML-PKDD 2025 challenge "Colliding
with Adversaries" (Stefanopoulos & Voskou, arXiv:2510.16443) replaces the reference
TopoDNN by a **feature-embedding block whose weights are shared among the features of the
same type** (every pT column goes through one embedding network, every η column through
another, every φ column through a third) and a **dense fusion tail**. Sharing means that
the tagger cannot learn a column-specific response to, say, the 18th constituent's pT,
which is what the challenge's RDSA adversaries (arXiv:2501.05588) exploit by re-drawing
soft-constituent pT from its marginal distribution.

This module implements that idea for any feature layout whose columns carry a type
(``"pt"``, ``"eta"``, ``"phi"``) and a constituent index, by default the 87-column
challenge layout (:func:`aalearn.physics.challenge_features`). For a jet :math:`x` with
standardised values :math:`\tilde x_j = (x_j - \mu_j)/s_j`:

.. math::

    e_j = g_{t(j)}(\tilde x_j) \in \mathbb{R}^{d}
    \qquad (g_t:\ \mathbb{R} \to \mathbb{R}^{d}\ \text{a two-layer MLP shared by all columns of type } t),

    u_c = \bigl[e_{\mathrm{pt},c},\ e_{\eta,c},\ e_{\phi,c}\bigr] + p_c \in \mathbb{R}^{3d}
    \qquad (\text{a missing feature contributes } 0;\ p_c \text{ an optional learned position embedding}),

    v_c = \mathrm{ReLU}(W_u u_c + b_u) \in \mathbb{R}^{d_v}
    \qquad (\text{one constituent mixer shared by all constituents}),

    h = \mathrm{concat}_c(v_c) \ \text{or}\ \tfrac{1}{K}\textstyle\sum_c v_c \ \text{or}\ \sum_c v_c,
    \qquad z = \mathrm{MLP}_\text{tail}(h) \in \mathbb{R}.

The output is the logit :math:`z` of :math:`P(\text{label}=1)` with shape ``(N,)``, the
same contract as :class:`~aalearn.models.TopoDNN`. The challenge layout drops
``ConstEta_0``, ``ConstPhi_0`` and ``ConstEta_1`` (fixed at zero by the TopoDNN
preprocessing), so those slots of :math:`u_c` stay zero. With pooling (``fusion="mean"`` or
``"sum"``) and without position embedding the tagger is invariant under permutations of
constituents that have the same set of features (a consequence of the sharing, tested).

**Reading only the leading constituents' pT** (``pt_inputs``, issue 15): the RDSA
adversaries re-draw the pT of the *softer* constituents from marginals pooled over both
classes (on the public pair: the W jets' constituents 2-25 gain a factor 3-5 in pT, the
leading constituent's pT is unchanged, the angles move by a few mrad), so in an RDSA jet
those columns carry almost no class information, and a tagger that reads them is misled.
``pt_inputs = k`` makes the network read the pT of the ``k`` leading constituents only
(the others enter as their training mean, a constant, so they get no gradient either):
invariant by construction to any change of the other pT columns, at the price of the clean
information they carry. Measured (generated jets only, the ``aalearn:robust`` recipe, 3
seeds): ``pt_inputs=1`` trades clean accuracy 0.86 → 0.75 for RDSA accuracy 0.39 → 0.76 on
the challenge's public pair (mixed accuracy 0.63 → 0.75). The pair also informed the choice
(see the model card ``models/shipped/robust.md``), so this is not a blind test.

References:
    D. Stefanopoulos, A. Voskou, Task-2 winning solution of "Colliding with Adversaries"
    (ECML-PKDD 2025 Discovery Challenge), arXiv:2510.16443.

    T. Saala et al., RDSA, arXiv:2501.05588 (the adversaries of the challenge's Task 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from aalearn.models.checkpoint import register_architecture
from aalearn.physics.features import FeatureSet, challenge_features

__all__ = ["FEATURE_KINDS", "RobustJetTagger"]

#: Feature types with their own shared embedding, in slot order within a constituent.
FEATURE_KINDS: tuple[str, ...] = ("pt", "eta", "phi")

Fusion = Literal["concat", "mean", "sum"]
Layout = list[tuple[str, int]]


def _check_int(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _challenge_layout(n_features: int) -> Layout:
    """Layout of the challenge's columns for ``K`` constituents (``3K − 3`` columns)."""
    if n_features < 3 or n_features % 3 != 0:
        raise ValueError(
            f"n_features = {n_features} is not a challenge layout (3·K − 3 columns for K constituents, "
            "87 for the challenge); pass layout=FeatureSet or a list of (kind, constituent) pairs"
        )
    features = challenge_features(n_constituents=n_features // 3 + 1)
    return [(s.kind, s.constituent) for s in features]


def _parse_layout(layout: Any) -> Layout:
    """``(kind, constituent)`` per column from a FeatureSet or a sequence of pairs."""
    if isinstance(layout, FeatureSet):
        return [(s.kind, s.constituent) for s in layout]
    if isinstance(layout, str | bytes) or not isinstance(layout, Sequence) or len(layout) == 0:
        raise ValueError(
            "layout must be a FeatureSet, a non-empty sequence of (kind, constituent) pairs or None "
            f"(the challenge layout), got {layout!r}"
        )
    out: Layout = []
    for j, item in enumerate(layout):
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(f"layout entry {j} must be a (kind, constituent) pair, got {item!r}")
        kind, constituent = item
        if kind not in FEATURE_KINDS:
            raise ValueError(f"layout entry {j}: kind must be one of {FEATURE_KINDS}, got {kind!r}")
        out.append((str(kind), _check_int(constituent, name=f"layout entry {j}: constituent", minimum=0)))
    if len(set(out)) != len(out):
        dup = sorted({p for p in out if out.count(p) > 1})
        raise ValueError(f"layout has duplicate (kind, constituent) pairs: {dup}")
    return out


class _ScalarEmbedding(nn.Module):
    """Two-layer MLP ``R → R^d`` applied to every value of one feature type (shared weights)."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, values: Tensor) -> Tensor:
        # (N, n_t) -> (N, n_t, d): the same weights for every column of this type.
        out: Tensor = self.net(values.unsqueeze(-1))
        return out


class RobustJetTagger(nn.Module):
    r"""Binary jet tagger with per-type shared feature embeddings and a dense fusion tail.

    The idea of the challenge's winning robust model (arXiv:2510.16443); see the module
    docstring for the equations. Input: ``(N, n_features)`` features in the same layout
    and units as :class:`~aalearn.models.TopoDNN` (by default the 87-column challenge
    layout); output: logits of :math:`P(\text{label}=1)`, shape ``(N,)``.

    Args:
        n_features: Number of input columns. With ``layout=None`` it selects the challenge
            layout for :math:`K = (n + 3)/3` constituents (87 → 30); otherwise it must equal
            ``len(layout)`` (or be ``None``).
        layout: Which type and constituent each column holds: a
            :class:`~aalearn.physics.FeatureSet`, a sequence of ``(kind, constituent)``
            pairs with kind in ``"pt"``, ``"eta"``, ``"phi"``, or ``None`` for the
            challenge layout.
        embed_dim: Dimension :math:`d` of each feature's embedding.
        embed_hidden: Hidden width of the per-type embedding MLPs.
        token_dim: Dimension :math:`d_v` of each constituent's representation after the
            shared constituent mixer.
        position_embedding: Add a learned embedding per constituent position (it lets a
            pooled fusion tell constituents apart; with ``"concat"`` it acts as a bias).
        fusion: ``"concat"`` (flatten the constituents, default), ``"mean"`` or ``"sum"``
            (permutation-invariant pooling over constituents).
        hidden: Widths of the dense fusion tail.
        dropout: Dropout probability after every hidden layer of the tail (0 disables it).
        pt_inputs: Read the pT columns of the ``pt_inputs`` leading constituents only (by
            constituent index; the other pT columns are held at their training mean, so the
            output does not depend on them); ``None`` (default) reads every column.

    Attributes:
        n_features: Number of input columns (read by :func:`aalearn.models.model_n_features`).
        layout: ``(kind, constituent)`` per column.
        n_constituents: Number of distinct constituents :math:`K`.

    Example:
        >>> model = RobustJetTagger().eval()
        >>> model(torch.zeros(4, 87)).shape
        torch.Size([4])
        >>> model.n_parameters
        71513
        >>> RobustJetTagger(**model.config).n_parameters == model.n_parameters
        True
    """

    def __init__(
        self,
        n_features: int | None = None,
        *,
        layout: FeatureSet | Sequence[Sequence[Any]] | None = None,
        embed_dim: int = 8,
        embed_hidden: int = 16,
        token_dim: int = 16,
        position_embedding: bool = True,
        fusion: Fusion = "concat",
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        pt_inputs: int | None = None,
    ) -> None:
        super().__init__()
        if layout is None:
            n = 87 if n_features is None else _check_int(n_features, name="n_features")
            self.layout: Layout = _challenge_layout(n)
            self._challenge = True
        else:
            self.layout = _parse_layout(layout)
            self._challenge = False
            if n_features is not None and _check_int(n_features, name="n_features") != len(self.layout):
                raise ValueError(f"n_features = {n_features} but the layout has {len(self.layout)} columns")
        self.n_features = len(self.layout)
        self.embed_dim = _check_int(embed_dim, name="embed_dim")
        self.embed_hidden = _check_int(embed_hidden, name="embed_hidden")
        self.token_dim = _check_int(token_dim, name="token_dim")
        self.position_embedding = bool(position_embedding)
        if fusion not in ("concat", "mean", "sum"):
            raise ValueError(f"fusion must be 'concat', 'mean' or 'sum', got {fusion!r}")
        self.fusion: Fusion = fusion
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}")
        self.hidden = tuple(_check_int(h, name="each hidden width") for h in hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.pt_inputs = None if pt_inputs is None else _check_int(pt_inputs, name="pt_inputs", minimum=0)

        constituents = sorted({c for _, c in self.layout})
        position = {c: i for i, c in enumerate(constituents)}
        self.n_constituents = len(constituents)
        kinds_present = [k for k in FEATURE_KINDS if any(kind == k for kind, _ in self.layout)]
        # Columns of each type, and where each column lands in the (K, 3) slot grid; slot
        # index K·3 (one past the end) is the zero "missing feature" slot.
        self._kinds = tuple(kinds_present)
        for kind in kinds_present:
            cols = [j for j, (k, _) in enumerate(self.layout) if k == kind]
            self.register_buffer(f"_cols_{kind}", torch.tensor(cols, dtype=torch.long), persistent=False)
        n_slots = self.n_constituents * len(FEATURE_KINDS)
        column_order = [j for kind in kinds_present for j, (k, _) in enumerate(self.layout) if k == kind]
        gather = torch.full((n_slots,), len(column_order), dtype=torch.long)
        for pos, j in enumerate(column_order):
            kind, c = self.layout[j]
            gather[position[c] * len(FEATURE_KINDS) + FEATURE_KINDS.index(kind)] = pos
        self._slot_source: Tensor
        self.register_buffer("_slot_source", gather, persistent=False)

        self.type_embedding = nn.ModuleDict(
            {kind: _ScalarEmbedding(self.embed_hidden, self.embed_dim) for kind in kinds_present}
        )
        token_in = len(FEATURE_KINDS) * self.embed_dim
        self.positions: nn.Parameter | None = (
            nn.Parameter(0.02 * torch.randn(self.n_constituents, token_in))
            if self.position_embedding
            else None
        )
        self.mixer = nn.Sequential(nn.Linear(token_in, self.token_dim), nn.ReLU())
        width = self.token_dim * (self.n_constituents if self.fusion == "concat" else 1)
        layers: list[nn.Module] = []
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = h
        self.tail = nn.Sequential(*layers)
        self.output = nn.Linear(width, 1)
        # Fixed input standardisation x -> (x - mean) / scale (as TopoDNN), identity by default.
        self.input_mean: Tensor
        self.input_scale: Tensor
        self.register_buffer("input_mean", torch.zeros(self.n_features))
        self.register_buffer("input_scale", torch.ones(self.n_features))
        # Columns the network reads: 1, or 0 for the pT of constituents past pt_inputs.
        read = [self.pt_inputs is None or kind != "pt" or c < self.pt_inputs for kind, c in self.layout]
        self._read: Tensor
        self.register_buffer("_read", torch.tensor(read, dtype=torch.float32), persistent=False)

    def _columns(self, kind: str) -> Tensor:
        cols: Tensor = getattr(self, f"_cols_{kind}")
        return cols

    def fit_input_scaling(
        self, x: Any, *, min_scale: float = 1e-6, by: Literal["feature", "type"] = "feature"
    ) -> RobustJetTagger:
        """Set the input standardisation from training features.

        Same name and default behaviour as :meth:`aalearn.models.TopoDNN.fit_input_scaling`
        (per-column mean and standard deviation). With ``by="type"`` all columns of one type
        share one mean and scale (pooled over the type's columns), so that equal physical
        values give equal embeddings in every column.

        Args:
            x: Training features, array-like of shape ``(N, n_features)``.
            min_scale: Smallest standard deviation treated as non-constant (smaller: scale 1).
            by: ``"feature"`` (per column) or ``"type"`` (pooled per feature type).

        Returns:
            ``self``.

        Raises:
            ValueError: For a wrong shape, fewer than 2 rows, NaN/inf or a bad ``by``.
        """
        if by not in ("feature", "type"):
            raise ValueError(f"by must be 'feature' or 'type', got {by!r}")
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if t.ndim != 2 or t.shape[1] != self.n_features or t.shape[0] < 2:
            raise ValueError(f"fit_input_scaling expects at least 2 rows of {self.n_features} features")
        if not torch.isfinite(t).all():
            raise ValueError("fit_input_scaling: features contain NaN/inf")
        mean, std = t.mean(dim=0), t.std(dim=0)
        if by == "type":
            for kind in self._kinds:
                cols = self._columns(kind).cpu()
                values = t[:, cols]
                mean[cols], std[cols] = values.mean(), values.std()
        self.input_mean.copy_(mean)
        self.input_scale.copy_(torch.where(std > min_scale, std, torch.ones_like(std)))
        return self

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``RobustJetTagger(**model.config)`` rebuilds it."""
        return {
            "n_features": self.n_features,
            "layout": None if self._challenge else [[k, c] for k, c in self.layout],
            "embed_dim": self.embed_dim,
            "embed_hidden": self.embed_hidden,
            "token_dim": self.token_dim,
            "position_embedding": self.position_embedding,
            "fusion": self.fusion,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            **({} if self.pt_inputs is None else {"pt_inputs": self.pt_inputs}),
        }

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"RobustJetTagger expects input of shape (N, {self.n_features}), got {tuple(x.shape)}; "
                "check the feature layout (the challenge layout has 87 columns)"
            )

    def _standardise(self, x: Tensor) -> Tensor:
        """``(x - mean) / scale`` with the columns the network does not read set to 0 (their mean)."""
        self._check_input(x)
        h: Tensor = (x - self.input_mean) / self.input_scale
        return h if self.pt_inputs is None else h * self._read

    def embed_features(self, x: Tensor) -> Tensor:
        """Per-column embeddings :math:`e_j`, shape ``(N, n_features, embed_dim)``, in column order.

        Columns of the same type go through the same embedding network.

        Example:
            >>> model = RobustJetTagger()
            >>> model.embed_features(torch.zeros(2, 87)).shape
            torch.Size([2, 87, 8])
        """
        h = self._standardise(x)
        out = h.new_zeros(x.shape[0], self.n_features, self.embed_dim)
        for kind in self._kinds:
            cols = self._columns(kind)
            out[:, cols] = self.type_embedding[kind](h[:, cols])
        return out

    def constituent_tokens(self, x: Tensor) -> Tensor:
        """Per-constituent representations :math:`v_c`, shape ``(N, n_constituents, token_dim)``."""
        h = self._standardise(x)
        parts = [self.type_embedding[kind](h[:, self._columns(kind)]) for kind in self._kinds]
        emb = torch.cat([*parts, h.new_zeros(x.shape[0], 1, self.embed_dim)], dim=1)
        tokens = emb[:, self._slot_source].reshape(x.shape[0], self.n_constituents, -1)
        if self.positions is not None:
            tokens = tokens + self.positions
        out: Tensor = self.mixer(tokens)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Logits :math:`z` of :math:`P(\\text{label}=1)`, shape ``(N,)``, for ``x`` of shape ``(N, F)``.

        Raises:
            ValueError: If ``x`` is not two-dimensional with ``n_features`` columns.
        """
        v = self.constituent_tokens(x)
        if self.fusion == "concat":
            h = v.flatten(1)
        elif self.fusion == "mean":
            h = v.mean(dim=1)
        else:
            h = v.sum(dim=1)
        out: Tensor = self.output(self.tail(h)).squeeze(-1)
        return out

    def predict_proba(self, x: Tensor) -> Tensor:
        r"""Probability :math:`P(\text{label}=1 \mid x) = \sigma(z)`, shape ``(N,)`` (current mode)."""
        return torch.sigmoid(self.forward(x))

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, n_constituents={self.n_constituents}, "
            f"embed_dim={self.embed_dim}, fusion={self.fusion!r}, hidden={list(self.hidden)}"
            + ("" if self.pt_inputs is None else f", pt_inputs={self.pt_inputs}")
        )


register_architecture("robust", RobustJetTagger)
