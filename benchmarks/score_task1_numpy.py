"""Independent NumPy re-scoring of a Task-1 submission (no aalearn, no torch).

Reads ``submission.npz`` (``clean``, ``adv``, ``labels``) and the challenge's Keras model
``best_model.hdf5`` with h5py, runs the TopoDNN forward pass in NumPy in float32 (Dense →
ReLU → BatchNorm(ε = 1e-3) ×4 → Dense → sigmoid, the architecture of the challenge's
starter kit) and computes the challenge's score exactly as its scorer defines it:
FR = 1 − accuracy(labels, 1[p(adv) ≥ 0.5]), MAD = mean over samples and the 87 features of
|clean − adv|, score = FR · exp(−20 · MAD). It also checks the physical validity of the
adversarial jets independently: pT ≥ 0, φ₁ ≤ 0, and padded constituents (clean pT = 0)
unchanged.

Usage::

    .venv/bin/python benchmarks/score_task1_numpy.py submission.npz \\
        --model ../shared/data/colliding-adversaries/best_model.hdf5 [--rows odd]
"""

from __future__ import annotations

import argparse
import json

import h5py
import numpy as np


def forward(path: str, x: np.ndarray) -> np.ndarray:
    """P(label = 1) of the Keras TopoDNN in ``path`` for rows ``x`` (float32 NumPy)."""
    w = h5py.File(path, "r")["model_weights"]
    h = x.astype(np.float32)
    for i in range(4):
        d = w[f"dense{'' if i == 0 else f'_{i}'}"][f"dense{'' if i == 0 else f'_{i}'}"]
        bn_name = f"batch_normalization{'' if i == 0 else f'_{i}'}"
        bn = w[bn_name][bn_name]
        h = np.maximum(h @ d["kernel:0"][()] + d["bias:0"][()], 0)
        scale = bn["gamma:0"][()] / np.sqrt(bn["moving_variance:0"][()] + 1e-3)
        h = (h - bn["moving_mean:0"][()]) * scale + bn["beta:0"][()]
    out = w["dense_4"]["dense_4"]
    z = h @ out["kernel:0"][()] + out["bias:0"][()]
    return np.asarray(1 / (1 + np.exp(-z[:, 0].astype(np.float64))))


def main() -> None:
    """Print the score, FR, MAD and the physics checks as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("submission")
    p.add_argument("--model", default="../shared/data/colliding-adversaries/best_model.hdf5")
    p.add_argument("--rows", choices=("all", "even", "odd"), default="all")
    a = p.parse_args()
    arr = np.load(a.submission)
    sl = {"all": slice(None), "even": slice(0, None, 2), "odd": slice(1, None, 2)}[a.rows]
    clean, adv, labels = arr["clean"][sl], arr["adv"][sl], arr["labels"][sl]
    pred = (forward(a.model, adv) >= 0.5).astype(np.int64)
    fr = float(1 - np.mean(pred == labels))
    mad = float(np.mean(np.abs(clean.astype(np.float64) - adv.astype(np.float64))))
    # challenge layout: ConstPT_i, ConstEta_i, ConstPhi_i with ConstEta_0, ConstPhi_0, ConstEta_1 dropped
    names = [f"Const{k}_{i}" for i in range(30) for k in ("PT", "Eta", "Phi")]
    names = [n for n in names if n not in ("ConstEta_0", "ConstPhi_0", "ConstEta_1")]
    pt = [j for j, n in enumerate(names) if n.startswith("ConstPT")]
    phi1 = names.index("ConstPhi_1")
    neg_pt = (adv[:, pt] < 0).any(axis=1)
    pos_phi1 = adv[:, phi1] > 0
    padded = np.zeros(adv.shape, dtype=bool)
    for j, n in enumerate(names):
        padded[:, j] = clean[:, names.index("ConstPT_" + n.split("_")[1])] == 0
    pad_changed = (padded & (adv != clean)).any(axis=1)
    print(
        json.dumps(
            {
                "rows": a.rows,
                "n": len(labels),
                "fooling_ratio": fr,
                "mad": mad,
                "score": fr * float(np.exp(-20 * mad)),
                "unphysical_fraction": float(np.mean(neg_pt | pos_phi1 | pad_changed)),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
