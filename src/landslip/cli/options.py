"""Options several verbs share, declared once (their names, types and help texts)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "EngineOption", "LandslideValuesOption", "NodataOption", "StrictOption", "ThreadsOption",
    "TtaOption",
]

NodataOption = Annotated[
    str | None,
    typer.Option("--nodata", help="Nodata value of the input when its file has no nodata tag "
                 "(a number or nan; NaN and infinite values are always nodata)."),
]
"""``--nodata`` of prepare, predict and pansharpen (parsed by ``io.checks.parse_nodata``)."""

StrictOption = Annotated[
    bool, typer.Option("--strict", help="Refuse input far outside the model's training data "
                       "(default: warn).")
]
"""``--strict`` of predict and evaluate (the drift rule, ``evaluation.drift``)."""

LandslideValuesOption = Annotated[
    str | None,
    typer.Option("--landslide-values", help="Label or mask values that mean landslide, e.g. 1 "
                 "or 1,2 (others but 255 become background)."),
]
"""``--landslide-values`` of prepare and import-patches (``labels.values``)."""

EngineOption = Annotated[
    str,
    typer.Option("--engine", help="auto (ONNX Runtime on the CPU, PyTorch on CUDA), torch or "
                 "onnx."),
]
"""``--engine`` of ``predict`` and ``evaluate``."""
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", help="Threads of the engine (default: all cores).")
]
"""``--threads`` of ``predict`` and ``evaluate``."""
TtaOption = Annotated[
    bool, typer.Option("--tta", help="Test-time augmentation: average the probabilities over the "
                       "8 flips/90-degree rotations (8x slower).")
]
"""``--tta`` of ``predict`` and ``evaluate`` (``Engine.probabilities(x, tta=True)``)."""
