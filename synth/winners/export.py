"""Hand over a winner: the exact file that was scored, re-scored to prove it, with its lineage."""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Iterable

from evaluator.pool import EvalJob, LocalPool
from evaluator.record import EvalResult
from evaluator.tracks import TRACK_NAMES, get_track
from population.db import RunDB
from synth.search.fitness import describe
from synth.reporting.queries import (ancestry, full_steps, heldout_summary, run_tracks, search_result, strict_json,
                                     track_verdicts)
from synth.winners.lineage_model import LineageRecord, ScoredWith
from synth.winners.transfer import SEED_KINDS, Progress, run_device, scoring_limits, score_transfer, transfer_markdown


class ExportMismatch(RuntimeError):
    """The re-scored file disagrees with the database: something is not reproducible."""


def same_score(a: EvalResult, b: EvalResult) -> bool:
    def eq(x: float, y: float) -> bool:
        return (math.isnan(x) and math.isnan(y)) or x == y

    return (a.outcome == b.outcome and a.status == b.status and a.steps == b.steps
            and eq(a.final_eval_mse, b.final_eval_mse) and eq(a.final_eval_accuracy, b.final_eval_accuracy))


EXPORTED = ("submission.py", "lineage.json", "lineage.md")


def check_out_dir(out: Path, force: bool) -> None:
    """Refuses, before anything is re-scored, an --out that is a file, cannot be written, or holds an
    earlier export (unless `force`)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: --out takes a directory (it gets {', '.join(EXPORTED)})")
    existing = [name for name in EXPORTED if (out / name).exists()]
    if existing and not force:
        raise ValueError(f"--out {out} already holds an export ({', '.join(existing)}); "
                         "pass --force to overwrite it, or choose another --out")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write in {parent}")


def with_identity(source: str, cand_id: int, track: str, verdict: str, steps: int) -> str:
    """The scored file with one line added to its docstring: which candidate it is and its verdict."""
    line = f"synth candidate #{cand_id} on {track}: {verdict} ({steps} steps, benchmark seeds)."
    if source.startswith('"""'):
        return '"""' + line + "\n\n" + source[3:]
    return f'"""{line}"""\n\n' + source


def rescoring_setup(config: dict) -> ScoredWith:
    """The run's own device and limits: a GPU run's export re-scores on its GPU, a run with --timeout or
    --steps re-scores with those, so the stored score can be matched."""
    limits = scoring_limits(config, config["track"])
    return ScoredWith(device=run_device(config), steps=full_steps(config),
                      timeout_s=limits.timeout_for(config["track"]), memory_mb=limits.memory_mb)


def export_candidate(db: RunDB, cand_id: int, out: Path, verify: bool = True, assess: bool = True,
                     pool=None, force: bool = False, transfer_tracks: Iterable[str] = TRACK_NAMES,
                     transfer_seeds: Iterable[str] = SEED_KINDS, transfer_steps: int | None = None,
                     progress: Progress | None = None) -> list[Path]:
    """Verifies, assesses (held-out seeds, gradient dependence, task permutation, horizon), scores the
    transfer table and writes the files.

    The file written is the scored file with its identity added to the docstring; that file is what
    the verification re-scores. Everything runs on the run's device under the run's limits."""
    check_out_dir(out, force)
    cand = db.get_candidate(cand_id)
    if cand.status == "duplicate" and cand.duplicate_of is not None:
        cand = db.get_candidate(cand.duplicate_of)  # the twin that was actually scored
    stored = search_result(db, cand)
    if stored is None or stored.outcome != "ok":
        raise ValueError(f"candidate {cand.id} has no successful evaluation to export")
    config = db.config()
    setup = rescoring_setup(config)
    source = with_identity(cand.source, cand.id, config["track"], describe(stored), stored.max_steps)
    limits = scoring_limits(config, config["track"])
    with ExitStack() as stack:
        own = pool or stack.enter_context(LocalPool(workers=config.get("workers"), limits=limits,
                                                    devices=config.get("devices") or "cpu"))
        rescored = None
        if verify:
            if progress:
                progress(f"re-scoring candidate {cand.id} on {setup.device}", 0, 1)
            job = EvalJob(source, config["track"], steps=config.get("steps"), submission=f"synth-{cand.id}")
            rescored = own.submit_eval(job).result()
            if not same_score(stored, rescored):
                raise ExportMismatch(
                    f"candidate {cand.id} re-scored on {setup.device} as {describe(rescored)} "
                    f"(final {rescored.final_metric()!r}) but the database holds {describe(stored)} "
                    f"(final {stored.final_metric()!r}); not exported")
        if assess and db.get_state(f"compliance/{cand.id}") is None:
            from synth.winners.trust import assess_and_record

            if progress:
                progress(f"checking candidate {cand.id} (held-out, gradients, permutation, horizon)", 0, 1)
            assess_and_record(db, own, cand)  # with the run's trust settings
        transfer = score_transfer(db, cand.id, source, transfer_tracks, transfer_seeds, steps=transfer_steps,
                                  progress=progress, pools={limits: own})
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: {err.strerror}") from None
    chain = ancestry(db, cand.id)
    record = LineageRecord(
        candidate=cand.id, track=config["track"], tracks=run_tracks(config), search_verdicts=track_verdicts(db, cand),
        run_seed=config.get("seed"),
        benchmark_result=stored.benchmark_record(), curve=[p.model_dump() for p in stored.curve],
        verified_by_rescoring=rescored is not None, rescored_with=setup if rescored is not None else None,
        heldout=heldout_summary(db, cand.id), compliance=db.get_state(f"compliance/{cand.id}"),
        horizon=db.get_state(f"horizon/{cand.id}"), transfer=transfer,
        lineage=[{k: v for k, v in row.items() if k != "code"} for row in chain],
    ).model_dump(mode="python")
    paths = [out / "submission.py", out / "lineage.json", out / "lineage.md"]
    paths[0].write_text(source)
    paths[1].write_text(strict_json(record) + "\n")
    paths[2].write_text(lineage_markdown(record, chain, cand.genome))
    return paths


def lineage_markdown(record: dict, chain: list[dict], genome: str | None) -> str:
    res = record["benchmark_result"]
    evolved_on = ",".join(record.get("tracks") or [record["track"]])
    lines = [f"# synth candidate #{record['candidate']} on {evolved_on}", ""]
    budget = get_track(record["track"]).max_steps
    label = ("benchmark verdict" if res["max_steps"] == budget else
             f"verdict at {res['max_steps']} steps (not the benchmark's: its budget is {budget} steps; "
             f"`synth eval submission.py --track {record['track']}` gives that)")
    metric = ("final eval MSE", res["final_eval_mse"]) if get_track(record["track"]).task == "regression" \
        else ("final eval accuracy", res["final_eval_accuracy"])
    if record.get("search_verdicts"):
        lines.append("- search verdicts (benchmark seeds, every track it was evolved on): " + ", ".join(
            f"{track} **{text}**" for track, text in record["search_verdicts"].items()))
        label = f"{label} on {record['track']}"
    primary = (record.get("search_verdicts") or {}).get(record["track"], chain[-1]["verdict"])
    lines += [f"- {label}: **{primary}** (status {res['status']}, steps {res['steps']}, "
              f"{metric[0]} {metric[1]})",
              f"- re-scored in a fresh sandbox before export: {'yes, identical' if record['verified_by_rescoring'] else 'no'}",
              "- eval curve: " + ", ".join(f"{p['step']}: {p['metric']:.4g}" for p in record["curve"])]
    held = record.get("heldout")
    if held:
        lines.append(f"- held-out seed sets (k={held['k']}): mean {held['mean']:.6g}, std {held['std']:.3g}")
    if record.get("horizon"):
        lines.append("- horizon sensitivity: " + ", ".join(f"{k} steps: {v}" for k, v in record["horizon"].items()))
    if record.get("compliance"):
        lines.append("- compliance: " + ", ".join(f"{k}: {v.get('verdict', v)}" for k, v in record["compliance"].items()))
    if record.get("rescored_with"):
        how = record["rescored_with"]
        lines.append(f"- re-scored on {how['device']}, {how['steps']} steps, limit {how['timeout_s']:g} s per run "
                     "(the run's own device and limits)")
    lines += transfer_markdown(record.get("transfer") or [], evolved_on)
    if genome:
        lines += ["", "## Program", "", "```", genome.strip(), "```"]
    lines += ["", "## Lineage (seed first)", "", "| id | gen | operator | parents | fitness | verdict |",
              "|---|---|---|---|---|---|"]
    for row in chain:
        op = row["operator"] + (f" ({row['model']})" if row.get("model") else "")
        fit = f"{row['fitness']:.4f}" if row["fitness"] is not None else "-"
        lines.append(f"| {row['id']} | {row['generation']} | {op} | {','.join(map(str, row['parents'])) or '-'} "
                     f"| {fit} | {row['verdict']} |")
    for row in chain[1:]:
        lines += ["", f"### #{row['parents'][0]} -> #{row['id']} ({row['operator']}, {row['verdict']})", "",
                  "```diff", row["diff"].rstrip() or "(no textual change)", "```"]
    return "\n".join(lines) + "\n"
