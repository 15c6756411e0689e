"""``landslip prepare``: cut a scene and its label raster into a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from landslip.cli.options import LandslideValuesOption, NodataOption

__all__ = ["prepare"]


def prepare(
    image: Annotated[Path, typer.Argument(help="Scene GeoTIFF (e.g. fused B,G,R,NIR).")],
    labels: Annotated[Path, typer.Argument(help="Label raster on the image grid (rasterize).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output dataset folder.")],
    patch_size: Annotated[int, typer.Option("--patch-size", help="Patch size in pixels.")] = 256,
    stride: Annotated[
        int | None, typer.Option("--stride", help="Step between patches (default: patch size).")
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="random (the paper's) or blocks (spatially separate).")
    ] = "random",
    fractions: Annotated[
        str, typer.Option("--fractions", help="Train,val,test shares.")
    ] = "0.64,0.16,0.2",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    block_size: Annotated[
        int, typer.Option("--block-size", help="Block side in patches (blocks split).")
    ] = 4,
    max_nodata: Annotated[
        float, typer.Option("--max-nodata", help="Drop patches with a larger nodata share.")
    ] = 0.5,
    band_names: Annotated[
        str | None,
        typer.Option("--band-names", help="Comma list of band names, e.g. blue,green,red,nir."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset folder.")
    ] = False,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra", help="Extra raster stored after the image bands, warped onto "
                     "the image grid: [NAMES=]PATH[:RESAMPLING], e.g. pre=pre_ms.tif (bands "
                     "pre_blue..pre_nir) or dem=dem.tif; repeatable."),
    ] = None,
    terrain: Annotated[
        str | None,
        typer.Option("--terrain", help="Terrain bands computed from the dem band with a halo: "
                     "comma list of slope (degrees), hillshade; '' for none (default: slope "
                     "when a dem band is given)."),
    ] = None,
    nodata: NodataOption = None,
    landslide_values: LandslideValuesOption = None,
) -> None:
    """Cut IMAGE and LABELS into patches, split them and write a dataset folder."""
    from landslip.dataset.prepare import prepare_dataset
    from landslip.errors import DatasetError
    from landslip.io.checks import check_writable, parse_nodata
    from landslip.labels.values import parse_landslide_values
    from landslip.spectral.bands import parse_band_names

    try:
        fr = [float(x) for x in fractions.split(",")]
    except ValueError as exc:
        raise DatasetError(f"--fractions must be three numbers like 0.64,0.16,0.2, got "
                           f"{fractions!r}") from exc
    names = parse_band_names(band_names) if band_names is not None else None
    nd, values = parse_nodata(nodata), parse_landslide_values(landslide_values)
    check_writable(output, folder=True)
    terrain_bands = None
    if terrain is not None:
        terrain_bands = [t.strip().lower() for t in terrain.split(",") if t.strip()]
    res = prepare_dataset(image, labels, output, patch_size=patch_size, stride=stride,
                          split=split, fractions=fr, seed=seed, block_size=block_size,
                          max_nodata=max_nodata, band_names=names, overwrite=overwrite,
                          extras=extra or (), terrain=terrain_bands, nodata=nd,
                          landslide_values=values)
    r = res.report
    counts = ", ".join(f"{s} {n}" for s, n in r["counts"].items())
    leak = r["leakage"]
    if "extras" in r:
        typer.echo(f"Bands: {', '.join(res.dataset.band_names)}")
    typer.echo(f"Wrote {res.dataset.path}: {counts} patches of {patch_size} px "
               f"({r['patches']['dropped_nodata']} dropped as nodata, "
               f"{r['patches']['dropped_buffer']} as buffer)")
    typer.echo(f"Leakage audit: {leak['test']['share']:.1%} of test and "
               f"{leak['val']['share']:.1%} of validation patches touch a training patch")
