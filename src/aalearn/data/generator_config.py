r"""Settings of a generated jet sample: :class:`GeneratorConfig`, variations, seeds and Pythia lines.

Split from :mod:`aalearn.data.generate` (which runs the event loop and the chunked, resumable
orchestration): this module holds what *defines* a sample, so that presets
(:mod:`aalearn.data.presets`) and readers of a file's configuration need not import the
generator. :mod:`aalearn.data.generate` re-exports every public name.

Physics of the settings (see :func:`pythia_settings`): pp collisions through Pythia 8.3
(Bierlich et al., arXiv:2203.11601), tt̄ or WW hard processes, the W decay modes, the
phase-space cut, multiparton interactions, the modelling variations of :data:`VARIATIONS`;
anti-kt jets (Cacciari, Salam, Soyez, arXiv:0802.1189) of radius ``jet_radius``.

Example:
    >>> cfg = GeneratorConfig(process="w", w_decays="leptonic")
    >>> [s for s in pythia_settings(cfg, 7) if s.startswith("24:")]
    ['24:onMode = off', '24:onIfAny = 11 13 15']
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from aalearn.data.dataset import LABEL_TOP, LABEL_W
from aalearn.data.pileup import PileupModel
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, N_CONSTITUENTS
from aalearn.physics.resolution import ResolutionModel

__all__ = [
    "MAX_EVENTS_WITHOUT_JET",
    "MAX_PYTHIA_SEED",
    "VARIATIONS",
    "VARIATION_DESCRIPTIONS",
    "GeneratorConfig",
    "chunk_seed",
    "pythia_settings",
]


Process = Literal["top", "w"]
WDecays = Literal["hadronic", "inclusive", "leptonic"]
JetsPerEvent = Literal["leading", "all"]

#: Largest seed Pythia accepts (``Random:seed`` must lie in 1..900 000 000).
MAX_PYTHIA_SEED: int = 900_000_000

#: Modelling variations: extra Pythia settings applied on top of the nominal setup.
#: See :data:`VARIATION_DESCRIPTIONS` for what each one does.
VARIATIONS: dict[str, tuple[str, ...]] = {
    "nominal": (),
    "fsr-up": ("TimeShower:renormMultFac = 0.5",),
    "fsr-down": ("TimeShower:renormMultFac = 2.0",),
    "isr-up": ("SpaceShower:renormMultFac = 0.5",),
    "isr-down": ("SpaceShower:renormMultFac = 2.0",),
    "tune-a14": ("Tune:pp = 21",),
    "tune-cuetp8m1": ("Tune:pp = 18",),
}

#: One-paragraph description ("docstring") of every entry of :data:`VARIATIONS`.
VARIATION_DESCRIPTIONS: dict[str, str] = {
    "nominal": "Pythia 8.3 defaults: Monash 2013 tune (Tune:pp = 14) with NNPDF2.3 QCD+QED LO.",
    "fsr-up": (
        "Final-state shower alpha_s up: the renormalisation scale of the timelike shower is "
        "halved (TimeShower:renormMultFac = 0.5), more and wider radiation inside the jets."
    ),
    "fsr-down": (
        "Final-state shower alpha_s down: the renormalisation scale of the timelike shower is "
        "doubled (TimeShower:renormMultFac = 2.0), narrower jets."
    ),
    "isr-up": (
        "Initial-state shower alpha_s up (SpaceShower:renormMultFac = 0.5): more radiation from "
        "the incoming partons, more contamination of the jet."
    ),
    "isr-down": "Initial-state shower alpha_s down (SpaceShower:renormMultFac = 2.0).",
    "tune-a14": (
        "ATLAS A14 central tune with NNPDF2.3LO (Tune:pp = 21; ATL-PHYS-PUB-2014-021): another "
        "set of shower, MPI and colour-reconnection parameters."
    ),
    "tune-cuetp8m1": (
        "CMS CUETP8M1 ('Monash*', Tune:pp = 18; CMS, EPJC 76 (2016) 155): the tune of CMS Run-2 "
        "samples of the challenge's era; a different underlying event."
    ),
}

_PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "top": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    "w": ("WeakDoubleBoson:ffbar2WW = on",),
}
_TRUTH_ID = {"top": 6, "w": 24}
_LABEL = {"top": LABEL_TOP, "w": LABEL_W}
#: Pythia lines of each W decay mode (``inclusive``: Pythia's branching ratios, no line).
_W_DECAY_SETTINGS: dict[str, tuple[str, ...]] = {
    "hadronic": ("24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
    "inclusive": (),
    "leptonic": ("24:onMode = off", "24:onIfAny = 11 13 15"),
}
_SETTING_RE = re.compile(r"^\s*[A-Za-z0-9_:]+\s*=\s*\S.*$")
#: |η| of the particles given to the clustering.
_PARTICLE_ETA_MAX = 5.0
#: Default of :attr:`GeneratorConfig.max_events_without_jet`: stop a chunk after this many
#: consecutive events without an accepted jet (an impossible cut would otherwise never end).
MAX_EVENTS_WITHOUT_JET = 20_000
#: Fields added after the first file format; :meth:`GeneratorConfig.to_dict` omits them at their
#: defaults, so that the configuration (and its hash) of every earlier sample is unchanged.
_LATER_FIELDS: dict[str, Any] = {
    "w_decays": "hadronic",
    "massless_clustering": False,
    "constituent_pt_min": 0.0,
    "min_constituents": 0,
    "resort": False,
    "jets_per_event": "leading",
    "pileup": None,
}
_FLOAT_FIELDS = (
    "constituent_pt_min",
    "pt_min",
    "pt_max",
    "eta_max",
    "jet_radius",
    "pthat_min",
    "ecm",
    "match_radius",
    "pt_scale",
    "calo_merge_radius",
)


def _finite(name: str, value: float, *, positive: bool = True, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"GeneratorConfig.{name} must be a finite number, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"GeneratorConfig.{name} must be {kind}, got {value}")


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that defines a generated jet sample (except the seed and the size).

    Attributes:
        process: ``"top"`` (all-hadronic tt̄) or ``"w"`` (hadronic WW).
        variation: Name of a modelling variation in :data:`VARIATIONS`.
        pt_min: Lower cut on the leading jet's pT, GeV.
        pt_max: Upper cut on the leading jet's pT, GeV (``None`` = no cut).
        eta_max: Cut on the leading jet's |η|.
        jet_radius: Anti-kt radius R.
        pthat_min: ``PhaseSpace:pTHatMin`` of the hard process, GeV.
        ecm: Centre-of-mass energy, GeV.
        mpi: Multiparton interactions (underlying event) on; off is 4-6x faster but
            less realistic (the W-jet mass drops by about 7 GeV).
        truth_match: Keep only jets within ``match_radius`` of a hard-process top (W).
        match_radius: ΔR of the truth matching.
        n_constituents: Constituents kept per jet (30 for the challenge layout).
        resolution: Detector-smearing model.
        calo_merge_radius: Photons closer than this in (η, φ) are merged into one
            detector-level object before smearing (a calorimeter cell;
            :func:`aalearn.physics.detector.merge_photons`); 0 disables merging.
        pt_scale: GeV per pT unit in ``features`` (1679.1593 = challenge files).
        extra_settings: Further Pythia settings (``"Key = value"``), applied last.
        w_decays: ``"hadronic"`` (W → quarks only: all-hadronic tt̄ and WW),
            ``"inclusive"`` (Pythia's W branching ratios, as in inclusive TTJets/WWJets
            samples) or ``"leptonic"`` (every W → eν, μν or τν: a sample of the events whose
            jets are lepton-seeded or from initial-state radiation, to enrich an inclusive
            sample with them; issue 15).
        massless_clustering: Cluster all particles as massless (``SlowJet`` ``massSet = 0``),
            so that the anti-kt distance uses pseudorapidity η, the coordinate of the
            features. With ``False`` (the original behaviour) particles keep their masses and
            the clustering uses rapidity y: a soft massive hadron (pT ≪ m, e.g. a 0.01 GeV
            proton) has |y| ≪ |η|, so it joins the jet while lying far outside it in η
            (found up to ΔR ≈ 2.5 from the leading constituent in 7-8 % of jets, issue 15).
        constituent_pt_min: Particle-flow-like acceptance: detector-level objects (after
            photon merging, before smearing) below this pT in GeV are dropped (0 = keep all).
        min_constituents: Reject jets with fewer detector-level objects than this after the
            acceptance (0 = keep all; the challenge's jets all have 30).
        resort: Re-sort the kept constituents by their smeared pT (``False``: keep the
            particle-level order, so that like the challenge files the smeared constituents are
            only approximately pT-ordered).
        jets_per_event: ``"leading"`` (the original behaviour: only the event's leading jet
            is considered) or ``"all"`` (every jet of the event that passes the cuts is kept,
            in pT order, as a jet collection of a data sample is: the second jet of a tt̄ or
            WW event, an ISR jet, a lepton-seeded jet).
        pileup: Soft-particle overlay (:class:`~aalearn.data.pileup.PileupModel`) added to
            each jet's detector-level objects before the ``min_constituents`` requirement
            and before the smearing (``None``: none); its random numbers come from their own
            stream of the chunk seed, so the smearing of a sample without it is unchanged.
        max_events_without_jet: Progress guard: a chunk stops with a ``ValueError`` naming
            the cut after this many consecutive events without an accepted jet (not part of
            the sample's configuration or hash).

    Raises:
        ValueError: For an unknown process or variation, non-physical cuts or malformed
            settings.

    Example:
        >>> GeneratorConfig(process="w", variation="fsr-up", pt_max=600.0).to_dict()["variation"]
        'fsr-up'
    """

    process: Process = "top"
    variation: str = "nominal"
    pt_min: float = 400.0
    pt_max: float | None = None
    eta_max: float = 2.0
    jet_radius: float = 0.8
    pthat_min: float = 350.0
    ecm: float = 13000.0
    mpi: bool = True
    truth_match: bool = False
    match_radius: float = 0.6
    n_constituents: int = N_CONSTITUENTS
    resolution: ResolutionModel = field(default_factory=ResolutionModel)
    calo_merge_radius: float = 0.02
    pt_scale: float = CHALLENGE_PT_SCALE_GEV
    extra_settings: tuple[str, ...] = ()
    w_decays: WDecays = "hadronic"
    massless_clustering: bool = False
    constituent_pt_min: float = 0.0
    min_constituents: int = 0
    resort: bool = False
    jets_per_event: JetsPerEvent = "leading"
    pileup: PileupModel | None = None
    max_events_without_jet: int = field(default=MAX_EVENTS_WITHOUT_JET, compare=False)

    def __post_init__(self) -> None:
        if self.process not in _PROCESS_SETTINGS:
            raise ValueError(f"GeneratorConfig.process must be 'top' or 'w', got {self.process!r}")
        if self.variation not in VARIATIONS:
            raise ValueError(
                f"unknown variation {self.variation!r}; valid variations: {', '.join(VARIATIONS)}"
            )
        _finite("pt_min", self.pt_min)
        if self.pt_max is not None:
            _finite("pt_max", self.pt_max)
            if self.pt_max <= self.pt_min:
                raise ValueError(
                    f"GeneratorConfig.pt_max ({self.pt_max}) must be larger than pt_min ({self.pt_min})"
                )
        _finite("eta_max", self.eta_max)
        if self.eta_max > _PARTICLE_ETA_MAX:
            raise ValueError(
                f"GeneratorConfig.eta_max must be at most {_PARTICLE_ETA_MAX}, got {self.eta_max}"
            )
        _finite("jet_radius", self.jet_radius)
        if self.jet_radius > 3.0:
            raise ValueError(f"GeneratorConfig.jet_radius must be at most 3, got {self.jet_radius}")
        _finite("pthat_min", self.pthat_min, allow_zero=True)
        _finite("ecm", self.ecm)
        _finite("match_radius", self.match_radius)
        _finite("pt_scale", self.pt_scale)
        _finite("calo_merge_radius", self.calo_merge_radius, allow_zero=True)
        _finite("constituent_pt_min", self.constituent_pt_min, allow_zero=True)
        if self.w_decays not in _W_DECAY_SETTINGS:
            raise ValueError(
                "GeneratorConfig.w_decays must be 'hadronic', 'inclusive' or 'leptonic', "
                f"got {self.w_decays!r}"
            )
        if self.jets_per_event not in ("leading", "all"):
            raise ValueError(
                f"GeneratorConfig.jets_per_event must be 'leading' or 'all', got {self.jets_per_event!r}"
            )
        if self.pileup is not None and not isinstance(self.pileup, PileupModel):
            raise ValueError(
                f"GeneratorConfig.pileup must be a PileupModel or None, got {type(self.pileup).__name__}"
            )
        if (
            isinstance(self.min_constituents, bool)
            or not isinstance(self.min_constituents, int)
            or self.min_constituents < 0
        ):
            raise ValueError(
                "GeneratorConfig.min_constituents must be a non-negative integer, "
                f"got {self.min_constituents!r}"
            )
        if self.pt_min >= self.ecm / 2:
            raise ValueError(
                f"GeneratorConfig.pt_min ({self.pt_min} GeV) is impossible: a jet has at most "
                f"ecm/2 = {self.ecm / 2} GeV"
            )
        m = self.max_events_without_jet
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"GeneratorConfig.max_events_without_jet must be an integer >= 1, got {m!r}")
        for name in ("mpi", "truth_match", "massless_clustering", "resort"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GeneratorConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if isinstance(self.n_constituents, bool) or not isinstance(self.n_constituents, int):
            raise ValueError(
                f"GeneratorConfig.n_constituents must be an integer, got {self.n_constituents!r}"
            )
        if self.n_constituents < 2:
            raise ValueError(f"GeneratorConfig.n_constituents must be at least 2, got {self.n_constituents}")
        if not isinstance(self.resolution, ResolutionModel):
            raise ValueError(
                f"GeneratorConfig.resolution must be a ResolutionModel, got {type(self.resolution).__name__}"
            )
        if isinstance(self.extra_settings, str):
            raise ValueError(
                "GeneratorConfig.extra_settings must be a sequence of 'Key = value' strings, not a str"
            )
        settings = tuple(self.extra_settings)
        for s in settings:
            if not isinstance(s, str) or not _SETTING_RE.match(s):
                raise ValueError(
                    f"Pythia setting {s!r} is not of the form 'Key = value' (e.g. 'PartonLevel:ISR = off')"
                )
            if s.strip().lower().startswith("random:"):
                raise ValueError(
                    f"Pythia setting {s!r} is not allowed: aalearn sets the random seeds per chunk "
                    "(use seed=)"
                )
        object.__setattr__(self, "extra_settings", settings)
        # ints and floats hash differently in the JSON config: store every float field as float
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))

    @property
    def label(self) -> int:
        """Class label of the jets (:data:`LABEL_TOP` = 0 or :data:`LABEL_W` = 1)."""
        return _LABEL[self.process]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all fields (``resolution`` as a nested dict).

        Example:
            >>> GeneratorConfig().to_dict()["pt_scale"]
            1679.1593
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ResolutionModel | PileupModel):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            if f.name == "max_events_without_jet":
                continue  # a guard, not a setting of the sample: not in the config (or its hash)
            if f.name in _LATER_FIELDS and value == _LATER_FIELDS[f.name]:
                continue  # unchanged behaviour: keep the configuration of earlier samples
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (``seed`` etc. of a file's config).

        Example:
            >>> cfg = GeneratorConfig(process="w")
            >>> GeneratorConfig.from_dict(cfg.to_dict()) == cfg
            True
        """
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if isinstance(kwargs.get("resolution"), Mapping):
            kwargs["resolution"] = ResolutionModel(**kwargs["resolution"])
        if isinstance(kwargs.get("pileup"), Mapping):
            kwargs["pileup"] = PileupModel(**kwargs["pileup"])
        if "extra_settings" in kwargs:
            kwargs["extra_settings"] = tuple(kwargs["extra_settings"])
        return cls(**kwargs)


def chunk_seed(seed: int, chunk_index: int) -> int:
    """Seed of chunk ``chunk_index`` of a run with seed ``seed``: an int in 1..900 000 000.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, chunk_index)``, so
    neighbouring seeds and chunks get unrelated streams.

    Args:
        seed: Run seed (non-negative integer).
        chunk_index: Chunk number (non-negative integer).

    Returns:
        A valid Pythia ``Random:seed``, also used for the smearing generator.

    Example:
        >>> s = chunk_seed(1, 0)
        >>> 1 <= s <= 900_000_000, s == chunk_seed(1, 0), s != chunk_seed(1, 1)
        (True, True, True)
    """
    for name, value in (("seed", seed), ("chunk_index", chunk_index)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    state = np.random.SeedSequence([int(seed), int(chunk_index)]).generate_state(1, np.uint64)[0]
    return int(state % np.uint64(MAX_PYTHIA_SEED)) + 1


def pythia_settings(config: GeneratorConfig, seed: int) -> list[str]:
    """The complete list of Pythia settings (``readString`` lines) for one chunk.

    Order: the variation (so that a tune does not override the rest), beams and process,
    W decays, phase space, MPI, stable particles, seed, quiet output, then
    ``config.extra_settings``.

    Args:
        config: Generator configuration.
        seed: Pythia ``Random:seed`` (1..900 000 000), for example :func:`chunk_seed`.

    Returns:
        Setting strings.

    Example:
        >>> "Top:gg2ttbar = on" in pythia_settings(GeneratorConfig(process="top"), 5)
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 1 <= seed <= MAX_PYTHIA_SEED:
        raise ValueError(f"Pythia seed must be an integer in 1..{MAX_PYTHIA_SEED}, got {seed!r}")
    return [
        *VARIATIONS[config.variation],
        f"Beams:eCM = {config.ecm!r}",
        *_PROCESS_SETTINGS[config.process],
        *_W_DECAY_SETTINGS[config.w_decays],
        f"PhaseSpace:pTHatMin = {config.pthat_min!r}",
        f"PartonLevel:MPI = {'on' if config.mpi else 'off'}",
        "ParticleDecays:limitTau0 = on",
        "ParticleDecays:tau0Max = 10",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
        "Print:quiet = on",
        "Next:numberCount = 0",
        *config.extra_settings,
    ]
