"""Self-training: the pseudo-label rule, labels of the unlabeled split never read, a 1-round
run end to end (bundle and rounds document), unlabeled GeoTIFF images, bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_synthetic_dataset
from helpers.inputs import write_scene
from landslip.cli.app import main
from landslip.dataset.folder import open_dataset
from landslip.encoding import BACKGROUND, IGNORE, LANDSLIDE
from landslip.errors import ConfigError, InputError
from landslip.models.bundle import load_bundle
from landslip.training.config import load_config
from landslip.training.selftrain import (
    PseudoRule,
    pseudo_labels,
    read_rounds,
    self_train,
)

TINY = {"model": "unet", "width": 4, "depth": 2, "batch_size": 4, "epochs": 1,
        "max_train_batches": 1, "seed": 0}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "ds"
    write_synthetic_dataset(out, n=12, patch_size=32, seed=0)
    return out


def test_pseudo_label_rule_on_a_hand_made_probability_array() -> None:
    prob = np.array([[[0.95, 0.9, 0.89], [0.1, 0.11, 0.5], [0.0, 1.0, 0.3]],
                     [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.95]],
                     [[0.99, 0.99, 0.99], [0.99, 0.99, 0.99], [0.99, 0.99, 0.99]]],
                    dtype=np.float32)
    valid = np.ones(prob.shape, dtype=bool)
    valid[0, 2, 1] = False  # p = 1 but nodata: never labelled
    valid[2] = False  # no valid pixel: dropped
    labels, keep = pseudo_labels(prob, valid, PseudoRule(high=0.9, low=0.1, min_confident=0.5))
    L, B, I = LANDSLIDE, BACKGROUND, IGNORE  # noqa: E741
    # compared in float64 (apply_threshold): float32 0.9 is 0.89999998 < 0.9 and float32 0.1
    # is 0.10000000149 > 0.1, so neither is confident
    assert labels[0].tolist() == [[L, I, I], [I, I, I], [B, I, I]]
    assert labels[1].tolist() == [[I] * 3, [I] * 3, [I, I, L]]
    assert (labels[2] == IGNORE).all()
    # patch 0: 2 confident of 8 valid pixels; patch 1: 1 of 9; patch 2: no valid pixel
    assert keep.tolist() == [False, False, False]
    _, keep = pseudo_labels(prob, valid, PseudoRule(high=0.9, low=0.1, min_confident=0.25))
    assert keep.tolist() == [True, False, False]
    _, keep_all = pseudo_labels(prob, valid, PseudoRule(high=0.9, low=0.1, min_confident=0.0))
    assert keep_all.tolist() == [True, True, False]


def _config(dataset: Path, run: Path, **kw: object) -> object:
    return load_config(None, dataset=dataset, output=run, bands="bgr", **TINY, **kw)


def _pseudo_rows(run: Path, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    ds = open_dataset(run / f"round-{k}-data")
    rows = [i for i, r in enumerate(ds.index) if r.source == "pseudo"]
    return np.asarray(ds.images[rows]), np.asarray(ds.labels[rows])


def test_one_round_writes_bundle_and_rounds_document(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _config(dataset, run, unlabeled=dataset, unlabeled_split="test",
                  pseudo_threshold=0.6, pseudo_min_confident=0.0)
    seen: list[int] = []
    result = self_train(cfg, progress=False, on_round=lambda r: seen.append(r["round"]))  # type: ignore[arg-type]

    assert seen == [0, 1] and result.bundle_dir == run / "bundle"
    assert (run / "bundle" / "model.safetensors").is_file()
    doc = read_rounds(run)
    assert doc["unlabeled"] == {"path": str(dataset), "kind": "dataset", "split": "test",
                                "patches": 3}
    assert [r["round"] for r in doc["rounds"]] == [0, 1] and doc["final"]["round"] == 1
    assert "f1" in doc["rounds"][1]["val"]
    pseudo = doc["rounds"][1]["pseudo"]
    assert pseudo["patches_predicted"] == 3 and pseudo["patches_kept"] == 3
    # the student trained on labelled train + kept pseudo patches, validated on labelled val
    data = open_dataset(run / "round-1-data")
    labelled = open_dataset(dataset)
    assert data.counts == {"train": labelled.counts["train"] + 3, "val": labelled.counts["val"],
                           "test": 0}
    # normalised with the labelled dataset's statistics
    assert load_bundle(run).meta.mean == pytest.approx(labelled.band_stats("bgr")[0])
    meta = load_bundle(run).meta
    assert meta.training["config"]["dataset"] == str(run / "round-1-data")
    with pytest.raises(ConfigError, match="not empty"):
        self_train(cfg, progress=False)  # type: ignore[arg-type]


def test_labels_of_the_unlabeled_split_are_never_read(dataset: Path, tmp_path: Path) -> None:
    scrambled = tmp_path / "scrambled"
    shutil.copytree(dataset, scrambled)
    labels = np.load(scrambled / "labels.npy")
    test = open_dataset(dataset).split_indices("test")
    labels[test] = np.random.default_rng(5).choice([0, 1, 255], size=labels[test].shape)
    np.save(scrambled / "labels.npy", labels)

    out = []
    for name, source in (("a", dataset), ("b", scrambled)):
        cfg = _config(source, tmp_path / name, unlabeled=source, unlabeled_split="test",
                      pseudo_threshold=0.55, pseudo_min_confident=0.0)
        self_train(cfg, progress=False)  # type: ignore[arg-type]
        out.append(_pseudo_rows(tmp_path / name))
    assert out[0][1].size and np.array_equal(out[0][0], out[1][0])
    assert np.array_equal(out[0][1], out[1][1])


def test_unlabeled_geotiff_is_cut_like_prepare_with_bands_by_name(
    dataset: Path, tmp_path: Path
) -> None:
    # bands in another order, and a nodata corner: matched by name, never pseudo-labelled
    rng = np.random.default_rng(3)
    data = rng.uniform(100, 900, (4, 40, 40)).astype("uint16")
    data[:, :10, :10] = 0
    image = write_scene(tmp_path / "event.tif", data=data, names=["nir", "red", "green", "blue"])
    run = tmp_path / "run"
    cfg = _config(dataset, run, unlabeled=image, pseudo_threshold=0.51, pseudo_low=0.49,
                  pseudo_min_confident=0.0)
    self_train(cfg, progress=False)  # type: ignore[arg-type]
    unl = open_dataset(run / "unlabeled")
    assert unl.patch_size == 32 and len(unl) == 4 and (unl.labels[:] == IGNORE).all()
    images, labels = _pseudo_rows(run)
    first = [i for i, r in enumerate(open_dataset(run / "round-1-data").index)
             if r.source == "pseudo" and r.row_off == 0 and r.col_off == 0]
    assert first, "the top-left patch was kept"
    ds = open_dataset(run / "round-1-data")
    img = np.asarray(ds.images[first[0]])
    assert img.tolist() == data[::-1, :32, :32].tolist()  # blue, green, red, nir order
    assert (np.asarray(ds.labels[first[0]])[:10, :10] == IGNORE).all()
    assert (np.asarray(ds.labels[first[0]])[10:, 10:32] != IGNORE).any()
    # padding past the 40 px scene edge is not imagery: never pseudo-labelled
    edge = [i for i, r in enumerate(ds.index) if r.source == "pseudo" and r.col_off == 32]
    assert edge and all((np.asarray(ds.labels[i])[:, 8:] == IGNORE).all() for i in edge)
    assert images.shape[1] == 4 and labels.shape[0] >= 1


def test_bad_inputs_exit_2_with_one_line(dataset: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-q", "train", str(dataset), "--model", "unet", "--width", "4", "--depth", "2",
            "--epochs", "1", "--max-train-batches", "1", "--bands", "bgr"]
    assert main([*base, "-o", str(tmp_path / "r1"), "--unlabeled",
                 str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1
    rgb = write_scene(tmp_path / "rgb.tif", data=np.ones((4, 40, 40), "uint16"),
                      names=["blue", "green", "nir", "swir"])
    assert main([*base, "-o", str(tmp_path / "r2"), "--unlabeled", str(rgb)]) == 2
    err = capsys.readouterr().err
    assert "needs band(s) red" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r2" / "round-0").exists()  # refused before any training
    assert main([*base, "-o", str(tmp_path / "r3"), "--unlabeled", str(rgb),
                 "--unlabeled-split", "test"]) == 2
    assert "needs a dataset folder" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "r4"), "--unlabeled", str(dataset),
                 "--resume"]) == 2
    assert "not supported" in capsys.readouterr().err
    with pytest.raises(InputError):
        self_train(_config(dataset, tmp_path / "r5", unlabeled=tmp_path / "nope"),  # type: ignore[arg-type]
                   progress=False)
