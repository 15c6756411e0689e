"""``landslip demo``: the whole pipeline on built-in synthetic scenes, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Demo folder (new, empty or a previous demo).")
    ] = Path("demo-output"),
    full: Annotated[
        bool, typer.Option("--full", help="The paper's configuration: unet-paper, 100 epochs, "
                           "batch 40, 12 km scene (for a GPU; hours on a CPU).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of scene, split and "
                                      "weights (the unseen scene uses seed + 1000).")] = 0,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Override the number of epochs.")
    ] = None,
    bands: Annotated[
        list[str] | None,
        typer.Option("--bands", help="A band set to compare; repeat for several (default: "
                     "the paper's bgrn, bgr, grn, bg-ndvi). A comma list is one set."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads for torch [the idle "
                                 "CPUs, from the load average].")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", hidden=True, help="quick or full.")
    ] = None,
) -> None:
    """Synthesize a SPOT-7-like scene, pan-sharpen, rasterize, prepare, train four band sets,
    evaluate, and map a second, unseen scene (about 5-10 minutes on a 2-core CPU)."""
    import logging

    from rich.console import Console

    from landslip.demo import PAPER_BAND_SETS, run_demo
    from landslip.io.checks import check_writable

    if not logging.getLogger("landslip").isEnabledFor(logging.DEBUG):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    console = Console(highlight=False, soft_wrap=True)

    def on_stage(i: int, n: int, name: str, event: str) -> None:
        if event == "start":
            console.print(f"[bold][{i}/{n}] {name}[/bold] ...")
        else:
            console.print(f"[{i}/{n}] {name}: {event}")

    check_writable(output, folder=True)
    res = run_demo(output, full=full, seed=seed, profile=profile,
                   band_sets=bands or PAPER_BAND_SETS, epochs=epochs, threads=threads,
                   on_stage=on_stage)
    u = res.unseen
    console.print()
    console.print("Table 1 (test split of the training scene; landslide class, not averaged "
                  "over classes):")
    console.print(f"  {'band set':<10} {'precision':>9} {'recall':>7} {'F1':>6} "
                  f"{'threshold':>10}  {'val F1':>6}")
    for r in res.rows:
        mark = "  <- best on validation" if r["band_set"] == res.best_band_set else ""
        val = "-" if r["val_f1"] is None else f"{r['val_f1']:.3f}"
        console.print(f"  {r['band_set']:<10} {r['precision']:>9.3f} {r['recall']:>7.3f} "
                      f"{r['f1']:>6.3f} {r['threshold']:>10.3f}  {val:>6}{mark}")
    console.print(f"Unseen scene ({res.profile.unseen_size} px, never trained on), "
                  f"{res.best_band_set} model at threshold {u['threshold']:.3f}: precision "
                  f"{u['precision']:.3f}, recall {u['recall']:.3f}, F1 {u['f1']:.3f} "
                  "(the honest out-of-scene figure)")
    console.print(f"Finished in {res.seconds:.0f} s. Written to {res.out_dir}:")
    for role, path in res.files.items():
        console.print(f"  {role}: {path}")
    console.print(f"  summary: {res.summary_md} and {res.summary_json}")
