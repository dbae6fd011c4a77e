"""The scheduler: propose -> admit -> dispatch -> record, one child at a time as worker slots free up.

Steady-state aging evolution. A new child is proposed the moment a worker slot frees up, so a
slow candidate never idles the other workers. What a child sees is fixed by candidate ids, never
by which worker finished first: the seeds, plus every candidate made at least `population` ids
before it (the *window*). Proposing waits in the rare case one of those is still running;
everything younger may still be in flight. Hence a fixed `--seed` without an LLM gives the same
candidates, with the same scores, whatever the number of workers or the order results come back in.

Who does what: proposers make children from a read-only view (synth/genetic/proposer.py, and the LLM's in
synth/llm/proposer.py, which runs beside this loop and delivers its child when the model
answers); synth/search/lifecycle.py admits them and writes every status; synth/search/cascade.py plans each
child's gate and judges it; the backend (a `Backend`, synth/search/proposal.py) runs the evaluations.

Each child is committed together with the RNG state that made it and the engine's child counter;
each evaluation is keyed by (candidate, track, seed set, steps). A run killed at any moment
resumes exactly: unfinished candidates are scored again, finished ones never, and the children
that follow are the ones the uninterrupted run would have made.
"""

from __future__ import annotations

import dataclasses
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, Optional

from evaluator.pool import EvalJob
from evaluator.tracks import get_track
from population.db import RunDB
from population.records import Candidate, Evaluation
from primitives.seeds import seed_programs
from synth.search import cascade
from synth.search.cascade import GatePlan, TrackCascades
from synth.config import RunConfig
from synth.genetic.proposer import GeneticProposer, program_child
from synth.search.lifecycle import Lifecycle
from synth.search.progress import Progress, generation_of, refresh
from synth.search.proposal import Backend
from synth.search.view import PopulationView, Queries, frozen


class NothingAlive(RuntimeError):
    """No scored candidate to breed from: every seed failed (the message is one line for the user)."""


def encode_rng(rng: random.Random) -> dict:
    version, internal, gauss = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def decode_rng(state: dict) -> random.Random:
    rng = random.Random()
    rng.setstate((state["version"], tuple(state["internal"]), state["gauss"]))
    return rng


class Evolution:
    def __init__(self, db: RunDB, config: RunConfig, pool: Backend, llm=None,
                 on_progress: Callable[[Progress], None] = lambda p: None, deadline: Optional[float] = None) -> None:
        self.db = db
        self.config = config
        self.pool = pool
        self.llm = llm  # synth.llm.proposer.LLMVariation or None
        self.on_progress = on_progress
        self.deadline = deadline  # time.time() after which no new child is proposed (--time-budget)
        self.tracks = list(config.tracks)  # scoring order, cheap first; the first is `config.track`
        self.regression = get_track(config.track).task == "regression"
        self.lifecycle = Lifecycle(db, pool.probe)
        self.cascade = TrackCascades(config.cascade, {t: get_track(t).task == "regression" for t in self.tracks})
        self.genetic = GeneticProposer(config, self.regression)
        self.children_total = config.search.generations * config.search.population
        self.progress = Progress(generations=config.search.generations, children_total=self.children_total)
        self.rng = random.Random(config.search.seed)
        self.children = 0  # children proposed so far (a child's invalid tries count once)
        self.running: dict[Future, int] = {}  # evaluation in flight -> candidate id

    # ------------------------------------------------------------------ the loop
    def run(self) -> Progress:
        state = self.db.get_state("engine")
        if state is None:
            self._commit(self._seeds())
        else:
            self.rng = decode_rng(state["rng"])
            self.children = state.get("children", state.get("generation", 0) * self.config.search.population)
            self._reopen_llm(state.get("llm_open", []))
        try:
            while True:
                self._dispatch()
                while len(self.running) < self.pool.size and self._may_propose():
                    self.children += 1
                    self._commit(self._propose())
                    self._dispatch()
                llm_running = set(self.llm.running) if self.llm is not None else set()
                if not self.running and not llm_running:
                    break
                done, _ = wait(set(self.running) | llm_running, return_when=FIRST_COMPLETED)
                for future in sorted(done - llm_running, key=self.running.get):
                    self.lifecycle.record(self.running.pop(future), future.result())
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
        return self.db.count() + 1 - self.config.search.population

    def _view(self, generation: Optional[int] = None) -> PopulationView:
        horizon, search = self._horizon(), self.config.search
        return PopulationView(
            child=self.children, generation=generation or generation_of(self.children, search.population),
            horizon=horizon, alive=tuple(frozen(c) for c in self.db.alive(horizon, search.population, search.elites)),
            db=Queries(self.db), admit=self.lifecycle.admit)

    def _commit(self, made: list[Candidate], calls: list = ()) -> None:
        """New candidates (ids set on them), the RNG state that made them, the LLM proposals still in
        flight and the LLM calls settled by these candidates, in one transaction."""
        state = {"children": self.children, "rng": encode_rng(self.rng)}
        if self.llm is not None:
            state["llm_open"] = self.llm.open_entries
        self.db.checkpoint(made, state, calls=list(calls))

    # ------------------------------------------------------------------ propose
    def _seeds(self) -> list[Candidate]:
        programs = seed_programs(opt_in=bool(self.config.search.seeds))  # opt-in seeds only when named
        names = self.config.search.seeds or list(programs)
        unknown = [n for n in names if n not in programs]
        if unknown:
            raise ValueError(f"unknown seed programs {unknown}: known are {sorted(programs)}")
        plan = self.cascade.seed_plan()
        return [cascade.with_plan(program_child(self.lifecycle.admit, self.config.track, programs[name], 0, [],
                                                "seed", {"name": name}), plan) for name in names]

    def _propose(self) -> list[Candidate]:
        """The next child: the LLM's (delivered later, `_llm_returned`) at `llm.rate`, else a genetic one."""
        view = self._view()
        if not view.alive:
            raise NothingAlive("no scored candidate is alive: every seed failed to evaluate "
                               "(see `synth show` for their outcomes)")
        gate = self.cascade.plan(view.alive, self.db.get_candidate, audit=self.cascade.audit_due(self.children))
        view = dataclasses.replace(view, gate=gate)
        if (self.llm is not None and len(self.llm.running) < self.pool.size and self.llm.active
                and self.rng.random() < self.config.llm.rate):
            try:
                proposal = self.llm.propose(view, self.rng)
                if proposal is not None:
                    return proposal.candidates
            except Exception as exc:  # an LLM proposal never takes the run down
                self.llm.notice(f"LLM proposal failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return self._genetic(view, gate)

    def _genetic(self, view: PopulationView, gate: Optional[GatePlan]) -> list[Candidate]:
        return [cascade.with_plan(c, gate) for c in self.genetic.propose(view, self.rng).candidates]

    def _llm_returned(self, future: Future) -> None:
        """A model call returned: the proposal goes on, or its child (or a genetic stand-in) is committed
        with the calls that made it."""
        try:
            finished = self.llm.finish(future, self.lifecycle)
        except Exception as exc:  # never out of the engine: the slot gets a genetic child instead
            self.llm.running.pop(future, None)
            self.llm.notice(f"LLM proposal failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            self._commit(self._stand_in(None))
            return
        if finished is None:
            return
        cand, pending = finished
        made = [cascade.with_plan(cand, _plan(pending.entry))] if cand is not None else []
        if cand is None or cand.status == "invalid":
            made += self._stand_in(pending.entry)
        self._commit(made, calls=self.llm.links(pending, cand))

    def _stand_in(self, entry: Optional[dict]) -> list[Candidate]:
        """A genetic child in place of an LLM child that did not come."""
        view = self._view(entry["generation"] if entry else None)
        gate = _plan(entry) if entry else self.cascade.plan(view.alive, self.db.get_candidate, audit=False)
        return self._genetic(view, gate)

    def _reopen_llm(self, entries: list[dict]) -> None:
        """A resumed run asks the questions its proposals in flight were asking (the replies already
        paid for are replayed from the database); without an LLM now, genetic children take their place."""
        for entry in entries:
            if self.llm is None or not self.llm.resume(entry):
                self._commit(self._stand_in(entry))

    # ------------------------------------------------------------------ dispatch and finish
    def _dispatch(self) -> None:
        """Every pending candidate gets the evaluation it needs next, or its final status if none."""
        busy = set(self.running.values())
        for cand in self.db.pending():
            if cand.id in busy:
                continue
            if cand.duplicate_of is not None:
                self.lifecycle.settle(cand)
                continue
            jobs = self._jobs(cand)
            if not jobs:
                self._finish(cand)
            for job in jobs:
                self.running[self.pool.submit_eval(job)] = cand.id
        self._refresh_progress()

    def _seed_sets(self) -> list[str]:
        return ["benchmark"] + [f"search-{i}" for i in range(1, self.config.cascade.robust)]

    def _evaluations(self, cand: Candidate, track: str) -> dict[str, Evaluation]:
        """seed set -> this candidate's search evaluation on `track` (the full run, or one stopped by its gate)."""
        gate = self.cascade.gate(cascade.stored(cand), track)
        steps = (self.config.steps, gate.steps if gate else None)
        return {e.seed_set: e for e in self.db.evaluations(candidate_id=cand.id, track=track) if e.budget in steps}

    def _jobs(self, cand: Candidate) -> list[EvalJob]:
        """Track by track (cheap first): the gated benchmark run first; with `--robust K`, the other K-1 seed
        sets once it went the distance; then the next track. A run stopped or failed on one track ends it."""
        for track in self.tracks:
            done = self._evaluations(cand, track)
            first = done.get("benchmark")
            if first is None:
                gate_step, threshold = self.cascade.job_gate(self.cascade.gate(cascade.stored(cand), track))
                return [EvalJob(cand.source, track, steps=self.config.steps, submission=f"synth-{cand.id}",
                                gate_step=gate_step, gate_threshold=threshold)]
            if first.outcome != "ok" or first.budget != self.config.steps:
                return []
            rest = [EvalJob(cand.source, track, steps=self.config.steps, seed_set=s, submission=f"synth-{cand.id}")
                    for s in self._seed_sets()[1:] if s not in done]
            if rest:
                return rest
        return []

    def _finish(self, cand: Candidate) -> None:
        done = {t: evals for t in self.tracks if (evals := self._evaluations(cand, t))}
        metrics = {t: evals["benchmark"].result.get("gate_metric") for t, evals in done.items() if "benchmark" in evals}
        outcome = self.cascade.outcome(cascade.stored(cand), metrics)
        self.lifecycle.finish(cand, done, self._seed_sets(), self.config.steps, outcome)

    def _refresh_progress(self) -> None:
        refresh(self.progress, self.db, self.children, self.config.search.population, self.config.steps,
                list(self.running))
        self.on_progress(self.progress)


def _plan(entry: dict) -> Optional[GatePlan]:
    """The gate an LLM proposal was planned with (kept in its checkpoint entry)."""
    return GatePlan.model_validate(entry["gate"]) if entry.get("gate") else None
