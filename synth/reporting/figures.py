"""The report's figures as inline SVG, drawn here in Python: progress, generations, operators, lineage.

Plain strings in, plain SVG out (no browser, no plotting library), so the page works offline.
"""

from __future__ import annotations

import html
import math
import random
import statistics

VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


# ============================================================================ SVG helpers
def esc(x) -> str:
    return html.escape(str(x), quote=True)


def fmt(v: float | None, digits: int = 4) -> str:
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
                       f'<text class="tick" x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{esc(xfmt(v))}</text>')
        out.append(f'<line class="axis" x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}"/>'
                   f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}"/>'
                   f'<text class="label" x="{(x0 + x1) / 2:.1f}" y="{self.h - 6}" text-anchor="middle">{esc(xlabel)}</text>'
                   f'<text class="label" transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{esc(ylabel)}</text>')
        return out


def _svg(w, h, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{esc(label)}">'
            + "".join(body) + "</svg>")


def _empty(w, h, text) -> str:
    return _svg(w, h, [f'<text class="note" x="{w / 2}" y="{h / 2}" text-anchor="middle">{esc(text)}</text>'], text)


# ============================================================================ charts
def progress_panel(series: dict, key: str, xlabel: str, xfmt) -> str:
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
                    f'target: {esc(series.get("target_label", "pass"))}</text>')
    for p in pts:
        tip = f'#{p["id"]}  {p["outcome"]}  fitness {fmt(p["fitness"])}  ({p["steps"]} steps)'
        if p["fitness"] is None:  # failures: a red tick on the floor
            x = f.x(p[key])
            body.append(f'<line class="failtick" x1="{x:.1f}" x2="{x:.1f}" y1="{f.h - f.mb - 7}" y2="{f.h - f.mb}">'
                        f'<title>{esc(tip)}</title></line>')
        else:
            cls = "pt proxy" if p["proxy"] else "pt"
            body.append(f'<circle class="{cls}" cx="{f.x(p[key]):.1f}" cy="{f.y(p["fitness"]):.1f}" r="3">'
                        f'<title>{esc(tip)}</title></circle>')
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
                        f'<title>new best: #{p["id"]} fitness {fmt(p["fitness"])}</title></circle>')
    return _svg(w, h, body, f"best fitness so far against {xlabel}")


def wall_axis(series: dict):
    span = series["points"][-1]["t"] if series["points"] else 0
    if span > 7200:
        return "wall time (h)", lambda v: f"{v / 3600:g}"
    if span > 300:
        return "wall time (min)", lambda v: f"{v / 60:g}"
    return "wall time (s)", lambda v: f"{v:g}"


def generation_chart(gens: list[dict]) -> str:
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
                        f'height="{max(f.y(q1) - f.y(q3), 1):.1f}"><title>gen {g["generation"]}: median {fmt(med)}, '
                        f'IQR {fmt(q1)}-{fmt(q3)}, n={len(scores)}</title></rect>'
                        f'<line class="median" x1="{cx - half:.1f}" x2="{cx + half:.1f}" y1="{f.y(med):.1f}" y2="{f.y(med):.1f}"/>')
        for cid, s in g["scores"]:
            jitter = (random.Random(cid).random() - 0.5) * half * 1.4
            body.append(f'<circle class="pt" cx="{cx + jitter:.1f}" cy="{f.y(s):.1f}" r="3">'
                        f'<title>#{cid} fitness {fmt(s)}</title></circle>')
        lost = g["failed"] + g["invalid"]
        note = (f"n={len(scores)}" + (f" ⊘{g['screened']}" if g["screened"] else "") + (f" ✗{lost}" if lost else "")
                + (f" ≡{g['duplicate']}" if g["duplicate"] else ""))
        body.append(f'<text class="tick small" x="{cx:.1f}" y="{f.h - f.mb + 28}" text-anchor="middle">{esc(note)}</text>')
    return _svg(w, h, body, "fitness distribution per generation")


def operator_chart(rows: list[dict]) -> str:
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
        body.append(f'<text class="tick" x="{ml - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">{esc(r["operator"])}</text>'
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


def operator_table(rows: list[dict]) -> str:
    llm = any(r["llm_calls"] for r in rows)
    head = ["operator", "children", "scored", "failed", "dupes", "improved", "share", "mean Δ fitness"]
    head += ["LLM calls", "LLM $", "$ / improvement"] if llm else []
    out = ["<table class='data'><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    for r in rows:
        cells = [r["operator"], r["children"], r["scored"], r["failed"], r["duplicates"], r["improved"],
                 f'{r["share"]:.0%}', "-" if r["mean_delta"] is None else f'{r["mean_delta"]:+.4f}']
        if llm:
            cells += [r["llm_calls"] or "-", "-" if r["llm_cost"] is None else f'{r["llm_cost"]:.4f}',
                      "-" if r["cost_per_improvement"] is None else f'{r["cost_per_improvement"]:.4f}']
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
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


def lineage_svg(graph: dict) -> str:
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
                        f'{esc(e["operator"])}</text>')
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        t = 0.5 if n["fitness"] is None or hi - lo < 1e-12 else (n["fitness"] - lo) / (hi - lo)
        fill = "#ccc" if n["fitness"] is None else _color(t)
        ink = "#000" if t > 0.55 or n["fitness"] is None else "#fff"
        cls = "lineage-node" + (" elite" if n["elite"] else "")
        body.append(f'<g class="{cls}" data-id="{n["id"]}" tabindex="0" transform="translate({x - nw / 2:.1f} {y - nh / 2:.1f})">'
                    f'<rect width="{nw}" height="{nh}" rx="6" fill="{fill}"/>'
                    f'<text x="{nw / 2}" y="{nh / 2 + 4}" text-anchor="middle" fill="{ink}">'
                    f'{"★" if n["elite"] else ""}#{n["id"]} {fmt(n["fitness"], 3)}</text>'
                    f'<title>#{n["id"]} {esc(n["operator"])}: {esc(n["verdict"])}</title></g>')
    return _svg(w, h, body, "lineage of the elite")
