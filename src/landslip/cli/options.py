"""Options several verbs share, declared once (their names, types and help texts)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "EngineOption", "LandslideValuesOption", "NodataOption", "StrictOption", "ThreadsOption",
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
