"""LLM operators as the engine sees them: pick parents, build the prompt context, record every call.

The engine asks for one child at a time; this returns a Candidate (admitted through the same
probe and deduplication as genetic children), an `invalid` one recording a reply that never
passed the checks, or None when no model answered (budget spent, provider down or timing out):
the engine then makes that child with a genetic operator. Why LLM edits stopped is said once.
"""

from __future__ import annotations

import time

from evaluator.record import EvalResult
from evaluator.tracks import get_track
from population.records import Candidate, LLMCall
from population.selection import select_parents
from prompts.context import CandidateInfo, PromptContext
from synth.llm.ensemble import LLMEnsemble
from synth.llm.spec import KEY_ENV, key_env, parse_llm_spec, resolve_key
from synth.llm_operators import propose

OPERATOR_WEIGHTS = {"llm_edit": 3.0, "llm_rewrite": 1.0, "llm_crossover": 1.0}


class LLMVariation:
    def __init__(self, cfg, db, notice=print, ensemble: LLMEnsemble | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.notice = notice
        self.ensemble = ensemble or LLMEnsemble([parse_llm_spec(s) for s in cfg.llm],
                                                budget_tokens=cfg.llm_budget_tokens, budget_usd=cfg.llm_budget_usd)
        if ensemble is None:  # a missing key is known before any call: say so at startup, not mid-run
            for spec in self.ensemble.specs:
                if spec.provider in KEY_ENV and resolve_key(spec) is None:
                    self.ensemble.disable(spec, f"{spec.label} is unavailable: no API key (set {key_env(spec)})")
        self.said: set[str] = set()
        self.stopped = False
        self._relayed = 0  # ensemble.notices already looked at
        # (candidate or None when no child came of it, parent ids, call records), until the engine commits
        self.pending_calls: list[tuple[Candidate | None, list[int], list[dict]]] = []
        self._check_stop()

    @property
    def active(self) -> bool:
        return self._check_stop()

    def propose(self, engine, population: list[Candidate], generation: int) -> Candidate | None:
        rng = engine.rng
        names = sorted(OPERATOR_WEIGHTS)
        operator = rng.choices(names, weights=[OPERATOR_WEIGHTS[n] for n in names], k=1)[0]
        parents = select_parents(population, 2 if operator == "llm_crossover" else 1, self.cfg.tournament, rng)
        level = self._level(parents, rng)
        proposal = propose(operator, level, self._context(parents, population, rng), self.ensemble, rng,
                           templates_dir=self.cfg.prompts_dir)
        self._check_stop()
        if not proposal.calls:
            return None  # nothing was asked (budget or providers gone): not a proposal at all
        parent_ids = [p.id for p in parents]
        if not proposal.ok and proposal.calls[-1]["outcome"] not in ("ok", "rejected"):
            # no reply to judge (timeout, server error, provider gone): not the model's failure, and
            # no child; the engine makes this one with a genetic operator
            self.pending_calls.append((None, parent_ids, proposal.calls))
            return None
        cand = Candidate(
            generation=generation, kind=proposal.kind, genome=proposal.genome, source=proposal.source or "",
            parents=parent_ids, operator=operator, operator_params=proposal.params,
            model=proposal.model, status="pending", created_at=time.time(), timings={})
        self.pending_calls.append((cand, parent_ids, proposal.calls))
        if not proposal.ok:
            cand.status = "invalid"
            cand.operator_params = {**cand.operator_params, "error": proposal.error}
            return cand
        return engine.admit(cand)

    def record_calls(self) -> None:
        """After the engine committed the children (they have ids), every call goes to the database.

        `child_id` is the candidate the proposal became, also for the rejected rounds before a repair
        and for a proposal recorded as invalid; None when no candidate came of the call.
        """
        for cand, parent_ids, calls in self.pending_calls:
            for call in calls:
                self.db.add_llm_call(LLMCall(
                    provider=call["provider"] or "?", model=call["model"] or "?", operator=call["operator"],
                    parent_ids=parent_ids, prompt=call["prompt"], reply=call["reply"] or "",
                    tokens_in=call["tokens_in"], tokens_out=call["tokens_out"], cost_usd=call["cost_usd"],
                    latency_s=call["latency_s"], outcome="child" if call["outcome"] == "ok" else call["outcome"],
                    child_id=cand.id if cand is not None else None, error=call["error"],
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

    def _check_stop(self) -> bool:
        """Relay the ensemble's new notices; True while LLM calls can still be made. When they cannot,
        one line says why (which replaces the ensemble's own 'disabled' / 'stop' notices)."""
        exhausted = self.ensemble.exhausted
        notices = self.ensemble.notices[self._relayed:]
        self._relayed = len(self.ensemble.notices)
        for line in notices:
            if line.startswith("LLM operators stop:"):
                continue  # said below, in the user's words
            if not self.ensemble.enabled and line.startswith("LLM ") and "disabled for the rest of this run" in line:
                continue  # the last provider gone: the stop line below names it
            self._say(line)
        if exhausted and not self.stopped:
            self.stopped = True
            reason = self.ensemble.stop_reason
            if not self.ensemble.enabled:
                reason = "; ".join(self.ensemble.disabled.values())
            self._say(f"LLM edits stopped: {reason}. The run goes on with genetic operators only.")
        return not exhausted

    def _say(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.notice(line)
