"""What a run's database says, as plain data (dicts, lists, EvalResults): no rich, no HTML.

The CLI's tables (tables.py), the HTML report (html.py), the PNG plots (png.py), the live view and
the exporter all read a run through these functions, so a number means the same thing everywhere.
"""

from __future__ import annotations

import difflib
import json
import math
import statistics

from evaluator.record import EvalResult
from population.db import RunDB
from population.records import Candidate
from synth.search.fitness import describe

ELITE = 3  # the lineage graph shows the ancestry of this many best candidates


def strict_json(data) -> str:
    """JSON that scripts can parse: NaN (a metric that does not apply) becomes null."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), indent=2, default=str, allow_nan=False)


def resolve_candidate(db: RunDB, candidate: int | None) -> int:
    if candidate is None:
        top = [c for c in db.top(50) if c.status == "scored"]
        if not top:
            raise ValueError("this run has no scored candidate yet")
        return top[0].id
    if db.get_candidate(candidate) is None:
        raise ValueError(f"no candidate {candidate} in this run")
    return candidate


def full_steps(config: dict) -> int:
    """A stored run config's full budget (synth.config.full_steps; old runs stored `steps` as None)."""
    from synth.config import full_steps as resolved

    return resolved(config["track"], config.get("steps"))


def search_result(db: RunDB, cand: Candidate) -> EvalResult | None:
    """The candidate's full-budget score on the run's track and seeds (a duplicate shares its twin's)."""
    config = db.config()
    for ev in db.evaluations(candidate_id=cand.duplicate_of or cand.id, track=config["track"], seed_set="benchmark"):
        if ev.budget == full_steps(config):
            return EvalResult.model_validate(ev.result)
    return None


def run_tracks(config: dict) -> list[str]:
    """The tracks a run scores every candidate on, in order (runs before multi-track search: its one track)."""
    return list(config.get("tracks") or [config["track"]])


def track_verdicts(db: RunDB, cand: Candidate) -> dict[str, str] | None:
    """A multi-track run's verdict on each track (a duplicate's are its twin's): the benchmark's words for a
    full run, `stopped @ S (...)` for a run its gate stopped, `not run` after a track that stopped it.
    None for a one-track run, whose verdict is `search_result`'s."""
    config = db.config()
    tracks = run_tracks(config)
    if len(tracks) < 2:
        return None
    full, proxy = full_steps(config), config.get("proxy_steps")
    verdicts = {}
    for track in tracks:
        runs = {ev.budget: EvalResult.model_validate(ev.result) for ev in db.evaluations(
            candidate_id=cand.duplicate_of or cand.id, track=track, seed_set="benchmark") if ev.budget in (full, proxy)}
        if full in runs:
            verdicts[track] = describe(runs[full])
        elif proxy in runs:
            verdicts[track] = f"stopped @ {proxy} ({describe(runs[proxy])})"
        else:
            verdicts[track] = "not run"
    return verdicts


def verdict_of(db: RunDB, cand: Candidate, result: EvalResult | None = None) -> str:
    """One line for tables and graphs: every track's verdict in a multi-track run, else the run's one."""
    verdicts = track_verdicts(db, cand)
    if verdicts is not None:
        return " · ".join(f"{track} {text}" for track, text in verdicts.items())
    result = result if result is not None else search_result(db, cand)
    return describe(result) if result else cand.status


def cascade_stats(db: RunDB) -> dict | None:
    """What the fidelity cascade saved, and how many good children its gate wrongly stopped.

    Every child's run is gated at the proxy step; a child below the threshold stops there
    (`screened`), one above it goes the distance in the same run. Every AUDIT_EVERY-th child runs
    in full whatever its gate says: that sample is the check. A child counts as good when its full
    score reaches `full_bar`, the same quantile of its population's full scores that the gate asks
    of the metric at the proxy step; a good child below the gate's threshold was wrongly dropped.
    """
    config = db.config()
    if not config.get("proxy_steps"):
        return None
    full, proxy = full_steps(config), config["proxy_steps"]
    cands = db.candidates()
    gated = [c for c in cands if c.generation > 0 and c.cascade is not None and c.cascade.metric is not None]
    below = [c for c in gated if not c.cascade.promoted]
    sample = [c for c in gated if c.cascade.audit]  # run in full whatever the gate said
    good = [c for c in sample if c.fitness is not None and c.cascade.full_bar is not None
            and c.fitness >= c.cascade.full_bar]
    wrongly = [c.id for c in good if not c.cascade.promoted]
    screened = [c for c in gated if c.status == "screened"]
    spent = len(screened) * proxy + (len(gated) - len(screened)) * full
    return {"proxy_steps": proxy, "proxied": len(gated), "promoted": len(gated) - len(below),
            "screened": len(screened), "audit_sample": len(sample), "audit_good": len(good),
            "audited": sum(1 for c in sample if not c.cascade.promoted),
            "wrongly_dropped": len(wrongly), "wrongly_dropped_ids": wrongly,
            "good_drop_rate": len(wrongly) / len(good) if good else None,
            "training_steps_saved": 1 - spent / (len(gated) * full) if gated else 0.0}


def heldout_summary(db: RunDB, cand_id: int) -> dict | None:
    """Mean and std of the track metric over held-out seed sets, when they were scored."""
    track = db.config()["track"]
    values = []
    for ev in db.evaluations(candidate_id=cand_id, track=track):
        if ev.seed_set.startswith("heldout-") and ev.outcome == "ok":
            values.append(EvalResult.model_validate(ev.result).final_metric())
    if not values:
        return None
    return {"k": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def candidate_row(db: RunDB, cand: Candidate) -> dict:
    result = search_result(db, cand)
    return {
        "id": cand.id, "generation": cand.generation, "operator": cand.operator, "model": cand.model,
        "parents": cand.parents, "status": cand.status, "fitness": cand.fitness,
        "verdict": verdict_of(db, cand, result),
        "tracks": track_verdicts(db, cand),
        "benchmark": result.benchmark_record() if result else None,
        "heldout": heldout_summary(db, cand.id),
        "genome": cand.genome,
        "llm": llm_cost(db, cand.id),
        "idea": cand.operator_params.get("name"),
        "rationale": cand.operator_params.get("description"),
    }


def llm_cost(db: RunDB, cand_id: int) -> dict | None:
    """The LLM calls that made this candidate (repair rounds included): count, tokens, dollars."""
    calls = db.llm_calls(child_id=cand_id)
    if not calls:
        return None
    return {"calls": len(calls), "tokens_in": sum(c.tokens_in for c in calls),
            "tokens_out": sum(c.tokens_out for c in calls), "cost_usd": sum(c.cost_usd for c in calls)}


def leaderboard(db: RunDB, k: int) -> dict:
    top = [c for c in db.top(k * 4 + 10) if c.status == "scored"][:k]
    return {
        "track": ",".join(run_tracks(db.config())),
        "top": [candidate_row(db, c) for c in top],
        "operators": db.operator_stats(),
        "llm": db.llm_totals(),
        "counts": {s: db.count(s) for s in ("scored", "failed", "duplicate", "invalid", "screened", "pending")},
        "cascade": cascade_stats(db),
    }


def ancestry(db: RunDB, cand_id: int) -> list[dict]:
    """The first-parent chain from the seed down to the candidate, each step with its score."""
    chain = list(reversed(db.lineage(cand_id)))
    rows, previous = [], None
    for cand in chain:
        row = candidate_row(db, cand)
        row["diff"] = edge_diff(previous, cand) if previous else ""
        row["code"] = cand.genome or cand.source
        rows.append(row)
        previous = cand
    return rows


def edge_diff(parent: Candidate, child: Candidate) -> str:
    """What the operator changed: program text when both have it, else the Python file."""
    if parent.genome and child.genome:
        before, after, name = parent.genome, child.genome, "program"
    else:
        before, after, name = parent.source, child.source, "submission.py"
    def lines(text: str) -> list[str]:  # every line ends in a newline, or the last two would glue together
        return (text if text.endswith("\n") else text + "\n").splitlines(True)

    return "".join(difflib.unified_diff(lines(before), lines(after), f"#{parent.id}/{name}", f"#{child.id}/{name}"))


def ancestry_dot(db: RunDB, cand_id: int) -> str:
    """Every ancestor through every parent, as a Graphviz digraph (operator on each edge)."""
    nodes = db.ancestors(cand_id)
    nodes[cand_id] = db.get_candidate(cand_id)
    lines = ["digraph lineage {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for cid in sorted(nodes):
        cand = nodes[cid]
        result = search_result(db, cand)
        label = f"#{cid} gen {cand.generation}\\n{verdict_of(db, cand, result)}"
        style = ', style=filled, fillcolor="#c8f7c5"' if cid == cand_id else ""
        lines.append(f'  n{cid} [label="{label}"{style}];')
    for cid in sorted(nodes):
        cand = nodes[cid]
        op = cand.operator + (f" ({cand.model})" if cand.model else "")
        for parent in cand.parents:
            if parent in nodes:
                lines.append(f'  n{parent} -> n{cid} [label="{op}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


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
        full = statistics.mode(e.budget for e in evals)
    evals = [e for e in evals if e.budget == full or e.budget == proxy_steps]
    cands = db.candidates()
    starts = [c.created_at for c in cands[:1]] + [e.created_at for e in evals[:1]]
    t0 = min(starts) if starts else 0.0
    points, best, top = [], [], None
    for n, ev in enumerate(evals, 1):
        fit, proxy = _finite(ev.fitness), ev.budget != full
        point = {"n": n, "t": max(ev.created_at - t0, 0.0), "id": ev.candidate_id, "fitness": fit,
                 "proxy": proxy, "outcome": ev.outcome, "steps": ev.budget}
        points.append(point)
        if fit is not None and not proxy and (top is None or fit > top):
            top = fit
            best.append(point)
    return {"points": points, "best": best, "full_steps": full, **_target(track)}


def _target(track: str) -> dict:
    """The fitness that meets the track's target, for the line the progress charts draw."""
    try:
        from evaluator.tracks import get_track
        from synth.search.fitness import target_fitness

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
            "fitness": _finite(c.fitness), "verdict": verdict_of(db, c, result),
            "elite": rank.get(c.id), "kind": c.kind,
            "diff": edge_diff(parent, c) if parent else "",
            "code": c.genome or c.source if parent is None else "",
        })
    return {"nodes": out_nodes, "edges": edges, "columns": len(gens), "rows": height, "generations": gens}
