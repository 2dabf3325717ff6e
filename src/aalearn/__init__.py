"""aalearn: Adversarial and uncertainty-Aware Learning for physics.

aalearn tells a physicist how far to trust a machine-learning model trained on
simulation, and how to make it trustworthy. The foundation provides

* :mod:`aalearn.physics` -- feature specifications in physical units, the detector
  resolution model and the TopoDNN-style jet preprocessing;
* :mod:`aalearn.data` -- Pythia 8 jet generation (chunked, resumable, parallel through
  Dask) and validated readers for feather, HDF5, Parquet and ROOT files;
* :mod:`aalearn.models` -- the TopoDNN reference tagger and its Keras-weights loader;
* :mod:`aalearn.training` and :mod:`aalearn.evaluation` -- training with early stopping
  and the standard tagging metrics;
* :mod:`aalearn.report` -- a self-contained HTML report;
* :mod:`aalearn.cli` -- the ``aalearn`` command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
