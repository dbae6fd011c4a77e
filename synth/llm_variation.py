"""LLM operators as the engine sees them: pick parents, build the prompt context, record every call.

The engine asks for one child at a time; this returns a Candidate (admitted through the same
probe and deduplication as genetic children), an `invalid` one recording a failed proposal, or
None once the budget is spent or every provider is down, after saying so once.
"""

from __future__ import annotations

import time

from evaluator.record import EvalResult
from evaluator.tracks import get_track
from population.records import Candidate, LLMCall
from population.selection import select_parents
from prompts.context import CandidateInfo, PromptContext
from synth.llm.ensemble import LLMEnsemble
from synth.llm.spec import parse_llm_spec
from synth.llm_operators import propose

OPERATOR_WEIGHTS = {"llm_edit": 3.0, "llm_rewrite": 1.0, "llm_crossover": 1.0}


class LLMVariation:
    def __init__(self, cfg, db, notice=print, ensemble: LLMEnsemble | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.notice = notice
        self.ensemble = ensemble or LLMEnsemble([parse_llm_spec(s) for s in cfg.llm],
                                                budget_tokens=cfg.llm_budget_tokens, budget_usd=cfg.llm_budget_usd)
        self.said: set[str] = set()
        self.pending_calls: list[tuple[Candidate, list[dict]]] = []

    @property
    def active(self) -> bool:
        self._relay_notices()
        if self.ensemble.exhausted:
            self._say(f"LLM edits stopped ({self.ensemble.stop_reason}); the run goes on with genetic operators only.")
            return False
        return True

    def propose(self, engine, population: list[Candidate], generation: int, batch: list[Candidate]) -> Candidate | None:
        rng = engine.rng
        names = sorted(OPERATOR_WEIGHTS)
        operator = rng.choices(names, weights=[OPERATOR_WEIGHTS[n] for n in names], k=1)[0]
        parents = select_parents(population, 2 if operator == "llm_crossover" else 1, self.cfg.tournament, rng)
        level = self._level(parents, rng)
        proposal = propose(operator, level, self._context(parents, population, rng), self.ensemble, rng,
                           templates_dir=self.cfg.prompts_dir)
        self._relay_notices()
        if not proposal.calls:
            return None  # nothing was asked (budget or providers gone): not a proposal at all
        cand = Candidate(
            generation=generation, kind=proposal.kind, genome=proposal.genome, source=proposal.source or "",
            parents=[p.id for p in parents], operator=operator, operator_params=proposal.params,
            model=proposal.model, status="pending", created_at=time.time(), timings={})
        self.pending_calls.append((cand, proposal.calls))
        if not proposal.ok:
            cand.status = "invalid"
            cand.operator_params = {**cand.operator_params, "error": proposal.error}
            return cand
        return engine.admit(cand, batch)

    def record_calls(self) -> None:
        """After the engine committed the children (they have ids), every call goes to the database."""
        for cand, calls in self.pending_calls:
            for call in calls:
                self.db.add_llm_call(LLMCall(
                    provider=call["provider"], model=call["model"], operator=call["operator"],
                    parent_ids=cand.parents, prompt=call["prompt"], reply=call["reply"],
                    tokens_in=call["tokens_in"], tokens_out=call["tokens_out"], cost_usd=call["cost_usd"],
                    latency_s=call["latency_s"], outcome="child" if call["outcome"] == "ok" else call["outcome"],
                    child_id=cand.id if call["outcome"] == "ok" else None, error=call["error"],
                    created_at=time.time()))
        self.pending_calls.clear()

    # ------------------------------------------------------------------ internals
    def _level(self, parents: list[Candidate], rng) -> str:
        if any(p.genome is None for p in parents) or self.cfg.llm_level == "code":
            return "code"
        if self.cfg.llm_level == "program":
            return "program"
        return "program" if rng.random() < 0.5 else "code"

    def _info(self, cand: Candidate) -> CandidateInfo:
        evals = self.db.evaluations(candidate_id=cand.duplicate_of or cand.id, seed_set="benchmark")
        result = EvalResult.model_validate(evals[0].result) if evals else None
        return CandidateInfo.from_result(cand.id, cand.source, cand.genome, cand.fitness, result)

    def _context(self, parents: list[Candidate], population: list[Candidate], rng) -> PromptContext:
        spec = get_track(self.cfg.track)
        best = [c for c in self.db.top(3) if c.fitness is not None]
        others = [c for c in population if c.id not in {b.id for b in best} | {p.id for p in parents}]
        diverse = rng.sample(others, min(3, len(others)))
        failed = [c for c in self.db.candidates(status="invalid")[-5:]]
        target = (f"eval accuracy >= {spec.target_accuracy} in as few steps as possible (eval every {spec.eval_every})"
                  if spec.task == "recall" else "the lowest final eval MSE")
        return PromptContext(
            track=spec.name, description=spec.description, max_steps=self.cfg.steps or spec.max_steps,
            eval_every=spec.eval_every, target=target, parent=self._info(parents[0]),
            other=self._info(parents[1]) if len(parents) > 1 else None,
            best=[self._info(c) for c in best], diverse=[self._info(c) for c in diverse],
            failures=[(c.operator, str(c.operator_params.get("error", ""))) for c in failed])

    def _relay_notices(self) -> None:
        for line in self.ensemble.notices:
            self._say(line)

    def _say(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.notice(line)
