"""The evaluation report: ``report.json`` (complete, machine-readable) and ``report.md`` (summary).

Every figure in both files is a landslide-class figure (label 1 only), not a micro average over
both classes; pixels labelled 255 are excluded. The JSON layout (format
``landslip-evaluation``, version 1) is documented in DESIGN.md; :func:`read_report` checks
format and version (:func:`landslip.formats.read_document`), and :func:`render_markdown` only
reads keys it knows, so reports of older versions still render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from landslip.formats import read_document
from landslip.io.atomic import write_json_atomic, write_text_atomic

__all__ = [
    "CLASS_NOTE",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "markdown_table",
    "read_report",
    "render_markdown",
    "write_report",
]

REPORT_FORMAT = "landslip-evaluation"
"""Value of ``format`` in report.json."""

REPORT_VERSION = 1
"""Version of the report layout."""

CLASS_NOTE = (
    "All figures are for the landslide class (label 1) only: precision, recall, F1 and IoU of "
    "landslide pixels, not micro or macro averages over landslide and background. Pixels "
    "labelled 255 (ignore/nodata) are excluded."
)
"""The sentence every report carries."""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table (numbers formatted to 3 decimals, integers with separators)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _unit(unit: Any) -> str:
    return "m²" if unit == "m2" else "pixels"


def _min_area_table(area: Mapping[str, Any] | None) -> list[str]:
    """The tuning table of ``--min-area tuned`` (nothing for a fixed area or none)."""
    if not area or not area.get("candidates"):
        return []
    unit = _unit(area.get("unit"))
    rows = [[c["min_area"], int(c["min_area_px"]), c["object_f1"], c["detection_rate"],
             c["false_alarm_rate"], int(c["predicted_regions"]), c["pixel_f1"]]
            for c in area["candidates"]]
    return [f"## Minimum area tuned on the `{area.get('tuned_on')}` split", "",
            f"Object metrics there at the applied threshold with regions under each area "
            f"removed; chosen: {_fmt(area.get('value'))} {unit} (best object F1, the smaller "
            "area on ties). Object F1 = harmonic mean of detection rate and 1 - false-alarm "
            "rate.", "",
            markdown_table([f"min area ({unit})", "pixels", "object F1", "detection rate",
                            "false-alarm rate", "predicted regions", "pixel F1"], rows), ""]


def _objects_section(obj: Mapping[str, Any] | None) -> list[str]:
    """The per-landslide section (nothing without object metrics)."""
    if not obj:
        return []
    out: list[str] = []
    unit = _unit(obj.get("unit"))
    rule = obj.get("rule")
    rule_text = (f"true landslide detected when predicted pixels cover ≥ "
                 f"{obj.get('min_overlap')} of it; predicted region a false alarm when "
                 f"true pixels cover < {obj.get('min_overlap')} of it" if rule == "overlap"
                 else f"one-to-one matching with IoU ≥ {obj.get('min_overlap')}")
    out += ["## Landslides as objects", "",
            f"Connected regions (8-connectivity), matched by the `{rule}` rule "
            f"({rule_text}). Areas in {unit}.", "",
            f"- True landslides: {_fmt(obj.get('true_landslides'))}, detected "
            f"{_fmt(obj.get('detected'))}: detection rate "
            f"**{_fmt(obj.get('detection_rate'))}**",
            f"- Predicted regions: {_fmt(obj.get('predicted_regions'))}, false alarms "
            f"{_fmt(obj.get('false_alarms'))}: false-alarm rate "
            f"**{_fmt(obj.get('false_alarm_rate'))}**"]
    if obj.get("f1") is not None:
        out.append(f"- Object F1 (harmonic mean of the detection rate and 1 - the false-alarm "
                   f"rate): {_fmt(obj['f1'])}")
    out.append("")
    srows = [[r["size_class"], r["true"], r["detected"], r["detection_rate"],
              r["predicted"], r["false_alarms"], r["false_alarm_rate"]]
             for r in obj.get("by_size", [])]
    out += [markdown_table(["size class", "true", "detected", "detection rate",
                            "predicted", "false alarms", "false-alarm rate"], srows), ""]
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """The human summary of a report dictionary (see :func:`write_report`)."""
    ds = report.get("dataset", {})
    model = report.get("model", {})
    thr = report.get("threshold", {})
    px = report.get("pixel", {})
    out: list[str] = [f"# Evaluation: {ds.get('split', '?')} split", ""]
    out += [f"> {CLASS_NOTE}", ""]
    out += [
        f"- Model: `{model.get('model', '?')}` on band set `{model.get('band_set', '?')}` "
        f"({', '.join(model.get('band_names', []))}); bundle `{model.get('bundle', '?')}`",
        f"- Dataset: `{ds.get('path', '?')}`, split `{ds.get('split', '?')}` "
        f"({ds.get('patches', '?')} patches, {_fmt(px.get('pixels'))} labelled pixels, "
        f"split method {ds.get('split_method', '?')})",
    ]
    if ds.get("trained_on_this_dataset") is not None:
        out.append(f"- Model trained on this dataset: {ds['trained_on_this_dataset']}")
    t_line = f"- Threshold applied: {_fmt(thr.get('value'))} ({thr.get('mode', '?')})"
    if thr.get("tuned") is not None:
        t_line += (f"; F1-optimal threshold on the `{thr.get('tuned_on')}` split: "
                   f"{_fmt(thr['tuned'])} (F1 there {_fmt(thr.get('tuned_f1'))})")
    out.append(t_line)
    area = report.get("min_area")
    if area:
        a_line = (f"- Minimum area: predicted landslides under {_fmt(area.get('value'))} "
                  f"{_unit(area.get('unit'))} removed before counting ({area.get('mode')}")
        a_line += (f" on the `{area.get('tuned_on')}` split: best object F1)"
                   if area.get("mode") == "tuned" else ")")
        out.append(a_line)
    if report.get("prediction", {}).get("tta"):
        out.append("- Test-time augmentation: each probability is the mean over the 8 "
                   "flips/90-degree rotations of the patch")
    out += ["", "## Pixel metrics (landslide class)", ""]
    rows = [["applied", _fmt(thr.get("value")), px.get("precision"), px.get("recall"),
             px.get("f1"), px.get("iou"), int(px.get("tp", 0)), int(px.get("fp", 0)),
             int(px.get("fn", 0)), int(px.get("tn", 0))]]
    for label, m in report.get("pixel_at", {}).items():
        rows.append([label, _fmt(m.get("threshold")), m.get("precision"), m.get("recall"),
                     m.get("f1"), m.get("iou"), int(m.get("tp", 0)), int(m.get("fp", 0)),
                     int(m.get("fn", 0)), int(m.get("tn", 0))])
    out += [markdown_table(["threshold", "value", "precision", "recall", "F1", "IoU", "TP",
                            "FP", "FN", "TN"], rows), ""]
    if report.get("average_precision") is not None:
        out += [f"Average precision (area under the PR curve): "
                f"{_fmt(report['average_precision'])}", ""]
    out += _objects_section(report.get("objects"))
    out += _min_area_table(report.get("min_area"))
    figs = report.get("figures", {})
    if figs:
        out += ["## Figures", ""]
        for name, rel in figs.items():
            if isinstance(rel, list):
                out += [f"- {name}: " + ", ".join(f"[{Path(r).name}]({r})" for r in rel)]
            else:
                out += [f"- {name}: [{rel}]({rel})"]
        out.append("")
    preds = report.get("predictions")
    if preds:
        out += ["## Saved predictions", "",
                f"`{preds.get('probabilities')}`: (N, P, P) uint8 probability codes "
                "round(p x 254) (254 = 1.0, the codes of `landslip predict`'s "
                "probability.tif); "
                f"`{preds.get('masks')}`: (N, P, P) uint8 0/1 predicted at the applied "
                "threshold (p >= threshold on the float32 probability; after the --min-slope and "
                "--min-area filters when given); both 255 where the "
                "pixel was not evaluated (label 255 or nodata); "
                f"`{preds.get('ids')}`: the dataset patch ids of the N rows. The confusion "
                "counts above are exactly those of the masks against the dataset labels "
                "(pixels where either is 255 skipped).", ""]
    return "\n".join(out)


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomically).

    Args:
        report: The report dictionary built by :func:`landslip.evaluation.evaluate.evaluate`.
        out_dir: Output folder (created when missing).

    Returns:
        (JSON path, Markdown path). The JSON is written last, so its presence means the
        evaluation finished (the study relies on this to resume).
    """
    out = Path(out_dir)
    md = write_text_atomic(out / "report.md", render_markdown(report) + "\n")
    js = write_json_atomic(out / "report.json", dict(report))
    return js, md


def read_report(path: str | Path) -> dict[str, Any]:
    """Read a report.json (a folder holding one, or the file), checking format and version.

    Raises:
        InputError: If the file is missing or unreadable, not an evaluation report, or of a
            version newer than this landslip reads.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    return read_document(p, expected=REPORT_FORMAT, supported=REPORT_VERSION)
