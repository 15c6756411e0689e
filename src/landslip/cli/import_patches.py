"""``landslip import-patches``: bring a pre-chipped dataset into the dataset folder format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from landslip.cli.options import LandslideValuesOption

__all__ = ["import_patches"]


def import_patches(
    src: Annotated[Path, typer.Argument(help="Folder of image and mask patches.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output dataset folder.")],
    band_names: Annotated[
        str | None,
        typer.Option("--band-names", help="Comma list of band names, e.g. red,green,blue."),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option("--val-fraction", help="Share of train carved out as validation."),
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the validation carve-out.")] = 0,
    layout: Annotated[
        str, typer.Option("--layout", help="auto, folders (PNG/GeoTIFF/npy) or l4s-h5.")
    ] = "auto",
    mask_mode: Annotated[
        str,
        typer.Option("--mask-mode", help="auto, threshold (> 127 is landslide) or labels."),
    ] = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset folder.")
    ] = False,
    landslide_values: LandslideValuesOption = None,
    as_split: Annotated[
        str | None,
        typer.Option("--as-split", help="Put every patch into this split (train, val or "
                     "test), e.g. test to score a model on any labelled set."),
    ] = None,
) -> None:
    """Import image/mask patches (PNG, GeoTIFF, .npy or Landslide4Sense HDF5)."""
    from landslip.dataset.imports import import_patches as run_import
    from landslip.io.checks import check_writable
    from landslip.labels.values import parse_landslide_values
    from landslip.spectral.bands import parse_band_names

    names = parse_band_names(band_names) if band_names is not None else None
    values = parse_landslide_values(landslide_values)
    check_writable(output, folder=True)
    res = run_import(src, output, band_names=names, val_fraction=val_fraction, seed=seed,
                     layout=layout, mask_mode=mask_mode, overwrite=overwrite,
                     landslide_values=values, as_split=as_split)
    ds = res.dataset
    counts = ", ".join(f"{s} {n}" for s, n in ds.counts.items())
    typer.echo(f"Wrote {ds.path}: {counts} patches of {ds.patch_size} px, bands "
               f"{','.join(ds.band_names)} ({res.report['layout']} layout)")
