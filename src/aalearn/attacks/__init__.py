"""Physics-conserving adversarial attacks.

One framework (:class:`~aalearn.attacks.base.Attack`) validates input, decides which jets
are attacked, enforces the threat model (budget in σ units and the enabled physics
constraints from :mod:`aalearn.constraints`) and computes the metrics of
:class:`~aalearn.attacks.result.AttackResult`. Gradient attacks are configurations of one
loop (:class:`~aalearn.attacks.loop.GradientAttack`); RDSA and CONSERVAttack are the
population-level family. Attacks are available by name through :func:`get_attack`.

Example:
    >>> from aalearn.attacks import ATTACKS
    >>> "pgd" in ATTACKS and "rdsa" in ATTACKS
    True
"""

from aalearn.attacks.base import Attack, AttackSetup
from aalearn.attacks.components import (
    AdamStep,
    CrossEntropyObjective,
    FABL1Step,
    FromPoint,
    Initializer,
    L2BallInit,
    L2Step,
    MarginObjective,
    MiniFoolObjective,
    MomentumSignStep,
    Objective,
    SignStep,
    SparseL1Step,
    Step,
    StepContext,
    UniformInit,
    ZeroInit,
)
from aalearn.attacks.gradient import fgsm, mifgsm, pgd, sparse
from aalearn.attacks.loop import GradientAttack
from aalearn.attacks.minifool import DEFAULT_SCALES, MiniFoolScan, minifool, minifool_scan
from aalearn.attacks.minimal import MinimalEnsemble, fab_l1, minimal
from aalearn.attacks.model import ModelAdapter
from aalearn.attacks.physical import (
    TopoDNNPreprocessing,
    attack_constituents,
    physical_features,
    through_preprocessing,
)
from aalearn.attacks.population import RDSA, CONSERVAttack
from aalearn.attacks.registry import ATTACKS, AttackInfo, get_attack
from aalearn.attacks.result import AttackResult, challenge_score, mean_absolute_deviation

__all__ = [
    "ATTACKS",
    "DEFAULT_SCALES",
    "RDSA",
    "AdamStep",
    "Attack",
    "AttackInfo",
    "AttackResult",
    "AttackSetup",
    "CONSERVAttack",
    "CrossEntropyObjective",
    "FABL1Step",
    "FromPoint",
    "GradientAttack",
    "Initializer",
    "L2BallInit",
    "L2Step",
    "MarginObjective",
    "MiniFoolObjective",
    "MiniFoolScan",
    "MinimalEnsemble",
    "ModelAdapter",
    "MomentumSignStep",
    "Objective",
    "SignStep",
    "SparseL1Step",
    "Step",
    "StepContext",
    "TopoDNNPreprocessing",
    "UniformInit",
    "ZeroInit",
    "attack_constituents",
    "challenge_score",
    "fab_l1",
    "fgsm",
    "get_attack",
    "mean_absolute_deviation",
    "mifgsm",
    "minifool",
    "minifool_scan",
    "minimal",
    "pgd",
    "physical_features",
    "sparse",
    "through_preprocessing",
]
