"""One self-contained HTML page about a run: progress, generations, operators, the elite's lineage, top table.

Everything is inline (CSS, a little JS, SVG drawn here in Python), so the page renders offline and can be
mailed or attached as it is. The data helpers (`progress_series`, `generation_scores`, `operator_rows`,
`lineage_graph`) are shared with synth/plots.py, which draws the same figures with matplotlib.
"""

from __future__ import annotations

import html
import json
import math
import random
import statistics
import time
from pathlib import Path

from population.db import RunDB
from synth.fitness import describe
from synth.inspect import edge_diff, leaderboard, search_result

ELITE = 3  # the lineage graph shows the ancestry of this many best candidates
TOP = 10  # rows in the top table
VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


# ============================================================================ data
def _finite(x) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def search_steps(db: RunDB) -> tuple[int | None, int | None]:
    """(full, proxy): the training steps of the run's search evaluations and of its fidelity-cascade proxies."""
    cfg = db.config()
    full = cfg.get("steps")
    if full is None:
        try:
            from evaluator.tracks import get_track  # imports torch: only when the config leaves steps to the track
            full = get_track(cfg["track"]).max_steps
        except Exception:
            full = None
    return full, cfg.get("proxy_steps")


def progress_series(db: RunDB) -> dict:
    """Every search evaluation (run track, benchmark seeds, search or proxy steps) in recorded order,
    and the points where the best so far rose.

    Proxy runs are kept (`proxy`: True) but never set the best, as their fitness is not comparable with a
    full run's; the finalists' re-runs at other step counts and the held-out seed sets are left out.
    """
    track = db.config()["track"]
    evals = db.evaluations(track=track, seed_set="benchmark")
    full, proxy_steps = search_steps(db) if evals else (None, None)
    if full is None and evals:
        full = statistics.mode(e.steps for e in evals)
    evals = [e for e in evals if e.steps == full or e.steps == proxy_steps]
    cands = db.candidates()
    starts = [c.created_at for c in cands[:1]] + [e.created_at for e in evals[:1]]
    t0 = min(starts) if starts else 0.0
    points, best, top = [], [], None
    for n, ev in enumerate(evals, 1):
        fit, proxy = _finite(ev.fitness), ev.steps != full
        point = {"n": n, "t": max(ev.created_at - t0, 0.0), "id": ev.candidate_id, "fitness": fit,
                 "proxy": proxy, "outcome": ev.outcome, "steps": ev.steps}
        points.append(point)
        if fit is not None and not proxy and (top is None or fit > top):
            top = fit
            best.append(point)
    return {"points": points, "best": best, "full_steps": full, **_target(track)}


def _target(track: str) -> dict:
    """The fitness that meets the track's target, for the line the progress charts draw."""
    try:
        from evaluator.tracks import get_track
        from synth.fitness import target_fitness

        spec = get_track(track)
    except Exception:
        return {}
    label = f"MSE {spec.target_mse:g}" if spec.task == "regression" else f"pass (accuracy {spec.target_accuracy:g})"
    return {"target": target_fitness(track), "target_label": label}


def generation_scores(db: RunDB) -> list[dict]:
    """Per generation: (id, fitness) of its scored candidates and how many failed, were duplicates or were
    stopped by the cascade (`screened`)."""
    gens: dict[int, dict] = {}
    for c in db.candidates():
        g = gens.setdefault(c.generation, {"generation": c.generation, "scores": [], "failed": 0, "duplicate": 0,
                                           "invalid": 0, "pending": 0, "screened": 0})
        if c.status == "scored" and _finite(c.fitness) is not None:
            g["scores"].append((c.id, c.fitness))
        elif c.status in g:
            g[c.status] += 1
    return [gens[k] for k in sorted(gens)]


def operator_rows(db: RunDB) -> list[dict]:
    """operator_stats() of the variation operators (not the seeds) plus improvement share and LLM spend."""
    cost: dict[str, float] = {}
    calls: dict[str, int] = {}
    for call in db.llm_calls():
        cost[call.operator] = cost.get(call.operator, 0.0) + call.cost_usd
        calls[call.operator] = calls.get(call.operator, 0) + 1
    rows = []
    for s in db.operator_stats():
        if s["operator"] == "seed":
            continue
        row = dict(s)
        row["share"] = s["improved"] / s["children"] if s["children"] else 0.0
        row["llm_calls"] = calls.get(s["operator"], 0)
        row["llm_cost"] = cost.get(s["operator"])
        row["cost_per_improvement"] = (cost[s["operator"]] / s["improved"]
                                       if s["operator"] in cost and s["improved"] else None)
        rows.append(row)
    return rows


def lineage_graph(db: RunDB, elite: int = ELITE) -> dict:
    """The ancestry of the `elite` best scored candidates, laid out by generation.

    Nodes get a column (their generation's rank) and a row. An edge that skips generations gets a waypoint
    in each column it crosses (`via`, [col, row] pairs), so it runs in a lane of its own instead of behind
    other nodes. Within a column, nodes and waypoints are ordered by the mean row of what feeds them
    (one barycentre pass) and centred, which keeps most edges short and straight.
    """
    best = [c for c in db.top(elite * 4 + 10) if c.status == "scored"][:elite]
    nodes = {}
    for c in best:
        nodes.update(db.ancestors(c.id))
        nodes[c.id] = c
    rank = {c.id: i + 1 for i, c in enumerate(best)}
    gens = sorted({c.generation for c in nodes.values()})
    col = {g: i for i, g in enumerate(gens)}
    edges, feeds = [], {}  # feeds: what each column member hangs from (node ids or waypoint keys)
    members: list[list] = [[c.id for c in sorted(nodes.values(), key=lambda c: c.id) if c.generation == g] for g in gens]
    for c in sorted(nodes.values(), key=lambda c: c.id):
        feeds[c.id] = []
        for j, p in enumerate(c.parents):
            if p not in nodes:
                continue
            op = c.operator + (f" ({c.model})" if c.model else "")
            edge = {"src": p, "dst": c.id, "operator": op, "primary": j == 0, "via": []}
            prev = p
            for k in range(col[nodes[p].generation] + 1, col[c.generation]):
                key = ("via", len(edges), k)
                members[k].append(key)
                feeds[key] = [prev]
                prev = key
            feeds[c.id].append(prev)
            edges.append(edge)
    height = max((len(m) for m in members), default=0)
    row: dict = {}
    for k, column in enumerate(members):
        def bary(key):
            ys = [row[f] for f in feeds[key] if f in row]
            return (sum(ys) / len(ys) if ys else -1.0, isinstance(key, tuple), str(key))
        column.sort(key=bary)
        offset = (height - len(column)) / 2
        for i, key in enumerate(column):
            row[key] = i + offset
            if isinstance(key, tuple):
                edges[key[1]]["via"].append([k, row[key]])
    out_nodes = []
    for c in sorted(nodes.values(), key=lambda c: (c.generation, row[c.id])):
        result = search_result(db, c)
        parent = nodes.get(c.parents[0]) if c.parents else None
        out_nodes.append({
            "id": c.id, "generation": c.generation, "col": col[c.generation], "row": row[c.id],
            "operator": c.operator, "model": c.model, "parents": c.parents, "status": c.status,
            "fitness": _finite(c.fitness), "verdict": describe(result) if result else c.status,
            "elite": rank.get(c.id), "kind": c.kind,
            "diff": edge_diff(parent, c) if parent else "",
            "code": c.genome or c.source if parent is None else "",
        })
    return {"nodes": out_nodes, "edges": edges, "columns": len(gens), "rows": height, "generations": gens}


# ============================================================================ SVG helpers
def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    digits = max(0, -math.floor(math.log10(step)) + 1)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, digits) for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


def _domain(values: list[float], pad: float = 0.06) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def _color(t: float) -> str:
    """Viridis at t in [0, 1]."""
    t = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    a, b, f = VIRIDIS[i], VIRIDIS[i + 1], t - i
    return "#" + "".join(f"{round(int(a[k:k + 2], 16) * (1 - f) + int(b[k:k + 2], 16) * f):02x}" for k in (1, 3, 5))


class _Frame:
    """A plot area inside an SVG of width x height with linear scales and drawn axes."""

    def __init__(self, w, h, xdom, ydom, ml=58, mr=14, mt=12, mb=42):
        self.w, self.h, self.ml, self.mr, self.mt, self.mb = w, h, ml, mr, mt, mb
        self.xdom, self.ydom = xdom, ydom

    def x(self, v):
        lo, hi = self.xdom
        return self.ml + (v - lo) / (hi - lo) * (self.w - self.ml - self.mr)

    def y(self, v):
        lo, hi = self.ydom
        return self.h - self.mb - (v - lo) / (hi - lo) * (self.h - self.mt - self.mb)

    def axes(self, xlabel, ylabel, xticks=None, xfmt=lambda v: f"{v:g}") -> list[str]:
        out = []
        x0, x1, y0, y1 = self.ml, self.w - self.mr, self.h - self.mb, self.mt
        for v in _ticks(*self.ydom):
            y = self.y(v)
            out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>'
                       f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        for v in (xticks if xticks is not None else _ticks(*self.xdom)):
            x = self.x(v)
            out.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}"/>'
                       f'<text class="tick" x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{_esc(xfmt(v))}</text>')
        out.append(f'<line class="axis" x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}"/>'
                   f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}"/>'
                   f'<text class="label" x="{(x0 + x1) / 2:.1f}" y="{self.h - 6}" text-anchor="middle">{_esc(xlabel)}</text>'
                   f'<text class="label" transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{_esc(ylabel)}</text>')
        return out


def _svg(w, h, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{_esc(label)}">'
            + "".join(body) + "</svg>")


def _empty(w, h, text) -> str:
    return _svg(w, h, [f'<text class="note" x="{w / 2}" y="{h / 2}" text-anchor="middle">{_esc(text)}</text>'], text)


# ============================================================================ charts
def _progress_panel(series: dict, key: str, xlabel: str, xfmt) -> str:
    w, h = 520, 300
    pts = series["points"]
    scored = [p for p in pts if p["fitness"] is not None]
    if not scored:
        return _empty(w, h, "no scored evaluation yet")
    last = pts[-1][key]
    target = series.get("target")
    f = _Frame(w, h, (0, max(last, 1e-9) * 1.02),
               _domain([p["fitness"] for p in scored] + ([target] if target is not None else [])))
    body = f.axes(xlabel, "fitness (higher is better)", xfmt=xfmt)
    if target is not None:
        y = f.y(target)
        body.append(f'<line class="target" x1="{f.ml}" x2="{f.w - f.mr}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="note target-label" x="{f.w - f.mr - 4}" y="{y - 5:.1f}" text-anchor="end">'
                    f'target: {_esc(series.get("target_label", "pass"))}</text>')
    for p in pts:
        tip = f'#{p["id"]}  {p["outcome"]}  fitness {_fmt(p["fitness"])}  ({p["steps"]} steps)'
        if p["fitness"] is None:  # failures: a red tick on the floor
            x = f.x(p[key])
            body.append(f'<line class="failtick" x1="{x:.1f}" x2="{x:.1f}" y1="{f.h - f.mb - 7}" y2="{f.h - f.mb}">'
                        f'<title>{_esc(tip)}</title></line>')
        else:
            cls = "pt proxy" if p["proxy"] else "pt"
            body.append(f'<circle class="{cls}" cx="{f.x(p[key]):.1f}" cy="{f.y(p["fitness"]):.1f}" r="3">'
                        f'<title>{_esc(tip)}</title></circle>')
    path, prev = [], None
    for p in series["best"]:
        x, y = f.x(p[key]), f.y(p["fitness"])
        path.append(f"M{x:.1f},{y:.1f}" if prev is None else f"H{x:.1f}V{y:.1f}")
        prev = y
    if path:
        path.append(f"H{f.x(last):.1f}")
        body.append(f'<path class="best" d="{"".join(path)}"/>')
        for p in series["best"]:
            body.append(f'<circle class="bestpt" cx="{f.x(p[key]):.1f}" cy="{f.y(p["fitness"]):.1f}" r="4">'
                        f'<title>new best: #{p["id"]} fitness {_fmt(p["fitness"])}</title></circle>')
    return _svg(w, h, body, f"best fitness so far against {xlabel}")


def _wall_fmt(series: dict):
    span = series["points"][-1]["t"] if series["points"] else 0
    if span > 7200:
        return "wall time (h)", lambda v: f"{v / 3600:g}"
    if span > 300:
        return "wall time (min)", lambda v: f"{v / 60:g}"
    return "wall time (s)", lambda v: f"{v:g}"


def _generation_chart(gens: list[dict]) -> str:
    w = max(520, 70 * len(gens) + 80)
    h = 300
    values = [s for g in gens for _, s in g["scores"]]
    if not values:
        return _empty(w, h, "no scored candidate yet")
    f = _Frame(w, h, (-0.5, len(gens) - 0.5), _domain(values), mb=52)
    body = f.axes("generation", "fitness", xticks=list(range(len(gens))), xfmt=lambda i: gens[int(i)]["generation"])
    half = min(22, 0.3 * (f.x(1) - f.x(0)))
    for i, g in enumerate(gens):
        cx = f.x(i)
        scores = sorted(s for _, s in g["scores"])
        if len(scores) >= 2:
            q1, med, q3 = statistics.quantiles(scores, n=4, method="inclusive")
            body.append(f'<line class="whisker" x1="{cx:.1f}" x2="{cx:.1f}" y1="{f.y(scores[0]):.1f}" y2="{f.y(scores[-1]):.1f}"/>'
                        f'<rect class="box" x="{cx - half:.1f}" y="{f.y(q3):.1f}" width="{2 * half:.1f}" '
                        f'height="{max(f.y(q1) - f.y(q3), 1):.1f}"><title>gen {g["generation"]}: median {_fmt(med)}, '
                        f'IQR {_fmt(q1)}-{_fmt(q3)}, n={len(scores)}</title></rect>'
                        f'<line class="median" x1="{cx - half:.1f}" x2="{cx + half:.1f}" y1="{f.y(med):.1f}" y2="{f.y(med):.1f}"/>')
        for cid, s in g["scores"]:
            jitter = (random.Random(cid).random() - 0.5) * half * 1.4
            body.append(f'<circle class="pt" cx="{cx + jitter:.1f}" cy="{f.y(s):.1f}" r="3">'
                        f'<title>#{cid} fitness {_fmt(s)}</title></circle>')
        lost = g["failed"] + g["invalid"]
        note = (f"n={len(scores)}" + (f" ⊘{g['screened']}" if g["screened"] else "") + (f" ✗{lost}" if lost else "")
                + (f" ≡{g['duplicate']}" if g["duplicate"] else ""))
        body.append(f'<text class="tick small" x="{cx:.1f}" y="{f.h - f.mb + 28}" text-anchor="middle">{_esc(note)}</text>')
    return _svg(w, h, body, "fitness distribution per generation")


def _operator_chart(rows: list[dict]) -> str:
    w, bar_h = 520, 22
    h = 40 + bar_h * 1.5 * len(rows)
    if not rows:
        return _empty(w, 80, "no children made yet")
    ml, mr = 130, 150
    most = max(r["children"] for r in rows) or 1
    scale = (w - ml - mr) / most
    body = []
    for i, r in enumerate(rows):
        y = 14 + i * bar_h * 1.5
        body.append(f'<text class="tick" x="{ml - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">{_esc(r["operator"])}</text>'
                    f'<rect class="bar" x="{ml}" y="{y:.1f}" width="{r["children"] * scale:.1f}" height="{bar_h}">'
                    f'<title>{r["children"]} children: {r["scored"]} scored, {r["failed"]} failed, '
                    f'{r["duplicates"]} duplicates</title></rect>'
                    f'<rect class="bar improved" x="{ml}" y="{y:.1f}" width="{r["improved"] * scale:.1f}" height="{bar_h}">'
                    f'<title>{r["improved"]} improved on their best parent</title></rect>'
                    f'<text class="tick" x="{ml + r["children"] * scale + 6:.1f}" y="{y + bar_h * 0.7:.1f}">'
                    f'{r["improved"]}/{r["children"]} improved ({r["share"]:.0%})</text>')
    body.append(f'<rect class="bar improved" x="{ml}" y="{h - 16}" width="10" height="10"/>'
                f'<text class="tick small" x="{ml + 14}" y="{h - 7}">improved on parent</text>'
                f'<rect class="bar" x="{ml + 130}" y="{h - 16}" width="10" height="10"/>'
                f'<text class="tick small" x="{ml + 144}" y="{h - 7}">children made</text>')
    return _svg(w, h, body, "children and improvements per operator")


def _operator_table(rows: list[dict]) -> str:
    llm = any(r["llm_calls"] for r in rows)
    head = ["operator", "children", "scored", "failed", "dupes", "improved", "share", "mean Δ fitness"]
    head += ["LLM calls", "LLM $", "$ / improvement"] if llm else []
    out = ["<table class='data'><thead><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    for r in rows:
        cells = [r["operator"], r["children"], r["scored"], r["failed"], r["duplicates"], r["improved"],
                 f'{r["share"]:.0%}', "-" if r["mean_delta"] is None else f'{r["mean_delta"]:+.4f}']
        if llm:
            cells += [r["llm_calls"] or "-", "-" if r["llm_cost"] is None else f'{r["llm_cost"]:.4f}',
                      "-" if r["cost_per_improvement"] is None else f'{r["cost_per_improvement"]:.4f}']
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table>"


def _bezier_y(x1, y1, mx, x2, y2, x) -> float:
    """y of the edge curve M x1,y1 C mx,y1 mx,y2 x2,y2 where it passes x (x is monotonic in t)."""
    lo, hi = 0.0, 1.0
    for _ in range(30):
        t = (lo + hi) / 2
        xt = (1 - t) ** 3 * x1 + 3 * (1 - t) * t * mx + t ** 3 * x2
        lo, hi = (t, hi) if xt < x else (lo, t)
    t = (lo + hi) / 2
    return (1 - t) ** 3 * y1 + 3 * (1 - t) ** 2 * t * y1 + 3 * (1 - t) * t ** 2 * y2 + t ** 3 * y2


def _lineage_svg(graph: dict) -> str:
    cw, rh, nw, nh = 190, 48, 96, 28
    w, h = max(cw * graph["columns"] + 40, 300), max(rh * graph["rows"] + 56, 120)
    if not graph["nodes"]:
        return _empty(w, h, "no scored candidate yet")
    pos = {n["id"]: (30 + nw / 2 + n["col"] * cw, 40 + n["row"] * rh + nh / 2) for n in graph["nodes"]}
    fits = [n["fitness"] for n in graph["nodes"] if n["fitness"] is not None]
    lo, hi = (min(fits), max(fits)) if fits else (0, 1)
    body = [f'<text class="tick" x="{x:.0f}" y="16" text-anchor="middle">gen {g}</text>'
            for g, x in zip(graph["generations"], (30 + nw / 2 + i * cw for i in range(graph["columns"])))]
    for e in graph["edges"]:  # smooth curve from the parent's right side through waypoints to the child's left
        pts = [(pos[e["src"]][0] + nw / 2, pos[e["src"]][1])]
        for k, r in e["via"]:
            pts += [(30 + k * cw, 40 + r * rh + nh / 2), (30 + nw + k * cw, 40 + r * rh + nh / 2)]
        pts.append((pos[e["dst"]][0] - nw / 2, pos[e["dst"]][1]))
        d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            mx = (xa + xb) / 2
            d += f" C{mx:.1f},{ya:.1f} {mx:.1f},{yb:.1f} {xb:.1f},{yb:.1f}"
        cls = "edge" if e["primary"] else "edge second"
        body.append(f'<path class="{cls}" data-src="{e["src"]}" data-dst="{e["dst"]}" d="{d}"/>')
        if e["primary"]:  # the label sits in the gap just before the child
            (xa, ya), (xb, yb) = pts[-2], pts[-1]
            lx = (xa + xb) / 2
            ly = _bezier_y(xa, ya, lx, xb, yb, lx)
            body.append(f'<text class="edgelabel" x="{lx:.1f}" y="{ly - 3:.1f}" text-anchor="middle">'
                        f'{_esc(e["operator"])}</text>')
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        t = 0.5 if n["fitness"] is None or hi - lo < 1e-12 else (n["fitness"] - lo) / (hi - lo)
        fill = "#ccc" if n["fitness"] is None else _color(t)
        ink = "#000" if t > 0.55 or n["fitness"] is None else "#fff"
        cls = "lineage-node" + (" elite" if n["elite"] else "")
        body.append(f'<g class="{cls}" data-id="{n["id"]}" tabindex="0" transform="translate({x - nw / 2:.1f} {y - nh / 2:.1f})">'
                    f'<rect width="{nw}" height="{nh}" rx="6" fill="{fill}"/>'
                    f'<text x="{nw / 2}" y="{nh / 2 + 4}" text-anchor="middle" fill="{ink}">'
                    f'{"★" if n["elite"] else ""}#{n["id"]} {_fmt(n["fitness"], 3)}</text>'
                    f'<title>#{n["id"]} {_esc(n["operator"])}: {_esc(n["verdict"])}</title></g>')
    return _svg(w, h, body, "lineage of the elite")


# ============================================================================ page
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#222;background:#f6f7f9;margin:0}
main{max-width:1120px;margin:0 auto;padding:18px 22px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:14px 16px;margin:14px 0}
.meta{color:#555}.meta b{color:#222}.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.scroll{overflow-x:auto}svg{display:block;font-size:11px}
.grid{stroke:#eee}.axis{stroke:#888}.tick{fill:#555}.small{font-size:10px}.label{fill:#333;font-size:12px}
.note{fill:#888;font-size:14px}.pt{fill:#3b528b;fill-opacity:.55}.pt.proxy{fill:none;stroke:#999}
.failtick{stroke:#d33;stroke-width:2}.target{stroke:#2f9e44;stroke-width:1.4;stroke-dasharray:6 4}
.target-label{fill:#2f9e44;font-size:11px}.best{fill:none;stroke:#e8590c;stroke-width:2.2}.bestpt{fill:#e8590c}
.box{fill:#dbe4f3;stroke:#3b528b}.median{stroke:#e8590c;stroke-width:2}.whisker{stroke:#3b528b}
.bar{fill:#c5cfe0}.bar.improved{fill:#2f9e44}
.edge{fill:none;stroke:#8a94a6;stroke-width:1.4}.edge.second{stroke-dasharray:4 3}.edge.hot{stroke:#e8590c;stroke-width:2.4}
.edgelabel{fill:#666;font-size:10px;paint-order:stroke;stroke:#fff;stroke-width:3px}
.lineage-node{cursor:pointer}.lineage-node rect{stroke:#333;stroke-width:.8}.lineage-node.elite rect{stroke:#e8590c;stroke-width:2.5}
.lineage-node.sel rect{stroke:#000;stroke-width:3}.lineage-node text{font:11px ui-monospace,monospace}
#node-detail{flex:1;min-width:320px}#node-detail pre{background:#fafbfc;border:1px solid #eee;padding:8px;
 max-height:420px;overflow:auto;font:12px/1.35 ui-monospace,monospace;margin:6px 0 0}
.add{color:#1a7f37;background:#e6ffec}.del{color:#b42318;background:#ffebe9}.hunk{color:#6f42c1}
table.data{border-collapse:collapse;font-size:13px}table.data th,table.data td{padding:4px 9px;border-bottom:1px solid #eee;text-align:right}
table.data th{background:#f3f4f6}table.data td:first-child,table.data th:first-child{text-align:left}
#top-table tbody tr{cursor:pointer}#top-table tbody tr:hover{background:#fff8e6}
"""

JS = """
const D = JSON.parse(document.getElementById('report-data').textContent);
const byId = {}; D.nodes.forEach(n => byId[n.id] = n);
const panel = document.getElementById('node-detail');
let pinned = null;
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function colour(text) {
  return text.split('\\n').map(l => {
    const c = l.startsWith('@@') ? 'hunk' : (l.startsWith('+') && !l.startsWith('+++')) ? 'add'
      : (l.startsWith('-') && !l.startsWith('---')) ? 'del' : '';
    return c ? `<span class="${c}">${esc(l)}</span>` : esc(l);
  }).join('\\n');
}
function show(id) {
  const n = byId[id]; if (!n) return;
  const held = (D.heldout[id] || null);
  panel.innerHTML = `<h2>#${n.id}${n.elite ? ' &mdash; elite #' + n.elite : ''}</h2>
    <div class="meta">generation <b>${n.generation}</b> &middot; ${esc(n.operator)}${n.model ? ' (' + esc(n.model) + ')' : ''}
    &middot; parents <b>${n.parents.length ? n.parents.map(p => '#' + p).join(', ') : 'none (seed)'}</b><br>
    status <b>${esc(n.status)}</b> &middot; ${esc(n.verdict)} &middot; fitness <b>${n.fitness === null ? '-' : n.fitness.toPrecision(5)}</b>
    ${held ? ' &middot; held-out ' + held.mean.toPrecision(4) + ' &plusmn; ' + held.std.toPrecision(2) + ' (k=' + held.k + ')' : ''}</div>
    <pre>${n.parents.length ? (n.diff ? colour(n.diff) : '(no textual change against #' + n.parents[0] + ')') : esc(n.code)}</pre>`;
  document.querySelectorAll('.lineage-node').forEach(g => g.classList.toggle('sel', g.dataset.id == id));
  document.querySelectorAll('#lineage-graph .edge').forEach(e => e.classList.toggle('hot', e.dataset.dst == id));
}
document.querySelectorAll('.lineage-node').forEach(g => {
  g.addEventListener('mouseenter', () => { if (pinned === null) show(g.dataset.id); });
  g.addEventListener('mouseleave', () => { if (pinned === null && D.best !== null) show(D.best); });
  g.addEventListener('click', () => { pinned = pinned == g.dataset.id ? null : g.dataset.id; show(g.dataset.id); });
  g.addEventListener('keydown', ev => { if (ev.key === 'Enter') g.dispatchEvent(new Event('click')); });
});
document.querySelectorAll('#top-table tbody tr').forEach(tr => tr.addEventListener('click', () => {
  if (byId[tr.dataset.id]) { pinned = tr.dataset.id; show(pinned);
    document.getElementById('lineage-graph').scrollIntoView({behavior: 'smooth'}); }
}));
if (D.best !== null) show(D.best);
"""


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _top_table(board: dict) -> str:
    head = ("rank", "id", "gen", "operator", "fitness", "verdict", "held-out mean ± std", "parents")
    out = ["<table class='data' id='top-table'><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for rank, r in enumerate(board["top"], 1):
        held = r["heldout"]
        cells = (rank, f'#{r["id"]}', r["generation"], r["operator"] + (f' ({r["model"]})' if r["model"] else ""),
                 _fmt(r["fitness"], 5), r["verdict"],
                 f'{held["mean"]:.4g} ± {held["std"]:.2g} (k={held["k"]})' if held else "-",
                 ", ".join(f"#{p}" for p in r["parents"]) or "seed")
        out.append(f'<tr data-id="{r["id"]}">' + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    if not board["top"]:
        out.append(f'<tr><td colspan="{len(head)}">no scored candidate yet</td></tr>')
    return "".join(out) + "</tbody></table>"


def _baseline_section(db: RunDB, baseline: RunDB | None) -> str:
    if baseline is None:
        return ""
    from synth.compare import comparison_html

    return comparison_html(db, baseline)


def write_report(db: RunDB, out_path: Path, baseline: RunDB | None = None) -> Path:
    """Writes the run's report as one self-contained HTML file (no network needed to view it); with
    `baseline` (a `synth baseline` run), a section comparing the two at equal cost (synth/compare.py)."""
    out_path = Path(out_path)
    board = leaderboard(db, TOP)
    series, gens, ops, graph = progress_series(db), generation_scores(db), operator_rows(db), lineage_graph(db)
    track = board["track"]
    wall_label, wall_fmt = _wall_fmt(series)
    best = board["top"][0] if board["top"] else None
    llm = board["llm"]
    heldout = {r["id"]: r["heldout"] for r in board["top"] if r["heldout"]}
    data = {"nodes": graph["nodes"], "best": best["id"] if best else None, "heldout": heldout}
    blob = json.dumps(_jsonable(data), separators=(",", ":")).replace("</", "<\\/")
    counts = " · ".join(f"{k} <b>{v}</b>" for k, v in board["counts"].items() if v)
    span = series["points"][-1]["t"] if series["points"] else 0.0
    sessions = db.get_state("sessions")  # wall time of the evolve commands, warm-up and finalists included
    span = sessions["wall_s"] if sessions else span
    generations = max((g["generation"] for g in gens), default=0)  # generation 0 is the seeds
    summary = [f"track <b>{_esc(track)}</b>", f"generations <b>{generations}</b>", counts,
               f"evaluations <b>{len(series['points'])}</b>", f"wall time <b>{span / 60:.1f} min</b>"]
    if best:
        summary.append(f"best <b>#{best['id']}</b> {_esc(best['verdict'])} (fitness {_fmt(best['fitness'], 5)})")
    if llm.get("calls"):
        summary.append(f"LLM <b>{llm['calls']}</b> calls, {llm['tokens_in']}+{llm['tokens_out']} tokens, "
                       f"<b>${llm['cost_usd']:.4f}</b>")
    title = f"synth run report - {track}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_esc(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>{_esc(title)}</h1>
<div class="meta">{" · ".join(summary)}<br>generated {time.strftime("%Y-%m-%d %H:%M:%S")} from {_esc(db.path)}</div>
{_baseline_section(db, baseline)}<section><h2>Best fitness so far</h2>
<div class="meta">orange: best so far; dots: each evaluation (hollow: short proxy run); red ticks: failed runs</div>
<div id="progress-chart" class="row">{_progress_panel(series, "n", "evaluations", lambda v: f"{v:g}")}
{_progress_panel(series, "t", wall_label, wall_fmt)}</div></section>
<section><h2>Fitness per generation</h2>
<div class="meta">box: quartiles and median; dots: scored candidates; below: n scored, ⊘ stopped by the cascade, ✗ failed or invalid, ≡ duplicates</div>
<div id="generation-chart" class="scroll">{_generation_chart(gens)}</div></section>
<section><h2>Operators</h2>
<div class="meta">improved: scored children fitter than their best parent; share = improved / children made;
mean Δ over scored children with a scored parent</div>
<div class="row"><div id="operator-chart">{_operator_chart(ops)}</div><div>{_operator_table(ops)}</div></div></section>
<section><h2>Lineage of the elite</h2>
<div class="meta">ancestry of the {ELITE} best (★) back to the seeds, by generation; dashed: second parent;
colour: fitness (dark low, yellow high). Hover a node for its change against its first parent, click to pin it.</div>
<div class="row"><div id="lineage-graph" class="scroll">{_lineage_svg(graph)}</div>
<div id="node-detail"><div class="meta">no candidate selected</div></div></div></section>
<section><h2>Top candidates</h2>
<div class="meta">held-out: mean ± std of the track metric over held-out seed sets, when scored (synth export)</div>
<div class="scroll">{_top_table(board)}</div></section>
</main>
<script type="application/json" id="report-data">{blob}</script>
<script>{JS}</script>
</body></html>
"""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path
