"""Jet data: the in-memory dataset, the Pythia 8 generator and validated file readers."""

from __future__ import annotations

from aalearn.data.dataset import LABEL_NAMES, LABEL_TOP, LABEL_W, JetDataset

__all__ = ["LABEL_NAMES", "LABEL_TOP", "LABEL_W", "JetDataset"]
