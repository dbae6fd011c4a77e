"""The report's figures as PNG, SVG or PDF files (matplotlib, Agg backend): for papers, issues and slides.

The data come from queries.py, like the HTML report's, so both always agree.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from population.db import RunDB
from synth.reporting.queries import ELITE, lineage_graph, operator_rows, progress_series

WHAT = ("progress", "operators", "lineage")
FORMATS = ("png", "svg", "pdf")  # the file's suffix picks one
BLUE, ORANGE, GREEN, GREY, RED = "#3b528b", "#e8590c", "#2f9e44", "#c5cfe0", "#d33"


def _progress(ax, db: RunDB) -> None:
    series = progress_series(db)
    pts = series["points"]
    full = [p for p in pts if p["fitness"] is not None and not p["proxy"]]
    proxy = [p for p in pts if p["fitness"] is not None and p["proxy"]]
    failed = [p["n"] for p in pts if p["fitness"] is None]
    ax.scatter([p["n"] for p in full], [p["fitness"] for p in full], s=14, color=BLUE, alpha=0.6, label="evaluation")
    if proxy:
        ax.scatter([p["n"] for p in proxy], [p["fitness"] for p in proxy], s=14, facecolors="none",
                   edgecolors="#999", label="proxy run")
    best = series["best"]
    if best:
        xs = [p["n"] for p in best] + [pts[-1]["n"]]
        ys = [p["fitness"] for p in best] + [best[-1]["fitness"]]
        ax.step(xs, ys, where="post", color=ORANGE, lw=2, label="best so far")
        ax.scatter(xs[:-1], ys[:-1], s=22, color=ORANGE, zorder=3)
    if failed:
        ax.plot(failed, [0] * len(failed), "|", color=RED, ms=10, transform=ax.get_xaxis_transform(), label="failed")
    if not pts:
        ax.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax.transAxes, color="#888")
    ax.set_xlabel("evaluations")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fitness (higher is better)")
    ax.set_title(f"{db.config()['track']}: best fitness so far")
    ax.grid(alpha=0.3)
    if pts:
        ax.legend(loc="lower right", fontsize=8)


def _operators(ax, db: RunDB) -> None:
    rows = operator_rows(db)
    names = [r["operator"] for r in rows]
    ys = range(len(rows))
    ax.barh(ys, [r["children"] for r in rows], color=GREY, label="children made")
    ax.barh(ys, [r["improved"] for r in rows], color=GREEN, label="improved on parent")
    for y, r in zip(ys, rows):
        ax.text(r["children"], y, f"  {r['improved']}/{r['children']} ({r['share']:.0%})", va="center", fontsize=8)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("children")
    ax.set_title("operators: children made and share that improved on the parent")
    if rows:
        ax.set_xlim(0, max(r["children"] for r in rows) * 1.3)
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no children made yet", ha="center", va="center", transform=ax.transAxes, color="#888")


def _lineage(ax, db: RunDB) -> None:
    graph = lineage_graph(db)
    ax.set_axis_off()
    ax.set_title(f"lineage of the {ELITE} best (★) back to the seeds")
    if not graph["nodes"]:
        ax.text(0.5, 0.5, "no scored candidate yet", ha="center", va="center", transform=ax.transAxes, color="#888")
        return
    pos = {n["id"]: (n["col"], -n["row"]) for n in graph["nodes"]}
    fits = [n["fitness"] for n in graph["nodes"] if n["fitness"] is not None]
    lo, hi = (min(fits), max(fits)) if fits else (0.0, 1.0)
    cmap = matplotlib.colormaps["viridis"]
    w, h = 0.32, 0.28
    crowd = max(1.0, graph["columns"] / 10)  # long lineages: smaller type, stacked labels
    small, tiny = max(4.0, 8 / crowd), max(3.5, 7 / crowd)
    for e in graph["edges"]:  # through the waypoints of a generation-skipping edge, arrow on the last leg
        pts = [(pos[e["src"]][0] + w, pos[e["src"]][1])]
        pts += [(k + dx, -r) for k, r in e["via"] for dx in (-w, w)]
        (x1, y1), (x2, y2) = pts[-1], (pos[e["dst"]][0] - w, pos[e["dst"]][1])
        style = "-" if e["primary"] else "--"
        if len(pts) > 1:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#8a94a6", lw=1.2, ls=style)
        ax.annotate("", xy=(x2, y2), xytext=(x1, y1),
                    arrowprops=dict(arrowstyle="-|>", color="#8a94a6", lw=1.2, ls=style, shrinkA=0, shrinkB=0))
        if e["primary"]:
            label = e["operator"] if crowd == 1 else e["operator"].replace("mutate_", "m.").replace("perturb_", "p.")
            ax.text((x1 + x2) / 2, (y1 + y2) / 2 + 0.06, label, ha="center", va="bottom", fontsize=tiny,
                    color="#555", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        t = 0.5 if n["fitness"] is None or hi - lo < 1e-12 else (n["fitness"] - lo) / (hi - lo)
        face = "#ccc" if n["fitness"] is None else cmap(t)
        ax.add_patch(FancyBboxPatch((x - w, y - h / 2), 2 * w, h, boxstyle="round,pad=0.02,rounding_size=0.06",
                                    fc=face, ec=ORANGE if n["elite"] else "#333", lw=2.2 if n["elite"] else 0.8,
                                    zorder=3))
        fit = "-" if n["fitness"] is None else f"{n['fitness']:.3g}"
        sep = " " if crowd == 1 else "\n"
        ax.text(x, y, f"{'★' if n['elite'] else ''}#{n['id']}{sep}{fit}", ha="center", va="center", fontsize=tiny,
                family="monospace", color="black" if t > 0.55 or n["fitness"] is None else "white", zorder=4)
    for i, g in enumerate(graph["generations"]):
        ax.text(i, 0.5, f"gen {g}" if crowd == 1 else str(g), ha="center", va="bottom", fontsize=small, color="#555")
    ax.set_xlim(-0.5, graph["columns"] - 0.5)
    ax.set_ylim(-max(graph["rows"] - 1, 0) - 0.5, 0.8)


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
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    {"progress": _progress, "operators": _operators, "lineage": _lineage}[what](ax, db)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format=fmt, dpi=dpi)  # no bbox_inches="tight": that would change the pixel size
    return out_path
