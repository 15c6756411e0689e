"""``landslip predict``: map landslides over a whole scene with a trained model bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from landslip.cli.options import (
    EngineOption,
    NodataOption,
    StrictOption,
    ThreadsOption,
    TtaOption,
)

if TYPE_CHECKING:
    from landslip.inference.distributed import ClusterOptions
    from landslip.inference.predict import PredictOptions, PredictResult

__all__ = ["predict"]



_ImagesArg = Annotated[
    list[str],
    typer.Argument(help="Image GeoTIFF(s) with named bands: paths, a glob, a .txt list "
                   "(one path a line) or a VRT mosaic; several images go to OUT/<stem>/."),
]
_WindowArg = Annotated[
    int | None,
    typer.Option("--window", help="Largest prediction window, pixels (default: the "
                 "engine's measured choice, 1024 for both engines)."),
]
_OverlapArg = Annotated[
    int, typer.Option("--overlap", help="Least overlap between windows, pixels (blended).")
]
_BatchSizeArg = Annotated[
    int | None,
    typer.Option("--batch-size",
                 help="Windows per forward pass (default: 1 on CPU, 4 on GPU)."),
]
_ThresholdArg = Annotated[
    float | None,
    typer.Option("--threshold", help="Probability threshold (default: the bundle's)."),
]
_MinAreaArg = Annotated[
    float, typer.Option("--min-area", help="Drop polygons smaller than this, m2.")
]
_GeojsonArg = Annotated[
    bool, typer.Option("--geojson", help="Also write landslides.geojson in EPSG:4326.")
]
_BandNamesArg = Annotated[
    str | None,
    typer.Option("--band-names", help="Names of the image bands in order, e.g. "
                 "blue,green,red,nir (default: the band descriptions)."),
]
_ProbabilityDtypeArg = Annotated[
    str, typer.Option("--probability-dtype", help="uint8 (0-254, 255 nodata) or float32.")
]
_DeviceArg = Annotated[
    str | None,
    typer.Option("--device", help="Torch device (default: cuda if available, else cpu)."),
]
_HtmlArg = Annotated[
    bool, typer.Option("--html", help="Also write map.html, a self-contained map page.")
]
_ExtraArg = Annotated[
    list[str] | None,
    typer.Option("--extra", help="Extra raster for the bands the image lacks, as in "
                 "prepare: [NAMES=]PATH[:RESAMPLING], e.g. pre=pre_ms.tif or dem=dem.tif "
                 "(slope computed from it; polygons get mean_slope); repeatable."),
]
_MinSlopeArg = Annotated[
    float | None,
    typer.Option("--min-slope", help="Drop polygons whose mean slope is below this many "
                 "degrees (needs --extra with a DEM; off by default)."),
]
_WorkersArg = Annotated[
    int | None,
    typer.Option("--workers", help="Run on a local dask.distributed cluster of this many "
                 "worker processes (engine threads each: --threads, default cores/N)."),
]
_SchedulerArg = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run on an existing dask.distributed scheduler, e.g. "
                 "tcp://host:8786 (the images must be readable on the workers at the same "
                 "paths; the bundle is sent to them)."),
]
_StripRowsArg = Annotated[
    int, typer.Option("--strip-rows", help="Window rows per cluster task (strip).")
]


def predict(
    bundle: Annotated[Path, typer.Argument(help="Run folder, bundle folder or model.json.")],
    images: _ImagesArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    window: _WindowArg = None,
    overlap: _OverlapArg = 64,
    batch_size: _BatchSizeArg = None,
    tta: TtaOption = False,
    threshold: _ThresholdArg = None,
    min_area: _MinAreaArg = 0.0,
    geojson: _GeojsonArg = False,
    band_names: _BandNamesArg = None,
    probability_dtype: _ProbabilityDtypeArg = "uint8",
    device: _DeviceArg = None,
    html: _HtmlArg = False,
    extra: _ExtraArg = None,
    min_slope: _MinSlopeArg = None,
    nodata: NodataOption = None,
    strict: StrictOption = False,
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    workers: _WorkersArg = None,
    scheduler: _SchedulerArg = None,
    strip_rows: _StripRowsArg = 4,
) -> None:
    """Predict probability.tif, landslides.tif, landslides.gpkg and stac-item.json for a whole
    scene (and map.html with --html)."""
    from landslip.errors import InputError
    from landslip.inference.distributed import ClusterOptions
    from landslip.inference.predict import PredictOptions, predict_scene
    from landslip.io.checks import check_writable, parse_nodata
    from landslip.spectral.bands import parse_band_names

    if probability_dtype not in ("uint8", "float32"):
        raise InputError(
            f"--probability-dtype must be uint8 or float32, got {probability_dtype!r}"
        )
    names = parse_band_names(band_names) if band_names is not None else None
    nd = parse_nodata(nodata)
    check_writable(output, folder=True)
    dtype: Literal["uint8", "float32"] = (
        "float32" if probability_dtype == "float32" else "uint8")
    if len(images) > 1 or any(c in images[0] for c in "*?[") or images[0].endswith(".txt") \
            or workers is not None or scheduler is not None:
        _predict_many(bundle, images, output, PredictOptions(
            window=window, overlap=overlap, batch_size=batch_size, tta=tta,
            min_area=min_area, geojson=geojson, probability_dtype=dtype, device=device,
            html=html, engine=engine, threads=threads, min_slope=min_slope),
            ClusterOptions(workers=workers, scheduler=scheduler, strip_rows=strip_rows),
            threshold=threshold, band_names=names, nodata=nd, strict=strict,
            extras=extra or ())
        return
    r = predict_scene(
        bundle, Path(images[0]), output, window=window, overlap=overlap, batch_size=batch_size,
        tta=tta, threshold=threshold, min_area=min_area, geojson=geojson, band_names=names,
        probability_dtype=dtype, device=device, html=html, extras=extra or (),
        min_slope=min_slope, nodata=nd,
        strict=strict, engine=engine, threads=threads,
    )
    _echo_result(r)

def _echo_result(r: PredictResult) -> None:
    """The one-image summary line and the files written."""
    from landslip.inference.folder import MAP_HTML, STAC_ITEM

    mp = r.plan.height * r.plan.width / 1e6
    typer.echo(
        f"Predicted {r.plan.height} x {r.plan.width} px in {r.plan.n_windows} window(s) of "
        f"{r.plan.win_h} x {r.plan.win_w} with {r.engine}, {r.threads} thread(s) "
        f"({r.seconds:.1f} s, {mp / r.seconds:.2f} MP/s); threshold {r.threshold:g}: "
        f"{r.landslide_pixels} landslide px, {r.n_polygons} polygon(s)"
    )
    extras = [r.report.parent / n for n in (STAC_ITEM, MAP_HTML)]
    for path in (r.probability, r.mask, r.polygons, r.geojson, *extras):
        if path is not None and path.is_file():
            typer.echo(f"  {path}")


def _predict_many(bundle: Path, images: list[str], output: Path, options: PredictOptions,
                  cluster: ClusterOptions, **kw: Any) -> None:
    """Several images (or a cluster): predict_many, then a short table of the scenes."""
    from landslip.errors import InputError
    from landslip.inference.distributed import SUMMARY, predict_many

    summaries = predict_many(bundle, images, output, options, cluster, **kw)
    typer.echo(f"{'scene':<24} {'status':<7} {'polygons':>8} {'area m2':>12} {'parts':>6} "
               f"{'seconds':>8}")
    for s in summaries:
        typer.echo(f"{s.name[:24]:<24} {s.status:<7} {s.polygons:>8} "
                   f"{s.landslide_area_m2:>12.1f} {s.parts:>6} {s.seconds:>8.1f}")
        if s.error:
            typer.echo(f"  {s.error}")
    typer.echo(f"  {output / SUMMARY}")
    failed = sum(s.status != "done" for s in summaries)
    if failed == len(summaries):
        raise InputError(f"every scene failed ({failed}); see {output / SUMMARY}")
