"""Output-location checks, declared nodata and NaN counts (``landslip.io.checks``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from helpers.inputs import make_bundle, utm_grid, write_labels, write_scene
from landslip.cli.app import main
from landslip.errors import InputError, OutputError
from landslip.io.atomic import atomic_path, remove_stale_partials
from landslip.io.checks import check_writable, count_nonfinite, declare_nodata, parse_nodata
from landslip.io.raster import raster_info, write_raster

# Linux capabilities that let root write where the permission bits say no.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextmanager
def _without_root_overrides() -> Iterator[None]:
    """As root, drop the capabilities that bypass permission bits (this thread), then restore."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip("cannot read this thread's capabilities")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH)
                           | (1 << _CAP_FOWNER))
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.skip("cannot drop capabilities here")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write into (even as root)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    with _without_root_overrides():
        try:
            (ro / "probe").write_text("x")
        except PermissionError:
            pass
        else:
            (ro / "probe").unlink()
            pytest.skip("cannot make a read-only folder here")
        yield ro
    ro.chmod(0o755)


def test_check_writable_refuses_a_read_only_folder(read_only: Path) -> None:
    with pytest.raises(OutputError, match=r"cannot write .*Permission denied; choose a writable"):
        check_writable(read_only / "new" / "out.tif")
    with pytest.raises(OutputError, match="Permission denied"):
        check_writable(read_only, folder=True)
    assert not any(read_only.iterdir())


def test_predict_into_a_read_only_folder_is_one_line(read_only: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: predict into a new subfolder of a read-only folder."""
    make_bundle(tmp_path / "run" / "bundle")
    write_scene(tmp_path / "img.tif")
    rc = main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "img.tif"), "-o",
               str(read_only / "maps")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"Error: cannot write {read_only / 'maps'}: Permission denied")


def test_prepare_and_import_into_a_read_only_folder(read_only: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_scene(tmp_path / "img.tif")
    write_labels(tmp_path / "lab.tif")
    rc = main(["-q", "prepare", str(tmp_path / "img.tif"), str(tmp_path / "lab.tif"), "-o",
               str(read_only / "ds"), "--patch-size", "16"])
    assert rc == 2
    assert capsys.readouterr().err.startswith(f"Error: cannot write {read_only / 'ds'}")


def test_check_writable_accepts_new_nested_folders_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.tif"
    assert check_writable(target) == target
    assert check_writable(tmp_path / "x" / "y", folder=True) == tmp_path / "x" / "y"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_check_writable_refuses_files_and_folders_in_the_wrong_place(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable(tmp_path / "f" / "out.tif")
    with pytest.raises(OutputError, match="it is a file"):
        check_writable(tmp_path / "f", folder=True)
    with pytest.raises(OutputError, match="it is a folder"):
        check_writable(tmp_path / "d")


def test_check_writable_refuses_a_full_disk(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(OutputError, match="full"):
        check_writable(tmp_path / "out.tif")


def test_a_full_disk_mid_run_is_one_line_and_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC while pixels are written: the one-line write error, no file, no partial."""
    import errno

    from landslip.io import raster

    make_bundle(tmp_path / "run" / "bundle")
    write_scene(tmp_path / "img.tif")

    def full(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device",
                      str(tmp_path / "maps" / f".probability.partial-{os.getpid()}.tif"))

    monkeypatch.setattr(raster.RasterWriter, "write", full)
    rc = main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "img.tif"), "-o",
               str(tmp_path / "maps")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"Error: cannot write {tmp_path / 'maps' / 'probability.tif'}: "
                               "No space left on device; choose a writable folder"]
    assert not [p for p in (tmp_path / "maps").rglob("*") if p.is_file()]


def test_declare_nodata(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = raster_info(write_scene(tmp_path / "a.tif", nodata=None))
    assert declare_nodata(info, None) is info
    assert declare_nodata(info, 0).nodata == 0.0
    with pytest.raises(InputError, match="cannot occur"):
        declare_nodata(info, 0.5)
    with pytest.raises(InputError, match="cannot occur"):
        declare_nodata(info, 70000)
    tagged = raster_info(write_scene(tmp_path / "b.tif", nodata=7))
    assert declare_nodata(tagged, 3).nodata == 3.0
    assert "instead of the file's nodata value 7" in caplog.text
    f = raster_info(write_scene(tmp_path / "c.tif", dtype="float32", nodata=None))
    assert np.isnan(declare_nodata(f, float("nan")).nodata or 0.0)
    assert parse_nodata(None) is None and parse_nodata("-9999") == -9999.0
    with pytest.raises(InputError, match="--nodata"):
        parse_nodata("zero")


def test_count_nonfinite_counts_pixels_not_values(tmp_path: Path) -> None:
    data = np.ones((3, 30, 50), dtype=np.float64)
    data[0, 0, :5] = np.nan
    data[1, 0, :5] = np.inf  # the same 5 pixels
    data[2, 29, 49] = -np.inf
    write_raster(tmp_path / "f.tif", data, utm_grid(30, 50))
    assert count_nonfinite(tmp_path / "f.tif") == 6
    assert count_nonfinite(tmp_path / "f.tif", [1]) == 5
    write_scene(tmp_path / "i.tif")
    assert count_nonfinite(tmp_path / "i.tif") == 0


def test_stale_partials_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    for name in (f".out.partial-{dead}.tif", f".out.partial-{dead}.tif.aux.xml",
                 f".out.partial-{os.getpid()}.tif", f".other.partial-{dead}.tif"):
        (tmp_path / name).write_text("x")
    (tmp_path / f".ds.partial-{dead}").mkdir()
    assert remove_stale_partials(tmp_path / "out.tif") == 2
    assert remove_stale_partials(tmp_path / "ds") == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".other.partial-{dead}.tif", f".out.partial-{os.getpid()}.tif"]
    with atomic_path(tmp_path / "other.tif") as tmp:
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".out.partial-{os.getpid()}.tif", "other.tif"]
