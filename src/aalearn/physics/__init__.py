"""Physics written once: feature specifications, resolution model, kinematics, preprocessing."""

from __future__ import annotations

from aalearn.physics.detector import merge_photons
from aalearn.physics.features import (
    CHALLENGE_PT_SCALE_GEV,
    N_CONSTITUENTS,
    FeatureSet,
    FeatureSpec,
    challenge_feature_names,
    challenge_features,
)
from aalearn.physics.kinematics import constituent_mass, wrap_phi
from aalearn.physics.preprocessing import (
    features_mass,
    features_to_constituents,
    topodnn_preprocess,
)
from aalearn.physics.resolution import ResolutionModel

__all__ = [
    "CHALLENGE_PT_SCALE_GEV",
    "N_CONSTITUENTS",
    "FeatureSet",
    "FeatureSpec",
    "ResolutionModel",
    "challenge_feature_names",
    "challenge_features",
    "constituent_mass",
    "features_mass",
    "features_to_constituents",
    "merge_photons",
    "topodnn_preprocess",
    "wrap_phi",
]
