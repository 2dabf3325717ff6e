r"""Components of the gradient-attack loop: initialisers, objectives and steps.

A gradient attack in aalearn is a *configuration* of :class:`~aalearn.attacks.loop.GradientAttack`
built from these parts (the foolbox / secml-torch idea). Everything works in the scaled
coordinates :math:`z = (x - x_0)/\sigma`, so step sizes are in units of each feature's
experimental uncertainty; the loop maps back to feature space.

* Initialisers: :class:`ZeroInit`, :class:`UniformInit` (random start in the L∞ ball),
  :class:`L2BallInit` (uniform in the L2 ball), :class:`FromPoint` (warm start).
* Objectives (maximised): :class:`CrossEntropyObjective`, :class:`MarginObjective`,
  :class:`MiniFoolObjective`.
* Steps: :class:`SignStep` (FGSM/PGD-L∞, Goodfellow et al. arXiv:1412.6572, Madry et
  al. arXiv:1706.06083), :class:`L2Step`, :class:`MomentumSignStep` (MI-FGSM, Dong et
  al. arXiv:1710.06081), :class:`AdamStep` (minimiser-based attacks such as MiniFool),
  :class:`SparseL1Step` (a DeepFool-type minimal L1 step, Moosavi-Dezfooli et al.
  arXiv:1511.04599, solved exactly on the linearisation under the box constraints).

Example:
    >>> import torch
    >>> step = SignStep(alpha=0.5)
    >>> ctx = StepContext(z=torch.zeros(1, 2), grad_z=torch.tensor([[1.0, -2.0]]),
    ...                   value=torch.zeros(1), margin=torch.ones(1), lo=None, hi=None, state={})
    >>> step(ctx)
    tensor([[ 0.5000, -0.5000]])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aalearn.attacks.model import ModelAdapter

__all__ = [
    "AdamStep",
    "CrossEntropyObjective",
    "FABL1Step",
    "FromPoint",
    "Initializer",
    "L2BallInit",
    "L2Step",
    "MarginObjective",
    "MiniFoolObjective",
    "MomentumSignStep",
    "Objective",
    "SignStep",
    "SparseL1Step",
    "Step",
    "StepContext",
    "UniformInit",
    "ZeroInit",
    "l1_knapsack",
]


# --------------------------------------------------------------------------- initialisers
class Initializer(ABC):
    """Start point in scaled coordinates ``z``; ``noise`` is a pre-drawn standard uniform tensor."""

    #: Whether the initialiser consumes random numbers.
    random: bool = False

    @abstractmethod
    def __call__(self, shape: torch.Size, noise: Tensor, rows: Tensor) -> Tensor:
        """Initial ``z`` of ``shape`` (``rows`` are the global row indices of the batch)."""


class ZeroInit(Initializer):
    """Start at the clean input."""

    def __call__(self, shape: torch.Size, noise: Tensor, rows: Tensor) -> Tensor:
        return torch.zeros(shape, dtype=noise.dtype)


@dataclass
class UniformInit(Initializer):
    """Uniform random start in the L∞ ball of radius ``eps`` (σ units), as in PGD."""

    eps: float
    random: bool = True

    def __call__(self, shape: torch.Size, noise: Tensor, rows: Tensor) -> Tensor:
        return (2 * noise - 1) * self.eps


@dataclass
class L2BallInit(Initializer):
    """Uniform random start in the L2 ball of radius ``eps`` (σ units)."""

    eps: float
    random: bool = True

    def __call__(self, shape: torch.Size, noise: Tensor, rows: Tensor) -> Tensor:
        # Box-Muller from the uniforms keeps one noise tensor per row (batch-size independent)
        u1 = noise.clamp(min=1e-12)
        u2 = torch.roll(noise, 1, dims=1)
        g = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
        direction = g / g.norm(dim=1, keepdim=True).clamp(min=1e-12)
        radius = self.eps * noise[:, :1] ** (1.0 / shape[1])
        return direction * radius


@dataclass
class FromPoint(Initializer):
    """Warm start from given scaled perturbations ``z0`` of shape ``(N, F)`` (global rows)."""

    z0: Tensor

    def __call__(self, shape: torch.Size, noise: Tensor, rows: Tensor) -> Tensor:
        return self.z0[rows].to(noise.dtype).clone()


# --------------------------------------------------------------------------- objectives
class Objective(ABC):
    """Per-row quantity the loop **maximises**.

    Called with the model's logits, the target class (the clean decision or label
    that must no longer be predicted) and the scaled perturbation ``z``.
    """

    #: Whether the value depends on ``z`` (then the loop differentiates through it).
    uses_z: bool = True

    @abstractmethod
    def __call__(self, logits: Tensor, target: Tensor, z: Tensor) -> Tensor:
        """Per-row objective ``(n,)``."""


class CrossEntropyObjective(Objective):
    """Cross-entropy of the target class (BCE for single-logit models); the usual untargeted loss."""

    uses_z = False

    def __call__(self, logits: Tensor, target: Tensor, z: Tensor) -> Tensor:
        return ModelAdapter.cross_entropy(logits, target)


@dataclass
class MarginObjective(Objective):
    """Negative margin ``-(z_t - max_k z_k)``, capped at ``kappa`` (Carlini-Wagner style)."""

    uses_z = False

    kappa: float = math.inf

    def __call__(self, logits: Tensor, target: Tensor, z: Tensor) -> Tensor:
        return (-ModelAdapter.margin(logits, target)).clamp(max=self.kappa)


@dataclass
class MiniFoolObjective(Objective):
    r"""Negative MiniFool loss (arXiv:2511.01352).

    .. math:: \lambda = \alpha\,\frac{1}{F}\sum_i \Big(\frac{\Delta x_i}{s\,\sigma_i}\Big)^2
              + \beta\,\big(f(x_{adv}) - g\big)^2

    with :math:`f` the score :math:`P(\text{label}=1)` and the target score ``g`` on the
    other side of the decision threshold from the target class: :math:`g = 1 - t`
    shifted towards 0.5 by ``target_offset`` (default: :math:`g = 0` for jets predicted
    as class 1 and :math:`g = 1` for class 0). Multi-class models use the probability of
    the target class and :math:`g = 0`.

    Attributes:
        alpha: Weight of the χ²/N term.
        beta: Weight of the score term.
        scale: Uncertainty scale ``s`` (σ → s·σ).
        target_offset: Distance of ``g`` from the extreme score (0 → g ∈ {0, 1}).
    """

    alpha: float = 1.0
    beta: float = 1.0
    scale: float = 1.0
    target_offset: float = 0.0

    def __call__(self, logits: Tensor, target: Tensor, z: Tensor) -> Tensor:
        chi2 = (z / self.scale).pow(2).mean(dim=1)
        if logits.ndim == 1:
            f = torch.sigmoid(logits)
            g = torch.where(target == 1, self.target_offset, 1.0 - self.target_offset).to(f.dtype)
        else:
            f = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
            g = torch.full_like(f, self.target_offset)
        return -(self.alpha * chi2 + self.beta * (f - g).pow(2))


# --------------------------------------------------------------------------- steps
@dataclass
class StepContext:
    """What a step sees for the active rows of a batch.

    Attributes:
        z: Current scaled perturbation ``(n, F)``.
        grad_z: Gradient of the objective with respect to ``z``.
        value: Objective per row.
        margin: Margin of the target class per row (negative = fooled).
        lo: Lower limit of ``z`` per entry from the box-type constraints, or ``None``.
        hi: Upper limit of ``z``, or ``None``.
        state: Per-row state of the step (momentum, Adam moments), indexed by row.
        grad_margin: Gradient of the margin with respect to ``z`` (only for steps that
            set ``needs_margin_grad``).
    """

    z: Tensor
    grad_z: Tensor
    value: Tensor
    margin: Tensor
    lo: Tensor | None
    hi: Tensor | None
    state: dict[str, Tensor]
    grad_margin: Tensor | None = None


class Step(ABC):
    """One update of ``z``; returns the new ``z`` (the loop projects and repairs it)."""

    #: Whether the step needs the gradient of the margin instead of the objective.
    needs_margin_grad: bool = False

    def init_state(self, z: Tensor) -> dict[str, Tensor]:
        """Per-row state for rows starting at ``z``."""
        return {}

    @abstractmethod
    def __call__(self, ctx: StepContext) -> Tensor:
        """New ``z``."""


@dataclass
class SignStep(Step):
    """``z + alpha * sign(grad)`` (FGSM, PGD-L∞); ``alpha`` in σ units."""

    alpha: float

    def __call__(self, ctx: StepContext) -> Tensor:
        # one fused op (alpha * sign is exact, so the result equals z + alpha * sign(g))
        return torch.add(ctx.z, ctx.grad_z.sign(), alpha=self.alpha)


@dataclass
class L2Step(Step):
    """``z + alpha * grad / ||grad||_2`` (PGD-L2); ``alpha`` in σ units."""

    alpha: float

    def __call__(self, ctx: StepContext) -> Tensor:
        g = ctx.grad_z
        return ctx.z + self.alpha * g / g.norm(dim=1, keepdim=True).clamp(min=1e-30)


@dataclass
class MomentumSignStep(Step):
    r"""MI-FGSM step: momentum on the L1-normalised gradient, then a signed step.

    :math:`m \leftarrow \mu m + g/\lVert g\rVert_1`, :math:`z \leftarrow z + \alpha\,\mathrm{sign}(m)`.

    Per-row momentum state; ``alpha`` in σ units, ``decay`` is :math:`\mu`.
    """

    alpha: float
    decay: float = 1.0

    def init_state(self, z: Tensor) -> dict[str, Tensor]:
        return {"momentum": torch.zeros_like(z)}

    def __call__(self, ctx: StepContext) -> Tensor:
        g = ctx.grad_z
        m = self.decay * ctx.state["momentum"] + g / g.abs().sum(dim=1, keepdim=True).clamp(min=1e-30)
        ctx.state["momentum"] = m
        return ctx.z + self.alpha * m.sign()


@dataclass
class AdamStep(Step):
    """Adam ascent on the objective in σ units (Kingma & Ba, arXiv:1412.6980), per row."""

    lr: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def init_state(self, z: Tensor) -> dict[str, Tensor]:
        n = z.shape[0]
        return {"m": torch.zeros_like(z), "v": torch.zeros_like(z), "t": torch.zeros(n, 1, dtype=z.dtype)}

    def __call__(self, ctx: StepContext) -> Tensor:
        b1, b2 = self.betas
        s = ctx.state
        s["t"] = s["t"] + 1
        s["m"] = b1 * s["m"] + (1 - b1) * ctx.grad_z
        s["v"] = b2 * s["v"] + (1 - b2) * ctx.grad_z**2
        m_hat = s["m"] / (1 - b1 ** s["t"])
        v_hat = s["v"] / (1 - b2 ** s["t"])
        return ctx.z + self.lr * m_hat / (v_hat.sqrt() + self.eps)


@dataclass
class SparseL1Step(Step):
    r"""Minimal weighted-L1 step on the linearised margin, exact under box constraints.

    On the linearisation :math:`m(z + \delta) \approx m + \nabla m \cdot \delta` it solves

    .. math:: \min_\delta \sum_i w_i |\delta_i| \quad\text{s.t.}\quad
              m + \nabla m\cdot\delta \le -\kappa, \quad lo_i \le z_i + \delta_i \le hi_i

    — a fractional knapsack: coordinates are filled in order of :math:`|\partial_i m|/w_i`
    up to their box limits until the required margin change is reached. With
    ``max_coords = 1`` and no box this is the sparse DeepFool step; the box makes it
    feasible by construction (no negative pT, :math:`\phi_1 \le 0`), which is what makes
    it score well on the challenge's MAD metric.

    Attributes:
        overshoot: Target margin :math:`-\kappa` relative to the current margin's scale:
            :math:`\kappa = \text{overshoot}` (in logit units).
        max_coords: At most this many coordinates change per step.
        weights: ``"sigma"`` (L1 in σ units) or ``"raw"`` (L1 in feature units, the
            challenge's MAD); ``raw`` needs ``sigma`` in the state.
    """

    overshoot: float = 0.02
    max_coords: int = 1
    weights: Literal["sigma", "raw"] = "sigma"
    needs_margin_grad: bool = True

    def __call__(self, ctx: StepContext) -> Tensor:
        g = ctx.grad_margin if ctx.grad_margin is not None else -ctx.grad_z
        z = ctx.z
        w = ctx.state["sigma"] if self.weights == "raw" else torch.ones_like(z)
        need = (ctx.margin + self.overshoot).clamp(min=0)  # required decrease of the margin
        return z + l1_knapsack(g, z, need, ctx.lo, ctx.hi, w, self.max_coords)


def l1_knapsack(
    g: Tensor,
    start: Tensor,
    need: Tensor,
    lo: Tensor | None,
    hi: Tensor | None,
    w: Tensor,
    max_coords: int | None = None,
) -> Tensor:
    r"""Smallest weighted-L1 move from ``start`` that lowers a linear function by ``need``, inside a box.

    Solves :math:`\min_\delta \sum_i w_i|\delta_i|` subject to :math:`g\cdot\delta \le -\text{need}`
    and :math:`lo \le start + \delta \le hi` (a fractional knapsack: coordinates in order of
    :math:`|g_i|/w_i`, each up to its limit). Rows whose box cannot give ``need`` get the
    largest decrease the box allows (every admissible coordinate at its limit).

    Args:
        g: Gradient ``(n, F)`` of the linear function.
        start: Start point ``(n, F)``.
        need: Required decrease ``(n,)`` (``<= 0``: no move).
        lo: Lower limits ``(n, F)`` or ``None``.
        hi: Upper limits or ``None``.
        w: Positive weights ``(n, F)``.
        max_coords: At most this many coordinates move (``None``: any number).

    Example:
        >>> d = l1_knapsack(torch.tensor([[1.0, -2.0]]), torch.zeros(1, 2), torch.tensor([1.0]),
        ...                 None, None, torch.ones(1, 2))
        >>> d.abs()
        tensor([[0.0000, 0.5000]])
    """
    z = start
    # moving coordinate i against its gradient; how far it may go before the box
    direction = -g.sign()
    inf = torch.full_like(z, math.inf)
    hi_ = hi if hi is not None else inf
    lo_ = lo if lo is not None else -inf
    # an unbounded coordinate may move at most 1e6 sigma (keeps the arithmetic finite)
    room = torch.where(direction > 0, hi_ - z, z - lo_).clamp(min=0, max=1e6)
    # a coordinate within 1e-3 σ of its limit is at the limit (float round-off of the
    # repair would otherwise let it be chosen again and again for a negligible move)
    room = torch.where(room > 1e-3, room, torch.zeros_like(room))
    rate = g.abs() / w  # decrease per unit of weighted distance
    rate = torch.where(room > 0, rate, torch.zeros_like(rate))
    k = z.shape[1] if max_coords is None else min(max_coords, z.shape[1])
    order = rate.argsort(dim=1, descending=True)[:, :k]
    g_sel = g.abs().gather(1, order)
    room_sel = room.gather(1, order)
    gain = g_sel * room_sel  # decrease if the coordinate goes to its limit
    before = torch.cat([torch.zeros_like(gain[:, :1]), gain.cumsum(dim=1)[:, :-1]], dim=1)
    amount = ((need[:, None] - before) / g_sel.clamp(min=1e-30)).clamp(min=0)
    amount = torch.minimum(amount, room_sel)
    amount = torch.where(g_sel > 0, amount, torch.zeros_like(amount))
    return torch.zeros_like(z).scatter(1, order, amount * direction.gather(1, order))


@dataclass
class FABL1Step(Step):
    r"""A FAB step for the minimal weighted-L1 perturbation (Croce & Hein, arXiv:1907.02044).

    At the current point :math:`z` the decision boundary is linearised,
    :math:`m + \nabla m\cdot(z' - z) = 0`. Two minimal weighted-L1 projections onto that
    hyperplane inside the box (:func:`l1_knapsack`) are taken: :math:`\delta` from the
    current point and :math:`\delta_0` from the clean point (:math:`z = 0`). The new point
    mixes them, biased towards the clean jet,

    .. math:: z' = (1-\alpha)(z + \eta\,\delta) + \alpha\,\eta\,\delta_0, \qquad
              \alpha = \min\Big(\frac{\lVert\delta\rVert}{\lVert\delta\rVert + \lVert\delta_0\rVert},
              \alpha_{max}\Big),

    and a point that is already adversarial is first pulled towards the clean jet,
    :math:`z \leftarrow \beta z` (its margin extrapolated linearly). With the loop's
    ``select="distance"`` the smallest adversarial iterate is kept. ``weights="raw"``
    measures L1 in feature units (the challenge's MAD).

    Attributes:
        alpha_max: Largest weight of the projection from the clean point (FAB: 0.1).
        eta: Overshoot of the projections (FAB: 1.05).
        beta: Pull towards the clean jet after a success (FAB: 0.9).
        weights: ``"sigma"`` or ``"raw"``.

    Example:
        >>> ctx = StepContext(z=torch.zeros(1, 2), grad_z=torch.zeros(1, 2), value=torch.zeros(1),
        ...                   margin=torch.tensor([1.0]), lo=None, hi=None,
        ...                   state={"sigma": torch.ones(1, 2)}, grad_margin=torch.tensor([[1.0, -2.0]]))
        >>> FABL1Step(eta=1.0)(ctx)
        tensor([[0.0000, 0.5000]])
    """

    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9
    weights: Literal["sigma", "raw"] = "raw"

    def __call__(self, ctx: StepContext) -> Tensor:
        # with MarginObjective (the objective this step is made for) -grad_z is the
        # gradient of the margin: no second backward pass
        g = ctx.grad_margin if ctx.grad_margin is not None else -ctx.grad_z
        w = ctx.state["sigma"] if self.weights == "raw" else torch.ones_like(ctx.z)
        m = ctx.margin
        fooled = (m < 0)[:, None]
        z = torch.where(fooled, self.beta * ctx.z, ctx.z)
        m = torch.where(fooled[:, 0], m + (g * (z - ctx.z)).sum(dim=1), m)
        d_cur = l1_knapsack(g, z, m.clamp(min=0), ctx.lo, ctx.hi, w)
        zero = torch.zeros_like(z)
        d_orig = l1_knapsack(g, zero, (m - (g * z).sum(dim=1)).clamp(min=0), ctx.lo, ctx.hi, w)
        n_cur = (w * d_cur).abs().sum(dim=1, keepdim=True)
        n_orig = (w * d_orig).abs().sum(dim=1, keepdim=True)
        alpha = (n_cur / (n_cur + n_orig).clamp(min=1e-30)).clamp(max=self.alpha_max)
        return (1 - alpha) * (z + self.eta * d_cur) + alpha * (self.eta * d_orig)
