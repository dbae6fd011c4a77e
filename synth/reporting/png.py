"""`synth plot`: the report's figures as PNG, SVG or PDF files, for papers, issues and slides.

The figures are figures.py's, the same the HTML report inlines; the data come from queries.py.
"""

from __future__ import annotations

from pathlib import Path

from population.db import RunDB
from synth.reporting.figures import draw_lineage, draw_operators, draw_progress, new_figure
from synth.reporting.queries import ELITE, lineage_graph, operator_rows, progress_series

WHAT = ("progress", "operators", "lineage")
FORMATS = ("png", "svg", "pdf")  # the file's suffix picks one


def _draw(what: str, ax, db: RunDB) -> None:
    if what == "progress":
        draw_progress(ax, progress_series(db), title=f"{db.config()['track']}: best fitness so far")
    elif what == "operators":
        draw_operators(ax, operator_rows(db), title="operators: children made and share that improved on the parent")
    else:
        draw_lineage(ax, lineage_graph(db), title=f"lineage of the {ELITE} best (★) back to the seeds")


def write_plot(db: RunDB, what: str, out_path: Path, size: tuple[float, float] = (8, 5), dpi: int = 100) -> Path:
    """Draws one figure ("progress", "operators" or "lineage") in the format its suffix names (a PNG is
    exactly size * dpi pixels)."""
    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}, not {what!r}")
    out_path = Path(out_path)
    fmt = out_path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{out_path}: unknown image suffix {out_path.suffix or '(none)'!r}; "
                         f"use {', '.join('.' + f for f in FORMATS)}")
    fig, ax = new_figure(*size, dpi=dpi)
    _draw(what, ax, db)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format=fmt, dpi=dpi)  # no bbox_inches="tight": that would change the pixel size
    return out_path
