"""The run's figures, each drawn once here with matplotlib (Agg): `synth report` inlines them as SVG
(svg.py), `synth plot` writes them as PNG, SVG or PDF files (png.py).

Each `draw_*` fills one Axes from the plain data of queries.py and returns its marks: artist gid ->
what the HTML page adds to that element (a class, data attributes, tooltips); a file ignores them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, PathPatch
from matplotlib.path import Path as CurvePath
from matplotlib.ticker import FuncFormatter, MaxNLocator

BLUE, ORANGE, GREEN, GREY, RED, MUTED, EDGE = "#3b528b", "#e8590c", "#2f9e44", "#c5cfe0", "#d33", "#888", "#8a94a6"
Marks = dict[str, dict]  # gid -> {"class": str, "data": {name: value}, "title": str, "titles": [str, ...]}


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> tuple[Figure, Axes]:
    """A figure on the Agg canvas (no display, no global pyplot state) with one Axes."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=MUTED, fontsize=12)


def wall_axis(series: dict) -> tuple[str, Callable[[float], str]]:
    """The wall-time axis's label and tick format, in the unit that suits the run's length."""
    span = series["points"][-1]["t"] if series["points"] else 0
    if span > 7200:
        return "wall time (h)", lambda v: f"{v / 3600:g}"
    if span > 300:
        return "wall time (min)", lambda v: f"{v / 60:g}"
    return "wall time (s)", lambda v: f"{v:g}"


# ============================================================================ progress
def draw_progress(ax: Axes, series: dict, key: str = "n", xlabel: str = "evaluations",
                  xfmt: Callable[[float], str] | None = None, title: str | None = None) -> Marks:
    """Every evaluation (hollow: proxy run, red tick: failed), the best so far as a step line, the pass
    target as a dashed line; `key` is "n" (evaluations) or "t" (seconds)."""
    pts, marks = series["points"], {}
    full = [p for p in pts if p["fitness"] is not None and not p["proxy"]]
    proxy = [p for p in pts if p["fitness"] is not None and p["proxy"]]
    failed = [p for p in pts if p["fitness"] is None]

    def tips(group):
        return [f'#{p["id"]}  {p["outcome"]}  fitness {fmt(p["fitness"])}  ({p["steps"]} steps)' for p in group]

    if full:
        ax.scatter([p[key] for p in full], [p["fitness"] for p in full], s=14, color=BLUE, alpha=0.6,
                   label="evaluation", gid="evaluations")
        marks["evaluations"] = {"titles": tips(full)}
    if proxy:
        ax.scatter([p[key] for p in proxy], [p["fitness"] for p in proxy], s=14, facecolors="none",
                   edgecolors="#999", label="proxy run", gid="proxy-runs")
        marks["proxy-runs"] = {"titles": tips(proxy)}
    best = series["best"]
    if best:
        xs = [p[key] for p in best] + [pts[-1][key]]
        ys = [p["fitness"] for p in best] + [best[-1]["fitness"]]
        ax.step(xs, ys, where="post", color=ORANGE, lw=2, label="best so far")
        ax.scatter(xs[:-1], ys[:-1], s=22, color=ORANGE, zorder=3, gid="best")
        marks["best"] = {"titles": [f'new best: #{p["id"]} fitness {fmt(p["fitness"])}' for p in best]}
    if failed:
        ax.plot([p[key] for p in failed], [0] * len(failed), "|", color=RED, ms=10, mew=2,
                transform=ax.get_xaxis_transform(), label="failed", gid="failed")
        marks["failed"] = {"titles": tips(failed)}
    target = series.get("target")
    if target is not None and full + proxy:
        ax.axhline(target, color=GREEN, lw=1.4, ls=(0, (6, 4)), gid="target")
        ax.text(0.99, target, f'target: {series.get("target_label", "pass")} ', color=GREEN, fontsize=8,
                ha="right", va="bottom", transform=ax.get_yaxis_transform())
        marks["target"] = {"class": "target"}
    if not full + proxy:
        _nothing(ax, "no scored evaluation yet")
    ax.set_xlabel(xlabel)
    if xfmt is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: xfmt(v)))
    ax.set_xlim(left=0)
    ax.set_ylabel("fitness (higher is better)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if pts:
        ax.legend(loc="lower right", fontsize=8)
    return marks


# ============================================================================ generations
def generation_width(gens: list[dict]) -> float:
    """Inches for the generation chart: 0.97 in (70 px in the report) per generation, so that 50
    generations keep legible boxes."""
    return max(7.2, 0.97 * len(gens) + 1.1)


def draw_generations(ax: Axes, gens: list[dict]) -> Marks:
    """Per generation a box (quartiles, median, whiskers to min and max) over its scored candidates, the
    candidates as jittered dots, and below: n scored, ⊘ stopped by the cascade, ✗ failed or invalid,
    ≡ duplicates."""
    marks: Marks = {}
    ticks: list[str] = []
    if not any(g["scores"] for g in gens):
        _nothing(ax, "no scored candidate yet")
    for i, g in enumerate(gens):
        scores = [s for _, s in g["scores"]]
        if len(scores) >= 2:
            box = ax.boxplot([scores], positions=[i], widths=0.5, whis=(0, 100), showfliers=False,
                             patch_artist=True, boxprops=dict(facecolor="#dbe4f3", edgecolor=BLUE),
                             medianprops=dict(color=ORANGE, lw=2), whiskerprops=dict(color=BLUE),
                             capprops=dict(color=BLUE))
            box["boxes"][0].set_gid(f"box-{i}")
            q = sorted(scores)
            marks[f"box-{i}"] = {"title": f'gen {g["generation"]}: median {fmt(box["medians"][0].get_ydata()[0])}, '
                                          f'range {fmt(q[0])}-{fmt(q[-1])}, n={len(scores)}'}
        if scores:
            jitter = [(random.Random(cid).random() - 0.5) * 0.4 for cid, _ in g["scores"]]
            ax.scatter([i + j for j in jitter], scores, s=12, color=BLUE, alpha=0.55, zorder=3, gid=f"gen-{i}")
            marks[f"gen-{i}"] = {"titles": [f"#{cid} fitness {fmt(s)}" for cid, s in g["scores"]]}
        lost = g["failed"] + g["invalid"]
        note = (f"n={len(scores)}" + (f" ⊘{g['screened']}" if g["screened"] else "") + (f" ✗{lost}" if lost else "")
                + (f" ≡{g['duplicate']}" if g["duplicate"] else ""))
        ticks.append(f'{g["generation"]}\n{note}')
    ax.set_xticks(range(len(gens)), ticks, fontsize=8)
    ax.set_xlim(-0.5, max(len(gens), 1) - 0.5)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.grid(axis="y", alpha=0.3)
    return marks


# ============================================================================ operators
def draw_operators(ax: Axes, rows: list[dict], title: str | None = None) -> Marks:
    """Per operator, children made (grey) and those that improved on their best parent (green)."""
    marks: Marks = {}
    ys = list(range(len(rows)))
    made = ax.barh(ys, [r["children"] for r in rows], color=GREY, label="children made")
    better = ax.barh(ys, [r["improved"] for r in rows], color=GREEN, label="improved on parent")
    for y, r, a, b in zip(ys, rows, made, better):
        a.set_gid(f"made-{y}")
        b.set_gid(f"improved-{y}")
        marks[f"made-{y}"] = {"title": f'{r["children"]} children: {r["scored"]} scored, {r["failed"]} failed, '
                                       f'{r["duplicates"]} duplicates'}
        marks[f"improved-{y}"] = {"title": f'{r["improved"]} improved on their best parent'}
        ax.text(r["children"], y, f"  {r['improved']}/{r['children']} ({r['share']:.0%})", va="center", fontsize=8)
    ax.set_yticks(ys, [r["operator"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("children")
    if title:
        ax.set_title(title)
    if rows:
        ax.set_xlim(0, max(r["children"] for r in rows) * 1.35 or 1)
        ax.legend(loc="lower right", fontsize=8)
    else:
        _nothing(ax, "no children made yet")
    return marks


# ============================================================================ lineage
HALF_W, HALF_H = 0.26, 0.3  # a node's box around its (column, -row) centre


def lineage_size(graph: dict) -> tuple[float, float]:
    """Inches for the lineage graph at a legible scale: 2.64 in (190 px in the report) per generation,
    0.67 in per row."""
    return max(2.64 * graph["columns"] + 0.55, 4.2), max(0.67 * graph["rows"] + 0.8, 1.7)


def _edge_path(points: list[tuple[float, float]]) -> CurvePath:
    """A smooth curve through the points: a horizontal-tangent cubic Bezier from each to the next."""
    verts, codes = [points[0]], [CurvePath.MOVETO]
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        mx = (xa + xb) / 2
        verts += [(mx, ya), (mx, yb), (xb, yb)]
        codes += [CurvePath.CURVE4] * 3
    return CurvePath(verts, codes)


def draw_lineage(ax: Axes, graph: dict, title: str | None = None) -> Marks:
    """The elite's ancestry by generation: a node per candidate coloured by fitness (★ elite), an edge per
    parent (dashed: second parent) labelled with the operator, through waypoints when it skips columns."""
    marks: Marks = {}
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if not graph["nodes"]:
        _nothing(ax, "no scored candidate yet")
        return marks
    pos = {n["id"]: (n["col"], -n["row"]) for n in graph["nodes"]}
    fits = [n["fitness"] for n in graph["nodes"] if n["fitness"] is not None]
    lo, hi = (min(fits), max(fits)) if fits else (0.0, 1.0)
    cmap = matplotlib.colormaps["viridis"]
    per_column = ax.figure.get_figwidth() * ax.get_position().width / graph["columns"]  # inches
    crowd = 0.8 > per_column  # long lineages: short labels, stacked
    tiny = min(10.0, max(3.5, 7 * per_column / 0.8))  # type in points scales with the room per column
    small = tiny + 1
    for k, e in enumerate(graph["edges"]):
        pts = [(pos[e["src"]][0] + HALF_W, pos[e["src"]][1])]
        pts += [(c + dx, -r) for c, r in e["via"] for dx in (-HALF_W, HALF_W)]
        pts.append((pos[e["dst"]][0] - HALF_W, pos[e["dst"]][1]))
        ax.add_patch(PathPatch(_edge_path(pts), fc="none", ec=EDGE, lw=1.3, ls="-" if e["primary"] else (0, (4, 3)),
                               gid=f"edge-{k}"))
        marks[f"edge-{k}"] = {"class": "edge" if e["primary"] else "edge second",
                              "data": {"src": e["src"], "dst": e["dst"]}}
        if e["primary"]:  # the label sits in the gap just before the child
            (x1, y1), (x2, y2) = pts[-2], pts[-1]
            label = e["operator"] if not crowd else e["operator"].replace("mutate_", "m.").replace("perturb_", "p.")
            ax.text((x1 + x2) / 2, (y1 + y2) / 2 + 0.05, label, ha="center", va="bottom", fontsize=max(3.5, tiny - 2),
                    color="#555", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        t = 0.5 if n["fitness"] is None or hi - lo < 1e-12 else (n["fitness"] - lo) / (hi - lo)
        gid = f"node-{n['id']}"
        ax.add_patch(FancyBboxPatch((x - HALF_W, y - HALF_H / 2), 2 * HALF_W, HALF_H,
                                    boxstyle="round,pad=0.02,rounding_size=0.06",
                                    fc="#ccc" if n["fitness"] is None else cmap(t),
                                    ec=ORANGE if n["elite"] else "#333", lw=2.2 if n["elite"] else 0.8,
                                    zorder=3, gid=gid))
        marks[gid] = {"class": "lineage-node elite" if n["elite"] else "lineage-node", "data": {"id": n["id"]},
                      "title": f'#{n["id"]} {n["operator"]}: {n["verdict"]}'}
        sep = "\n" if crowd else " "
        ax.text(x, y, f"{'★' if n['elite'] else ''}#{n['id']}{sep}{fmt(n['fitness'], 3)}", ha="center",
                va="center", fontsize=tiny, family="monospace", zorder=4,
                color="black" if t > 0.55 or n["fitness"] is None else "white")
    for i, g in enumerate(graph["generations"]):
        ax.text(i, 0.45, str(g) if crowd else f"gen {g}", ha="center", va="bottom", fontsize=small, color="#555")
    ax.set_xlim(-0.5, graph["columns"] - 0.5)
    ax.set_ylim(-max(graph["rows"] - 1, 0) - 0.5, 0.75)
    return marks


# ============================================================================ search against baseline
def draw_comparison(ax: Axes, sides: list[tuple[str, dict, str]]) -> Marks:
    """Best fitness so far against cost, one step line per (name, side of synth.baseline.compare.comparison, colour)."""
    for name, side, color in sides:
        pts = [p for p in side["points"] if p["fitness"] is not None]
        if pts:
            ax.step([p["cost"] for p in pts] + [side["cost"]], [p["fitness"] for p in pts] + [pts[-1]["fitness"]],
                    where="post", color=color, lw=2, label=name)
    if not any(side["points"] for _, side, _ in sides):
        _nothing(ax, "no evaluation yet")
    else:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(left=0)
    ax.set_xlabel("full-budget-equivalent evaluations")
    ax.set_ylabel("best fitness so far")
    ax.grid(alpha=0.3)
    return {}
