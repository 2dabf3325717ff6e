"""Reproduction of the challenge's reference model on its public files.

Source: ECML-PKDD 2025 Discovery Challenge "Colliding with Adversaries" (starter kit
CollidingAdversaries/CollidingWithAdversaries): the frozen TopoDNN ``best_model.hdf5``
classifies every jet of ``Clean_Test_Public.feather`` correctly (the public set holds only
jets the model gets right) and 9.3 % of the organisers' RDSA adversaries
``Adversaries_Test_Public.feather`` (accuracy 0.093).
"""

from __future__ import annotations

from typing import Any

from aalearn.apps.evaluate import evaluate_path
from aalearn.core.paths import CHALLENGE_FILES, require_challenge_data
from aalearn.models import load_model
from aalearn.reproduce.registry import Reproduction, register

__all__ = ["challenge_model_accuracies"]


def challenge_model_accuracies() -> tuple[dict[str, float], dict[str, Any]]:
    """Accuracy of the challenge's Keras TopoDNN (loaded without TensorFlow) on the public files.

    Returns:
        ``({"clean_accuracy": ..., "adversarial_accuracy": ...}, details)``; the details
        hold the AUC, the number of jets and the 68 % intervals of accuracy and AUC per file.

    Raises:
        FileNotFoundError: When the public files cannot be found (set
            ``AALEARN_CHALLENGE_DATA`` to their directory).
    """

    root = require_challenge_data()
    model = load_model(root / CHALLENGE_FILES["model"])
    values: dict[str, float] = {}
    details: dict[str, Any] = {"data_dir": str(root)}
    for key, fname in (("clean", CHALLENGE_FILES["clean"]), ("adversarial", CHALLENGE_FILES["adversarial"])):
        result = evaluate_path(model, root / fname)
        values[f"{key}_accuracy"] = float(result.accuracy)
        details[f"{key}_auc"] = result.auc
        details[f"{key}_n"] = result.n
        # Clopper–Pearson (accuracy) and label-stratified bootstrap (AUC) intervals, 68 % CL
        details[f"{key}_intervals"] = {k: iv.to_dict() for k, iv in result.intervals.items()}
    return values, details


register(
    Reproduction(
        name="challenge-model",
        description="challenge TopoDNN (Keras HDF5 read with h5py) on the public clean and RDSA files",
        source="ECML-PKDD 2025 challenge 'Colliding with Adversaries', public files and best_model.hdf5",
        expected={"clean_accuracy": 1.000, "adversarial_accuracy": 0.093},
        tolerance={"clean_accuracy": 0.0005, "adversarial_accuracy": 0.0005},
        runner=challenge_model_accuracies,
    )
)
