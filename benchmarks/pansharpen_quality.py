"""Pan-sharpening quality by Wald's protocol: HPF versus bilinear up-sampling and Brovey.

1. The real Sentinel-2 image ``../shared/data/s2-sample/S2_10m_B02_B03_B04_B08.npy``
   (blue, green, red, NIR at 10 m): PAN simulated at full resolution as the mean of blue,
   green and red; MS degraded by R (R x R block means); fuse; compare with the original bands.
   Run for R = 2 and R = 4, and for the HPF centre/modulation levels.
2. A synthetic SPOT-7-like scene (``landslip.synthetic.scene.make_scene``, when available):
   ``assess_pair`` on its pan.tif / ms.tif, i.e. both degraded by R = 4 (PAN 6 m, MS 24 m).

Prints one table per case, checks that HPF beats bilinear on ERGAS and Q4, and writes all
scores as JSON when ``--json`` is given.

Usage:
    .venv/bin/python benchmarks/pansharpen_quality.py [--size 2048] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from landslip.spectral.quality import WaldScore, degrade, format_table, wald_protocol

REPO = Path(__file__).resolve().parents[1]
S2 = REPO.parent / "shared" / "data" / "s2-sample" / "S2_10m_B02_B03_B04_B08.npy"


def _verdict(scores: list[WaldScore]) -> str:
    by = {s.method: s for s in scores}
    hpf, bil = by["hpf"], by["bilinear"]
    ok_e = hpf.ergas < bil.ergas
    ok_q = hpf.q4 is not None and bil.q4 is not None and hpf.q4 > bil.q4
    return (f"HPF beats bilinear on ERGAS: {'yes' if ok_e else 'NO'}; "
            f"on Q4: {'yes' if ok_q else 'NO'}")


def sentinel2(results: dict[str, Any]) -> None:
    if not S2.exists():
        print(f"{S2} absent: Sentinel-2 case skipped")
        return
    ref = np.load(S2).astype(np.float32)
    pan = ref[:3].mean(axis=0)
    for r in (2, 4):
        scores = wald_protocol(pan, degrade(ref, r), ref, r)
        print(f"\nSentinel-2 sample {ref.shape[1]} x {ref.shape[2]}, PAN = mean(B, G, R), "
              f"R = {r}")
        print(format_table(scores))
        print(_verdict(scores))
        results[f"s2_R{r}"] = [s.to_dict() for s in scores]
    print("\nSentinel-2, R = 4, HPF centre / modulation levels:")
    rows = []
    for center in ("low", "mid", "high"):
        for modulation in ("min", "mid", "max"):
            s = wald_protocol(pan, degrade(ref, 4), ref, 4, ("hpf",), center,  # type: ignore[arg-type]
                              modulation)[0]  # type: ignore[arg-type]
            rows.append({"center": center, "modulation": modulation, **s.to_dict()})
            print(f"  {center:<5} {modulation:<4} ERGAS {s.ergas:.4f} SAM {s.sam:.4f} "
                  f"Q {s.q:.4f} Q4 {s.q4:.4f}")
    results["s2_R4_hpf_levels"] = rows


def synthetic(results: dict[str, Any], size: int) -> None:
    try:
        from landslip.synthetic.scene import make_scene
    except ImportError:
        print("\nlandslip.synthetic.scene.make_scene not available: synthetic case skipped")
        return
    from landslip.spectral.assess import assess_pair

    with tempfile.TemporaryDirectory(prefix="landslip-psq-") as tmp:
        t = time.perf_counter()
        scene = make_scene(Path(tmp) / "scene", size=size, seed=7, preview=False)
        print(f"\nsynthetic scene {size} x {size} made in {time.perf_counter() - t:.1f} s")
        report = assess_pair(scene.pan, scene.ms)
    print(f"synthetic scene, Wald's protocol R = {report.ratio} (PAN 6 m, MS 24 m -> 6 m)")
    print(report.table())
    print(_verdict(list(report.scores)))
    results[f"synthetic_{size}"] = report.to_dict()["scores"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="synthetic scene size (PAN px)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    sentinel2(results)
    synthetic(results, args.size)
    if args.json:
        from landslip.io.atomic import write_json_atomic

        write_json_atomic(args.json, results)
        print(f"\nwrote {args.json}")
    else:
        print("\n" + json.dumps({k: len(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
