"""``landslip synth``: write a synthetic SPOT-7-like scene with known landslide truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["synth"]


def synth(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write the scene into.")
    ],
    size: Annotated[
        int,
        typer.Option(help="Scene width and height in 1.5 m PAN pixels (multiple of 4, >= 256)."),
    ] = 2048,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same scene.")] = 0,
    dem: Annotated[bool, typer.Option("--dem", help="Also write dem.tif (metres).")] = False,
    pre: Annotated[
        bool,
        typer.Option("--pre", help="Also write pre_pan.tif and pre_ms.tif: the same ground "
                     "before the landslides, seen on another date (20 Aug 2018)."),
    ] = False,
    fraction: Annotated[
        float | None,
        typer.Option(help="Share of the scene covered by landslides (default 0.05, 0.02-0.08)."),
    ] = None,
) -> None:
    """Write pan.tif, ms.tif, truth.tif, landslides.geojson, preview.png and scene.json
    (and dem.tif with --dem, pre_pan.tif and pre_ms.tif with --pre)."""
    from landslip.errors import InputError
    from landslip.io.checks import check_writable
    from landslip.synthetic.scene import MAX_SIZE, MIN_SIZE, RATIO, make_scene

    if size < MIN_SIZE or size > MAX_SIZE or size % RATIO:
        raise InputError(
            f"--size must be a multiple of {RATIO} between {MIN_SIZE} and {MAX_SIZE} PAN "
            f"pixels, got {size}; try {max(MIN_SIZE, min(MAX_SIZE, size - size % RATIO))}"
        )
    lo, hi = 0.02, 0.08
    if fraction is not None and not lo <= fraction <= hi:
        lo, hi = min(lo, fraction), max(hi, fraction)
        if not 0 < fraction < 0.5:
            raise InputError(f"--fraction must be between 0 and 0.5, got {fraction}")
    check_writable(output, folder=True)
    result = make_scene(output, size=size, seed=seed, dem=dem, landslide_fraction=fraction,
                        fraction_range=(lo, hi), pre=pre)
    km = size * 1.5 / 1000
    typer.echo(
        f"Wrote a {size} x {size} px ({km:.2f} km) synthetic scene to {result.out_dir} "
        f"in {result.seconds:.1f} s (seed {seed}):"
    )
    files = [result.pan, result.ms, result.truth, result.landslides, result.dem,
             result.pre_pan, result.pre_ms, result.preview, result.scene_json]
    for p in files:
        if p is not None:
            typer.echo(f"  {p.name}")
    typer.echo(
        f"{result.landslide_count} landslides covering {100 * result.landslide_fraction:.2f} % "
        f"of the pixels ({100 * result.landslide_shaded_share:.1f} % of them in shade); "
        f"mean NDVI landslide {result.class_ndvi.get('landslide', float('nan')):.2f}, "
        f"forest {result.class_ndvi.get('forest', float('nan')):.2f}"
    )
