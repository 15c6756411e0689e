"""evaluate(): a model scored on data it was not trained on, checked against saved predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from landslip.dataset.folder import DatasetFolder
from landslip.encoding import IGNORE
from landslip.errors import BandError, DatasetError, InputError, ModelError
from landslip.evaluation.evaluate import EvaluateOptions, evaluate, parse_threshold
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Dataset A (training), dataset B (other seed, never seen) and a run trained on A."""
    root = tmp_path_factory.mktemp("evaluate")
    a = write_synthetic_dataset(root / "a", n=16, patch_size=32, seed=0)
    b = write_synthetic_dataset(root / "b", n=16, patch_size=32, seed=1)
    rgb = write_synthetic_dataset(root / "rgb", n=8, patch_size=32, seed=2,
                                  band_names=("red", "green", "blue"))
    torch.manual_seed(0)
    model = create_model("unet", 3, width=4, depth=2)
    mean, std = a.band_stats("bg-ndvi")
    x_list, y_list = [], []
    from landslip.spectral.bands import normalize, resolve_band_set

    bs = resolve_band_set("bg-ndvi")
    idx = a.split_indices("train")
    bands, valid = bs.compute(np.asarray(a.images[idx]), a.band_names, a.nodata)
    x_list = torch.from_numpy(normalize(bands, mean, std, valid))
    y_list = torch.from_numpy(np.asarray(a.labels[idx]).astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(40):  # a few full-batch steps: enough for the easy synthetic discs
        opt.zero_grad()
        logits = model(x_list)[:, 0]
        keep = y_list != IGNORE
        prob, target = torch.sigmoid(logits[keep]), y_list[keep]
        dice = (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], target)
        loss = loss + 1 - dice
        loss.backward()
        opt.step()
    model.eval()
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                      band_set="bg-ndvi", band_names=["blue", "green", "ndvi"], mean=mean,
                      std=std, patch_size=32, dataset_fingerprint=a.fingerprint)
    save_bundle(root / "run" / "bundle", model, meta)
    return {"a": a.path, "b": b.path, "rgb": rgb.path, "run": root / "run", "root": root}


def _independent_probabilities(run: Path, ds: DatasetFolder, ids: np.ndarray,
                               tta: bool = False) -> np.ndarray:
    """Recompute probabilities without landslip's band code: NDVI and z-scores by hand; with
    ``tta`` the mean of the 8 flipped/rotated passes, each turned back (torch's rot90/flip)."""
    from safetensors.torch import load_file

    meta = json.loads((run / "bundle" / "model.json").read_text())
    model = create_model("unet", 3, **meta["model_params"])
    model.load_state_dict(load_file(str(run / "bundle" / "model.safetensors")))
    model.eval()
    raw = np.asarray(ds.images[ids]).astype(np.float64)
    names = list(ds.band_names)
    blue, green = raw[:, names.index("blue")], raw[:, names.index("green")]
    red, nir = raw[:, names.index("red")], raw[:, names.index("nir")]
    ndvi = np.where(nir + red != 0, (nir - red) / np.where(nir + red != 0, nir + red, 1), 0)
    x = np.stack([blue, green, ndvi], axis=1)
    m = np.asarray(meta["mean"])[None, :, None, None]
    s = np.asarray(meta["std"])[None, :, None, None]
    x = (x - m) / s
    nodata = (raw == ds.nodata).any(axis=1) if ds.nodata is not None else np.zeros(
        x[:, 0].shape, dtype=bool)
    x = np.where(nodata[:, None], 0.0, x)
    t = torch.from_numpy(x.astype(np.float32))
    views = [(k, f) for k in range(4) for f in (False, True)] if tta else [(0, False)]
    out = torch.zeros(t[:, 0].shape)
    with torch.no_grad():
        for k, flip in views:
            v = torch.rot90(t, k, dims=(2, 3))
            v = torch.flip(v, dims=(3,)) if flip else v
            prob = torch.sigmoid(model(v)[:, 0])
            prob = torch.flip(prob, dims=(2,)) if flip else prob
            out += torch.rot90(prob, -k, dims=(1, 2))
    return (out / len(views)).numpy()


def test_unseen_data_numbers_match_independent_computation(trained: dict[str, Path],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "eval"
    res = evaluate(trained["run"], trained["b"], EvaluateOptions(split="test", threshold=0.5,
                                                                 out_dir=out, figure_patches=2))
    ds = DatasetFolder(trained["b"])
    ids = np.load(out / "patch_ids.npy")
    assert np.array_equal(ids, ds.split_indices("test"))
    masks = np.load(out / "masks.npy")
    probs = np.load(out / "probabilities.npy")
    labels = np.asarray(ds.labels[ids])
    # Independent confusion from the saved masks: np.bincount over (truth, prediction) codes.
    keep = (labels != IGNORE) & (masks != IGNORE)
    codes = labels[keep].astype(np.int64) * 2 + masks[keep]
    tn, fp, fn, tp = np.bincount(codes, minlength=4).tolist()
    assert (tp, fp, fn, tn) == (res.confusion.tp, res.confusion.fp, res.confusion.fn,
                                res.confusion.tn)
    report = json.loads((out / "report.json").read_text())
    assert report["pixel"]["precision"] == pytest.approx(tp / (tp + fp))
    assert report["pixel"]["recall"] == pytest.approx(tp / (tp + fn))
    assert report["pixel"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert report["dataset"]["trained_on_this_dataset"] is False
    # The model is not trivial on unseen data (it learned the discs).
    assert report["pixel"]["f1"] > 0.5
    # The saved probabilities agree with a forward pass computed by hand.
    p_ind = _independent_probabilities(trained["run"], ds, ids)
    # uint8 codes round(p * 254) as in probability.tif; 255 exactly where not evaluated.
    np.testing.assert_array_equal(probs == 255, masks == IGNORE)
    scored = probs != 255
    assert np.abs(probs[scored].astype(np.int16)
                  - np.rint(p_ind[scored] * 254).astype(np.int16)).max() <= 1
    decided = keep & (np.abs(p_ind - 0.5) > 1e-4)
    assert np.array_equal(masks[decided], (p_ind[decided] >= 0.5).astype(np.uint8))
    # Figures and the patch table exist.
    assert (out / "pr_curve.png").stat().st_size > 0
    assert (out / "area_frequency.png").stat().st_size > 0
    assert len(list((out / "patches").glob("*.png"))) == 2
    rows = (out / "patches.csv").read_text().splitlines()
    assert len(rows) == ids.size + 1


def test_tuned_threshold_comes_from_validation(trained: dict[str, Path], tmp_path: Path) -> None:
    res = evaluate(trained["run"], trained["b"], EvaluateOptions(threshold="tuned",
                                                                 out_dir=tmp_path / "t",
                                                                 figure_patches=0,
                                                                 save_predictions=False))
    thr = res.report["threshold"]
    assert thr["mode"] == "tuned" and thr["tuned_on"] == "val"
    # Independently: best F1 on the validation split at grid thresholds.
    val = evaluate(trained["run"], trained["b"], EvaluateOptions(split="val", threshold=0.5,
                                                                 out_dir=tmp_path / "v",
                                                                 figure_patches=0,
                                                                 save_predictions=False))
    f1 = val.curve.f1
    assert val.curve.f1[val.curve.index_of(thr["value"])] == pytest.approx(f1.max())
    assert res.threshold == thr["value"]
    # Test-split metrics at the tuned threshold equal the sweep's at that threshold.
    assert res.curve.confusion_at(res.threshold) == res.confusion
    assert not (tmp_path / "t" / "masks.npy").exists()
    assert set(res.report["pixel_at"]) == {"0.5 (paper)", "tuned on val"}


def test_tuning_on_the_evaluated_split_is_refused(trained: dict[str, Path],
                                                  tmp_path: Path) -> None:
    for split in ("val", "validation"):
        with pytest.raises(InputError, match="would tune on the val split it scores"):
            evaluate(trained["run"], trained["b"], EvaluateOptions(
                split=split, threshold="tuned", out_dir=tmp_path / "x"))
    with pytest.raises(InputError, match="tune on the test split"):
        evaluate(trained["run"], trained["b"], EvaluateOptions(
            threshold="tuned", tune_split="test", out_dir=tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_default_device_is_select_device(trained: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Like predict and the study, evaluate runs on CUDA when present (select_device)."""
    import landslip.evaluation.evaluate as ev

    asked: list[object] = []

    def spy(device: object = None) -> torch.device:
        asked.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(ev, "select_device", spy)
    evaluate(trained["run"], trained["b"], EvaluateOptions(
        out_dir=tmp_path / "e", figure_patches=0, save_predictions=False))
    assert asked and asked[0] is None


def test_evaluate_and_predict_agree_on_a_patch(trained: dict[str, Path], tmp_path: Path) -> None:
    """A test patch written as a GeoTIFF and mapped by predict gets the same uint8 probability
    codes and the same mask as evaluate saves for it (one encoding, one decision rule)."""
    from rasterio.crs import CRS

    from landslip.grid import Grid
    from landslip.inference.predict import predict_scene
    from landslip.io.raster import read_raster, write_raster

    ds = DatasetFolder(trained["b"])
    res = evaluate(trained["run"], ds, EvaluateOptions(
        threshold=0.45, out_dir=tmp_path / "e", figure_patches=0, batch_size=1))
    ids = np.load(tmp_path / "e" / "patch_ids.npy")
    codes, masks = np.load(tmp_path / "e" / "probabilities.npy"), np.load(tmp_path / "e" /
                                                                          "masks.npy")
    row = int(np.argmax((masks == 1).sum(axis=(1, 2))))  # a patch with landslide pixels
    p = ds.patch_size
    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5, p, p)
    write_raster(tmp_path / "patch.tif", np.asarray(ds.images[int(ids[row])]), grid,
                 nodata=ds.nodata, descriptions=list(ds.band_names))
    r = predict_scene(trained["run"], tmp_path / "patch.tif", tmp_path / "pred", window=p,
                      overlap=0, threshold=res.threshold, polygons=False)
    tif_codes, tif_mask = read_raster(r.probability)[0][0], read_raster(r.mask)[0][0]
    scored = masks[row] != IGNORE
    assert scored.sum() > p * p // 2 and (masks[row][scored] == 1).any()
    np.testing.assert_array_equal(tif_codes[scored], codes[row][scored])
    np.testing.assert_array_equal(tif_mask[scored], masks[row][scored])


def test_default_output_folder_in_run(trained: dict[str, Path]) -> None:
    res = evaluate(trained["run"], trained["a"], EvaluateOptions(split="val", figure_patches=0,
                                                                 save_predictions=False))
    assert res.out_dir == trained["run"] / "evaluation" / "a" / "val"
    assert res.report["dataset"]["trained_on_this_dataset"] is True
    assert (res.out_dir / "report.md").read_text().count("landslide class") >= 1


def test_bad_inputs(trained: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        evaluate(trained["run"], tmp_path / "missing", EvaluateOptions(out_dir=tmp_path / "x"))
    with pytest.raises(DatasetError, match="unknown split"):
        evaluate(trained["run"], trained["b"], EvaluateOptions(split="testing", out_dir=tmp_path /
                                                               "x"))
    with pytest.raises(BandError, match="nir"):
        evaluate(trained["run"], trained["rgb"], EvaluateOptions(out_dir=tmp_path / "x"))
    with pytest.raises(ModelError):
        evaluate(tmp_path, trained["b"], EvaluateOptions(out_dir=tmp_path / "x"))
    with pytest.raises(InputError):
        parse_threshold("high")
    with pytest.raises(InputError):
        parse_threshold(1.0)
    assert parse_threshold("0.3") == 0.3
    assert parse_threshold("Tuned") == "tuned"


def test_patch_size_not_a_multiple_is_padded(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "p20", n=6, patch_size=20, seed=5)
    mean, std = ds.band_stats("bgr")
    torch.manual_seed(1)
    model = create_model("unet", 3, width=4, depth=3)  # needs multiples of 8: 20 -> 24
    save_bundle(tmp_path / "run" / "bundle", model,
                BundleMeta(model="unet", model_params={"width": 4, "depth": 3}, in_channels=3,
                           band_set="bgr", band_names=["blue", "green", "red"], mean=mean,
                           std=std))
    res = evaluate(tmp_path / "run", ds, EvaluateOptions(out_dir=tmp_path / "e", figure_patches=0))
    probs = np.load(tmp_path / "e" / "probabilities.npy")
    assert probs.shape == (ds.split_indices("test").size, 20, 20)
    assert res.confusion.tp + res.confusion.fp + res.confusion.fn + res.confusion.tn > 0


@pytest.mark.realdata
def test_real_rgb_patches_without_georeferencing(shared_data: Path, tmp_path: Path) -> None:
    """Landslide4Sense RGB patches (no NIR, no CRS): object areas in pixels, RGB panel only."""
    import shutil

    from landslip.dataset.imports import import_patches

    src = shared_data / "l4s-rgb"
    for split, n in (("train", 10), ("test", 4)):
        images = sorted((src / split / "images").glob("image_*.png"))[:n]
        for sub in ("images", "masks"):
            (tmp_path / "src" / split / sub).mkdir(parents=True, exist_ok=True)
        for img in images:  # a few pairs in tmp_path, with the source layout
            mask = src / split / "masks" / img.name.replace("image_", "mask_")
            shutil.copy(img, tmp_path / "src" / split / "images" / img.name)
            shutil.copy(mask, tmp_path / "src" / split / "masks" / mask.name)
    import_patches(tmp_path / "src", tmp_path / "ds", val_fraction=0.2)
    ds = DatasetFolder(tmp_path / "ds")
    mean, std = ds.band_stats("rgb")
    torch.manual_seed(0)
    save_bundle(tmp_path / "run" / "bundle", create_model("unet", 3, width=4, depth=2),
                BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                           band_set="rgb", band_names=["red", "green", "blue"], mean=mean,
                           std=std))
    out = tmp_path / "e"
    res = evaluate(tmp_path / "run", ds, EvaluateOptions(out_dir=out, figure_patches=1))
    assert res.report["objects"]["unit"] == "px"
    assert res.report["dataset"]["pixel_area_m2"] is None
    labels = np.asarray(ds.labels[np.load(out / "patch_ids.npy")])
    masks = np.load(out / "masks.npy")
    keep = (labels != IGNORE) & (masks != IGNORE)
    tp = int(np.count_nonzero((labels[keep] == 1) & (masks[keep] == 1)))
    assert tp == res.confusion.tp
    assert res.confusion.tp + res.confusion.fn > 0  # real landslides in the 4 test patches


def test_onnx_and_torch_engines_give_the_same_evaluation(trained: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """--engine onnx and --engine torch: probability codes within +-1 (rounding of values that
    differ by float error), the same metrics within 1e-4, and report.json says how each was
    predicted."""
    res = {e: evaluate(trained["run"], trained["b"], EvaluateOptions(
        threshold=0.5, out_dir=tmp_path / e, figure_patches=0, engine=e, threads=1))
        for e in ("torch", "onnx")}
    codes = {e: np.load(tmp_path / e / "probabilities.npy").astype(np.int16) for e in res}
    assert codes["onnx"].shape == codes["torch"].shape
    np.testing.assert_array_equal(codes["onnx"] == 255, codes["torch"] == 255)
    assert np.abs(codes["onnx"] - codes["torch"]).max() <= 1
    for key in ("precision", "recall", "f1", "iou"):
        assert res["onnx"].report["pixel"][key] == pytest.approx(
            res["torch"].report["pixel"][key], abs=1e-4)
    assert res["onnx"].report["average_precision"] == pytest.approx(
        res["torch"].report["average_precision"], abs=1e-4)
    for e, r in res.items():
        pred = json.loads((tmp_path / e / "report.json").read_text())["prediction"]
        assert (pred["engine"], pred["threads"], pred["device"]) == (e, 1, "cpu")
        assert pred["window"] == [32, 32] and pred["batch_size"] == 16
        assert r.report["prediction"] == pred


def test_bad_engine_options_are_refused(trained: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for opts, message in (({"threads": 0}, "--threads must be at least 1"),
                          ({"engine": "fast"}, "--engine must be one of auto, torch, onnx")):
        with pytest.raises(InputError, match=message):
            evaluate(trained["run"], trained["b"], EvaluateOptions(
                out_dir=tmp_path / "x", **opts))  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ModelError, match="onnxruntime package is not installed"):
        evaluate(trained["run"], trained["b"], EvaluateOptions(out_dir=tmp_path / "x",
                                                               engine="onnx"))
    assert not (tmp_path / "x").exists()
    before = torch.get_num_threads()
    res = evaluate(trained["run"], trained["b"], EvaluateOptions(
        out_dir=tmp_path / "auto", figure_patches=0, save_predictions=False,
        threads=before + 1))
    assert res.report["prediction"]["engine"] == "torch"  # auto falls back without onnxruntime
    assert torch.get_num_threads() == before  # the engine restored torch's thread count


def test_tta_is_the_mean_of_eight_views_and_keeps_nodata(trained: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """--tta: saved probabilities are the mean of the 8 dihedral passes computed by hand; the
    pixels not evaluated (nodata margins, 255) are those of the run without TTA; the report
    says TTA was used, for the tuning split too."""
    ds = DatasetFolder(trained["b"])
    runs = {}
    for tta in (False, True):
        out = tmp_path / f"tta-{tta}"
        runs[tta] = evaluate(trained["run"], ds, EvaluateOptions(
            threshold="tuned", out_dir=out, figure_patches=1, tta=tta, engine="torch"))
    ids = np.load(tmp_path / "tta-True" / "patch_ids.npy")
    codes = {t: np.load(tmp_path / f"tta-{t}" / "probabilities.npy") for t in (False, True)}
    np.testing.assert_array_equal(codes[True] == 255, codes[False] == 255)
    assert (codes[True] == 255).any()  # the dataset has nodata margins
    scored = codes[True] != 255
    p_tta = _independent_probabilities(trained["run"], ds, ids, tta=True)
    p_plain = _independent_probabilities(trained["run"], ds, ids)
    diff = np.abs(codes[True][scored].astype(np.int16) - np.rint(p_tta[scored] * 254))
    assert diff.max() <= 1
    assert np.abs(p_tta - p_plain).max() > 0.01  # the views really differ for this model
    report = runs[True].report
    assert report["prediction"]["tta"] is True and runs[False].report["prediction"]["tta"] is False
    assert "Test-time augmentation" in (tmp_path / "tta-True" / "report.md").read_text()
