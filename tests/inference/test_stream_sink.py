"""BackgroundSink: bands reach the sink in order, errors reach the caller, nothing is lost."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from landslip.grid import Window
from landslip.inference.sliding import RowBand
from landslip.inference.stream import BackgroundSink


def _band(r0: int) -> RowBand:
    return RowBand(Window(r0, 0, 1, 4), np.zeros((1, 4), np.float32), np.ones((1, 4), bool))


def test_bands_arrive_in_order_in_another_thread() -> None:
    seen: list[tuple[int, str]] = []

    def slow(band: RowBand) -> None:
        time.sleep(0.002 * (band.window.row_off % 3))
        seen.append((band.window.row_off, threading.current_thread().name))

    with BackgroundSink(slow, pending=2) as sink:
        for r in range(20):
            sink(_band(r))
    assert [r for r, _ in seen] == list(range(20))
    assert all(name.startswith("landslip-sink") for _, name in seen)


def test_a_sink_error_reaches_the_caller() -> None:
    def failing(band: RowBand) -> None:
        if band.window.row_off == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), BackgroundSink(failing) as sink:
        for r in range(10):
            sink(_band(r))
            time.sleep(0.001)


def test_a_caller_error_drops_the_waiting_bands() -> None:
    """The band being written is finished; those still waiting are dropped."""
    seen: list[int] = []
    gate = threading.Event()

    def blocked(band: RowBand) -> None:
        gate.wait(5)
        seen.append(band.window.row_off)

    threading.Timer(0.05, gate.set).start()
    with pytest.raises(RuntimeError, match="model failed"), BackgroundSink(blocked,
                                                                           pending=3) as sink:
        for r in range(3):
            sink(_band(r))
        raise RuntimeError("model failed")
    assert seen == [0]


def test_background_threads_yield_to_the_model() -> None:
    """The writer thread runs at a lower priority than the caller (Linux), so the engine's
    threads get the cores first; elsewhere it is a no-op."""
    import os

    if not hasattr(os, "setpriority"):
        pytest.skip("no setpriority on this platform")
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    with BackgroundSink(lambda band: seen.append(
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))) as sink:
        sink(_band(0))
    assert seen == [max(own, 10)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
