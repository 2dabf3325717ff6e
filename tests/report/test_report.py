"""Tests of the HTML report builder, the standard plots and the headless-Chromium check."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure

from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.physics import CHALLENGE_PT_SCALE_GEV, challenge_feature_names, features_mass, topodnn_preprocess
from aalearn.report import (
    Report,
    dataset_summary_table,
    find_chromium,
    format_value,
    plot_feature_grid,
    plot_jet_mass,
    plot_multiplicity,
    plot_roc,
    plot_scores,
    plot_training_curves,
    render_check,
    render_figure,
)


# --------------------------------------------------------------------------- fixtures
def _synthetic(n: int = 240, *, seed: int = 0, truth: bool = True, spread: float = 1.0) -> JetDataset:
    """Random jets in the challenge layout; top jets are wider and have more constituents."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    k_max = 60
    n_const = np.where(labels == LABEL_TOP, rng.poisson(45, n), rng.poisson(22, n)).clip(3, k_max)
    real = np.arange(k_max)[None, :] < n_const[:, None]
    width = np.where(labels == LABEL_TOP, 0.3, 0.15)[:, None] * spread
    pt = np.sort(rng.exponential(15.0, (n, k_max)), axis=1)[:, ::-1] * real
    c = np.stack([pt, rng.normal(0, 1, (n, k_max)) * width, rng.normal(0, 1, (n, k_max)) * width], axis=-1)
    c[~real] = 0.0
    features = topodnn_preprocess(c).astype(np.float32)
    extras = {}
    if truth:
        mass = rng.normal(np.where(labels == LABEL_TOP, 170.0, 82.0), 15.0)
        extras["jets"] = np.stack(
            [pt.sum(axis=1), rng.normal(0, 1, n), rng.uniform(-np.pi, np.pi, n), mass, n_const], axis=1
        )
    return JetDataset(
        features, labels, tuple(challenge_feature_names()), source=f"synthetic-{seed}", extras=extras
    )


@pytest.fixture(scope="module")
def datasets() -> dict[str, JetDataset]:
    return {
        "aalearn (Pythia)": _synthetic(seed=1),
        "challenge public": _synthetic(seed=2, truth=False, spread=1.2),
    }


def _small_figure(label: str = "") -> Figure:
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1, 2], [1, 0, 1])
    fig.set_label(label)
    return fig


def _history() -> dict[str, list[float]]:
    return {
        "train_loss": [0.69, 0.52, 0.44, 0.40, 0.38],
        "val_loss": [0.68, 0.55, 0.47, 0.48, 0.50],
        "val_accuracy": [0.55, 0.74, 0.80, 0.79, 0.79],
    }


def _roc_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(0, 1, 400) + 2.0 * (labels == LABEL_TOP) - 1.0)))
    return labels, scores


def _roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Simple ROC for the top class as signal (no sklearn needed)."""
    order = np.argsort(-scores)
    sig = (labels[order] == LABEL_TOP).astype(float)
    tpr = np.concatenate([[0.0], np.cumsum(sig) / sig.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(1 - sig) / (1 - sig).sum()])
    return fpr, tpr, float(np.sum(np.diff(fpr) * 0.5 * (tpr[1:] + tpr[:-1])))


# --------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (True, "yes"),
        (12, "12"),
        (np.int64(7), "7"),
        (0.0, "0"),
        (0.123456, "0.1235"),
        (np.float32(2.5), "2.5"),
        (1234.5678, "1235"),
        (123456.7, "1.235×10⁵"),
        (-2.5e-7, "-2.5×10⁻⁷"),
        (float("nan"), "NaN"),
        (float("-inf"), "−∞"),
        ([1, 0.5, None], "1, 0.5, —"),
        ("text", "text"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


def test_html_escaping_everywhere() -> None:
    evil = "<script>alert('x')</script> & \"q\""
    report = Report(evil, subtitle=evil)
    report.add_metadata(evil, evil)
    report.add_section(evil, text=evil, table=[{evil: evil, "n": 1}])
    report.add_section("kv", table={evil: evil})
    page = report.to_html()
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;") >= 7
    # the only script is aalearn's own image counter
    assert page.count("<script>") == 1


def test_table_formatting_and_columns() -> None:
    report = Report("Tables")
    rows = [{"model": "a", "auc": 0.987654, "loss": None}, {"model": "b", "auc": 1e-6, "epochs": 12}]
    report.add_section("Metrics", table=rows)
    page = report.to_html()
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", page)
    assert header is not None
    assert re.findall(r">([^<>]+)</th>", header.group(1)) == ["model", "auc", "loss", "epochs"]
    assert ">0.9877<" in page
    assert ">1×10⁻⁶<" in page
    assert page.count(">—<") == 3  # loss of a (None), loss of b and epochs of a (missing)
    assert 'class="num-col">0.9877<' in page  # numbers right-aligned


def test_key_value_table_and_sections() -> None:
    report = Report("KV")
    report.add_section("Settings", table={"learning rate": 1e-3, "batch size": 256, "note": None})
    report.add_section("Settings", text="same title twice")
    report.add_section("Custom", text="x", anchor="my-anchor")
    page = report.to_html()
    assert 'class="kv"' in page
    assert '<th scope="row">learning rate</th><td class="num-col">0.001</td>' in page
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert ids == ["s-settings", "s-settings-2", "my-anchor"]
    for anchor in ids:
        assert f'href="#{anchor}"' in page  # table of contents
    assert report.section_titles == ("Settings", "Settings", "Custom")


def test_self_contained_page_with_figures() -> None:
    report = Report("Figures")
    report.add_metadata("seed", 3)
    report.add_section("Plots", text="two figures", figures=[_small_figure("first"), _small_figure()])
    report.add_section("One", figures=_small_figure("single figure"))  # type: ignore[arg-type]
    page = report.to_html()
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert len(sources) == 3
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'\shref="([^"]*)"', page))
    assert "://" not in page
    assert "Content-Security-Policy" in page
    assert "— first" in page
    assert "— single figure" in page
    assert 'width="200" height="150"' in page
    assert re.search(r"Generated by aalearn \d+\.\d+\.\d+\S* on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert "data-images-total" in page
    assert "naturalWidth" in page


def test_render_figure_closes_pyplot_figures() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(3, 2))
    fig.add_subplot().plot([1, 2])
    number = fig.number
    png, width, height = render_figure(fig)
    assert png.startswith(b"\x89PNG")
    assert (width, height) == (300, 200)
    assert number not in plt.get_fignums()


def test_bad_report_inputs() -> None:
    with pytest.raises(ValueError, match="non-empty title"):
        Report("  ")
    report = Report("r")
    with pytest.raises(ValueError, match="empty"):
        report.add_section("Nothing")
    with pytest.raises(ValueError, match="non-empty title"):
        report.add_section("", text="x")
    with pytest.raises(TypeError, match="row 1"):
        report.add_section("T", table=[{"a": 1}, ["not", "a", "mapping"]])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="mapping or a sequence"):
        report.add_section("T", table="a string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="matplotlib"):
        report.add_section("T", figures=["not a figure"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="must start with a letter"):
        report.add_section("T", text="x", anchor="1 bad")
    report.add_section("T", text="x", anchor="taken")
    with pytest.raises(ValueError, match="already used"):
        report.add_section("U", text="x", anchor="taken")


def test_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = Report("Write test")
    report.add_section("A", text="first version")
    dest = tmp_path / "deep" / "er" / "report.html"
    out = report.write(dest)
    assert out == dest
    assert dest.read_text(encoding="utf-8") == report.to_html()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report.html"]

    report.add_section("B", text="second version")
    report.write(str(dest))  # overwrite through a str path
    assert "second version" in dest.read_text(encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    report.add_section("C", text="third version")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        report.write(dest)
    assert "third version" not in dest.read_text(encoding="utf-8")  # previous report intact
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report.html"]  # no temp file left
    with pytest.raises(IsADirectoryError):
        Report("x").write(tmp_path)


# --------------------------------------------------------------------------- plots
def test_dataset_plots_accept_synthetic_datasets(datasets: dict[str, JetDataset]) -> None:
    fig = plot_jet_mass(datasets)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # truth + kept constituents
    assert fig.get_label()
    assert len(plot_jet_mass({"challenge": datasets["challenge public"]}).axes) == 1  # no truth jets
    assert len(plot_multiplicity(datasets).axes) == 2
    grid = plot_feature_grid(datasets)
    assert len(grid.axes) == 9
    assert grid.axes[0].get_yscale() == "log"  # pT
    assert grid.axes[2].get_yscale() == "linear"  # phi
    small = plot_feature_grid(datasets, ["ConstPT_0", "ConstEta_2"], ncols=3)
    assert sum(ax.get_visible() for ax in small.axes) == 2


def test_unlabeled_dataset_is_plotted_in_grey() -> None:
    ds = _synthetic(seed=4)
    unlabeled = JetDataset(ds.features, None, ds.feature_names, source="unlabeled")
    fig = plot_jet_mass({"unlabeled": unlabeled})
    assert len(fig.axes) == 1
    rows = dataset_summary_table({"unlabeled": unlabeled})
    assert rows[0]["top jets"] is None
    assert rows[0]["median multiplicity (30 kept)"] is not None


def test_training_roc_and_score_plots() -> None:
    fig = plot_training_curves(_history())
    assert len(fig.axes) == 2  # loss + twin accuracy axis
    assert fig.get_label() == "Training history (best epoch 3)"
    assert len(plot_training_curves({"loss": [1.0, 0.5]}).axes) == 1
    labels, scores = _roc_inputs()
    roc = plot_roc({"model": _roc_curve(labels, scores), "no auc": (*_roc_curve(labels, scores)[:2], None)})
    ax = roc.axes[0]
    assert ax.get_yscale() == "log"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("AUC = 0." in t for t in texts)
    assert "random classifier" in texts
    assert len(plot_scores(labels, scores).axes) == 1
    assert plot_scores(labels.astype(float), scores * 5 - 2, log=True).axes[0].get_yscale() == "log"


def test_dataset_summary_table(datasets: dict[str, JetDataset]) -> None:
    rows = dataset_summary_table(datasets)
    assert [r["dataset"] for r in rows] == list(datasets)
    assert len({tuple(r) for r in rows}) == 1  # same columns in every row
    gen = datasets["aalearn (Pythia)"]
    assert gen.labels is not None
    row = rows[0]
    assert row["jets"] == len(gen)
    assert row["top jets"] + row["W jets"] == len(gen)
    top = gen.labels == LABEL_TOP
    expected = np.median(features_mass(gen.features[top], pt_scale=CHALLENGE_PT_SCALE_GEV))
    assert row["median m(top), 30 kept [GeV]"] == pytest.approx(expected)
    assert row["median m(top), all [GeV]"] == pytest.approx(np.median(gen.extras["jets"][top, 3]))
    assert row["median m(W), all [GeV]"] < row["median m(top), all [GeV]"]
    assert rows[1]["median m(W), all [GeV]"] is None
    assert rows[1]["median multiplicity (all)"] is None
    report = Report("Summary")
    report.add_section("Datasets", table=rows)
    assert report.to_html().count("<tr>") == 3


def test_plot_input_validation(datasets: dict[str, JetDataset]) -> None:
    gen = datasets["aalearn (Pythia)"]
    with pytest.raises(ValueError, match="at least one dataset"):
        plot_jet_mass({})
    with pytest.raises(ValueError, match="has no jets"):
        plot_multiplicity({"empty": gen.subset(np.array([], dtype=np.int64))})
    with pytest.raises(TypeError, match="JetDataset"):
        plot_jet_mass({"x": gen.features})  # type: ignore[dict-item]
    other = JetDataset(gen.features[:, :5], gen.labels, [f"f{i}" for i in range(5)], source="other")
    with pytest.raises(ValueError, match="challenge features"):
        plot_jet_mass({"other": other})
    with pytest.raises(ValueError, match="challenge features"):
        dataset_summary_table({"other": other})
    with pytest.raises(ValueError, match="ConstPT_0"):
        plot_multiplicity({"other": other})
    with pytest.raises(ValueError, match="did you mean ConstPT_1"):
        plot_feature_grid(datasets, ["ConstPt_1"])
    with pytest.raises(ValueError, match="at least one feature"):
        plot_feature_grid(datasets, [])
    with pytest.raises(ValueError, match="mass_range"):
        plot_jet_mass(datasets, mass_range=(300.0, 0.0))
    bad_truth = JetDataset(
        gen.features, gen.labels, gen.feature_names, extras={"jets": gen.extras["jets"][:, :3]}
    )
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        plot_jet_mass({"bad": bad_truth})

    labels, scores = _roc_inputs()
    with pytest.raises(ValueError, match="same length"):
        plot_scores(labels, scores[:-1])
    with pytest.raises(ValueError, match="at least one jet"):
        plot_scores(np.array([], dtype=int), np.array([]))
    with pytest.raises(ValueError, match="must lie in 0"):
        plot_scores(labels + 1, scores)
    with pytest.raises(ValueError, match="integers"):
        plot_scores(labels + 0.5, scores)
    with pytest.raises(ValueError, match="NaN"):
        plot_scores(labels, np.where(labels == LABEL_W, np.nan, scores))

    fpr, tpr, auc = _roc_curve(labels, scores)
    with pytest.raises(ValueError, match="equal length"):
        plot_roc({"m": (fpr, tpr[:-1], auc)})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_roc({"m": (fpr * 2, tpr, auc)})
    with pytest.raises(ValueError, match="auc"):
        plot_roc({"m": (fpr, tpr, 1.5)})
    with pytest.raises(ValueError, match="tuple"):
        plot_roc({"m": (fpr, tpr)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="non-empty"):
        plot_roc({})

    with pytest.raises(ValueError, match="one value per epoch"):
        plot_training_curves({"train_loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(ValueError, match="needs a loss"):
        plot_training_curves({"val_accuracy": [0.5, 0.6]})
    with pytest.raises(ValueError, match="empty"):
        plot_training_curves({"train_loss": []})


# --------------------------------------------------------------------------- chromium
def _fake_chromium(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "fake-chromium"
    exe.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    exe.chmod(0o755)
    return exe


def test_find_chromium_env_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_chromium(tmp_path, "exit 0")
    monkeypatch.setenv("AALEARN_CHROMIUM", str(exe))
    assert find_chromium() == str(exe)

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("AALEARN_CHROMIUM", str(tmp_path / "does-not-exist"))
    with pytest.warns(RuntimeWarning, match="AALEARN_CHROMIUM"):
        assert find_chromium() is None
    monkeypatch.delenv("AALEARN_CHROMIUM")
    page = Report("p").write(tmp_path / "p.html")
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        render_check(page)


def test_render_check_parses_dom_and_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = Report("p").write(tmp_path / "p.html")
    dom = (
        "<html><head><title>A &amp; B</title></head>"
        '<body data-images-total="3" data-images-loaded="2"></body></html>'
    )
    monkeypatch.setenv("AALEARN_CHROMIUM", str(_fake_chromium(tmp_path, f"echo '{dom}'")))
    result = render_check(page)
    assert (result.images_total, result.images_loaded, result.title) == (3, 2, "A & B")
    assert not result.all_images_loaded
    assert result.screenshot is None
    assert not result.screenshot_written

    monkeypatch.setenv("AALEARN_CHROMIUM", str(_fake_chromium(tmp_path, "sleep 30")))
    with pytest.raises(RuntimeError, match="did not render"):
        render_check(page, timeout=0.5)
    monkeypatch.setenv("AALEARN_CHROMIUM", str(_fake_chromium(tmp_path, "echo boom >&2; exit 3")))
    with pytest.raises(RuntimeError, match="exit status 3"):
        render_check(page)
    with pytest.raises(FileNotFoundError):
        render_check(tmp_path / "missing.html")


def _chromium_or_skip() -> str:
    exe = find_chromium()
    if exe is None:
        reason = (
            "headless Chromium not found (set AALEARN_CHROMIUM or install Debian's chromium: "
            "apt-get install chromium)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must render the report, so this test may not be skipped there")
        pytest.skip(reason)
    return exe


@pytest.mark.chromium
def test_report_renders_in_headless_chromium(datasets: dict[str, JetDataset], tmp_path: Path) -> None:
    _chromium_or_skip()
    import matplotlib.image

    labels, scores = _roc_inputs()
    report = Report("Render check <aalearn>", subtitle="synthetic jets")
    report.add_metadata("seed", 0)
    report.add_section("Datasets", table=dataset_summary_table(datasets), figures=[plot_jet_mass(datasets)])
    report.add_section("Training", figures=[plot_training_curves(_history())])
    report.add_section(
        "Classifier", figures=[plot_roc({"model": _roc_curve(labels, scores)}), plot_scores(labels, scores)]
    )
    path = report.write(tmp_path / "report" / "index.html")

    result = render_check(path, screenshot=tmp_path / "shots" / "report.png", timeout=90)
    assert result.title == "Render check <aalearn>"
    assert result.images_total is not None
    assert result.images_total >= 4
    assert result.images_loaded == result.images_total, result
    assert result.all_images_loaded
    assert result.screenshot_written
    assert result.screenshot is not None
    pixels = matplotlib.image.imread(result.screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    rgb = pixels[..., :3]
    assert float(rgb.std()) > 0.05  # not a blank page
    assert float((rgb.mean(axis=-1) < 0.9).mean()) > 0.01  # some ink: text, axes, histograms


def test_human_headers_in_tables() -> None:
    report = Report("Headers")
    report.add_section(
        "Attacks", table=[{"fooling_ratio": 0.5, "max_jsd": 0.01, "seconds": 1.0, "Δμ̂/σ_μ": 2.0}]
    )
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", report.to_html())
    assert header is not None
    assert re.findall(r">([^<>]+)</th>", header.group(1)) == [
        "Fooling ratio",
        "Max. JSD",
        "Time [s]",
        "Δμ̂/σ_μ",
    ]


@pytest.mark.chromium
def test_wide_report_fits_a_1280_px_window(tmp_path: Path) -> None:
    """A report with the widest tables aalearn writes (12 snake_case columns) fits a 1280-px window."""
    _chromium_or_skip()
    rng = np.random.default_rng(0)
    keys = [
        "attack", "strength", "fooling_ratio", "accuracy", "auc", "mad", "challenge_score",
        "unphysical_fraction", "passes_validation", "max_jsd", "rel_corr_change", "seconds",
    ]  # fmt: skip
    rows = [
        {k: ("pgd" if k == "attack" else f"eps={e:g}" if k == "strength" else float(rng.uniform(1e-5, 1e4)))
         for k in keys}
        for e in (0.25, 0.5, 1.0, 2.0, 4.0)
    ]  # fmt: skip
    report = Report("Layout check")
    report.add_section("Robustness", text="A long paragraph. " * 60, table=rows)
    report.add_section("Figure", figures=[_small_figure()])
    result = render_check(report.write(tmp_path / "report.html"), timeout=90, window_width=1280)
    assert result.window_width is not None
    assert 1200 <= result.window_width <= 1280
    assert result.overflowing == 0, result
    assert result.wide_tables == 0, result
    assert result.fits_window
    # the check itself sees an overflow: a 3000-px figure sticks out of the page
    wide = Report("Too wide")
    fig = _small_figure()
    fig.set_size_inches(30, 2)
    wide.add_section("Wide", text="x", figures=[fig])
    page = tmp_path / "wide.html"
    wide.write(page)
    page.write_text(page.read_text().replace("max-width:100%", "max-width:none"))
    assert not render_check(page, timeout=90).fits_window
