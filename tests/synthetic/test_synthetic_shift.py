"""``synth --date --season --gain --offset --noise``: the same kind of scene under a domain
shift (another sun, season and sensor response), for self-training studies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from landslip.cli.app import main
from landslip.synthetic.sensor import SensorModel


def _ms(folder: Path) -> np.ndarray:
    with rasterio.open(folder / "ms.tif") as ds:
        return ds.read().astype(np.float64)


def test_shifted_scene_has_the_same_truth_and_another_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["-q", "synth", "-o", str(a), "--size", "256", "--seed", "4"]) == 0
    assert main(["-q", "synth", "-o", str(b), "--size", "256", "--seed", "4", "--date",
                 "2018-08-20T01:02", "--season", "summer", "--gain", "1.2,1,1,0.8",
                 "--offset", "50,0,0,0", "--noise", "2"]) == 0
    with rasterio.open(a / "truth.tif") as ta, rasterio.open(b / "truth.tif") as tb:
        assert np.array_equal(ta.read(), tb.read())  # same ground and landslides
    ms_a, ms_b = _ms(a), _ms(b)
    assert ms_b[0].mean() > ms_a[0].mean() + 50  # gain 1.2 and +50 DN in blue
    assert not np.allclose(ms_a[1], ms_b[1], rtol=0.05)  # another sun and season
    g = tmp_path / "g"  # the gain alone: NIR DNs scaled by 0.8
    assert main(["-q", "synth", "-o", str(g), "--size", "256", "--seed", "4", "--gain",
                 "1,1,1,0.8"]) == 0
    assert _ms(g)[3].mean() / ms_a[3].mean() == pytest.approx(0.8, rel=0.01)
    assert np.array_equal(_ms(g)[:3], ms_a[:3])
    meta_a = json.loads((a / "scene.json").read_text())
    meta_b = json.loads((b / "scene.json").read_text())
    assert meta_a["sun"] != meta_b["sun"] and meta_b["phenology"]["autumn"] == 0.0
    assert meta_b["sensor"]["offset"] == [50.0, 0.0, 0.0, 0.0]
    assert meta_b["sensor"]["read_noise"] == 2 * meta_a["sensor"]["read_noise"]
    capsys.readouterr()
    assert main(["-q", "synth", "-o", str(tmp_path / "c"), "--size", "256", "--gain",
                 "1,2"]) == 2
    assert "--gain takes four numbers" in capsys.readouterr().err
    assert main(["-q", "synth", "-o", str(tmp_path / "c"), "--size", "256", "--season",
                 "winter"]) == 2
    assert "--season must be" in capsys.readouterr().err


def test_default_response_is_unchanged() -> None:
    s = SensorModel()
    assert s.with_response() == s and s.pan_offset == 0.0
    t = s.with_response((2.0, 2.0, 2.0, 1.0), (10.0, 10.0, 10.0, 0.0), 3.0)
    assert t.gain == (14000.0, 13000.0, 13000.0, 5200.0) and t.pan_gain == 15000.0
    assert t.pan_offset == pytest.approx(10.0) and t.shot_noise == pytest.approx(0.72)
