"""``spanbert ablate run|status|report CONFIG``: the objective ablation grid (:mod:`spanbert.ablation`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

ConfigPath = Annotated[Path, typer.Argument(help="The grid's TOML config (see configs/ablation/).")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Grid folder (default: the config's `output`).")]


def run_command(
    config: ConfigPath,
    output: Output = None,
    objective: Annotated[list[str] | None, typer.Option(help="Run only this objective's cells (repeatable).")] = None,
    max_cells: Annotated[int | None, typer.Option(help="Stop after running this many cells (a piece of the grid).")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads of every cell run now (overrides the config's "
                                                "`threads`; not part of any fingerprint, recorded in each cell.json).")] = None,
) -> None:
    """Run the grid's missing cells in order (finished cells are skipped, a stopped pre-training resumes), then write the report."""
    from spanbert.core.errors import ConfigError
    from spanbert.ablation.config import load_config
    from spanbert.ablation.grid import run_grid
    from spanbert.ablation.report import write_report

    cfg = load_config(config, output)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads}: must be >= 1")
        cfg = dataclasses.replace(cfg, threads=threads)
    if objective:
        unknown = [o for o in objective if o not in cfg.objectives]
        if unknown:
            raise ConfigError(f"--objective {unknown[0]}: not among the config's objectives ({', '.join(cfg.objectives)})")
    if max_cells is not None and max_cells < 1:
        raise ConfigError(f"--max-cells {max_cells}: must be >= 1")
    ran = run_grid(cfg, typer.echo, set(objective) if objective else None, max_cells)
    paths = write_report(cfg)
    typer.echo(f"ran {ran} cell(s); results: {paths['markdown']} "
               f"({', '.join(paths[k].name for k in ('plot', 'csv') if k in paths)})")


def status_command(config: ConfigPath, output: Output = None) -> None:
    """Print every cell of the grid: done (with its time and result), started, or pending."""
    from spanbert.ablation.config import load_config
    from spanbert.ablation.grid import grid_status

    rows = grid_status(load_config(config, output))
    width = max(len(r["cell"]) for r in rows)
    for r in rows:
        seconds = f"{r['seconds'] / 60:6.1f} min" if r["seconds"] is not None else " " * 10
        typer.echo(f"{r['cell']:<{width}}  {r['state']:<7}  {seconds}  {r['result']}")
    done = sum(r["state"] == "done" for r in rows)
    typer.echo(f"{done} of {len(rows)} cells done")


def report_command(config: ConfigPath, output: Output = None) -> None:
    """Write results.md/.csv/.json/.png from the finished cells and print the Markdown."""
    from spanbert.ablation.config import load_config
    from spanbert.ablation.grid import run_prepare
    from spanbert.ablation.report import write_report

    cfg = load_config(config, output)
    run_prepare(cfg, typer.echo)  # the test data the report re-reads may have to be made again (a fresh clone)
    paths = write_report(cfg)
    typer.echo(paths["markdown"].read_text())
    if "plot" in paths:  # absent without matplotlib (a warning said so)
        typer.echo(f"plot: {paths['plot']}")


def register(app: typer.Typer, wrap) -> None:
    """Attach ``ablate run|status|report`` to the main app."""
    ablate = typer.Typer(help="The objective ablation grid: token vs whole-word vs span vs span+SBO pre-training, "
                              "fine-tuned and tested per task and seed.", no_args_is_help=True)
    ablate.command("run")(wrap(run_command))
    ablate.command("status")(wrap(status_command))
    ablate.command("report")(wrap(report_command))
    app.add_typer(ablate, name="ablate")
