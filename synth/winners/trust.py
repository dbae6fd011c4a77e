"""Is a winner legitimate and robust? Dynamic checks on top of the static policy.

An automated search finds whatever the score rewards, loopholes included. Each check here
re-scores the candidate under changed conditions and gives a named verdict with its evidence:

- heldout: all five seeds changed (teacher, student, data, batches), K times; the track's metric
  must stay in range of the search score (a seed-tuned or teacher-reconstructing candidate falls).
- gradient_dependence: gradients replaced by noise of the same norm and sparsity; the metric must
  collapse (an optimizer that learns without gradients is reading something it should not). A
  noise run that crashes, times out or diverges fails too: it is no evidence either way, and a
  cheat that recognises the probe would otherwise crash its way through.
- task_permutation: the benchmark's run with the task relabelled by a secret (token ids and value
  labels permuted on the recall tracks, another teacher on random_teacher); the metric must stay
  in range. An optimizer that writes a known answer into the weights (the public token layout,
  the teacher rebuilt from its seed) falls here, since learning does not depend on the labels.
- horizon (reported, not enforced): the score at 90% and 110% of the budget, to expose winners
  that only work at exactly 400 steps.
"""

from __future__ import annotations

import secrets
import statistics

from evaluator.pool import EvalJob
from evaluator.record import EvalResult
from evaluator.tracks import get_track
from synth.config import TrustConfig
from synth.search.fitness import describe

DEFAULT = TrustConfig()  # the thresholds (held-out slack and MSE factor, the noise seed) when none are given


def stored_trust(config: dict) -> TrustConfig:
    """A run's trust settings from its stored (flat) config; an older run's missing ones take the defaults."""
    return TrustConfig(**{name: config[name] for name in TrustConfig.model_fields if config.get(name) is not None})


def plan(source: str, track: str, steps: int | None, k: int, secret: int | None = None,
         noise_seed: int = DEFAULT.noise_seed) -> dict[str, EvalJob]:
    """The extra runs an assessment needs, keyed by what they are for. `secret` relabels the task for
    the permutation check (a fresh random one when not given; a run keeps its own)."""
    budget = steps or get_track(track).max_steps
    secret = secret if secret is not None else new_secret()
    jobs = {f"heldout-{i}": EvalJob(source, track, steps=steps, seed_set=f"heldout-{i}") for i in range(1, k + 1)}
    jobs["noise"] = EvalJob(source, track, steps=steps, gradient_noise_seed=noise_seed)
    jobs["permuted"] = EvalJob(source, track, steps=steps, seed_set=f"permuted-{secret}")
    for factor in (0.9, 1.1):
        jobs[f"horizon-{round(budget * factor)}"] = EvalJob(source, track, steps=round(budget * factor))
    return jobs


def new_secret() -> int:
    return secrets.randbelow(2**31 - 1) + 1


def assess(pool, source: str, track: str, search: EvalResult, steps: int | None = None,
           k: int = 3, secret: int | None = None, trust: TrustConfig = DEFAULT) -> tuple[dict, dict[str, EvalResult]]:
    """Runs the checks on the pool; returns (verdicts, the raw results by job name)."""
    jobs = plan(source, track, steps, k, secret, noise_seed=trust.noise_seed)
    results = dict(pool.evaluate_many(jobs.items()))
    return verdicts(track, search, results, trust), results


def verdicts(track: str, search: EvalResult, results: dict[str, EvalResult], trust: TrustConfig = DEFAULT) -> dict:
    regression = get_track(track).task == "regression"
    out = {}

    held = [r for name, r in sorted(results.items()) if name.startswith("heldout-")]
    metrics = [r.final_metric() if r.outcome == "ok" else None for r in held]
    base = search.final_metric()
    if not metrics:
        ok, why = False, "no held-out run"
    elif any(m is None for m in metrics):
        ok, why = False, "a held-out run failed: " + ", ".join(r.outcome for r in held)
    elif regression:
        ok = max(metrics) <= base * trust.heldout_mse_factor
        why = f"search MSE {base:.4g}; held-out MSE " + ", ".join(f"{m:.4g}" for m in metrics)
    else:
        ok = min(metrics) >= base - trust.heldout_accuracy_slack
        why = f"search accuracy {base:.4f}; held-out " + ", ".join(f"{m:.4f}" for m in metrics)
    valid = [m for m in metrics if m is not None]
    out["heldout"] = {"verdict": "pass" if ok else "fail", "evidence": why,
                      "mean": statistics.fmean(valid) if valid else None,
                      "std": statistics.stdev(valid) if len(valid) > 1 else 0.0, "k": len(held)}

    noise = results.get("noise")
    if noise is None or noise.outcome != "ok":
        out["gradient_dependence"] = {
            "verdict": "fail",
            "evidence": f"with noise gradients the run ended {noise.outcome if noise else 'missing'}, so nothing "
                        f"shows that it learns from its gradients"}
    else:
        nm = noise.final_metric()
        learns_without_gradients = nm <= base * 2 if regression else nm >= max(0.1, 0.5 * base)
        out["gradient_dependence"] = {
            "verdict": "fail" if learns_without_gradients else "pass",
            "evidence": f"real gradients: {base:.4g}; noise gradients: {nm:.4g}"}

    permuted = results.get("permuted")
    if permuted is None or permuted.outcome != "ok":
        out["task_permutation"] = {"verdict": "fail", "evidence": f"the relabelled run ended "
                                                                  f"{permuted.outcome if permuted else 'missing'}"}
    else:
        pm = permuted.final_metric()
        ok = pm <= base * trust.heldout_mse_factor if regression else pm >= base - trust.heldout_accuracy_slack
        what = "another teacher" if regression else "token ids and labels permuted"
        out["task_permutation"] = {"verdict": "pass" if ok else "fail",
                                   "evidence": f"benchmark task: {base:.4g}; {what}: {pm:.4g}"}

    out["horizon"] = {name.split("-")[1]: describe(r) for name, r in sorted(results.items()) if name.startswith("horizon-")}
    return out


def passed(report: dict) -> bool:
    return all(v.get("verdict") == "pass" for k, v in report.items() if k != "horizon")


def assess_and_record(db, pool, cand, k: int | None = None) -> dict:
    """Assesses a scored candidate once, with the run's trust settings (`k` held-out sets: the run's
    `heldout` unless given), and keeps everything in the run database.

    Held-out and horizon runs become ordinary evaluations (seed set `heldout-K`, other step
    counts), so `synth show` can report them; the verdicts go to the run state
    `compliance/<id>` and the horizon summary to `horizon/<id>`.
    """
    import time

    from population.records import Evaluation
    from synth.search.fitness import fitness

    known = db.get_state(f"compliance/{cand.id}")
    if known is not None:
        return known
    from synth.reporting.queries import search_result

    config = db.config()
    search = search_result(db, cand)
    secret = db.get_state("permutation_secret")
    if secret is None:  # one per run, kept secret from candidates (they never see a job or the database)
        secret = new_secret()
        db.set_state("permutation_secret", secret)
    trust = stored_trust(config)
    report, results = assess(pool, cand.source, config["track"], search, steps=config.get("steps"),
                             k=k or trust.heldout, secret=secret, trust=trust)
    recorded = {(e.seed_set, e.budget) for e in db.evaluations(candidate_id=cand.id)}
    for name, result in results.items():
        if name in ("noise", "permuted") or (result.seed_set, result.max_steps) in recorded:
            continue
        db.add_evaluation(Evaluation(candidate_id=cand.id, track=result.track, seed_set=result.seed_set,
                                     budget=result.max_steps, outcome=result.outcome, fitness=fitness(result),
                                     result=result.model_dump(mode="json"), created_at=time.time()),
                          candidate_status=cand.status, candidate_fitness=cand.fitness)
    horizon = report.pop("horizon")
    db.set_state(f"horizon/{cand.id}", horizon)
    db.set_state(f"compliance/{cand.id}", report)
    return report
