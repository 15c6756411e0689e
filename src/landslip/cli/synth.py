"""``landslip synth``: write a synthetic SPOT-7-like scene with known landslide truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["synth"]


def _four(text: str | None, option: str, default: float) -> tuple[float, float, float, float]:
    """Four comma-separated numbers (blue, green, red, nir)."""
    from landslip.errors import InputError

    if text is None:
        return (default,) * 4
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 4:
        raise InputError(f"{option} takes four numbers for blue,green,red,nir, got {text!r}")
    return (v[0], v[1], v[2], v[3])


def _scene_options(date: str | None, season: str, gain: str | None, offset: str | None,
                   noise: float) -> dict[str, Any]:
    """make_scene arguments of --date, --season, --gain, --offset and --noise (checked)."""
    from datetime import UTC, datetime

    from landslip.errors import InputError
    from landslip.synthetic.landcover import AUTUMN, SUMMER
    from landslip.synthetic.sensor import SensorModel

    seasons = {"autumn": AUTUMN, "summer": SUMMER}
    if season not in seasons:
        raise InputError(f"--season must be autumn or summer, got {season!r}")
    if not 0 <= noise <= 10:
        raise InputError(f"--noise must be between 0 and 10, got {noise}")
    gains = _four(gain, "--gain", 1.0)
    if min(gains) <= 0:
        raise InputError(f"--gain factors must be positive, got {gain}")
    out: dict[str, Any] = {"phenology": seasons[season], "sensor": SensorModel().with_response(
        gains, _four(offset, "--offset", 0.0), noise)}
    if date is not None:
        try:
            when = datetime.fromisoformat(date)
        except ValueError:
            raise InputError(f"--date must be an ISO time such as 2018-08-20T01:02, got "
                             f"{date!r}") from None
        out["acquisition"] = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return out


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
    date: Annotated[
        str | None,
        typer.Option(help="UTC time of the acquisition, which sets the sun (ISO, e.g. "
                     "2018-08-20T01:02; default 2018-10-04T01:02, the post-event SPOT-7 pass)."),
    ] = None,
    season: Annotated[
        str, typer.Option(help="Vegetation season: autumn (post-event date) or summer."),
    ] = "autumn",
    gain: Annotated[
        str | None,
        typer.Option(help="Sensor response: gain factors of blue,green,red,nir (e.g. "
                     "1.1,0.95,0.9,1.2; default 1,1,1,1)."),
    ] = None,
    offset: Annotated[
        str | None,
        typer.Option(help="Sensor response: DN offsets of blue,green,red,nir (default 0,0,0,0)."),
    ] = None,
    noise: Annotated[
        float, typer.Option(help="Sensor response: noise standard deviation factor."),
    ] = 1.0,
) -> None:
    """Write pan.tif, ms.tif, truth.tif, landslides.geojson, preview.png and scene.json
    (and dem.tif with --dem, pre_pan.tif and pre_ms.tif with --pre). --date, --season,
    --gain, --offset and --noise make a scene of the same kind under another sun, season and
    sensor response (a domain shift, e.g. for self-training studies)."""
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
                        fraction_range=(lo, hi), pre=pre, **_scene_options(
                            date, season, gain, offset, noise))
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
