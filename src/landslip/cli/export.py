"""``landslip export``: write a model bundle as a self-describing ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export"]


def export(
    bundle: Annotated[Path, typer.Argument(help="Run folder, bundle folder or model.json.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o",
                     help="ONNX file to write (default: model.onnx in the bundle folder, "
                          "which predict's onnx engine then reuses)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check/--no-check",
                     help="Compare ONNX Runtime with PyTorch on a random input (max "
                          "probability difference must be < 1e-4)."),
    ] = True,
) -> None:
    """Export a trained model to ONNX (probabilities out, bundle metadata inside)."""
    from landslip.io.checks import check_writable
    from landslip.models.bundle import load_bundle
    from landslip.models.export import export_onnx
    from landslip.models.onnx_meta import ONNX_CACHE_FILE

    b = load_bundle(bundle)
    target = check_writable(output if output is not None else b.path / ONNX_CACHE_FILE)
    r = export_onnx(b, target, check=check)
    meta = r.metadata.bundle
    checked = (f"; ONNX Runtime vs PyTorch max probability difference {r.max_difference:.1g}"
               if r.max_difference is not None else "")
    params = "".join(f" {k}={v}" for k, v in meta.model_params.items())
    typer.echo(
        f"Exported {meta.model}{params} ({meta.in_channels} bands "
        f"{','.join(meta.band_names)}, threshold {meta.threshold:g}) to {r.path} "
        f"({r.bytes / 1e6:.1f} MB, opset {r.opset}, {r.seconds:.1f} s){checked}"
    )
