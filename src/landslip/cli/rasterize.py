"""``landslip rasterize``: landslide polygons to a label raster on an image grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["rasterize"]


def rasterize(
    labels: Annotated[Path, typer.Argument(help="Landslide polygons (GeoJSON, GPKG, SHP, ...).")],
    like: Annotated[Path, typer.Option("--like", help="Image whose grid the labels take.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output label GeoTIFF.")],
    all_touched: Annotated[
        bool, typer.Option("--all-touched", help="Burn every pixel a polygon touches.")
    ] = False,
    where: Annotated[
        str | None,
        typer.Option("--where", help="SQL filter on attributes, e.g. \"type = 'slide'\"."),
    ] = None,
    labels_crs: Annotated[
        str | None,
        typer.Option("--labels-crs", help="CRS of the labels when the file has none."),
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Layer of a multi-layer vector file.")
    ] = None,
) -> None:
    """Rasterize landslide polygons onto an image grid: 0 background, 1 landslide, 255 nodata."""
    from landslip.io.checks import check_writable
    from landslip.labels.rasterize import rasterize_labels

    check_writable(output)
    r = rasterize_labels(labels, like, output, all_touched=all_touched, where=where,
                         labels_crs=labels_crs, layer=layer)
    total = r.landslide_pixels + r.background_pixels
    share = r.landslide_pixels / total if total else 0.0
    typer.echo(
        f"Wrote {r.path}: {r.grid.height} x {r.grid.width} px, {r.n_features} polygon(s), "
        f"{r.landslide_pixels} landslide px ({share:.2%} of valid), {r.ignore_pixels} ignore px"
    )
    if r.overlap_fraction < 0.999:
        typer.echo(f"Warning: only {r.overlap_fraction:.1%} of the label area overlaps the image",
                   err=True)
