"""The evolution loop, top to bottom: who is alive -> make children -> score them -> record.

Steady-state aging evolution. A new child is proposed the moment a worker slot frees up, so a
slow candidate never idles the other workers. What a child sees is fixed by candidate ids, never
by which worker finished first: the seeds, plus every candidate made at least `population` ids
before it (the *window*). Proposing waits in the rare case one of those is still running;
everything younger may still be in flight. Hence a fixed `--seed` without an LLM gives
the same candidates, with the same scores, whatever the number of workers or the order their
results come back in.

LLM proposals run beside this loop (synth/llm_variation.py): the engine starts one, goes on
filling free workers with genetic children, and commits the LLM child when its model call
returns. Only runs with an LLM take that path; without one, not a single RNG draw changes.

Each child is committed together with the RNG state that made it and the engine's child counter;
each evaluation is keyed by (candidate, track, seed set, steps). A run killed at any moment
resumes exactly: unfinished candidates are scored again, finished ones never, and the children
that follow are the ones the uninterrupted run would have made.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Callable, Optional

from evaluator.loop import Gate
from evaluator.pool import EvalJob
from evaluator.record import EvalResult
from evaluator.tracks import get_track
from population.db import RunDB
from population.records import Candidate, Evaluation
from population.selection import select_parents
from primitives.program import Program
from primitives.seeds import seed_programs
from synth.config import AUDIT_EVERY, RunConfig
from synth.fitness import describe, fitness
from synth.reporting.queries import search_result
from synth.tune import tune_child
from synth.variation import OPERATORS, live_text

TWO_PARENT_OPERATORS = {"crossover", "llm_crossover"}


class NothingAlive(RuntimeError):
    """No scored candidate to breed from: every seed failed (the message is one line for the user)."""


@dataclass
class Progress:
    """What the live view shows: read from the run database after each change (`_refresh_progress`)."""

    generation: int = 0
    generations: int = 0
    children: int = 0
    children_total: int = 0
    evaluations: int = 0
    pending: int = 0  # candidates not finished yet
    running: int = 0  # evaluations on a worker now
    queued: int = 0  # evaluations submitted, waiting for a free worker
    phase: str = "seeds"  # "seeds" until every seed is scored, then "search" (the runner adds the others)
    seeds_total: int = 0
    seeds_done: int = 0
    finalists_total: int = 0  # set by the runner in the "finalists" phase
    finalists_done: int = 0
    dedup_hits: int = 0
    invalid: int = 0
    screened: int = 0
    failures: int = 0
    best_id: Optional[int] = None
    best_fitness: Optional[float] = None
    best_text: str = ""
    best_summary: str = ""
    stopped_by: Optional[str] = None  # "time budget" when --time-budget ended the run early
    started: float = field(default_factory=time.time)
    evaluations_at_start: Optional[int] = None  # a resumed run's earlier evaluations are not this process's

    @property
    def evals_per_minute(self) -> float:
        elapsed = time.time() - self.started
        done = self.evaluations - (self.evaluations_at_start or 0)
        return 60.0 * done / elapsed if elapsed > 0 else 0.0


def encode_rng(rng: random.Random) -> dict:
    version, internal, gauss = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def decode_rng(state: dict) -> random.Random:
    rng = random.Random()
    rng.setstate((state["version"], tuple(state["internal"]), state["gauss"]))
    return rng


class Evolution:
    def __init__(self, db: RunDB, config: RunConfig, pool, llm=None,
                 on_progress: Callable[[Progress], None] = lambda p: None, deadline: Optional[float] = None) -> None:
        self.db = db
        self.config = config
        self.pool = pool
        self.llm = llm  # synth.llm_variation.LLMVariation or None
        self.on_progress = on_progress
        self.deadline = deadline  # time.time() after which no new child is proposed (--time-budget)
        self.children_total = config.generations * config.population
        self.progress = Progress(generations=config.generations, children_total=self.children_total)
        self.rng = random.Random(config.seed)
        self.children = 0  # children proposed so far (a child's invalid tries count once)
        self.running: dict[Future, int] = {}  # evaluation in flight -> candidate id
        self.regression = get_track(config.track).task == "regression"
        self.full_steps = config.steps or get_track(config.track).max_steps

    # ------------------------------------------------------------------ the loop
    def run(self) -> Progress:
        state = self.db.get_state("engine")
        if state is None:
            self._commit(self._seed_candidates())
        else:
            self.rng = decode_rng(state["rng"])
            self.children = state.get("children", state.get("generation", 0) * self.config.population)
            self._reopen_llm(state.get("llm_open", []))
        try:
            while True:
                self._dispatch()
                while len(self.running) < self.pool.size and self._may_propose():
                    self.children += 1
                    self._commit(self._one_child())
                    self._dispatch()
                llm_running = set(self.llm.running) if self.llm is not None else set()
                if not self.running and not llm_running:
                    break
                done, _ = wait(set(self.running) | llm_running, return_when=FIRST_COMPLETED)
                for future in sorted(done - llm_running, key=self.running.get):
                    self._record(self.running.pop(future), future.result())
                for future in done & llm_running:
                    self._llm_returned(future)
        finally:
            for future in self.running:  # interrupted: queued evaluations need not start
                future.cancel()
        if self.llm is not None:
            self.db.close_open_llm_calls()
        self._refresh_progress()
        return self.progress

    def _may_propose(self) -> bool:
        """Budget left, and the window complete: no seed, and nothing `population` ids back, still pending."""
        if self.children >= self.children_total:
            return False
        if self.deadline is not None and time.time() >= self.deadline:
            self.progress.stopped_by = "time budget"
            return False
        oldest = self.db.oldest_pending()
        return oldest is None or (oldest.generation > 0 and oldest.id >= self._horizon())

    def _horizon(self) -> int:
        """Candidates below this id (and every seed) are what the next child may see."""
        return self.db.count() + 1 - self.config.population

    def _alive(self) -> list[Candidate]:
        """The population a child is bred from: selection.alive over the window, in SQL (population/window.py)."""
        return self.db.alive(self._horizon(), self.config.population, self.config.elites)

    def _commit(self, made: list[Candidate], calls: list = ()) -> None:
        """New candidates (ids set on them), the RNG state that made them, the LLM proposals still in
        flight and the LLM calls settled by these candidates, in one transaction."""
        state = {"children": self.children, "rng": encode_rng(self.rng)}
        if self.llm is not None:
            state["llm_open"] = self.llm.open_entries
        self.db.commit_generation(made, state, calls=list(calls))

    # ------------------------------------------------------------------ make children
    def _seed_candidates(self) -> list[Candidate]:
        programs = seed_programs(opt_in=bool(self.config.seeds))  # opt-in seeds only when named
        names = self.config.seeds or list(programs)
        unknown = [n for n in names if n not in programs]
        if unknown:
            raise ValueError(f"unknown seed programs {unknown}: known are {sorted(programs)}")
        gate = self._gate_plan([], audit=False)  # no threshold: seeds always go the distance
        seeds = [self._candidate(programs[name], generation=0, parents=[], operator="seed", params={"name": name})
                 for name in names]
        return [self._with_gate(seed, gate) for seed in seeds]

    def _one_child(self) -> list[Candidate]:
        """A genetic child (tries operators until one passes the probe; failed tries are recorded as
        `invalid`), or none yet: an LLM proposal started, committed when its model answers."""
        population = self._alive()
        if not population:
            raise NothingAlive("no scored candidate is alive: every seed failed to evaluate "
                               "(see `synth show` for their outcomes)")
        generation = (self.children - 1) // self.config.population + 1
        gate = self._gate_plan(population, audit=self.children % AUDIT_EVERY == 0)
        if (self.llm is not None and len(self.llm.running) < self.pool.size and self.llm.active
                and self.rng.random() < self.config.llm_rate):
            try:
                if self.llm.start(self, population, generation, gate):
                    return []
            except Exception as exc:  # an LLM proposal never takes the run down
                self.llm.notice(f"LLM proposal failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return self._genetic_children(population, generation, gate)

    def _genetic_children(self, population: list[Candidate], generation: int,
                          gate: Optional[dict]) -> list[Candidate]:
        made: list[Candidate] = []
        for _ in range(self.config.max_proposal_tries):
            tuned_seed = self._seed_to_tune() if not made else None
            if tuned_seed is not None:
                operator, parents = "tune", [tuned_seed]
                child = self._genetic_child(operator, parents, generation, redraw=False)
            else:
                operator = self._choose_operator()
                n_parents = 2 if operator in TWO_PARENT_OPERATORS else 1
                # genetic operators need program text: code-only LLM children are not their parents
                programs = ([c for c in population if c.genome]
                            or self.db.ranked_programs(self._horizon(), 100))
                parents = select_parents(programs, n_parents, self.config.tournament, self.rng)
                child = self._genetic_child(operator, parents, generation)
                if child is None:  # it computes what its parent does: redraw, at no cost to the budget
                    continue
            made.append(self._with_gate(child, gate))
            if child.status != "invalid":
                break
        if not made:  # every try was a no-op: keep the last one rather than make nothing
            made.append(self._with_gate(self._genetic_child(operator, parents, generation, redraw=False), gate))
        return made

    # ------------------------------------------------------------------ LLM children
    def _llm_returned(self, future: Future) -> None:
        """A model call returned: the proposal goes on, or its child (or a genetic stand-in) is committed
        with the calls that made it."""
        try:
            finished = self.llm.finish(self, future)
        except Exception as exc:  # never out of the engine: the slot gets a genetic child instead
            self.llm.running.pop(future, None)
            self.llm.notice(f"LLM proposal failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            self._commit(self._stand_in(None))
            return
        if finished is None:
            return
        cand, pending = finished
        made = [self._with_gate(cand, pending.entry["gate"])] if cand is not None else []
        if cand is None or cand.status == "invalid":
            made += self._stand_in(pending.entry)
        self._commit(made, calls=self.llm.links(pending, cand))

    def _stand_in(self, entry: Optional[dict]) -> list[Candidate]:
        """A genetic child in place of an LLM child that did not come."""
        population = self._alive()
        generation = entry["generation"] if entry else (self.children - 1) // self.config.population + 1
        gate = entry["gate"] if entry else self._gate_plan(population, audit=False)
        return self._genetic_children(population, generation, gate)

    def _reopen_llm(self, entries: list[dict]) -> None:
        """A resumed run asks the questions its proposals in flight were asking (the replies already
        paid for are replayed from the database); without an LLM now, genetic children take their place."""
        for entry in entries:
            if self.llm is None or not self.llm.resume(entry):
                self._commit(self._stand_in(entry))

    def _seed_to_tune(self) -> Optional[Candidate]:
        """The first `tune_seeds` x seeds children tune the seeds in turn: the population starts from
        the known optimizers at good constants, not at their textbook ones."""
        seeds = self.db.seeds_to_tune()
        if not seeds or self.children > self.config.tune_seeds * len(seeds):
            return None
        return seeds[(self.children - 1) % len(seeds)]

    def _genetic_child(self, operator: str, parents: list[Candidate], generation: int,
                       redraw: bool = True) -> Optional[Candidate]:
        """One child of a genetic operator (or `tune`); None when it would compute what its first parent
        computes (an edit on a dead slot, a no-op shrink or perturbation) and `redraw` allows another try."""
        programs = [Program.from_text(p.genome) for p in parents]
        if operator == "tune":
            tuned = tune_child(self.db, self._horizon(), self.rng, parents[0], self.regression)
            if tuned is not None:
                root, program, params = tuned
                return self._candidate(program, generation, [root], operator, params)
            operator = "perturb_constants"  # this structure had its trials (or has no constants)
        program, params = OPERATORS[operator](self.rng, programs)
        if redraw and live_text(program) == live_text(programs[0]):
            return None
        return self._candidate(program, generation, [p.id for p in parents], operator, params)

    def _choose_operator(self) -> str:
        names = sorted(self.config.operator_weights)
        weights = [self.config.operator_weights[n] for n in names]
        return self.rng.choices(names, weights=weights, k=1)[0]

    def _candidate(self, program: Program, generation: int, parents: list[int], operator: str,
                   params: dict) -> Candidate:
        source = program.render(title=f"synth {self.config.track} candidate, operator {operator}")
        return self.admit(Candidate(
            generation=generation, kind="program", genome=program.to_text(), source=source, parents=parents,
            operator=operator, operator_params=params, status="pending", created_at=time.time(),
            timings={}))

    def admit(self, cand: Candidate) -> Candidate:
        """The probe: reject a dead child cheaply, and spot one that computes what an earlier one does.

        A twin is the earliest candidate with the same fingerprint, finished or not; the child takes
        its outcome (score, screening or failure) once the twin has one, and never runs itself.
        """
        started = time.perf_counter()
        probe = self.pool.probe(cand.source)
        cand.timings["probe_s"] = time.perf_counter() - started
        if not probe.ok:
            cand.status = "invalid"
            cand.operator_params = {**cand.operator_params, "error": probe.error}
            return cand
        cand.fingerprint = probe.fingerprint
        twin = self.db.find_by_fingerprint(probe.fingerprint, status=None)
        if twin is not None:
            cand.duplicate_of = twin.id
            if twin.status != "pending":
                cand.status, cand.fitness = self._outcome_of_twin(twin)
        return cand

    # ------------------------------------------------------------------ the fidelity cascade
    @staticmethod
    def _with_gate(cand: Candidate, gate: Optional[dict]) -> Candidate:
        if gate is not None and cand.status == "pending":  # it will run: tell its run where the gate is
            cand.timings["proxy"] = dict(gate)
        return cand

    def _gate_plan(self, population: list[Candidate], audit: bool) -> Optional[dict]:
        """What a child's run is told: evaluate at `proxy_steps`, stop there below `threshold`, the
        population's `proxy_quantile` of the eval metric at that step. `full_bar`, the same quantile of
        the population's full scores, is what the audit judges the gate by: an audited child that
        reaches it is one the gate should have let through."""
        if not self.config.proxy_steps:
            return None
        metrics, fits = [], []
        for member in population:
            root = self.db.get_candidate(member.duplicate_of) if member.duplicate_of else member
            metric = root.timings.get("proxy", {}).get("metric")
            if metric is not None:
                metrics.append(-metric if self.regression else metric)  # higher is better from here on
            fits.append(member.fitness)
        return {"steps": self.config.proxy_steps, "audit": audit,
                "threshold": self._quantile(metrics, sign=-1 if self.regression else 1),
                "full_bar": self._quantile(fits, sign=1)}

    def _quantile(self, values: list[float], sign: int) -> Optional[float]:
        """The `proxy_quantile` of `values` (higher is better), given back in the metric's own sign."""
        if not values:
            return None
        ordered = sorted(values)
        return sign * ordered[min(len(ordered) - 1, int(self.config.proxy_quantile * len(ordered)))]

    # ------------------------------------------------------------------ score them
    def _dispatch(self) -> None:
        """Every pending candidate gets the evaluation it needs next, or its final status if none."""
        busy = set(self.running.values())
        for cand in self.db.pending():
            if cand.id in busy:
                continue
            if cand.duplicate_of is not None:
                twin = self.db.get_candidate(cand.duplicate_of)
                if twin.status != "pending":
                    status, fit = self._outcome_of_twin(twin)
                    self.db.update_candidate(cand.id, status=status, fitness=fit)
                continue
            jobs = self._jobs(cand)
            if not jobs:
                self._finish(cand)
            for job in jobs:
                self.running[self.pool.submit_eval(job)] = cand.id
        self._refresh_progress()

    def _seed_sets(self) -> list[str]:
        return ["benchmark"] + [f"search-{i}" for i in range(1, self.config.robust)]

    def _evaluations(self, cand: Candidate) -> dict[str, Evaluation]:
        """seed set -> this candidate's search evaluation (the full run, or a run stopped by its gate)."""
        gate_steps = cand.timings.get("proxy", {}).get("steps")
        return {e.seed_set: e for e in self.db.evaluations(candidate_id=cand.id, track=self.config.track)
                if e.steps in (self.full_steps, gate_steps)}

    def _jobs(self, cand: Candidate) -> list[EvalJob]:
        """The gated benchmark run first; with `--robust K`, the other K-1 seed sets once it went the distance."""
        done = self._evaluations(cand)
        first = done.get("benchmark")
        gate = cand.timings.get("proxy")
        if first is None:
            threshold = None if gate is None or gate["audit"] else gate["threshold"]
            return [EvalJob(cand.source, self.config.track, steps=self.config.steps, submission=f"synth-{cand.id}",
                            gate_step=gate["steps"] if gate else None, gate_threshold=threshold)]
        if first.outcome != "ok" or first.steps != self.full_steps:
            return []
        return [EvalJob(cand.source, self.config.track, steps=self.config.steps, seed_set=s,
                        submission=f"synth-{cand.id}") for s in self._seed_sets()[1:] if s not in done]

    def _record(self, cand_id: int, result: EvalResult) -> None:
        """Stores one evaluation; the candidate stays pending until `_dispatch` finds nothing left to run."""
        self.db.add_evaluation(
            Evaluation(candidate_id=cand_id, track=result.track, seed_set=result.seed_set,
                       steps=result.max_steps, outcome=result.outcome, fitness=fitness(result),
                       result=result.model_dump(mode="json"), created_at=time.time()),
            candidate_status="pending", candidate_fitness=None)

    def _finish(self, cand: Candidate) -> None:
        """Status and fitness from the evaluations: failed, screened (stopped by the gate), or scored
        (with `--robust K`, the mean over the K seed sets; any failure fails it)."""
        done = self._evaluations(cand)
        first = done["benchmark"]
        timings = dict(cand.timings)
        gate = timings.get("proxy")
        metric = first.result.get("gate_metric")
        if gate is not None and metric is not None:
            promoted = Gate(gate["steps"], gate["threshold"]).admits(metric, self.regression)
            timings["proxy"] = {**gate, "metric": metric, "promoted": promoted}
        fits = [done[s].fitness for s in self._seed_sets() if s in done]
        if first.outcome != "ok":
            status, fit = "failed", None
        elif first.steps != self.full_steps:
            status, fit = "screened", None
        elif len(fits) == self.config.robust and all(f is not None for f in fits):
            status, fit = "scored", sum(fits) / len(fits)
        else:
            status, fit = "failed", None
        self.db.update_candidate(cand.id, status=status, fitness=fit, timings=timings)

    @staticmethod
    def _outcome_of_twin(twin: Candidate) -> tuple[str, Optional[float]]:
        """(status, fitness) of a child that computes what `twin` computes."""
        if twin.status in ("scored", "duplicate"):
            return "duplicate", twin.fitness
        return twin.status, None  # screened or failed, like its twin

    # ------------------------------------------------------------------ what the live view shows
    def _refresh_progress(self) -> None:
        p = self.progress
        p.evaluations = self.db.count_evaluations()
        if p.evaluations_at_start is None:
            p.evaluations_at_start = p.evaluations
        p.children = self.children
        p.generation = (self.children - 1) // self.config.population + 1 if self.children else 0
        p.running = sum(1 for future in self.running if future.running())
        p.queued = len(self.running) - p.running
        pending = self.db.pending()
        p.pending = len(pending)
        seeds_waiting = sum(1 for c in pending if c.generation == 0)
        if self.children == 0:
            p.seeds_total = p.seeds_total or self.db.count()  # before the first child, every candidate is a seed
            p.seeds_done = p.seeds_total - seeds_waiting
        p.phase = "seeds" if self.children == 0 and seeds_waiting else "search"
        p.failures = self.db.count("failed")
        p.invalid = self.db.count("invalid")
        p.dedup_hits = self.db.count("duplicate")
        p.screened = self.db.count("screened")
        self._update_best()
        self.on_progress(p)

    def _update_best(self) -> None:
        top = self.db.top(1)
        if top and top[0].fitness is not None and top[0].id != self.progress.best_id:
            best = top[0]
            self.progress.best_id, self.progress.best_fitness = best.id, best.fitness
            self.progress.best_text = best.genome or "(free-form code)"
            result = search_result(self.db, best)
            self.progress.best_summary = describe(result) if result else ""
