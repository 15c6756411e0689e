"""The CLI's one-line reports: input errors, write errors, Ctrl-C, bugs (``cli/errors.py``)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from landslip.cli.app import main
from landslip.cli.errors import INTERRUPTED, describe
from landslip.errors import Interrupted, ModelError, RasterIOError


def test_describe_maps_each_kind_of_failure() -> None:
    assert describe(ModelError("no bundle\nat x")) == ("Error: no bundle at x", 2)
    assert describe(KeyboardInterrupt()) == (INTERRUPTED, 130)
    assert describe(Interrupted("interrupted; rerun with --resume")) == (
        "interrupted; rerun with --resume", 130)
    msg, code = describe(PermissionError(errno.EACCES, "Permission denied",
                                         "/data/out/.report.partial-4242.json"))
    assert code == 2
    assert msg == ("Error: cannot write /data/out/report.json: Permission denied; choose a "
                   "writable folder")
    msg, _ = describe(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x.tif"))
    assert msg.startswith("Error: cannot write /mnt/ro/x.tif: Read-only file system")
    assert describe(OSError(errno.EIO, "Input/output error")) == (
        "Error: Input/output error", 2)
    assert describe(RasterIOError("cannot read x")) == ("Error: cannot read x", 2)
    assert describe(ValueError("a bug")) is None


def test_gdal_errors_are_one_line() -> None:
    from rasterio._err import CPLE_AppDefinedError

    msg, code = describe(CPLE_AppDefinedError(1, 1, "TIFFWriteTile failed"))
    assert code == 2 and msg == "Error: GDAL: TIFFWriteTile failed"


@pytest.fixture
def fake_verb(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """``landslip rasterize`` raising whatever the test puts in the list."""
    import landslip.labels.rasterize as lr

    raised: list[BaseException] = []

    def fake(*args: object, **kwargs: object) -> None:
        raise raised[0]

    monkeypatch.setattr(lr, "rasterize_labels", fake)
    return raised


def _rasterize(tmp_path: Path, *flags: str) -> int:
    return main([*flags, "rasterize", str(tmp_path / "l.geojson"), "--like",
                 str(tmp_path / "img.tif"), "-o", str(tmp_path / "out.tif")])


def test_ctrl_c_says_how_to_resume_and_exits_130(
        fake_verb: list[BaseException], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake_verb.append(KeyboardInterrupt())
    assert _rasterize(tmp_path, "-q") == 130
    assert capsys.readouterr().err == f"{INTERRUPTED}\n"


def test_a_permission_error_while_writing_is_one_line(
        fake_verb: list[BaseException], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake_verb.append(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "o")))
    assert _rasterize(tmp_path, "-q") == 2
    err = capsys.readouterr().err
    assert err == f"Error: cannot write {tmp_path / 'o'}: Permission denied; choose a " \
                  "writable folder\n"


def test_verbose_adds_the_traceback(fake_verb: list[BaseException], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    fake_verb.append(ModelError("broken"))
    assert _rasterize(tmp_path, "-v") == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "Error: broken"


def test_a_bug_still_shows_its_traceback(fake_verb: list[BaseException],
                                         tmp_path: Path) -> None:
    fake_verb.append(ZeroDivisionError("bug"))
    with pytest.raises(ZeroDivisionError):
        _rasterize(tmp_path, "-q")


def test_malformed_yaml_is_one_line_with_its_position(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14 item 7 (already so on main): FILE:LINE:COLUMN: reason, on one line."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nbatch_size: [4,\n  8\nlr: 0.1\n")
    assert main(["-q", "train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"Error: {cfg}:4:")
    assert not (tmp_path / "run").exists()
