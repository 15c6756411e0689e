"""Progress reporting for long work: rich progress bars with ETA on stderr.

Library functions take an optional ``progress`` flag and use :func:`track`; the CLI decides
whether bars are shown (``-q`` hides them) through :func:`set_enabled`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

__all__ = ["is_enabled", "set_enabled", "track"]

T = TypeVar("T")
_enabled = False


def set_enabled(enabled: bool) -> None:
    """Switch progress bars on or off for this process (the CLI switches them on)."""
    global _enabled
    _enabled = enabled


def is_enabled() -> bool:
    """Whether progress bars are shown."""
    return _enabled


def track(
    items: Iterable[T], total: int | None = None, description: str = "working"
) -> Iterator[T]:
    """Iterate over ``items`` showing a progress bar with ETA when enabled.

    Args:
        items: What to iterate over.
        total: Number of items (taken from ``len(items)`` when possible).
        description: Label shown left of the bar.
    """
    if not _enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if total is None and isinstance(items, Sized):
        total = len(items)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
