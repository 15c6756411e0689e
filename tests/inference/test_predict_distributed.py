"""Prediction over several scenes and strips on a local dask.distributed cluster.

The cluster runs must equal the single-process run exactly (same windows, engine and threads,
same float32 sums): identical probability codes and masks, the same polygons.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest

from helpers.inputs import make_bundle, write_scene
from landslip.inference.distributed import (
    ClusterOptions,
    StripTask,
    expand_images,
    predict_many,
    scene_names,
    strip_tasks,
)
from landslip.inference.predict import PredictOptions, predict_scene
from landslip.inference.sliding import make_plan
from landslip.io.raster import read_raster

distributed = pytest.importorskip("distributed")

OPTS = PredictOptions(window=128, overlap=32, threads=1, engine="torch")


def _blocky(path: Path, h: int, w: int, seed: int) -> Path:
    """A scene of 16 x 16 pixel blocks (polygons that cross strip borders), some nodata."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(100, 900, (4, h // 16, w // 16))
    data = np.kron(coarse, np.ones((1, 16, 16))).astype(np.uint16)
    data[:, :8, :40] = 0
    return write_scene(path, data=data)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    return {"bundle": make_bundle(root / "bundle", std=150.0),
            "a": _blocky(root / "a.tif", 512, 256, 1), "b": _blocky(root / "b.tif", 256, 384, 2),
            "root": root}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One local cluster of 2 worker processes for the module (starting one costs seconds)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def use_client(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make predict_many use the module's cluster instead of starting its own."""
    from contextlib import contextmanager

    import landslip.inference.distributed as mod

    @contextmanager
    def shared(_: ClusterOptions) -> Iterator[Any]:
        yield client

    monkeypatch.setattr(mod, "_client", shared)
    return client


def _single(files: dict[str, Path], key: str, out: Path) -> Path:
    predict_scene(files["bundle"], files[key], out, window=128, overlap=32, threads=1,
                  engine="torch")
    return out


def _same(single: Path, multi: Path) -> None:
    for name in ("probability.tif", "landslides.tif"):
        a, _ = read_raster(single / name)
        b, _ = read_raster(multi / name)
        np.testing.assert_array_equal(a, b)
    pa = gpd.read_file(single / "landslides.gpkg")
    pb = gpd.read_file(multi / "landslides.gpkg")
    assert len(pa) == len(pb) > 0
    np.testing.assert_allclose(sorted(pa["area_m2"]), sorted(pb["area_m2"]))


def test_strips_follow_the_plan() -> None:
    plan = make_plan(512, 256, 128, 32, 32)
    base = StripTask("b", "i", None, (512, 256, 128, 32, 32), 0, 0, 0, 0, 1,  # type: ignore[arg-type]
                     False, "torch", None, 1, "p")
    tasks = strip_tasks(plan, 2, base)
    assert len(tasks) == 3
    assert [t.row_lo for t in tasks] == [0, plan.row_starts[2], plan.row_starts[4]]
    assert tasks[-1].row_hi == 512
    assert all(a.row_hi == b.row_lo for a, b in itertools.pairwise(tasks))
    assert tasks[1].first_window_row == 1  # the window row above reaches into its rows


def test_two_scenes_and_strips_equal_single_process(files: dict[str, Path], tmp_path: Path,
                                                    use_client: Any) -> None:
    out = tmp_path / "many"
    summaries = predict_many(files["bundle"], [files["a"], files["b"]], out, OPTS,
                             ClusterOptions(workers=2, strip_rows=2))
    assert [s.status for s in summaries] == ["done", "done"]
    assert summaries[0].parts == 3  # 512 rows, 5 window rows of 128 -> 3 strips
    for key in ("a", "b"):
        _same(_single(files, key, tmp_path / f"single-{key}"), out / key)
    doc = json.loads((out / "summary.json").read_text())
    assert doc["done"] == 2 and doc["failed"] == 0
    assert doc["per_scene"][0]["landslide_area_m2"] == pytest.approx(
        summaries[0].landslide_pixels * 1.5 * 1.5)
    # A rerun with the same OUT skips every finished part (the manifest's checksums match) ...
    again = predict_many(files["bundle"], [files["a"], files["b"]], out, OPTS,
                         ClusterOptions(workers=2, strip_rows=2))
    assert [s.parts_skipped for s in again] == [s.parts for s in summaries] == [3, 2]
    assert [s.status for s in again] == ["done", "done"]
    (out / "a" / "probability.tif").unlink(missing_ok=True)
    assert predict_many(files["bundle"], [files["a"]], out, OPTS,
                        ClusterOptions(workers=2, strip_rows=2))[0].status == "done"
    _same(tmp_path / "single-a", out / "a")
    # ... but not a part whose file changed.
    part = out / "parts" / "a" / "strip-0001.npy"
    part.write_bytes(part.read_bytes()[:-4] + b"\0\0\0\0")
    third = predict_many(files["bundle"], [files["a"]], out, OPTS,
                         ClusterOptions(workers=2, strip_rows=2))
    assert third[0].parts_skipped == 2 and third[0].status == "done"
    _same(tmp_path / "single-a", out / "a")


def test_workers_load_their_own_copy_of_the_bundle(files: dict[str, Path], tmp_path: Path,
                                                   use_client: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle goes to the workers as bytes: the driver's copy can vanish after planning."""
    import shutil

    import landslip.inference.distributed as mod

    bundle = tmp_path / "gone"
    shutil.copytree(files["bundle"], bundle)
    run_cluster = mod._run_cluster

    def without_bundle(*args: Any) -> None:
        shutil.rmtree(bundle)  # after the driver read it, before any worker runs
        run_cluster(*args)

    monkeypatch.setattr(mod, "_run_cluster", without_bundle)
    out = tmp_path / "o"
    summaries = predict_many(bundle, [files["b"]], out, OPTS, ClusterOptions(workers=2,
                                                                              strip_rows=1))
    assert [s.status for s in summaries] == ["done"], summaries[0].error
    assert not bundle.exists()
    _same(_single(files, "b", tmp_path / "single"), out / "b")
    sha = mod.BundleFiles.read(files["bundle"]).sha256
    cached = use_client.run(lambda dask_worker: sorted(
        p.name for p in (Path(dask_worker.local_directory) / "landslip-bundles").glob("*")))
    assert len(cached) == 2 and all(sha in names for names in cached.values())


def test_worker_bundle_dir_is_written_once(files: dict[str, Path], tmp_path: Path) -> None:
    from landslip.inference.distributed import BundleFiles, worker_bundle_dir

    sent = BundleFiles.read(files["bundle"])
    assert [n for n, _ in sent.files][:2] == ["model.json", "model.safetensors"]
    folder = worker_bundle_dir(sent, tmp_path)
    assert folder == tmp_path / sent.sha256
    stamp = (folder / "model.json").stat().st_mtime_ns
    assert worker_bundle_dir(sent, tmp_path) == folder
    assert (folder / "model.json").stat().st_mtime_ns == stamp
    assert BundleFiles.read(folder) == sent
    assert sorted(p.name for p in tmp_path.iterdir()) == [sent.sha256]  # no temporary left


def test_extra_dem_and_min_slope_on_the_cluster_equal_single_process(
        files: dict[str, Path], tmp_path: Path, use_client: Any) -> None:
    """A slope model fed from ``--extra dem=``; strips read the DEM with halos like one pass."""
    from helpers.inputs import utm_grid
    from landslip.io.raster import write_raster

    bundle = make_bundle(tmp_path / "slope-bundle", band_set="bgr,slope", std=150.0)
    grid = utm_grid(512, 256)
    big = grid.window_grid(grid.full_window().expand(4))
    x = np.arange(big.width, dtype=np.float64)[None, :] * 1.5
    y = np.arange(big.height, dtype=np.float64)[:, None] * 1.5
    dem = 0.004 * x**2 + 30 * np.sin(y / 60.0)  # slope from flat (west) to steep (east)
    write_raster(tmp_path / "dem.tif", dem[None].astype(np.float32), big,
                 descriptions=["dem"])
    extra = [f"dem={tmp_path / 'dem.tif'}"]
    single = tmp_path / "single"
    predict_scene(bundle, files["a"], single, window=128, overlap=32, threads=1,
                  engine="torch", extras=extra, min_slope=8.0)
    out = tmp_path / "many"
    summaries = predict_many(bundle, [files["a"]], out, replace(OPTS, min_slope=8.0),
                             ClusterOptions(workers=2, strip_rows=2), extras=extra)
    assert [s.status for s in summaries] == ["done"], summaries[0].error
    assert summaries[0].parts == 3
    _same(single, out / "a")
    pa, pb = gpd.read_file(single / "landslides.gpkg"), gpd.read_file(out / "a" / "landslides.gpkg")
    assert pa["mean_slope"].min() >= 8.0
    np.testing.assert_allclose(sorted(pa["mean_slope"]), sorted(pb["mean_slope"]))
    report = json.loads((out / "a" / "prediction.json").read_text())
    assert report["min_slope"] == 8.0 and report["extras"][0]["bands"] == ["dem"]
    # In-process, several images take the same extras.
    two = predict_many(bundle, [files["a"], files["a"]], tmp_path / "two",
                       replace(OPTS, min_slope=8.0), extras=extra)
    assert [s.status for s in two] == ["done", "done"]
    _same(single, tmp_path / "two" / "a-2")


def test_unreadable_scene_is_reported(files: dict[str, Path], tmp_path: Path,
                                      use_client: Any) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff")
    out = tmp_path / "o"
    summaries = predict_many(files["bundle"], [bad, files["b"]], out, OPTS,
                             ClusterOptions(workers=2))
    assert [s.status for s in summaries] == ["failed", "done"]
    assert summaries[0].error
    doc = json.loads((out / "summary.json").read_text())
    assert doc["failed"] == 1 and doc["per_scene"][0]["error"]
    assert (out / "b" / "landslides.gpkg").is_file()


def test_in_process_several_scenes(files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "missing.tif"
    summaries = predict_many(files["bundle"], [files["b"], bad], tmp_path / "o", OPTS)
    assert [s.status for s in summaries] == ["done", "failed"]
    _same(_single(files, "b", tmp_path / "single"), tmp_path / "o" / "b")


def test_expand_images(tmp_path: Path) -> None:
    for n in ("x1.tif", "x2.tif"):
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "list.txt").write_text("x2.tif\n# comment\n\nx1.tif\n")
    assert expand_images([str(tmp_path / "x*.tif")]) == [tmp_path / "x1.tif", tmp_path / "x2.tif"]
    assert expand_images([tmp_path / "list.txt"]) == [tmp_path / "x2.tif", tmp_path / "x1.tif"]
    assert scene_names([Path("a/s.tif"), Path("b/s.tif")]) == ["s", "s-2"]


def test_cli_several_images_and_workers(files: dict[str, Path], tmp_path: Path,
                                        use_client: Any, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    from landslip.cli.app import main

    args = ["-q", "predict", str(files["bundle"]), str(files["root"] / "[ab].tif"),
            "--window", "128", "--overlap", "32", "--threads", "1", "--engine", "torch"]
    assert main([*args, "-o", str(tmp_path / "o"), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "summary.json" in text and "done" in text
    assert (tmp_path / "o" / "a" / "probability.tif").is_file()
    assert (tmp_path / "o" / "b" / "landslides.gpkg").is_file()
    assert (tmp_path / "o" / "manifest.json").is_file()


@pytest.mark.slow
def test_worker_killed_mid_run_corrupts_nothing(files: dict[str, Path], tmp_path: Path,
                                               use_client: Any) -> None:
    """kill -9 of a worker process while strips run: the run completes, maps equal."""
    import os
    import signal
    import threading
    import time

    out = tmp_path / "k"
    result: list[Any] = []
    run = threading.Thread(target=lambda: result.extend(predict_many(
        files["bundle"], [files["a"]], out, OPTS, ClusterOptions(workers=2, strip_rows=1))))
    run.start()
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = use_client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    run.join(timeout=120)
    assert result and result[0].status == "done", result
    assert result[0].parts == 5
    assert set(use_client.run(os.getpid).values()) != set(pids.values())  # one was killed
    _same(_single(files, "a", tmp_path / "single"), out / "a")
    assert not list((out / "parts" / "a").glob(".*partial*"))
