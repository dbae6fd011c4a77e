"""`synth baseline`: a standard optimizer tuned by Optuna, scored exactly as `synth evolve` scores.

The yardstick a synthesized optimizer has to beat. Every trial is a candidate in a run database
(operator `tune`, its hyperparameters in `operator_params`), scored by the same sandboxed worker
pool and the same fidelity cascade as an evolve run, so `show`, `lineage`, `report` and `export`
read a baseline run unchanged.

Trials are asked in batches of `batch` (a fixed number, not the worker count, so the trials do not
depend on how many workers score them). Batch k is sampled from a study rebuilt in memory from the
trials finished before it, in id order, by a TPE sampler seeded with (seed, trial number): the run
database is the study's only storage. Each batch is committed in one transaction before it runs,
so a run killed at any moment resumes exactly: its unfinished trials are scored (never re-drawn)
and the batches that follow are the ones the uninterrupted run would have drawn.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import as_completed
from typing import Callable, Literal, Optional

import optuna
from pydantic import BaseModel, ConfigDict, Field

from evaluator.pool import EvalJob
from evaluator.tracks import get_track
from population.db import RunDB
from population.records import Candidate, Evaluation
from synth.baseline.optimizers import distributions, hyperparameters, render
from synth.search import cascade
from synth.search.cascade import Cascade
from synth.config import CascadeConfig, ExecutionConfig, TrustConfig, full_steps, gated_step
from synth.search.fitness import fitness
from synth.genetic.tune import trial_value

IDENTITY_FIELDS = ("kind", "track", "optimizer", "seed", "steps", "batch", "startup", "proxy_steps", "proxy_quantile")


class BaselineConfig(BaseModel):
    """Stored in the run database like an evolve run's config (`kind` tells them apart)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["baseline"] = "baseline"
    track: Literal["random_teacher", "single_ar", "mqar"] = "mqar"
    optimizer: Literal["adamw", "adam", "lion", "sgd", "rmsprop", "muon"] = "adamw"
    trials: int = Field(50, ge=1, description="budget: trials in all (a resumed run may be given more)")
    seed: int = 0
    steps: Optional[int] = Field(None, ge=1)
    batch: int = Field(4, ge=1, description="trials asked of the sampler at once")
    startup: int = Field(10, ge=1, description="random trials before TPE takes over")
    proxy_steps: int = Field(100, ge=0)
    proxy_quantile: float = Field(0.75, ge=0.0, le=1.0)
    finalists: int = Field(1, ge=0)
    heldout: int = Field(3, ge=1)
    workers: Optional[int] = Field(None, ge=1)
    devices: str = "cpu"
    backend: Literal["local"] = "local"
    timeout_s: Optional[float] = Field(None, gt=0)
    memory_mb: int = Field(4096, ge=64)

    @property
    def execution(self) -> ExecutionConfig:
        return ExecutionConfig(workers=self.workers, devices=self.devices, backend=self.backend,
                               timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    @property
    def trust(self) -> TrustConfig:
        return TrustConfig(finalists=self.finalists, heldout=self.heldout)

    def resolved(self) -> dict:
        """What the study is, resolved: the track's steps, the cascade off when it would gate nothing."""
        steps = full_steps(self.track, self.steps)
        return {**self.model_dump(), "steps": steps, "proxy_steps": gated_step(self.proxy_steps, steps)}


def load_baseline_config(overrides: dict, stored: dict | None = None) -> BaselineConfig:
    """The flags given, over the run's own config when resuming; a change to what the run is is refused."""
    from pydantic import ValidationError

    from synth.config import ConfigError

    values = {k: v for k, v in overrides.items() if v is not None}
    if stored is not None:
        if stored.get("kind") != "baseline":
            raise ConfigError("this run directory holds a synth evolve run, not a baseline; choose another --run-dir")
        values = {**stored, **values}
    try:
        cfg = BaselineConfig(**values)
        if stored is not None:
            before, after = BaselineConfig(**stored).resolved(), cfg.resolved()
            for name in IDENTITY_FIELDS:  # resolved values: `--steps 400` restates a default, changes nothing
                if after[name] != before[name]:
                    raise ConfigError(f"this baseline was created with {name}={before[name]!r}; you asked for "
                                      f"{after[name]!r}. Use a new --run-dir for a different study")
        return cfg
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"bad value for {where}: {first['msg']}") from None


def trial_seed(seed: int, trial: int) -> int:
    return (seed * 1_000_003 + trial) % 2**32


class Baseline:
    def __init__(self, db: RunDB, config: BaselineConfig, pool,
                 on_trial: Callable[[Candidate], None] = lambda c: None) -> None:
        self.db = db
        self.config = config
        self.pool = pool
        self.on_trial = on_trial
        spec = get_track(config.track)
        self.regression = spec.task == "regression"
        self.full_steps = full_steps(config.track, config.steps)
        self.cascade = Cascade(CascadeConfig(proxy_steps=gated_step(config.proxy_steps, self.full_steps),
                                             proxy_quantile=config.proxy_quantile), self.regression)
        self.dists = distributions(config.optimizer)

    def run(self) -> None:
        while True:
            batch = self.db.pending()
            if not batch:
                done = self.db.count()
                if done >= self.config.trials:
                    return
                batch = self._ask(done, min(self.config.batch, self.config.trials - done))
                self.db.checkpoint(batch, {"trials": done + len(batch)}, key="baseline")
            self._score(batch)

    # ------------------------------------------------------------------ the sampler
    def _ask(self, first: int, k: int) -> list[Candidate]:
        finished = self.db.candidates()
        study = optuna.create_study(direction="maximize")
        for cand in finished:
            study.add_trial(optuna.trial.create_trial(params=cand.operator_params["search"],
                                                      distributions=self.dists, value=self.objective(cand)))
        gate = self.cascade.plan(finished, self.db.get_candidate, audit=False)
        made = []
        for number in range(first, first + k):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.sampler = optuna.samplers.TPESampler(seed=trial_seed(self.config.seed, number),
                                                           n_startup_trials=self.config.startup, multivariate=True)
            searched = study.ask(self.dists).params
            made.append(self.trial_candidate(number, searched, gate))
        return made

    def trial_candidate(self, number: int, searched: dict, gate: Optional[cascade.GatePlan]) -> Candidate:
        hp = hyperparameters(self.config.optimizer, searched)
        title = f"synth baseline {self.config.track} trial {number}"
        if gate is not None:
            gate = gate.model_copy(update={"audit": self.cascade.audit_due(number)})
        return cascade.with_plan(Candidate(
            generation=number // self.config.batch + 1, kind="code", genome=None,
            source=render(self.config.optimizer, hp, title), parents=[], operator="tune",
            operator_params={"optimizer": self.config.optimizer, "trial": number, "search": searched,
                             "hyperparameters": hp},
            status="pending", created_at=time.time(), timings={}), gate)

    def objective(self, cand: Candidate) -> float:
        return trial_value(cand, self.regression)

    # ------------------------------------------------------------------ scoring
    def _score(self, batch: list[Candidate]) -> None:
        running = {}
        for cand in batch:
            gate_step, threshold = self.cascade.job_gate(cascade.stored(cand))
            job = EvalJob(cand.source, self.config.track, steps=self.config.steps, submission=f"synth-{cand.id}",
                          gate_step=gate_step, gate_threshold=threshold)
            running[self.pool.submit_eval(job)] = cand
        try:
            for future in as_completed(running):  # recorded as they finish: a kill loses only the runs in flight
                self._record(running[future], future.result())
        finally:
            for future in running:
                future.cancel()

    def _record(self, cand: Candidate, result) -> None:
        """The evaluation and the trial's status in one transaction (like `Evolution._finish`)."""
        gate = self.cascade.outcome(cascade.stored(cand), result.gate_metric)
        fit = fitness(result)
        if result.outcome != "ok":
            status, fit = "failed", None
        elif result.max_steps != self.full_steps:
            status, fit = "screened", None
        else:
            status = "scored"
        if gate is not None:
            self.db.update_candidate(cand.id, cascade=gate)
        self.db.add_evaluation(
            Evaluation(candidate_id=cand.id, track=result.track, seed_set=result.seed_set, budget=result.max_steps,
                       outcome=result.outcome, fitness=fitness(result), result=result.model_dump(mode="json"),
                       created_at=time.time()),
            candidate_status=status, candidate_fitness=fit)
        self.on_trial(self.db.get_candidate(cand.id))


# ---------------------------------------------------------------------- `synth baseline` end to end
def run_baseline(db: RunDB, cfg: BaselineConfig, console, quiet: bool = False) -> dict:
    """Runs (or resumes) the study, assesses the best trial on held-out seeds, returns the summary."""
    from synth.search.fitness import describe
    from synth.reporting.queries import leaderboard, search_result
    from synth.search.progress import Progress
    from synth.search.runner import assess_finalists, make_pool

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.time()

    def report(cand: Candidate) -> None:
        if quiet:
            return
        result = search_result(db, cand)
        verdict = describe(result) if result else cand.status
        hp = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in cand.operator_params["hyperparameters"].items())
        console.print(f"trial {cand.operator_params['trial']:>4} #{cand.id}: {verdict:<14} {hp}", highlight=False)

    with make_pool(cfg.execution) as pool:
        pool.warm(cfg.track, steps=cfg.steps)
        Baseline(db, cfg, pool, on_trial=report).run()
        assess_finalists(db, cfg.trust, pool, console, Progress(), on_progress=None if quiet else (lambda progress: None))
    board = leaderboard(db, 1)
    return {"run_dir": str(db.path.parent), "optimizer": cfg.optimizer, "track": cfg.track,
            "trials": db.count(), "evaluations": db.count_evaluations(), "wall_s": round(time.time() - started, 1),
            "best": board["top"][0] if board["top"] else None, "cascade": board["cascade"]}
