"""The evolution loop, top to bottom: who is alive -> make children -> score them -> record.

Generational aging evolution: each generation proposes `population` children from the alive
population (tournament selection), commits them *with the RNG state* in one transaction, then
scores them on the worker pool. Because proposal happens only between commits and every
evaluation is keyed by (candidate, track, seed set, steps), a run killed at any moment resumes
exactly where it stopped: no finished evaluation is lost or repeated, and the candidates that
follow are the ones the uninterrupted run would have made. Scores do not depend on which
worker ran a candidate or in which order results came back, so a fixed `--seed` without LLM
gives the same population whatever the number of workers.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from evaluator.pool import EvalJob
from evaluator.record import EvalResult
from evaluator.tracks import get_track
from population.db import RunDB
from population.records import Candidate, Evaluation
from population.selection import alive, select_parents
from primitives.program import Program
from primitives.seeds import seed_programs
from synth.config import RunConfig
from synth.fitness import describe, fitness
from synth.inspect import search_result
from synth.variation import OPERATORS

TWO_PARENT_OPERATORS = {"crossover", "llm_crossover"}
AUDIT_EVERY = 10  # cascade: one in ten screened-out children still gets a full run, to measure the proxy


@dataclass
class Progress:
    """What the live view shows: read from the run database after each change (`_refresh_progress`)."""

    generation: int = 0
    generations: int = 0
    evaluations: int = 0
    pending: int = 0
    dedup_hits: int = 0
    invalid: int = 0
    screened: int = 0
    failures: int = 0
    best_id: Optional[int] = None
    best_fitness: Optional[float] = None
    best_text: str = ""
    best_summary: str = ""
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
                 on_progress: Callable[[Progress], None] = lambda p: None) -> None:
        self.db = db
        self.config = config
        self.pool = pool
        self.llm = llm  # synth.llm_variation.LLMVariation or None
        self.on_progress = on_progress
        self.progress = Progress(generations=config.generations)
        self.rng = random.Random(config.seed)

    # ------------------------------------------------------------------ the loop
    def run(self) -> Progress:
        state = self.db.get_state("engine")
        if state is None:
            self._commit(self._seed_candidates(), generation=0)
        else:
            self.rng = decode_rng(state["rng"])
        self._refresh_progress()
        self._score_pending()
        generation = self.db.get_state("engine")["generation"]
        while generation < self.config.generations:
            generation += 1
            self._commit(self._propose(generation), generation)
            self._score_pending()
        return self.progress

    def _commit(self, children: list[Candidate], generation: int) -> None:
        ids = self.db.commit_generation(children, {"generation": generation, "rng": encode_rng(self.rng)})
        for cand, cand_id in zip(children, ids):
            cand.id = cand_id
        if self.llm is not None:
            self.llm.record_calls()
        self._refresh_progress()

    # ------------------------------------------------------------------ make children
    def _seed_candidates(self) -> list[Candidate]:
        programs = seed_programs()
        names = self.config.seeds or list(programs)
        unknown = [n for n in names if n not in programs]
        if unknown:
            raise ValueError(f"unknown seed programs {unknown}: known are {sorted(programs)}")
        seeds = []
        for name in names:
            program = programs[name]
            seeds.append(self._candidate(program, generation=0, parents=[], operator="seed",
                                         params={"name": name}, batch=seeds))
        return seeds

    def _propose(self, generation: int) -> list[Candidate]:
        scored = self.db.candidates(status="scored") + self.db.candidates(status="duplicate")
        population = alive(scored, self.config.population, self.config.elites)
        if not population:
            raise RuntimeError("no scored candidate is alive: every seed failed to evaluate")
        children: list[Candidate] = []
        for _ in range(self.config.population):
            children.extend(self._one_child(population, generation, children))
        return children

    def _one_child(self, population: list[Candidate], generation: int, batch: list[Candidate]) -> list[Candidate]:
        """Tries operators until a child passes the probe; failed tries are recorded as `invalid`."""
        made: list[Candidate] = []
        for _ in range(self.config.max_proposal_tries):
            child = None
            llm_failed_here = any(c.operator.startswith("llm_") for c in made)  # then retry genetically
            if (self.llm is not None and not llm_failed_here and self.llm.active
                    and self.rng.random() < self.config.llm_rate):
                child = self.llm.propose(self, population, generation, batch + made)
            if child is None:
                operator = self._choose_operator()
                n_parents = 2 if operator in TWO_PARENT_OPERATORS else 1
                # genetic operators need program text: code-only LLM children are not their parents
                programs = [c for c in population if c.genome] or [c for c in self.db.top(100) if c.genome]
                parents = select_parents(programs, n_parents, self.config.tournament, self.rng)
                program, params = OPERATORS[operator](self.rng, [Program.from_text(p.genome) for p in parents])
                child = self._candidate(program, generation, [p.id for p in parents], operator, params, batch + made)
            made.append(child)
            if child.status != "invalid":
                return made
        return made

    def _choose_operator(self) -> str:
        names = sorted(self.config.operator_weights)
        weights = [self.config.operator_weights[n] for n in names]
        return self.rng.choices(names, weights=weights, k=1)[0]

    def _candidate(self, program: Program, generation: int, parents: list[int], operator: str,
                   params: dict, batch: list[Candidate]) -> Candidate:
        source = program.render(title=f"synth {self.config.track} candidate, operator {operator}")
        return self.admit(Candidate(
            generation=generation, kind="program", genome=program.to_text(), source=source, parents=parents,
            operator=operator, operator_params=params, status="pending", created_at=time.time(),
            timings={}), batch)

    def admit(self, cand: Candidate, batch: list[Candidate]) -> Candidate:
        """The probe: reject a dead child cheaply, and spot one that computes what another already does."""
        started = time.perf_counter()
        probe = self.pool.probe(cand.source)
        cand.timings["probe_s"] = time.perf_counter() - started
        if not probe.ok:
            cand.status = "invalid"
            cand.operator_params = {**cand.operator_params, "error": probe.error}
            return cand
        cand.fingerprint = probe.fingerprint
        twin = self.db.find_by_fingerprint(probe.fingerprint)
        screened_twin = twin is None and self.db.find_by_fingerprint(probe.fingerprint, status="screened")
        if screened_twin:
            cand.status, cand.duplicate_of = "screened", screened_twin.id  # same function, same proxy verdict
        elif twin is not None:
            cand.status, cand.duplicate_of, cand.fitness = "duplicate", twin.id, twin.fitness
        elif any(b.fingerprint == probe.fingerprint and b.status == "pending" for b in batch):
            cand.status = "duplicate"  # of a sibling not scored yet: resolved after the batch is scored
        return cand

    # ------------------------------------------------------------------ score them
    def _score_pending(self) -> None:
        while pending := self.db.pending():
            self._refresh_progress()
            if self.config.proxy_steps:
                pending = self._screen(pending)
            if self.config.robust > 1:
                self._score_robust(pending)
            else:
                jobs = [(c.id, EvalJob(c.source, self.config.track, steps=self.config.steps,
                                       submission=f"synth-{c.id}")) for c in pending]
                for cand_id, result in self.pool.evaluate_many(jobs):
                    self.record(cand_id, result)
            self._resolve_sibling_duplicates()
        self._refresh_progress()

    def _score_robust(self, pending: list[Candidate]) -> None:
        """`--robust K`: the full run on K seed sets; fitness is the mean, and any failure fails it."""
        seed_sets = ["benchmark"] + [f"search-{i}" for i in range(1, self.config.robust)]
        steps = self.config.steps or get_track(self.config.track).max_steps
        done = {(e.candidate_id, e.seed_set) for e in self.db.evaluations(track=self.config.track) if e.steps == steps}
        jobs = [((c.id, s), EvalJob(c.source, self.config.track, steps=self.config.steps, seed_set=s,
                                    submission=f"synth-{c.id}"))
                for c in pending for s in seed_sets if (c.id, s) not in done]
        for (cand_id, _), result in self.pool.evaluate_many(jobs):
            self.record(cand_id, result, proxy=True)  # the candidate stays pending until all K are in
        for cand in pending:
            fits = [e.fitness for e in self.db.evaluations(candidate_id=cand.id, track=self.config.track)
                    if e.steps == steps and e.seed_set in seed_sets]
            if len(fits) == len(seed_sets) and all(f is not None for f in fits):
                self.db.update_candidate(cand.id, status="scored", fitness=sum(fits) / len(fits))
            else:
                self.db.update_candidate(cand.id, status="failed")

    def _screen(self, pending: list[Candidate]) -> list[Candidate]:
        """The fidelity cascade: a short proxy run first; only children whose proxy score reaches the
        population's `proxy_quantile` (at the same step) get the full run. Seeds always pass, and every AUDIT_EVERY-th screened-out
        child is fully scored anyway, to measure how many good candidates the proxy wrongly drops."""
        steps = self.config.proxy_steps
        done = {e.candidate_id for e in self.db.evaluations(track=self.config.track, seed_set="benchmark")
                if e.steps == steps}
        jobs = [(c.id, EvalJob(c.source, self.config.track, steps=steps, submission=f"synth-{c.id}"))
                for c in pending if c.id not in done]
        for cand_id, result in self.pool.evaluate_many(jobs):
            self.record(cand_id, result, proxy=True)
        proxy = {e.candidate_id: e for e in self.db.evaluations(track=self.config.track, seed_set="benchmark")
                 if e.steps == steps}
        scored = self.db.candidates(status="scored") + self.db.candidates(status="duplicate")
        population = alive(scored, self.config.population, self.config.elites)
        reference = sorted(proxy[c.duplicate_of or c.id].fitness for c in population
                           if (c.duplicate_of or c.id) in proxy and proxy[c.duplicate_of or c.id].fitness is not None)
        quantile = self.config.proxy_quantile
        threshold = reference[min(len(reference) - 1, int(quantile * len(reference)))] if reference else None
        promoted = []
        for cand in pending:
            ev = proxy[cand.id]
            if ev.fitness is None:
                self.db.update_candidate(cand.id, status="failed")
                continue
            beats = threshold is None or cand.generation == 0 or ev.fitness >= threshold
            audit = not beats and cand.id % AUDIT_EVERY == 0
            cand.timings["proxy"] = {"steps": steps, "fitness": ev.fitness, "threshold": threshold,
                                     "promoted": beats, "audit": audit}
            self.db.update_candidate(cand.id, timings=cand.timings)
            if beats or audit:
                promoted.append(cand)
            else:
                self.db.update_candidate(cand.id, status="screened")
        return promoted

    def record(self, cand_id: int, result: EvalResult, proxy: bool = False) -> None:
        """Stores one evaluation; with `proxy` (a cascade proxy, or one of --robust's K runs) the
        candidate stays pending for the caller to decide."""
        fit = fitness(result)
        self.db.add_evaluation(
            Evaluation(candidate_id=cand_id, track=result.track, seed_set=result.seed_set,
                       steps=result.max_steps, outcome=result.outcome, fitness=fit,
                       result=result.model_dump(mode="json"), created_at=time.time()),
            candidate_status="pending" if proxy else ("scored" if fit is not None else "failed"),
            candidate_fitness=None if proxy else fit)
        self._refresh_progress()

    def _resolve_sibling_duplicates(self) -> None:
        for dup in self.db.candidates(status="duplicate"):
            if dup.duplicate_of is None and dup.fingerprint:
                twin = self.db.find_by_fingerprint(dup.fingerprint)
                if twin is not None:
                    self.db.update_candidate(dup.id, duplicate_of=twin.id, fitness=twin.fitness)
                else:  # the sibling it copied failed: score this one after all
                    self.db.update_candidate(dup.id, status="pending")

    def _refresh_progress(self) -> None:
        p = self.progress
        p.evaluations = self.db.count_evaluations()
        if p.evaluations_at_start is None:
            p.evaluations_at_start = p.evaluations
        p.pending = self.db.count("pending")
        p.failures = self.db.count("failed")
        p.invalid = self.db.count("invalid")
        p.dedup_hits = self.db.count("duplicate")
        p.screened = self.db.count("screened")
        state = self.db.get_state("engine")
        p.generation = state["generation"] if state else 0
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
