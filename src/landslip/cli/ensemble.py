"""``landslip ensemble``: one bundle that averages the probabilities of several models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ensemble"]


def ensemble(
    members: Annotated[
        list[Path],
        typer.Argument(help="Two or more run folders, bundle folders or model.json files, "
                       "trained on the same bands and dataset statistics."),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The new bundle folder (use it like a run in "
                     "evaluate, predict and export)."),
    ],
) -> None:
    """Combine models into one bundle: the mean of their probabilities."""
    from landslip.models.ensemble import build_ensemble

    b = build_ensemble(members, output)
    names = ", ".join(f"{m['model']}" for m in b.meta.model_params["members"])
    onnx = " and model.onnx" if (b.path / "model.onnx").is_file() else ""
    typer.echo(
        f"Ensemble of {len(members)} models ({names}) on {b.meta.in_channels} bands "
        f"{','.join(b.meta.band_names)}, threshold {b.threshold:.4g} (mean of the members'), "
        f"written to {b.path}{onnx}; `landslip evaluate {b.path} DATASET --threshold tuned` "
        "tunes its threshold on validation"
    )
