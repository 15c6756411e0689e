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


def test_balanced_rule_keeps_each_predicted_class_most_confident_portion() -> None:
    prob = np.array([[[0.9, 0.8, 0.7, 0.6], [0.55, 0.4, 0.3, 0.2]],
                     [[0.1, 0.05, 0.45, 0.99], [0.35, 0.25, 0.15, 0.5]],
                     [[0.97, 0.98, 0.01, 0.02], [0.03, 0.04, 0.06, 0.07]]], dtype=np.float32)
    valid = np.ones(prob.shape, dtype=bool)
    valid[1, 0, 3] = False  # p = 0.99 but nodata: neither counted nor labelled
    valid[2] = False  # no valid pixel: not counted, dropped
    rule = PseudoRule(high=0.85, low=0.12, min_confident=0.5, kind="balanced", portion=0.5)
    resolved = rule.balanced(prob, valid, threshold=0.5)
    # predicted landslide (p >= 0.5): 0.9 0.8 0.7 0.6 0.55 0.5 -> the top ceil(3) kept;
    # predicted background: 10 pixels -> the lowest 5 (0.05 0.1 0.15 0.2 0.25) kept
    assert resolved.high == pytest.approx(0.7) and resolved.low == pytest.approx(0.25)
    assert resolved.kind == "balanced" and resolved.min_confident == 0.0
    labels, keep = pseudo_labels(prob, valid, resolved)
    L, B, I = LANDSLIDE, BACKGROUND, IGNORE  # noqa: E741
    assert labels[0].tolist() == [[L, L, L, I], [I, I, I, B]]
    assert labels[1].tolist() == [[B, B, I, I], [I, B, B, I]]
    assert (labels[2] == IGNORE).all()
    assert keep.tolist() == [True, True, False]
    # the fixed rule at 0.85 / 0.12 on the same pixels: 1 landslide for 2 background pixels
    fixed, _ = pseudo_labels(prob, valid, rule)
    assert int((fixed[:2] == L).sum()) == 1 and int((fixed[:2] == B).sum()) == 2


def test_balanced_rule_without_a_predicted_class_labels_none_of_it() -> None:
    prob = np.full((1, 2, 2), 0.2, dtype=np.float32)
    rule = PseudoRule(0.9, 0.1, 0.5, "balanced", 0.5).balanced(prob, np.ones_like(prob, bool),
                                                                0.5)
    labels, keep = pseudo_labels(prob, np.ones_like(prob, bool), rule)
    assert rule.high == float("inf") and (labels == BACKGROUND).all() and keep.tolist() == [True]


@pytest.fixture(scope="module")
def teacher(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from landslip.training.fit import train

    run = tmp_path_factory.mktemp("teacher") / "run"
    train(_config(dataset, run), progress=False)  # type: ignore[arg-type]
    return run


def _weights(path: Path) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in load_bundle(path).model.state_dict().items()}


def test_given_teacher_skips_round_0_and_students_start_from_it(
        dataset: Path, teacher: Path, tmp_path: Path) -> None:
    start = _weights(teacher)
    runs = {}
    for init in ("teacher", "fresh"):
        run = runs[init] = tmp_path / init
        # a learning rate of 1e-12: the student's weights stay where they started
        cfg = _config(dataset, run, unlabeled=dataset, unlabeled_split="test", teacher=teacher,
                      student_init=init, lr=1e-12)
        result = self_train(cfg, progress=False)  # type: ignore[arg-type]
        assert not (run / "round-0").exists() and (run / "round-1" / "bundle").is_dir()
        assert result.rounds[0]["given"] and result.rounds[0]["run"] == str(teacher / "bundle")
        doc = read_rounds(run)
        assert doc["teacher"] == str(teacher) and doc["student_init"] == init
        assert doc["rule"]["kind"] == "balanced" and doc["rounds"][1]["pseudo"]["patches_kept"]
    from_teacher, fresh = _weights(runs["teacher"]), _weights(runs["fresh"])
    assert all(np.allclose(from_teacher[k], start[k], atol=1e-6) for k in start)
    assert not all(np.allclose(fresh[k], start[k], atol=1e-6) for k in start)


def test_teacher_of_other_bands_patch_size_or_model_exits_2_with_one_line(
        dataset: Path, teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "small"
    write_synthetic_dataset(small, n=8, patch_size=16, seed=1)
    base = ["-q", "train", "--model", "unet", "--depth", "2", "--epochs", "1",
            "--max-train-batches", "1", "--teacher", str(teacher)]
    cases = [([str(dataset), "--width", "4", "--bands", "rgb"], "reads bands blue,green,red"),
             ([str(small), "--width", "4", "--bands", "bgr"], "32 px patches"),
             ([str(dataset), "--width", "8", "--bands", "bgr"], "--student-init fresh")]
    for k, (args, message) in enumerate(cases):
        out = tmp_path / f"r{k}"
        assert main([*base, *args, "-o", str(out), "--unlabeled", str(dataset)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() or not any(out.iterdir())  # refused before anything is written
    assert main([*base, str(dataset), "--width", "4", "--bands", "bgr", "-o",
                 str(tmp_path / "r9")]) == 2
    assert "--teacher is for self-training" in capsys.readouterr().err
