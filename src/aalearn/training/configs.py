"""The training settings of every entry point that trains a model, written in one place.

Each constant is a :class:`~aalearn.core.config.TrainConfig`; an entry point's keyword
defaults are read from its constant, so a change of a default is a change here. They
differ on purpose:

* :data:`TAGGER_CONFIG` — ``aalearn train`` (:func:`aalearn.apps.train.train_model`):
  60 epochs with patience 8, a progress bar (one long run on the full data).
* :data:`ENSEMBLE_CONFIG` — ensemble members (:func:`aalearn.training.train_ensemble`,
  ``aalearn uncertainty --train-data``): the library defaults (50 epochs, patience 5),
  no progress bar (one per member would flood the terminal).
* :data:`DETECTOR_CONFIG` — the adversarial-sample detector
  (:class:`aalearn.training.AdversarialDetector`): library defaults, no progress bar.
* :data:`NUISANCE_CONFIG` — the nuisance study
  (:func:`aalearn.training.nuisance.train_nuisance_study`): 30 epochs per model (three
  models per study), patience 5, no progress bar.

Example:
    >>> TAGGER_CONFIG.epochs, ENSEMBLE_CONFIG.epochs, NUISANCE_CONFIG.epochs
    (60, 50, 30)
"""

from __future__ import annotations

from aalearn.core.config import TrainConfig

__all__ = ["DETECTOR_CONFIG", "ENSEMBLE_CONFIG", "NUISANCE_CONFIG", "TAGGER_CONFIG"]

#: ``aalearn train``: the tagger of the training workflow.
TAGGER_CONFIG = TrainConfig(epochs=60, patience=8, progress=True)
#: Members of a deep ensemble.
ENSEMBLE_CONFIG = TrainConfig(epochs=50, patience=5, progress=False)
#: The adversarial-sample detector.
DETECTOR_CONFIG = TrainConfig(epochs=50, patience=5, progress=False)
#: Each model of the nuisance study.
NUISANCE_CONFIG = TrainConfig(epochs=30, patience=5, progress=False)
