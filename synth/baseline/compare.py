"""A search run against a tuned baseline, at equal cost: what `synth report --baseline` and
bench/search_vs_baseline.py show.

Cost is counted in full-budget-equivalent evaluations: a search run of `steps` training steps costs
steps / full_steps of one (a run screened by the cascade at step 100 of 400 costs 0.25), so the
cascade's savings count for whichever side has them and nothing else does. Fitness is recomputed
from the stored records with today's `synth.search.fitness`, so two runs made under different versions
compare on the same scale.
"""

from __future__ import annotations

import statistics

from evaluator.record import EvalResult
from population.db import RunDB
from synth.search.fitness import describe, fitness
from synth.reporting.queries import full_steps


def best_so_far(db: RunDB) -> list[dict]:
    """One point per search evaluation, in recorded order: cost so far and the best fitness so far."""
    config = db.config()
    full, proxy = full_steps(config), config.get("proxy_steps")
    cost, best, points = 0.0, None, []
    for ev in db.evaluations(track=config["track"], seed_set="benchmark"):
        if ev.budget not in (full, proxy):
            continue  # a finalist's re-run at another horizon is an assessment, not search
        cost += ev.budget / full
        result = EvalResult.model_validate(ev.result)
        fit = fitness(result) if ev.budget == full else None
        if fit is not None and (best is None or fit > best["fitness"]):
            best = {"fitness": fit, "id": ev.candidate_id, "verdict": describe(result)}
        points.append({"cost": cost, **(best or {"fitness": None, "id": None, "verdict": "-"})})
    return points


def elite(db: RunDB) -> dict | None:
    """The run's best candidate by today's fitness: its benchmark record, curve and held-out scores."""
    config = db.config()
    full = full_steps(config)
    results: dict[int, EvalResult] = {}
    for ev in db.evaluations(track=config["track"], seed_set="benchmark"):
        if ev.budget == full and ev.outcome == "ok":
            results[ev.candidate_id] = EvalResult.model_validate(ev.result)
    if not results:
        return None
    best_id = max(results, key=lambda cid: (fitness(results[cid]), -cid))
    result = results[best_id]
    held = [EvalResult.model_validate(ev.result) for ev in db.evaluations(candidate_id=best_id, track=config["track"])
            if ev.seed_set.startswith("heldout-") and ev.budget == full]
    cand = db.get_candidate(best_id)
    return {
        "id": best_id, "operator": cand.operator, "verdict": describe(result), "fitness": fitness(result),
        "curve": {p.step: p.metric for p in result.curve},
        "heldout": [{"seed_set": h.seed_set, "verdict": describe(h), "fitness": fitness(h),
                     "curve": {p.step: p.metric for p in h.curve}} for h in held],
        "heldout_mean_fitness": statistics.fmean(fitness(h) for h in held) if held else None,
        "genome": cand.genome, "hyperparameters": cand.operator_params.get("hyperparameters"),
    }


def total_cost(db: RunDB) -> float:
    points = best_so_far(db)
    return points[-1]["cost"] if points else 0.0


def at_cost(points: list[dict], cost: float) -> dict | None:
    """The best-so-far point reached within `cost` full-budget-equivalent evaluations."""
    within = [p for p in points if p["cost"] <= cost + 1e-9]
    return within[-1] if within else None


def comparison(search: RunDB, baseline: RunDB, marks: int = 10) -> dict:
    """Both elites, both cost totals, and best so far at `marks` evenly spaced costs."""
    s_points, b_points = best_so_far(search), best_so_far(baseline)
    top = max(s_points[-1]["cost"] if s_points else 0.0, b_points[-1]["cost"] if b_points else 0.0)
    grid = [top * (k + 1) / marks for k in range(marks)]
    return {
        "search": {"elite": elite(search), "cost": total_cost(search), "points": s_points},
        "baseline": {"elite": elite(baseline), "cost": total_cost(baseline), "points": b_points,
                     "optimizer": baseline.config().get("optimizer")},
        "table": [{"cost": c, "search": at_cost(s_points, c), "baseline": at_cost(b_points, c)} for c in grid],
    }


# ---------------------------------------------------------------------- the report's section
def comparison_html(search: RunDB, baseline: RunDB) -> str:
    """`synth report RUN --baseline BASELINE`: both best-so-far lines against cost, both elites."""
    from synth.reporting.figures import draw_comparison, new_figure
    from synth.reporting.html import esc as _esc
    from synth.reporting.svg import inline_svg

    result = comparison(search, baseline)
    sides = [("search", result["search"], "#d95f02"), (f"baseline ({result['baseline']['optimizer']})",
                                                      result["baseline"], "#1b9e77")]
    fig, ax = new_figure(720 / 72, 320 / 72)
    marks = draw_comparison(ax, sides)
    fig.tight_layout()
    rows = []
    for name, side, _ in sides:
        e = side["elite"]
        if e is None:
            rows.append(f"<tr><td>{_esc(name)}</td><td colspan='5'>no scored candidate</td></tr>")
            continue
        held = "-" if e["heldout_mean_fitness"] is None else f"{e['heldout_mean_fitness']:.4f}"
        curve = " ".join(f"{s}:{m:.3f}" for s, m in sorted(e["curve"].items(), key=lambda kv: int(kv[0])))
        rows.append(f"<tr><td>{_esc(name)}</td><td>{side['cost']:.1f}</td><td>#{e['id']}</td>"
                    f"<td>{_esc(e['verdict'])}</td><td>{e['fitness']:.4f}</td><td>{held}</td>"
                    f"<td><code>{_esc(curve)}</code></td></tr>")
    table = ("<table><thead><tr><th>run</th><th>cost</th><th>elite</th><th>verdict</th><th>fitness</th>"
             "<th>held-out mean fitness</th><th>eval curve (benchmark seeds)</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    return (f'<section id="baseline-comparison"><h2>Against the tuned baseline</h2>'
            f'<div class="meta">baseline run {_esc(baseline.path.parent)}; cost counts a run stopped by the '
            f'cascade at its share of the full budget</div>'
            f'<div class="row">{inline_svg(fig, marks, "comparison")}</div>'
            f'<div class="scroll">{table}</div></section>')
