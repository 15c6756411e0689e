"""Re-lay a tiled GeoTIFF with internal overviews out as a Cloud-Optimized GeoTIFF, raw.

GDAL's COG driver cannot copy tiles that are already compressed: it decompresses and compresses
every pixel again. This module copies them as they are. It reads the chain of image file
directories (IFDs) of a classic TIFF or a BigTIFF written by GDAL (the full resolution, then the
overviews ``BuildOverviews`` appended, largest first) and writes a new file in the COG order:
the header, every IFD with its out-of-line values (full resolution first, then the overviews in
order), then the tile data, the smallest overview's first and the full resolution's last, each
IFD's tiles in index order. Only the ``TileOffsets`` and ``TileByteCounts`` (or strip) entries
are rewritten; every other tag (georeferencing, GDAL metadata, nodata, colour map, compression)
is copied byte for byte, so readers see the same pixels, overviews and metadata. The output is
classic TIFF when the source is and the result fits in 4 GiB, else BigTIFF; the overview IFDs
may come from another file (a BigTIFF is fine), see :func:`relayout_cog`. The tiles are copied
by byte range (``os.copy_file_range`` where the system has it, else chunked reads), so memory
stays flat whatever the file size. GDAL's optional "ghost" structural metadata is not
written: readers and rio-cogeo's validator do not need it.
"""

from __future__ import annotations

import logging
import os
import struct
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from landslip.errors import RasterIOError

__all__ = ["relayout_cog"]

log = logging.getLogger(__name__)

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               13: 4, 16: 8, 17: 8, 18: 8}
"""Bytes per value of each TIFF field type (TIFF 6.0 and BigTIFF)."""
_INT_FORMATS = {3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}
"""struct codes of the unsigned integer field types that may hold offsets and byte counts."""
_DATA_TAGS = ((324, 325), (273, 279))
"""(offsets tag, byte counts tag): TileOffsets/TileByteCounts, StripOffsets/StripByteCounts."""
_CHUNK = 1 << 22
"""Bytes per copy call (4 MiB): bounds memory on the fallback path."""


@dataclass(frozen=True)
class _Format:
    """The flavour of a TIFF file: byte order and classic or BigTIFF."""

    order: str  # "<" or ">"
    big: bool

    @property
    def header_size(self) -> int:
        return 16 if self.big else 8

    @property
    def inline(self) -> int:
        """Bytes of a value stored in the entry itself."""
        return 8 if self.big else 4

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12

    def ifd_size(self, n_entries: int) -> int:
        """Bytes of an IFD of ``n_entries`` entries: count, entries, next-IFD offset."""
        return (8 + n_entries * 20 + 8) if self.big else (2 + n_entries * 12 + 4)


@dataclass
class _Entry:
    """One IFD entry: its tag, field type, value count and value bytes (file byte order)."""

    tag: int
    type: int
    count: int
    data: bytes


@dataclass
class _Ifd:
    """An IFD: its entries in file order and where its tiles (or strips) lie in the source."""

    entries: list[_Entry]
    offsets: list[int]
    counts: list[int]
    offsets_tag: int
    counts_tag: int


def _ints(fmt: _Format, entry: _Entry) -> list[int]:
    code = _INT_FORMATS.get(entry.type)
    if code is None:
        raise RasterIOError(f"TIFF tag {entry.tag} has field type {entry.type}, not an integer "
                            "type; re-lay out only GeoTIFFs that GDAL wrote")
    return list(struct.unpack(f"{fmt.order}{entry.count}{code}", entry.data))


def _read_header(f: BinaryIO) -> tuple[_Format, int]:
    """The file's format and the offset of its first IFD."""
    head = f.read(16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        raise RasterIOError("not a TIFF file (bad byte-order mark); re-lay out a GeoTIFF")
    magic = struct.unpack(f"{order}H", head[2:4])[0]
    if magic == 42:
        return _Format(order, False), struct.unpack(f"{order}I", head[4:8])[0]
    if magic == 43 and len(head) == 16:
        return _Format(order, True), struct.unpack(f"{order}Q", head[8:16])[0]
    raise RasterIOError(f"not a TIFF file (magic number {magic}); re-lay out a GeoTIFF")


def _read_ifd(f: BinaryIO, fmt: _Format, offset: int) -> tuple[_Ifd, int]:
    """The IFD at ``offset`` and the offset of the next one (0 at the end of the chain)."""
    o = fmt.order
    f.seek(offset)
    n = struct.unpack(f"{o}Q" if fmt.big else f"{o}H", f.read(8 if fmt.big else 2))[0]
    raw = f.read(n * fmt.entry_size + (8 if fmt.big else 4))
    entries: list[_Entry] = []
    for i in range(n):
        e = raw[i * fmt.entry_size:(i + 1) * fmt.entry_size]
        tag, typ = struct.unpack(f"{o}HH", e[:4])
        count = struct.unpack(f"{o}Q" if fmt.big else f"{o}I", e[4:fmt.entry_size - fmt.inline])[0]
        size = _TYPE_SIZES.get(typ, 1) * count
        value = e[fmt.entry_size - fmt.inline:]
        if size > fmt.inline:
            f.seek(struct.unpack(f"{o}Q" if fmt.big else f"{o}I", value)[0])
            value = f.read(size)
        entries.append(_Entry(tag, typ, count, value[:size]))
    nxt = struct.unpack(f"{o}Q" if fmt.big else f"{o}I", raw[n * fmt.entry_size:])[0]
    by_tag = {e.tag: e for e in entries}
    for off_tag, count_tag in _DATA_TAGS:
        if off_tag in by_tag and count_tag in by_tag:
            offsets, counts = _ints(fmt, by_tag[off_tag]), _ints(fmt, by_tag[count_tag])
            return _Ifd(entries, offsets, counts, off_tag, count_tag), nxt
    raise RasterIOError(f"TIFF IFD at byte {offset} has no tile or strip offsets; re-lay out "
                        "only tiled GeoTIFFs")


def read_ifds(f: BinaryIO) -> tuple[_Format, list[_Ifd]]:
    """The format and the IFD chain of an open TIFF file, in chain order."""
    fmt, offset = _read_header(f)
    ifds: list[_Ifd] = []
    seen: set[int] = set()
    while offset:
        if offset in seen:
            raise RasterIOError("TIFF IFD chain loops; the file is damaged")
        seen.add(offset)
        ifd, offset = _read_ifd(f, fmt, offset)
        ifds.append(ifd)
    return fmt, ifds


def _pad(n: int) -> int:
    return n + (n & 1)


def _ifd_extent(fmt: _Format, ifd: _Ifd) -> int:
    """Bytes of an IFD plus its out-of-line values, each starting on a word boundary."""
    size = _pad(fmt.ifd_size(len(ifd.entries)))
    for e in ifd.entries:
        n = _TYPE_SIZES.get(e.type, 1) * e.count
        if e.tag in (ifd.offsets_tag, ifd.counts_tag):
            n = (8 if fmt.big else 4) * e.count
        if n > fmt.inline:
            size += _pad(n)
    return size


def _encode_ifd(fmt: _Format, ifd: _Ifd, start: int, new_offsets: list[int], nxt: int) -> bytes:
    """The bytes of ``ifd`` placed at ``start``: entries, next-IFD offset, out-of-line values."""
    o = fmt.order
    word = "Q" if fmt.big else "I"
    head = bytearray(struct.pack(f"{o}Q" if fmt.big else f"{o}H", len(ifd.entries)))
    tail = bytearray()
    base = start + _pad(fmt.ifd_size(len(ifd.entries)))
    for e in ifd.entries:
        typ, data = e.type, e.data
        if e.tag in (ifd.offsets_tag, ifd.counts_tag):
            typ = 16 if fmt.big else 4
            values = new_offsets if e.tag == ifd.offsets_tag else ifd.counts
            data = struct.pack(f"{o}{e.count}{word}", *values)
        elif typ in (16, 17, 18) and not fmt.big:
            raise RasterIOError(f"TIFF tag {e.tag} holds 64-bit values, which classic TIFF "
                                "cannot store; write the file as BigTIFF")
        head += struct.pack(f"{o}HH{word}", e.tag, typ, e.count)
        if len(data) > fmt.inline:
            head += struct.pack(f"{o}{word}", base + len(tail))
            tail += data + b"\0" * (len(data) & 1)
        else:
            head += data.ljust(fmt.inline, b"\0")
    head += struct.pack(f"{o}{word}", nxt)
    return bytes(head.ljust(_pad(len(head)), b"\0") + tail)


def _plan(fmt: _Format, ifds: list[_Ifd], sources: list[int]
          ) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """The new file's header and IFDs, and the (source file, offset, length) ranges of tile
    data to append after them, in order (``sources``: the file of each IFD's tiles); None when
    a classic TIFF would exceed 4 GiB."""
    starts, pos = [], fmt.header_size
    for ifd in ifds:
        starts.append(pos)
        pos += _ifd_extent(fmt, ifd)
    new_offsets: list[list[int]] = [[] for _ in ifds]
    ranges: list[tuple[int, int, int]] = []
    for i in reversed(range(len(ifds))):  # smallest overview first, full resolution last
        for off, n in zip(ifds[i].offsets, ifds[i].counts, strict=True):
            new_offsets[i].append(pos if n else 0)
            if n:
                ranges.append((sources[i], off, n))
                pos += n
    if not fmt.big and pos > 0xFFFFFFFF:
        return None
    o = fmt.order
    mark = b"II" if o == "<" else b"MM"
    header = (struct.pack(f"{o}2sHHHQ", mark, 43, 8, 0, starts[0]) if fmt.big else
              struct.pack(f"{o}2sHI", mark, 42, starts[0]))
    body = b"".join(_encode_ifd(fmt, ifd, starts[i], new_offsets[i],
                                starts[i + 1] if i + 1 < len(ifds) else 0)
                    for i, ifd in enumerate(ifds))
    return header + body, _merge(ranges)


def _merge(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Join (file, offset, length) ranges that follow each other in one file into one copy."""
    out: list[tuple[int, int, int]] = []
    for k, off, n in ranges:
        if out and out[-1][0] == k and out[-1][1] + out[-1][2] == off:
            out[-1] = (k, out[-1][1], out[-1][2] + n)
        else:
            out.append((k, off, n))
    return out


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src`` from ``offset`` to ``dst`` (at its file position)."""
    end = offset + length
    copy = getattr(os, "copy_file_range", None)
    while offset < end:
        n = min(_CHUNK, end - offset)
        done = 0
        if copy is not None:
            try:
                done = copy(src, dst, n, offset)
            except OSError:
                copy = None
        if not done:
            chunk = os.pread(src, n, offset)
            if not chunk:
                raise RasterIOError(f"TIFF tile data ends early at byte {offset}; the file is "
                                    "damaged")
            done = os.write(dst, chunk)
        offset += done


def relayout_cog(src: str | Path, dst: str | Path, overviews: str | Path | None = None) -> None:
    """Write the tiled GeoTIFF ``src`` (with its internal overviews) as the COG ``dst``.

    Tiles are copied raw, compressed as they are; see the module docstring for the layout.

    Args:
        src: A tiled classic TIFF or BigTIFF, full resolution first in its IFD chain, then its
            overviews from the largest to the smallest (GDAL's ``BuildOverviews`` order).
        dst: The file to write (overwritten; not atomic: write a temporary name and rename).
        overviews: Take the overviews from this file instead (same byte order, size and band
            layout as ``src``, classic or BigTIFF; its own full resolution, first in its chain,
            is skipped): ``src``'s own overviews, if any, are ignored.

    Raises:
        RasterIOError: If a file is not such a TIFF or cannot be read, or ``dst`` cannot be
            written.
    """
    try:
        with ExitStack() as stack:
            files = [stack.enter_context(open(p, "rb"))
                     for p in ([src] if overviews is None else [src, overviews])]
            fmt, ifds = read_ifds(files[0])
            sources = [0] * len(ifds)
            if overviews is not None:
                ovr_fmt, ovr_ifds = read_ifds(files[1])
                if ovr_fmt.order != fmt.order:
                    raise RasterIOError(f"{overviews} and {src} differ in byte order; write "
                                        "both on the same machine")
                ifds = ifds[:1] + ovr_ifds[1:]
                sources = [0] + [1] * (len(ifds) - 1)
            plan = _plan(fmt, ifds, sources) or _plan(_Format(fmt.order, True), ifds, sources)
            if plan is None:  # never: a BigTIFF plan always fits
                raise RasterIOError(f"cannot lay out {src}")
            header, ranges = plan
            fout = stack.enter_context(open(dst, "wb"))
            fout.write(header)
            fout.flush()
            for k, off, n in ranges:
                _copy_range(files[k].fileno(), fout.fileno(), off, n)
    except (OSError, struct.error) as exc:
        if isinstance(exc, RasterIOError):
            raise
        raise RasterIOError(f"cannot re-lay out {src} as a Cloud-Optimized GeoTIFF: {exc}") \
            from exc
    log.debug("re-laid out %s as a COG: %d IFDs, %d copies", src, len(ifds), len(ranges))
