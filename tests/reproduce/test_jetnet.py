"""The jetnet-metrics reproduction: aalearn's FPD/KPD against jetnet's on the same inputs."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from aalearn.reproduce import REGISTRY, run
from aalearn.reproduce.jetnet import jetnet_metrics_match, load_jetnet_metrics


def test_registered_with_a_relative_tolerance_of_1e_6() -> None:
    entry = REGISTRY["jetnet-metrics"].summary()
    assert set(entry["expected"]) == {
        "fpd_rel_diff",
        "fpd_error_rel_diff",
        "kpd_rel_diff",
        "kpd_error_rel_diff",
    }
    assert all(v == 0.0 for v in entry["expected"].values())
    assert all(v == 1e-6 for v in entry["tolerance"].values())
    assert "2211.10295" in entry["source"]


def test_without_jetnet_the_reproduction_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_jetnet(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jetnet" or name.startswith("jetnet."):
            raise ImportError("No module named 'jetnet'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jetnet)
    with pytest.raises(
        ImportError, match=r"jetnet-metrics reproduction .* install it with: pip install --no-deps"
    ):
        load_jetnet_metrics()
    with pytest.raises(ImportError, match="jetnet"):
        run("jetnet-metrics")


@pytest.mark.slow
def test_fpd_and_kpd_equal_jetnet_on_the_same_inputs() -> None:
    """Same comparison as the registered reproduction, on 4,000 rows with smaller batches."""
    pytest.importorskip("jetnet.evaluation", reason="jetnet is not installed (see the Makefile's bench-deps)")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        values, details = jetnet_metrics_match(
            4_000,
            6,
            fpd_options={"min_samples": 1_500, "max_samples": 4_000, "num_batches": 5, "num_points": 4},
            kpd_options={"num_batches": 4, "batch_size": 500},
        )
    assert all(v <= 1e-6 for v in values.values()), values
    distorted = details["cases"]["distorted"]
    assert distorted["fpd"]["jetnet"][0] > 0
    assert distorted["kpd"]["jetnet"][0] > 0
