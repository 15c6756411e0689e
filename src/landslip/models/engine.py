"""Prediction engines: one interface over PyTorch and ONNX Runtime.

An :class:`Engine` turns a batch of normalised model inputs into landslide probabilities::

    engine.probabilities(x)   # float32 (N, C, H, W) -> float32 (N, H, W) in [0, 1]

* :class:`TorchEngine` runs the bundle's network (eval mode, ``torch.inference_mode``), in the
  channels-last memory format on the CPU (about 2x faster than the default layout for the
  U-Net's 3x3 convolutions; the numbers agree to float rounding).
* :class:`OnnxEngine` runs an exported graph (:mod:`landslip.models.export`) in ONNX Runtime:
  ``intra_op_num_threads = threads``, graph optimisation level ALL, the CPU execution provider,
  or the CUDA provider when asked for and available. Built from an ``.onnx`` file, or from a
  loaded bundle (exported in memory, under a second for a width-16 U-Net; a ``model.onnx``
  in the bundle folder, from ``landslip export`` or training, is used instead when its weights
  checksum matches).

:func:`create_engine` picks one: ``auto`` is ONNX Runtime on the CPU and PyTorch on CUDA (and on
any other torch device). Input height and width must be multiples of ``required_multiple``;
other shapes raise :class:`~landslip.errors.ModelError` saying how to pad. An engine is a
context manager: leaving it restores the torch thread count it changed.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from landslip.devices import Device, resolve_device
from landslip.errors import InputError, ModelError
from landslip.models.bundle import Bundle
from landslip.models.registry import check_input_size

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DEFAULT_WINDOWS",
    "ENGINES",
    "FALLBACK_WINDOW",
    "Engine",
    "EngineName",
    "OnnxEngine",
    "TorchEngine",
    "check_engine_options",
    "create_engine",
    "default_threads",
    "onnxruntime_available",
    "resolve_engine",
]

logger = logging.getLogger(__name__)

Float = npt.NDArray[np.float32]
EngineName = Literal["auto", "torch", "onnx"]
ENGINES: Final = ("auto", "torch", "onnx")
"""Valid ``engine`` values of :func:`create_engine` (and of ``--engine``)."""
DEFAULT_WINDOWS: Final[dict[tuple[str, str], int]] = {
    ("onnx", "cpu"): 1024,
    ("torch", "cpu"): 1024,
    ("torch", "cuda"): 1024,
    ("onnx", "cuda"): 1024,
}
"""``--window`` default (pixels, the largest window; the plan balances it over the scene) by
(engine, device type). Measured with ``benchmarks/cpu_engines.py`` (DESIGN.md, "ONNX export
and prediction engines"): on the CPU both engines compute about as many pixels per second
from 512 px windows up, so larger windows only save overlap (2-3 % of the compute above
1024), while memory grows with the window's area and ONNX Runtime's arena grows in steps:
at 1152 px ``predict`` on a 16384 px wide scene peaked at 2.25 GB, at 1024 px at 1.78 GB.
1024 keeps both engines under 2 GB and gives them the same plan (the same map). CUDA keeps
the earlier default (not measured here). Other devices use :data:`FALLBACK_WINDOW`."""
FALLBACK_WINDOW: Final = 1024

_TTA: Final = [(k, flip) for k in range(4) for flip in (False, True)]


class Engine(ABC):
    """Maps normalised inputs to probabilities; see the module docstring.

    Attributes:
        name: ``"torch"`` or ``"onnx"``.
        device: The device the engine computes on (``cpu`` or ``cuda[:N]``; a
            :class:`~landslip.devices.Device`, or the ``torch.device`` of a
            :class:`TorchEngine`).
        threads: Intra-op threads asked for, or None for the library's default.
        in_channels: Number of input bands C.
        required_multiple: Input height and width must be multiples of this.
    """

    name: str = ""

    def __init__(self, device: Device | torch.device, threads: int | None, in_channels: int,
                 required_multiple: int) -> None:
        self.device = device
        self.threads = threads
        self.in_channels = in_channels
        self.required_multiple = required_multiple

    @property
    def description(self) -> str:
        """One line naming the engine, device and threads (for logs and reports)."""
        threads = "default threads" if self.threads is None else f"{self.threads} thread(s)"
        return f"{self.name} on {self.device} ({threads})"

    @property
    def default_window(self) -> int:
        """The prediction window measured fastest per pixel for this engine and device."""
        return DEFAULT_WINDOWS.get((self.name, self.device.type), FALLBACK_WINDOW)

    def close(self) -> None:
        """Undo process-wide settings the engine made (the torch thread count)."""
        return None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def probabilities(self, x: npt.NDArray[np.floating[Any]], tta: bool = False) -> Float:
        """Landslide probabilities of a batch.

        Args:
            x: Normalised inputs, float32 (N, C, H, W) (other float dtypes are converted);
                H and W multiples of :attr:`required_multiple`.
            tta: Average over the 8 flips/90-degree rotations of the input (each inverted on
                the output before averaging; 8x the compute).

        Returns:
            float32 (N, H, W) probabilities in [0, 1].

        Raises:
            ModelError: If ``x`` is not 4-D, has the wrong number of bands, or a height or
                width that is not a multiple of :attr:`required_multiple`.
        """
        x = self._check(x)
        if not tta:
            return self._forward(x)
        out = np.zeros((x.shape[0], x.shape[2], x.shape[3]), dtype=np.float32)
        for k, flip in _TTA:
            v = np.rot90(x, k, axes=(2, 3))
            if flip:
                v = v[..., ::-1]
            p = self._forward(np.ascontiguousarray(v))
            if flip:
                p = p[..., ::-1]
            out += np.rot90(p, -k, axes=(1, 2))
        out /= len(_TTA)
        return out

    def _check(self, x: npt.NDArray[np.floating[Any]]) -> Float:
        if x.ndim != 4:
            raise ModelError(f"the {self.name} engine expects (N, C, H, W) input, got shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ModelError(f"the model was built for {self.in_channels} band(s), got "
                             f"{x.shape[1]}")
        check_input_size(int(x.shape[2]), int(x.shape[3]), self.required_multiple,
                         f"the {self.name} engine")
        return np.ascontiguousarray(x, dtype=np.float32)

    @abstractmethod
    def _forward(self, x: Float) -> Float:
        """Probabilities (N, H, W) of a checked, C-contiguous float32 (N, C, H, W) batch."""


class TorchEngine(Engine):
    """PyTorch: the network in eval mode under ``torch.inference_mode``.

    Args:
        model: Logit model (N, C, H, W) -> (N, 1, H, W) with ``in_channels`` and
            ``required_multiple`` attributes; moved to ``device`` and put in eval mode (and in
            channels-last format when ``channels_last``) in place.
        device: Where to run; default the CPU.
        threads: Intra-op threads (``torch.set_num_threads``, which is process-wide), or None
            to leave torch's setting.
        channels_last: Run in the channels-last memory format; default: on the CPU only.
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device | Device | str | None = None,
                 threads: int | None = None, channels_last: bool | None = None) -> None:
        import torch

        dev = torch.device(str(device)) if device is not None else torch.device("cpu")
        _check_threads(threads)
        channels = getattr(model, "in_channels", None)
        if isinstance(channels, bool) or not isinstance(channels, int):
            raise ModelError(f"model {type(model).__name__} has no in_channels attribute; "
                             "build it with landslip.models.registry.create_model")
        super().__init__(dev, threads, channels, int(getattr(model, "required_multiple", 1)))
        self._saved_threads = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch_device = dev
        self.channels_last = dev.type == "cpu" if channels_last is None else channels_last
        model.to(dev).eval()
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload,unused-ignore]
        self.model = model

    def close(self) -> None:
        """Restore torch's thread count from before the engine was made."""
        import torch

        torch.set_num_threads(self._saved_threads)

    @property
    def description(self) -> str:
        """One line naming the engine, layout, device and threads."""
        import torch

        layout = ", channels_last" if self.channels_last else ""
        return super().description.replace(" (", f" ({torch.__version__}{layout}, ", 1)

    def _forward(self, x: Float) -> Float:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.torch_device)
            if self.channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            y = self.model(t)
            if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0], 1, *x.shape[2:]):
                shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ModelError(f"the model must return logits of shape (N, 1, H, W) = "
                                 f"({x.shape[0]}, 1, {x.shape[2]}, {x.shape[3]}), got {shape}")
            p = torch.sigmoid(y[:, 0]).float().cpu().numpy()
        return np.ascontiguousarray(p)


class OnnxEngine(Engine):
    """ONNX Runtime on an exported landslip model (:mod:`landslip.models.export`).

    Args:
        model: Path of the ``.onnx`` file or its bytes (with landslip metadata).
        device: ``cpu`` (CPUExecutionProvider) or ``cuda[:N]`` (CUDAExecutionProvider, then
            the CPU provider for anything it does not run); default the CPU.
        threads: ``intra_op_num_threads`` of the session, or None for ONNX Runtime's default
            (one per physical core).

    Attributes:
        metadata: What the file says about itself (band set, normalisation, threshold, ...).
        session: The ``onnxruntime.InferenceSession``.

    Raises:
        ModelError: If onnxruntime is missing or the file is not a landslip ONNX model.
        InputError: If CUDA is asked for but this onnxruntime has no CUDA provider.
    """

    name = "onnx"

    def __init__(self, model: str | Path | bytes,
                 device: Device | torch.device | str | None = None,
                 threads: int | None = None) -> None:
        from landslip.models.onnx_meta import parse_onnx_metadata, require_package

        ort = require_package("onnxruntime", "for the onnx engine, or use --engine torch")
        dev = Device("cpu") if device is None else Device.parse(device)
        _check_threads(threads)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_mem_pattern = False  # same speed, 0.2 GB less at 1024 x 1024
        # Idle pool threads sleep instead of spinning: the forward pass is as fast (measured)
        # and the cores stay free for the reading and writing threads of predict.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        source = "ONNX bytes" if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise ModelError(f"ONNX model {model} not found (write one with `landslip export`)")
        try:
            self.session = ort.InferenceSession(
                model if isinstance(model, bytes) else str(model), sess_options=options,
                providers=_providers(ort, dev))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"ONNX Runtime cannot load {source}: {exc}".splitlines()[0]) \
                from exc
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = parse_onnx_metadata(props, source)
        super().__init__(dev, threads, self.metadata.bundle.in_channels,
                         self.metadata.required_multiple)
        self._input = self.metadata.input_name
        self._output = self.metadata.output_name

    @classmethod
    def from_bundle(cls, bundle: Bundle, device: Device | torch.device | str | None = None,
                    threads: int | None = None) -> OnnxEngine:
        """An engine for a loaded bundle.

        Uses ``<bundle folder>/model.onnx`` when it exists and was exported from these
        weights (same sha256 and ``model.json``, :func:`~landslip.models.onnx_meta.matching_onnx`);
        otherwise exports the bundle in memory (checked against PyTorch).
        """
        from landslip.models.onnx_meta import matching_onnx, require_package

        require_package("onnxruntime", "for the onnx engine, or use --engine torch")
        cached = matching_onnx(bundle)
        if cached is not None:
            logger.debug("using the ONNX export %s", cached)
            return cls(cached, device, threads)
        from landslip.models.export import export_onnx_bytes

        t0 = time.perf_counter()
        data = export_onnx_bytes(bundle)
        logger.info("exported the model to ONNX in memory in %.1f s (`landslip export %s` "
                    "once saves this)", time.perf_counter() - t0, bundle.path)
        return cls(data, device, threads)

    @property
    def description(self) -> str:
        """One line naming the engine, providers and threads."""
        import onnxruntime as ort

        providers = ", ".join(p.replace("ExecutionProvider", "")
                              for p in self.session.get_providers())
        return super().description.replace(" (", f" (onnxruntime {ort.__version__} "
                                                  f"{providers}, ", 1)

    def _forward(self, x: Float) -> Float:
        out = self.session.run([self._output], {self._input: x})[0]
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32)[:, 0])


def check_engine_options(engine: str, threads: int | None) -> None:
    """Refuse a bad ``--engine`` or ``--threads`` before anything is loaded or written.

    Raises:
        InputError: Naming the option and the values it accepts.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise InputError(f"--threads must be at least 1, got {threads!r}")


def default_threads() -> int:
    """All the CPU cores this process may use (``--threads`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def onnxruntime_available() -> bool:
    """Whether the onnxruntime package can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine: str, device: Device | torch.device) -> Literal["torch", "onnx"]:
    """Which engine ``engine`` means on ``device`` (the rule of :func:`create_engine`).

    Args:
        engine: ``auto``, ``torch`` or ``onnx``.
        device: The selected device.

    Returns:
        ``"onnx"`` for ``onnx``, and for ``auto`` on the CPU when onnxruntime is installed
        (without it ``auto`` falls back to PyTorch with a warning); ``"torch"`` otherwise.

    Raises:
        InputError: For an unknown engine name.
    """
    if engine == "torch":
        return "torch"
    if engine == "onnx":
        return "onnx"
    if engine != "auto":
        raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if device.type != "cpu":
        return "torch"
    if not onnxruntime_available():
        logger.warning("onnxruntime is not installed; predicting with PyTorch (install "
                       "onnxruntime for faster CPU prediction)")
        return "torch"
    return "onnx"


def create_engine(bundle: Bundle, engine: str = "auto",
                  device: Device | torch.device | str | None = None,
                  threads: int | None = None) -> Engine:
    """The engine to predict with.

    Args:
        bundle: The loaded bundle (its model is moved to ``device``).
        engine: ``auto`` (ONNX Runtime on the CPU, PyTorch on CUDA and other devices),
            ``torch`` or ``onnx``.
        device: ``None``/``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda[:N]``
            (see :func:`landslip.devices.resolve_device`; torch is imported only for the
            torch engine or when a CUDA device may exist).
        threads: Intra-op threads of either engine (positive); None: all the cores this
            process may use (:func:`default_threads`).

    Returns:
        The engine; ``engine.description`` names what was chosen.

    Raises:
        InputError: For an unknown engine, a bad thread count, an absent device, or ``onnx``
            on CUDA with an onnxruntime that has no CUDA provider.
        ModelError: For ``onnx`` when onnxruntime is not installed.
    """
    _check_threads(threads)
    threads = default_threads() if threads is None else threads
    dev = resolve_device(device)
    if resolve_engine(engine, dev) == "onnx":
        chosen: Engine = OnnxEngine.from_bundle(bundle, dev, threads)
    else:
        chosen = TorchEngine(bundle.model, dev, threads)
    logger.info("prediction engine: %s", chosen.description)
    return chosen



def _providers(ort: Any, device: Device) -> list[Any]:
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                "CPUExecutionProvider"]
    raise InputError(f"the onnx engine cannot run on {device}: this onnxruntime offers "
                     f"{', '.join(ort.get_available_providers())}; install onnxruntime-gpu or "
                     "use --engine torch")


def _check_threads(threads: int | None) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise InputError(f"threads must be a positive integer, got {threads!r}")
