"""A corpus of bad inputs across every verb: each is one ``Error:`` line, exit 2, no output.

Every case runs ``landslip -q VERB ...`` in process. The rule checked for each: the exit code
is 2, stderr is exactly one line and it starts with ``Error:`` (no traceback), the message
holds the expected words, and the case's output location holds no file afterwards (no
half-written output, no temporary ``.partial`` file, no run folder holding only config.yaml).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.datasets import write_synthetic_dataset
from helpers.inputs import make_bundle, utm_grid, write_labels, write_pair, write_scene
from landslip.cli.app import main
from landslip.io.raster import write_raster
from landslip.models.bundle import BandProfile, InputProfile

NO_CUDA = not torch.cuda.is_available()


@dataclass(frozen=True)
class Case:
    """One bad input: ``landslip -q ARGS`` must fail with a message matching ``expect``.

    ``{i}`` in an argument is the shared input folder, ``{o}`` the case's (absent) output root.
    ``quiet_stdout``: nothing at all may be printed on stdout (the work must not have begun).
    """

    name: str
    args: list[str]
    expect: str
    quiet_stdout: bool = False
    marks: list[pytest.MarkDecorator] = field(default_factory=list)


def _truncate(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _png(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path)


def _patches(root: Path, masks: list[np.ndarray]) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k, m in enumerate(masks):
        _png(root / "images" / f"image_{k}.png", rng.integers(0, 255, (16, 16, 3), np.uint8))
        _png(root / "masks" / f"mask_{k}.png", m.astype(np.uint8))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input file of the corpus, made once."""
    i = tmp_path_factory.mktemp("inputs")
    make_bundle(i / "run" / "bundle")
    tiny = InputProfile(dtype="uint16", pixels=100, bands={
        b: BandProfile(p1=1.0, p50=5.0, p99=10.0) for b in ("blue", "green", "red")})
    make_bundle(i / "narrow" / "bundle", profile=tiny)
    make_bundle(i / "grn" / "bundle", band_set="grn")
    write_scene(i / "img.tif")
    write_scene(i / "anon.tif", names=None)
    write_scene(i / "far.tif", low=5000, high=9000)
    write_labels(i / "labels.tif")
    write_labels(i / "classes.tif", values=(0, 1, 2))
    write_labels(i / "offgrid.tif", 40, 41)
    big = np.random.default_rng(5).integers(1, 999, (4, 512, 512)).astype(np.uint16)
    write_scene(i / "big.tif", data=big)
    _truncate(i / "big.tif", i / "trunc.tif")
    write_labels(i / "biglabels.tif", 512, 512)
    write_pair(i / "pair")
    pan = np.random.default_rng(6).integers(1, 999, (1024, 1024)).astype(np.uint16)
    write_raster(i / "pan1024.tif", pan, utm_grid(1024, 1024))
    write_scene(i / "ms512.tif", data=big, grid=utm_grid(512, 512, res=3.0))
    _truncate(i / "ms512.tif", i / "ms_trunc.tif")
    write_scene(i / "ms_other_crs.tif", 16, 16, grid=utm_grid(16, 16, res=6.0, crs="EPSG:32655"))
    (i / "points.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {
            "name": "urn:ogc:def:crs:EPSG::32654"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": {
            "type": "Point", "coordinates": [500010.0, 4739990.0]}}]}))
    _patches(i / "p01", [np.eye(16), np.zeros((16, 16))])
    _patches(i / "p012", [np.eye(16) * 2, np.eye(16)])
    write_synthetic_dataset(i / "ds", n=8, patch_size=16)
    shutil.copytree(i / "ds", i / "ds_trunc")
    raw = (i / "ds_trunc" / "images.npy").read_bytes()
    (i / "ds_trunc" / "images.npy").write_bytes(raw[: len(raw) // 2])
    (i / "bad.yaml").write_text("epochs: 3\nbands: [bgrn\nlr: 0.1\n")
    (i / "study.yaml").write_text("datasets: {a: 1\n")
    (i / "file.txt").write_text("a file, not a folder\n")
    return i


UNDER_FILE = "{i}/file.txt/out"  # an output "inside" a regular file: never writable

CASES = [
    # synth
    Case("synth-size", ["synth", "-o", "{o}/scene", "--size", "100"], "--size"),
    Case("synth-fraction", ["synth", "-o", "{o}/scene", "--fraction", "0.9"], "--fraction"),
    Case("synth-unwritable", ["synth", "-o", UNDER_FILE, "--size", "256"], "cannot write"),
    # pansharpen
    Case("pansharpen-pan-3-bands", ["pansharpen", "{i}/img.tif", "{i}/pair/ms.tif",
                                    "-o", "{o}/f.tif"], "must have one"),
    Case("pansharpen-truncated-ms", ["pansharpen", "{i}/pan1024.tif", "{i}/ms_trunc.tif",
                                     "-o", "{o}/f.tif"], "truncated"),
    Case("pansharpen-missing-pan", ["pansharpen", "{i}/nope.tif", "{i}/pair/ms.tif",
                                    "-o", "{o}/f.tif"], "not found"),
    Case("pansharpen-weights", ["pansharpen", "{i}/pair/pan.tif", "{i}/pair/ms.tif",
                                "-o", "{o}/f.tif", "--method", "brovey", "--weights", "1,,2"],
         "--weights"),
    Case("pansharpen-unwritable", ["pansharpen", "{i}/pair/pan.tif", "{i}/pair/ms.tif",
                                   "-o", UNDER_FILE], "cannot write"),
    Case("pansharpen-nodata-text", ["pansharpen", "{i}/pair/pan.tif", "{i}/pair/ms.tif",
                                    "-o", "{o}/f.tif", "--nodata", "none"], "--nodata"),
    Case("pansharpen-nodata-range", ["pansharpen", "{i}/pair/pan.tif", "{i}/pair/ms.tif",
                                     "-o", "{o}/f.tif", "--nodata", "-1"], "cannot occur"),
    Case("pansharpen-crs", ["pansharpen", "{i}/pair/pan.tif", "{i}/ms_other_crs.tif",
                            "-o", "{o}/f.tif"], "EPSG"),
    # pansharpen-assess
    Case("assess-json-unwritable", ["pansharpen-assess", "{i}/pair/pan.tif", "{i}/pair/ms.tif",
                                    "--json", UNDER_FILE], "cannot write", quiet_stdout=True),
    Case("assess-missing-ms", ["pansharpen-assess", "{i}/pair/pan.tif", "{i}/nope.tif"],
         "not found"),
    # rasterize
    Case("rasterize-missing", ["rasterize", "{i}/nope.geojson", "--like", "{i}/img.tif",
                               "-o", "{o}/l.tif"], "not found"),
    Case("rasterize-points", ["rasterize", "{i}/points.geojson", "--like", "{i}/img.tif",
                              "-o", "{o}/l.tif"], "non-polygon"),
    Case("rasterize-unwritable", ["rasterize", "{i}/points.geojson", "--like", "{i}/img.tif",
                                  "-o", UNDER_FILE], "cannot write"),
    # prepare
    Case("prepare-class-labels", ["prepare", "{i}/img.tif", "{i}/classes.tif", "-o", "{o}/ds",
                                  "--patch-size", "16"], "--landslide-values"),
    Case("prepare-landslide-values-text", ["prepare", "{i}/img.tif", "{i}/classes.tif", "-o",
                                           "{o}/ds", "--landslide-values", "one"],
         "--landslide-values"),
    Case("prepare-unnamed-bands", ["prepare", "{i}/anon.tif", "{i}/labels.tif", "-o",
                                   "{o}/ds", "--patch-size", "16"], "NAME1,NAME2,NAME3,NAME4"),
    Case("prepare-band-count", ["prepare", "{i}/img.tif", "{i}/labels.tif", "-o", "{o}/ds",
                                "--band-names", "red,green"], "gives 2 name"),
    Case("prepare-off-grid", ["prepare", "{i}/img.tif", "{i}/offgrid.tif", "-o", "{o}/ds"],
         "--like"),
    Case("prepare-nodata-nan-int", ["prepare", "{i}/img.tif", "{i}/labels.tif", "-o",
                                    "{o}/ds", "--nodata", "nan"], "cannot occur"),
    Case("prepare-unwritable", ["prepare", "{i}/img.tif", "{i}/labels.tif", "-o", UNDER_FILE],
         "cannot write"),
    Case("prepare-fractions", ["prepare", "{i}/img.tif", "{i}/labels.tif", "-o", "{o}/ds",
                               "--fractions", "a,b"], "--fractions"),
    Case("prepare-truncated", ["prepare", "{i}/trunc.tif", "{i}/biglabels.tif", "-o",
                               "{o}/ds", "--patch-size", "64"], "truncated"),
    # import-patches
    Case("import-missing", ["import-patches", "{i}/nope", "-o", "{o}/ds"], "not found"),
    Case("import-as-split", ["import-patches", "{i}/p01", "-o", "{o}/ds", "--as-split",
                             "holdout"], "--as-split"),
    Case("import-threshold-on-01", ["import-patches", "{i}/p01", "-o", "{o}/ds",
                                    "--mask-mode", "threshold"], "--mask-mode labels"),
    Case("import-class-masks", ["import-patches", "{i}/p012", "-o", "{o}/ds"],
         "--landslide-values"),
    Case("import-values-and-mode", ["import-patches", "{i}/p01", "-o", "{o}/ds",
                                    "--mask-mode", "labels", "--landslide-values", "1"],
         "not both"),
    Case("import-unwritable", ["import-patches", "{i}/p01", "-o", UNDER_FILE], "cannot write"),
    # train
    Case("train-gpu", ["train", "{i}/ds", "-o", "{o}/run", "--accelerator", "gpu",
                       "--epochs", "1"], "--accelerator cpu",
         marks=[pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")]),
    Case("train-bad-yaml", ["train", "-c", "{i}/bad.yaml", "-o", "{o}/run"], "bad.yaml:"),
    Case("train-missing-dataset", ["train", "{i}/nope", "-o", "{o}/run", "--epochs", "1"],
         "nope"),
    Case("train-unwritable", ["train", "{i}/ds", "-o", UNDER_FILE, "--epochs", "1"],
         "cannot write"),
    Case("train-resume-nothing", ["train", "{i}/ds", "-o", "{o}/run", "--resume"],
         "nothing to resume"),
    # evaluate
    Case("evaluate-cuda", ["evaluate", "{i}/run", "{i}/ds", "-o", "{o}/ev", "--device",
                           "cuda"], "CUDA", marks=[pytest.mark.skipif(not NO_CUDA,
                                                                      reason="has CUDA")]),
    Case("evaluate-strict-drift", ["evaluate", "{i}/narrow", "{i}/ds", "-o", "{o}/ev",
                                   "--strict"], "far outside"),
    Case("evaluate-threshold", ["evaluate", "{i}/run", "{i}/ds", "-o", "{o}/ev", "-t", "2"],
         "threshold"),
    Case("evaluate-unwritable", ["evaluate", "{i}/run", "{i}/ds", "-o", UNDER_FILE],
         "cannot write"),
    Case("evaluate-truncated-dataset", ["evaluate", "{i}/run", "{i}/ds_trunc", "-o", "{o}/ev"],
         "truncated"),
    Case("train-truncated-dataset", ["train", "{i}/ds_trunc", "-o", "{o}/run", "--epochs",
                                     "1"], "images.npy"),
    Case("evaluate-no-bundle", ["evaluate", "{i}", "{i}/ds", "-o", "{o}/ev"], "no model bundle"),
    # predict
    Case("predict-strict-drift", ["predict", "{i}/run", "{i}/far.tif", "-o", "{o}/p",
                                  "--strict"], "blue median"),
    Case("predict-cuda", ["predict", "{i}/run", "{i}/img.tif", "-o", "{o}/p", "--device",
                          "cuda"], "CUDA", marks=[pytest.mark.skipif(not NO_CUDA,
                                                                     reason="has CUDA")]),
    Case("predict-unwritable", ["predict", "{i}/run", "{i}/img.tif", "-o", UNDER_FILE],
         "cannot write"),
    Case("predict-nodata-text", ["predict", "{i}/run", "{i}/img.tif", "-o", "{o}/p",
                                 "--nodata", "x"], "--nodata"),
    Case("predict-unnamed", ["predict", "{i}/run", "{i}/anon.tif", "-o", "{o}/p"],
         "NAME1,NAME2,NAME3,NAME4"),
    Case("predict-truncated", ["predict", "{i}/run", "{i}/trunc.tif", "-o", "{o}/p"],
         "truncated"),
    Case("predict-dtype", ["predict", "{i}/run", "{i}/img.tif", "-o", "{o}/p",
                           "--probability-dtype", "int16"], "--probability-dtype"),
    Case("predict-band-names", ["predict", "{i}/run", "{i}/img.tif", "-o", "{o}/p",
                                "--band-names", "a,b"], "gives 2 name"),
    # ensemble
    Case("ensemble-one-member", ["ensemble", "{i}/run", "-o", "{o}/e"], "at least 2 members"),
    Case("ensemble-no-bundle", ["ensemble", "{i}/run", "{i}", "-o", "{o}/e"], "no model bundle"),
    Case("ensemble-bands", ["ensemble", "{i}/run", "{i}/grn", "-o", "{o}/e"],
         "must read the same bands"),
    Case("ensemble-profile", ["ensemble", "{i}/run", "{i}/narrow", "-o", "{o}/e"],
         "training input profile"),
    Case("ensemble-unwritable", ["ensemble", "{i}/run", "{i}/narrow", "-o", UNDER_FILE],
         "cannot write"),
    # export, study, demo
    Case("export-no-bundle", ["export", "{i}/nope", "-o", "{o}/m.onnx"], "no model bundle"),
    Case("study-bad-yaml", ["study", "{i}/study.yaml", "-o", "{o}/st"], "study.yaml:"),
    Case("demo-unwritable", ["demo", "-o", UNDER_FILE], "cannot write"),
    # info, report
    Case("info-missing", ["info", "{i}/nope"], "not found"),
    Case("report-not-prediction", ["report", "{i}"], "not a prediction folder"),
]


def test_the_corpus_is_large_and_covers_every_verb() -> None:
    from landslip.cli.app import COMMANDS

    assert len(CASES) >= 40
    assert {c.args[0] for c in CASES} == set(COMMANDS)
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_bad_input_is_one_error_line(case: Case, inputs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [a.format(i=inputs, o=out) for a in case.args]
    rc = main(["-q", *args])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    assert case.expect in lines[0]
    assert "Traceback" not in captured.err + captured.out
    if case.quiet_stdout:
        assert captured.out == ""
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not left, f"left behind: {left}"
    assert not list(inputs.rglob("*.partial-*")), "a temporary file was left in the inputs"


def test_verbose_shows_the_traceback(inputs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-v", "predict", str(inputs / "run"), str(inputs / "img.tif"), "-o",
               str(inputs / "file.txt" / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("Error:")


def test_no_run_folder_is_left_by_a_refused_accelerator(inputs: Path, tmp_path: Path) -> None:
    if not NO_CUDA:
        pytest.skip("this machine has CUDA")
    assert main(["-q", "train", str(inputs / "ds"), "-o", str(tmp_path / "run"),
                 "--accelerator", "cuda", "--epochs", "1"]) == 2
    assert not (tmp_path / "run").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
