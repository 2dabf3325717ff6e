"""Physics SBI: Pythia top-jet simulator, N-subjettiness, grid posterior, workflow and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from aalearn.inference.sbi.physics import (
    LEVEL_68,
    LEVEL_95,
    OBSERVABLES,
    PARAMETERS,
    GridPosterior,
    infer_pythia_parameters,
    simulate_jets,
    split_jets,
)
from aalearn.physics.jets import nsubjettiness
from aalearn.physics.jets import substructure_observables as jet_observables

pytestmark = pytest.mark.usefixtures("single_torch_thread")


# --------------------------------------------------------------------------- N-subjettiness
def test_nsubjettiness_two_prongs_matches_hand_computation() -> None:
    # two equal-pT particles 0.4 apart: the tau_1 axis minimising sum pT dR lies between them,
    # tau_1 = min(pT) * dR / (sum pT * R0) = 100 * 0.4 / (200 * 0.8) = 0.25; tau_2 = 0
    c = np.array([[100.0, 0.0, 0.0], [100.0, 0.4, 0.0]])
    tau = nsubjettiness(c, [0, 2], n=(1, 2))
    assert tau.shape == (1, 2)
    assert tau[0, 0] == pytest.approx(0.25, abs=1e-6)
    assert tau[0, 1] == 0.0


def test_nsubjettiness_prongs_ordering_and_batch() -> None:
    rng = np.random.default_rng(1)
    jets = []
    for centres in ([(0.0, 0.0)], [(0.0, 0.0), (0.5, 0.0)], [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)]):
        parts = [
            np.column_stack(
                [rng.uniform(10, 50, 15), cx + rng.normal(0, 0.02, 15), cy + rng.normal(0, 0.02, 15)]
            )
            for cx, cy in centres
        ]
        jets.append(np.concatenate(parts))
    offsets = np.concatenate([[0], np.cumsum([len(j) for j in jets])])
    tau = nsubjettiness(np.concatenate(jets), offsets)
    t21, t32 = tau[:, 1] / tau[:, 0], tau[:, 2] / tau[:, 1]
    assert t21[1] < 0.2 < t21[0]  # two-prong jet: small tau21
    assert t32[2] < 0.2 < t32[1]  # three-prong jet: small tau32
    # batching does not change a jet's value
    single = nsubjettiness(jets[1], [0, len(jets[1])])
    np.testing.assert_allclose(single[0], tau[1], rtol=1e-12)


@pytest.mark.parametrize(
    ("constituents", "offsets", "match"),
    [
        (np.zeros((3, 2)), [0, 3], "shape"),
        (np.ones((3, 3)), [0, 2], "offsets must start at 0"),
        (np.ones((3, 3)), [0, 0, 3], "increase"),
        (np.array([[1.0, 0, 0], [np.nan, 0, 0]]), [0, 1, 2], r"jets \[1\]"),
        (np.array([[-1.0, 0, 0]]), [0, 1], "pT must be positive"),
    ],
)
def test_nsubjettiness_bad_input(constituents: Any, offsets: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nsubjettiness(constituents, offsets)


def test_jet_observables_columns_and_bad_shapes() -> None:
    c = np.array([[100.0, 0.0, 0.0], [100.0, 0.4, 0.0], [50.0, 0.0, 0.3], [30.0, 0.2, 0.2]])
    jets = np.array([[250.0, 0.1, 0.0, 40.0, 4.0]])
    x = jet_observables(jets, c, [0, 4])
    assert x.shape == (1, len(OBSERVABLES))
    assert x[0, 0] == 250.0
    assert x[0, 1] == 40.0
    assert x[0, 2] == 4.0
    assert 0 < x[0, 3] < 1
    assert 0 <= x[0, 4] < 1
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        jet_observables(jets[:, :4], c, [0, 4])
    with pytest.raises(ValueError, match="len\\(jets\\) \\+ 1"):
        jet_observables(jets, c, [0, 2, 4])


def test_split_jets_pairs_each_jet_with_its_theta() -> None:
    theta = np.array([[170.0], [175.0]])
    x = np.arange(30.0).reshape(2, 15)  # 3 jets of 5 observables per block
    t, xj = split_jets(theta, x)
    assert t[:, 0].tolist() == [170.0] * 3 + [175.0] * 3
    np.testing.assert_array_equal(xj[4], np.arange(20.0, 25.0))
    with pytest.raises(ValueError, match="same number of rows"):
        split_jets(theta, x[:, :14])


# --------------------------------------------------------------------------- grid posterior
class _GaussianMassLikelihood:
    """Analytic per-jet 'posterior': jet mass ~ N(theta, sigma); unnormalised log posterior."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def log_prob(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:
        m = np.asarray(x_o)[:, 1]
        r = (m[None, :] - np.asarray(theta)[:, :1]) / self.sigma
        inside = (theta[:, 0] >= 165.0) & (theta[:, 0] <= 180.0)
        return np.where(inside, -0.5 * np.sum(r * r, axis=1), -np.inf)


def _jets(masses: np.ndarray) -> np.ndarray:
    x = np.tile(np.array([[500.0, 0.0, 60.0, 0.5, 0.6]]), (len(masses), 1))
    x[:, 1] = masses
    return x


def test_grid_posterior_matches_analytic_gaussian() -> None:
    rng = np.random.default_rng(3)
    sigma, k = 10.0, 100
    masses = rng.normal(172.0, sigma, k)
    gp = GridPosterior(_GaussianMassLikelihood(sigma), ("top_mass",), pt_min=400.0)
    s = gp.summary(_jets(masses))
    mu, sd = masses.mean(), sigma / math.sqrt(k)  # 1 GeV wide, far from the prior edges
    assert s.mean[0] == pytest.approx(mu, abs=1e-3)
    assert s.std[0] == pytest.approx(sd, rel=1e-3)
    for interval, level in ((s.interval_68[0], LEVEL_68), (s.interval_95[0], LEVEL_95)):
        z = stats.norm.ppf((1 + level) / 2)
        assert interval[0] == pytest.approx(mu - z * sd, abs=5e-3)
        assert interval[1] == pytest.approx(mu + z * sd, abs=5e-3)
    draws = gp.sample(4000, _jets(masses).reshape(-1), seed=1)  # flattened set is accepted
    assert draws.shape == (4000, 1)
    assert abs(draws.mean() - mu) < 4 * sd / math.sqrt(4000) + 1e-3
    assert draws.std() == pytest.approx(sd, rel=0.05)
    assert gp.log_prob(np.array([[mu], [mu + 3 * sd]]), _jets(masses)).argmax() == 0


class _GaussianEnsemble:
    """Two analytic members with different offsets and very different constants."""

    ensemble = 2

    def __init__(self, sigma: float, shifts: tuple[float, float], constants: tuple[float, float]) -> None:
        self.sigma, self.shifts, self.constants = sigma, shifts, constants

    def member_log_probs(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:
        m = np.asarray(x_o)[:, 1]
        rows = []
        for shift, const in zip(self.shifts, self.constants, strict=True):
            r = (m[None, :] - shift - np.asarray(theta)[:, :1]) / self.sigma
            inside = (theta[:, 0] >= 165.0) & (theta[:, 0] <= 180.0)
            rows.append(np.where(inside, const - 0.5 * np.sum(r * r, axis=1), -np.inf))
        return np.stack(rows)

    def log_prob(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:  # the naive mixture
        return np.logaddexp(*self.member_log_probs(theta, x_o)) - math.log(2)


def test_grid_posterior_ensemble_normalises_each_member() -> None:
    rng = np.random.default_rng(4)
    sigma, k = 10.0, 100
    masses = rng.normal(172.0, sigma, k)
    mu, sd = masses.mean(), sigma / math.sqrt(k)
    gp = GridPosterior(_GaussianEnsemble(sigma, (0.0, 2.0), (0.0, 500.0)), ("top_mass",), pt_min=400.0)
    s = gp.summary(_jets(masses))
    # equal-weight mixture of N(mu, sd) and N(mu - 2, sd), whatever the members' constants
    assert s.mean[0] == pytest.approx(mu - 1.0, abs=1e-2)
    assert s.std[0] == pytest.approx(math.sqrt(sd**2 + 1.0), rel=1e-2)
    theta = np.array([[mu], [mu - 2.0], [mu - 1.0]])
    expected = np.log(0.5 * (stats.norm.pdf(theta[:, 0], mu, sd) + stats.norm.pdf(theta[:, 0], mu - 2.0, sd)))
    assert gp.log_prob(theta, _jets(masses)) == pytest.approx(expected, abs=1e-3)


def test_grid_posterior_truncated_at_prior_edge() -> None:
    masses = np.full(50, 160.0)  # likelihood peaks below the prior: posterior piles up at 165
    s = GridPosterior(_GaussianMassLikelihood(10.0), ("top_mass",), pt_min=400.0).summary(_jets(masses))
    assert 165.0 <= s.interval_95[0, 0] < s.mean[0] < 167.0


def test_grid_posterior_bad_input() -> None:
    gp = GridPosterior(_GaussianMassLikelihood(10.0), ("top_mass",), pt_min=400.0)
    with pytest.raises(ValueError, match="multiple of 5"):
        gp.summary(np.ones(7))
    with pytest.raises(ValueError, match="non-finite"):
        gp.summary(np.full((2, 5), np.nan))
    with pytest.raises(TypeError, match="log_prob"):
        GridPosterior(object(), ("top_mass",), pt_min=400.0)
    with pytest.raises(ValueError, match="parameters must be"):
        GridPosterior(_GaussianMassLikelihood(1.0), ("mass",), pt_min=400.0)


# --------------------------------------------------------------------------- bad input before Pythia runs
def test_simulate_jets_rejects_out_of_prior_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"prior range \[165.0, 180.0\]"):
        simulate_jets([190.0], 5, seed=1)
    with pytest.raises(ValueError, match="shape \\(n, 1\\)"):
        simulate_jets([172.0, 0.12], 5, seed=1)
    with pytest.raises(ValueError, match="n_jets"):
        simulate_jets([172.0], 0, seed=1)
    with pytest.raises(ValueError, match="parameters must be distinct names"):
        simulate_jets([172.0], 5, seed=1, parameters=("top_mass", "top_mass"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "npe"}, "method must be 'nle', 'nre' or 'bnre'"),
        ({"true_value": {"top_mass": 190.0}}, "outside its prior"),
        ({"true_value": {"alpha_s_fsr": 0.12}}, "not inferred"),
        ({"simulations": 0}, "simulations"),
        ({"held_out_sets": 1}, "held_out_sets"),
        ({"parameters": "top_mass,width"}, "parameters must be"),
    ],
)
def test_infer_rejects_bad_input_before_simulating(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        infer_pythia_parameters(**kwargs)


def _cli() -> Any:
    import typer

    from aalearn.cli._sbi_physics import physics

    app = typer.Typer(add_completion=False)
    app.command("physics")(physics)
    app.command("noop")(lambda: None)  # two commands: typer keeps "physics" as a sub-command
    return app


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--method", "npe"], "--method must be summary, bnre, nle or nre"),
        (["--true-mass", "190"], "outside its prior"),
        (["--true-alpha-s", "0.12"], "needs --alpha-s"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], match: str) -> None:
    from typer.testing import CliRunner

    res = CliRunner().invoke(_cli(), ["physics", *args, "--json"])
    assert res.exit_code == 2
    assert match in res.output


# --------------------------------------------------------------------------- Pythia (slow)
@pytest.mark.slow
def test_simulate_jets_deterministic_and_physical() -> None:
    from aalearn.data.generate import GeneratorConfig, generate_chunk

    out = generate_chunk(GeneratorConfig(process="top"), 5, 0, 6, all_constituents=True)
    offsets = out["all_constituents_offsets"]
    np.testing.assert_array_equal(np.diff(offsets), out["jets"][:, 4])  # every constituent is there
    assert offsets[-1] == len(out["all_constituents"])
    a = simulate_jets([173.0], 6, seed=5, dequantize=np.random.default_rng(0))
    b = simulate_jets([173.0], 6, seed=5, dequantize=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.floor(a[:, 2]), out["jets"][:, 4])  # default mass, same seed: same jets
    np.testing.assert_allclose(a[:, [0, 1]], out["jets"][:, [0, 3]])
    assert np.all(a[:, 0] > 400.0)
    assert np.all((a[:, 3:] > 0) & (a[:, 3:] <= 1))


@pytest.mark.slow
def test_workflow_end_to_end_cached_and_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    cache = tmp_path / "cache"
    kwargs: dict[str, Any] = {
        "simulations": 60,
        "jets_per_simulation": 20,
        "observed_jets": 8,
        "held_out_sets": 2,
        "max_epochs": 2,
        "n_posterior_samples": 20,
        "cache": cache,
        "seed": 4,
    }
    res = infer_pythia_parameters(**kwargs)
    d = res.to_dict()
    for key in ("parameter", "true_value", "posterior_mean", "posterior_std", "interval_68", "interval_95"):
        assert key in d
    assert d["parameter"] == "top_mass"
    assert d["true_value"] == 172.5
    assert d["simulations"] == 60
    lo, hi = d["interval_95"]
    assert (
        PARAMETERS["top_mass"].low
        <= lo
        < d["interval_68"][0]
        < d["posterior_mean"]
        < d["interval_68"][1]
        < hi
    )
    assert d["covered_68"] == (d["interval_68"][0] <= 172.5 <= d["interval_68"][1])
    assert d["coverage"]["n_sets"] == 2
    assert 0.0 <= d["coverage"]["coverage_95"]["top_mass"] <= 1.0
    assert d["coverage"]["verdict"] in ("calibrated", "overconfident", "conservative")
    # the CLI reuses the cached simulations and prints one JSON object
    runner = CliRunner()
    args = ["physics", "--simulations", "60", "--jets-per-simulation", "20", "--observed-jets", "8"]
    args += ["--held-out-sets", "2", "--max-epochs", "2", "--seed", "4", "--cache", str(cache)]
    args += ["--out", str(tmp_path / "out"), "--json"]
    out = runner.invoke(_cli(), args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["timings"]["simulate"] < 0.5 * res.timings["simulate"]  # from the cache
    assert data["posterior_mean"] == pytest.approx(d["posterior_mean"], abs=1e-6)  # same seeds, same numbers
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "result.json").read_text())["parameter"] == "top_mass"
