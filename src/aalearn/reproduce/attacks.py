"""Reproductions for the attack pillar: the challenge's Task 1 metric on the organisers' own adversaries.

Source: ECML-PKDD 2025 Discovery Challenge "Colliding with Adversaries", Task 1 scorer
(starter kit ``Prepare_Submission.py``, score since 2025-05-16: ``FR * exp(-20 * MAD)``
with ``FR = 1 - accuracy`` on the adversaries and ``MAD`` the mean over jets of the mean
absolute feature change). The organisers' public RDSA adversaries
(``Adversaries_Test_Public.feather``, row-paired with ``Clean_Test_Public.feather``)
score 0.794 against the frozen ``best_model.hdf5`` (FR 0.907, MAD 0.00664), the number
quoted by the challenge issue and measured with an independent NumPy forward pass in
``shared/notes/adversarial.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aalearn._paths import CHALLENGE_FILES, find_challenge_data
from aalearn.reproduce.registry import Reproduction, register

__all__ = ["challenge_rdsa_file_score"]


def challenge_rdsa_file_score() -> tuple[dict[str, float], dict[str, Any]]:
    """Task 1 score of the organisers' public RDSA adversaries, computed with aalearn's metrics.

    Raises:
        FileNotFoundError: When the public files cannot be found.
    """
    from aalearn.attacks.result import challenge_score, mean_absolute_deviation
    from aalearn.data.io import load_dataset
    from aalearn.models import load_model, predict_proba

    root = find_challenge_data()
    if root is None:
        raise FileNotFoundError(
            "the challenge's public files were not found; set AALEARN_CHALLENGE_DATA to the directory "
            f"holding {', '.join(CHALLENGE_FILES.values())}"
        )
    model = load_model(root / CHALLENGE_FILES["model"])
    clean = load_dataset(root / CHALLENGE_FILES["clean"], require_labels=True)
    adv = load_dataset(root / CHALLENGE_FILES["adversarial"], require_labels=True)
    assert clean.labels is not None
    assert adv.labels is not None
    if not np.array_equal(clean.labels, adv.labels):
        raise ValueError("the clean and adversarial files are not row-paired (labels differ)")
    pred = (predict_proba(model, adv.features) >= 0.5).astype(np.int64)
    fr = float(1.0 - np.mean(pred == adv.labels))
    mad = mean_absolute_deviation(clean.features, adv.features)
    changed = np.any(clean.features != adv.features, axis=1)
    return (
        {"fooling_ratio": fr, "mad": mad, "score": challenge_score(fr, mad)},
        {"n": len(clean), "unchanged_rows": int((~changed).sum()), "data_dir": str(root)},
    )


register(
    Reproduction(
        name="challenge-rdsa-score",
        description="Task 1 score FR*exp(-20 MAD) of the organisers' public RDSA adversaries",
        source="ECML-PKDD 2025 'Colliding with Adversaries' Task 1 scorer; public RDSA file scores 0.794",
        expected={"fooling_ratio": 0.907, "mad": 0.00664, "score": 0.794},
        tolerance={"fooling_ratio": 0.0005, "mad": 0.000005, "score": 0.0005},
        runner=challenge_rdsa_file_score,
    )
)
