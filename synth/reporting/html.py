"""One self-contained HTML page about a run: progress, generations, operators, the elite's lineage, top table.

Everything is inline (CSS, a little JS, the figures of figures.py as SVG), so the page renders offline and
can be mailed or attached as it is; the numbers come from queries.py.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path

from population.db import RunDB
from synth.reporting.figures import (draw_generations, draw_lineage, draw_operators, draw_progress, fmt,
                                     generation_width, lineage_size, new_figure, wall_axis)
from synth.reporting.svg import inline_svg
from synth.reporting.queries import (ELITE, generation_scores, leaderboard, lineage_graph, operator_rows,
                                     progress_series)

TOP = 10  # rows in the top table
PANEL = (520 / 72, 300 / 72)  # inches: the page shows an SVG unit (1/72 in) as one CSS pixel


# ============================================================================ page
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#222;background:#f6f7f9;margin:0}
main{max-width:1120px;margin:0 auto;padding:18px 22px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:14px 16px;margin:14px 0}
.meta{color:#555}.meta b{color:#222}.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.scroll{overflow-x:auto}svg{display:block}svg text{pointer-events:none}
.edge.hot path{stroke:#e8590c!important;stroke-width:2.4px!important}
.lineage-node{cursor:pointer}.lineage-node.sel path{stroke:#000!important;stroke-width:3px!important}
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


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def _figure(name: str, size: tuple[float, float], draw, *args, **kwargs) -> str:
    fig, ax = new_figure(*size)
    marks = draw(ax, *args, **kwargs)
    fig.tight_layout()
    return inline_svg(fig, marks, name)


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
                 fmt(r["fitness"], 5), r["verdict"],
                 f'{held["mean"]:.4g} ± {held["std"]:.2g} (k={held["k"]})' if held else "-",
                 ", ".join(f"#{p}" for p in r["parents"]) or "seed")
        out.append(f'<tr data-id="{r["id"]}">' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    if not board["top"]:
        out.append(f'<tr><td colspan="{len(head)}">no scored candidate yet</td></tr>')
    return "".join(out) + "</tbody></table>"


def _baseline_section(db: RunDB, baseline: RunDB | None) -> str:
    if baseline is None:
        return ""
    from synth.baseline.compare import comparison_html

    return comparison_html(db, baseline)


def write_report(db: RunDB, out_path: Path, baseline: RunDB | None = None) -> Path:
    """Writes the run's report as one self-contained HTML file (no network needed to view it); with
    `baseline` (a `synth baseline` run), a section comparing the two at equal cost (synth/baseline/compare.py)."""
    out_path = Path(out_path)
    board = leaderboard(db, TOP)
    series, gens, ops, graph = progress_series(db), generation_scores(db), operator_rows(db), lineage_graph(db)
    track = board["track"]
    wall_label, wall_fmt = wall_axis(series)
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
    summary = [f"track <b>{esc(track)}</b>", f"generations <b>{generations}</b>", counts,
               f"evaluations <b>{len(series['points'])}</b>", f"wall time <b>{span / 60:.1f} min</b>"]
    if best:
        summary.append(f"best <b>#{best['id']}</b> {esc(best['verdict'])} (fitness {fmt(best['fitness'], 5)})")
    if llm.get("calls"):
        summary.append(f"LLM <b>{llm['calls']}</b> calls, {llm['tokens_in']}+{llm['tokens_out']} tokens, "
                       f"<b>${llm['cost_usd']:.4f}</b>")
    title = f"synth run report - {track}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>{esc(title)}</h1>
<div class="meta">{" · ".join(summary)}<br>generated {time.strftime("%Y-%m-%d %H:%M:%S")} from {esc(db.path)}</div>
{_baseline_section(db, baseline)}<section><h2>Best fitness so far</h2>
<div class="meta">orange: best so far; dots: each evaluation (hollow: short proxy run); red ticks: failed runs</div>
<div id="progress-chart" class="row">{_figure("progress-n", PANEL, draw_progress, series)}
{_figure("progress-t", PANEL, draw_progress, series, "t", wall_label, wall_fmt)}</div></section>
<section><h2>Fitness per generation</h2>
<div class="meta">box: quartiles and median; dots: scored candidates; below: n scored, ⊘ stopped by the cascade, ✗ failed or invalid, ≡ duplicates</div>
<div id="generation-chart" class="scroll">{_figure("generations", (generation_width(gens), PANEL[1]), draw_generations, gens)}</div></section>
<section><h2>Operators</h2>
<div class="meta">improved: scored children fitter than their best parent; share = improved / children made;
mean Δ over scored children with a scored parent</div>
<div class="row"><div id="operator-chart">{_figure("operators", (PANEL[0], (40 + 33 * max(len(ops), 2)) / 72), draw_operators, ops)}</div><div>{operator_table(ops)}</div></div></section>
<section><h2>Lineage of the elite</h2>
<div class="meta">ancestry of the {ELITE} best (★) back to the seeds, by generation; dashed: second parent;
colour: fitness (dark low, yellow high). Hover a node for its change against its first parent, click to pin it.</div>
<div class="row"><div id="lineage-graph" class="scroll">{_figure("lineage", lineage_size(graph), draw_lineage, graph)}</div>
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
