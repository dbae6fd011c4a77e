"""LLM operators as the engine sees them: start a proposal, hear when its model call returns, hand
back the child -- without ever holding up the scheduler.

Everything that touches the run database or the RNG happens on the engine's thread: choosing the
operator and parents, building the prompt, checking a reply, probing the child, sending a duplicate
back for one repair round. Only the model call itself runs on a thread of its own (`in_thread`), so
the workers keep scoring genetic children while a model thinks.

Every call is written to the database the moment it returns, as `open:<outcome>`; the commit of the
candidate it made settles it (`child`, `rejected`, ...) in the same transaction. An open reply is
the reply cache: a run killed mid-proposal replays it on resume (same model, same prompt) instead
of paying for it again. The proposals in flight are part of the engine's checkpoint, so a resume
asks the very same questions.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Optional

from evaluator.record import EvalResult
from evaluator.tracks import get_track
from population.records import Candidate, LLMCall
from population.selection import select_parents
from prompts.context import CandidateInfo, PromptContext
from synth.search.fitness import formula
from synth.llm.base import Completion, LLMError
from synth.llm.ensemble import BudgetExhausted, LLMEnsemble, Ticket
from synth.llm.pricing import price_of
from synth.llm.spec import KEY_ENV, key_env, parse_llm_spec, resolve_key
from synth.llm.operators import ProposalRun, call_record
from synth.search.operators import choose
from synth.search.proposal import Proposal
from synth.search.view import PopulationView


def in_thread(fn, *args) -> Future:
    """`fn(*args)` on a daemon thread (a hung call never blocks the process from exiting)."""
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 -- delivered to the engine through the future
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True, name="llm-call").start()
    return future


@dataclass
class Pending:
    """One proposal in flight: how to ask again after a resume (`entry`), and what it did so far."""

    entry: dict  # token, operator, level, ctx, parents, generation, seed, gate: the checkpoint's record
    run: ProposalRun
    rng: random.Random
    ticket: Optional[Ticket] = None
    replay_id: Optional[int] = None  # the open call being replayed by the ticket
    call_ids: list[int] = field(default_factory=list)  # calls recorded for this proposal, in order


class LLMVariation:
    def __init__(self, cfg, db, notice=print, ensemble: LLMEnsemble | None = None) -> None:
        self.cfg = cfg  # synth.config.RunConfig
        self.llm_cfg = cfg.llm
        self.db = db
        self.notice = notice
        self.claimed: set[int] = set()  # open calls made or replayed by this process
        self._claim: Optional[int] = None
        if ensemble is None:
            specs = [with_price(parse_llm_spec(s), cfg.llm.price) for s in cfg.llm.models]
            ensemble = LLMEnsemble(specs, budget_tokens=cfg.llm.budget_tokens, budget_usd=cfg.llm.budget_usd,
                                   spent=db.llm_totals())
            for spec in ensemble.specs:  # a missing key is known before any call: say so at startup
                if spec.provider in KEY_ENV and resolve_key(spec) is None:
                    ensemble.disable(spec, f"{spec.label} is unavailable: no API key (set {key_env(spec)})")
        ensemble.cache = self._replay
        self.ensemble = ensemble
        self.said: set[str] = set()
        self.stopped = False
        self._relayed = 0  # ensemble.notices already looked at
        self.running: dict[Future, Pending] = {}
        self._check_stop()

    @property
    def active(self) -> bool:
        """Calls can be made now (budget left, a provider enabled and not cooling down)."""
        return self._check_stop() and bool(self.ensemble.ready)

    @property
    def open_entries(self) -> list[dict]:
        """The proposals in flight, for the engine's checkpoint."""
        return sorted((p.entry for p in self.running.values()), key=lambda e: e["token"])

    # ------------------------------------------------------------------ starting
    def propose(self, view: PopulationView, rng: random.Random) -> Optional[Proposal]:
        """Begin a proposal for `view.child` (draws from `rng`): its child comes later, from `finish`.
        None when no call could be made (a genetic child takes the slot)."""
        spec = choose(rng, self.llm_cfg.operator_weights)
        parents = select_parents(view.alive, spec.parents, self.cfg.search.tournament, rng)
        level = self._level(parents, rng)
        ctx = self._context(parents, list(view.alive), rng)
        entry = {"token": view.child, "operator": spec.name, "level": level, "ctx": ctx.model_dump(mode="json"),
                 "parents": [p.id for p in parents], "generation": view.generation, "seed": rng.getrandbits(64),
                 "gate": view.gate.model_dump() if view.gate is not None else None}
        return Proposal(in_flight=True) if self.resume(entry) else None

    def resume(self, entry: dict) -> bool:
        """(Re)start the proposal an entry describes; False when no call could be made."""
        try:
            ctx = PromptContext.model_validate(entry["ctx"])
            title = f"synth {self.cfg.track} candidate, operator {entry['operator']}"
            run = ProposalRun(entry["operator"], entry["level"], ctx, templates_dir=self.llm_cfg.prompts_dir, title=title)
        except (ValueError, KeyError) as exc:
            self._say(f"LLM proposal not made: {' '.join(str(exc).split())[:300]}")
            return False
        pending = Pending(entry, run, random.Random(entry["seed"]))
        return self._ask(pending)

    def _ask(self, pending: Pending) -> bool:
        """Send the proposal's next request on its own thread; False if the budget or providers say no."""
        messages = pending.run.request()
        if messages is None:
            return False
        self._claim = None
        try:
            pending.ticket = self.ensemble.prepare(*messages, pending.rng)
        except BudgetExhausted:
            self._check_stop()
            return False
        except LLMError as exc:  # the provider could not even start: recorded, like any failed call
            settled_later = bool(pending.call_ids)  # mid-proposal: the proposal's commit settles it
            pending.run.on_error(exc, self.ensemble.last_spec)
            self._record(pending, pending.run.proposal.calls[-1], open_=settled_later)
            self._check_stop()
            return False
        pending.replay_id, self._claim = self._claim, None
        self.running[in_thread(self.ensemble.call, pending.ticket)] = pending
        return True

    # ------------------------------------------------------------------ a call returned
    def finish(self, future: Future, lifecycle) -> Optional[tuple[Optional[Candidate], Pending]]:
        """Take one returned call (engine thread). None while the proposal goes on; else (child or None
        when no candidate came of it, the proposal) for the engine to commit. `lifecycle`
        (synth/search/lifecycle.py) admits the child or records it as invalid."""
        pending = self.running.pop(future)
        run, ticket = pending.run, pending.ticket
        try:
            completion = future.result()
            error = None
        except LLMError as exc:
            completion, error = None, exc
        except Exception as exc:  # never from our providers; a safety net for anything else
            completion, error = None, LLMError(f"{ticket.spec.label}: {type(exc).__name__}: {exc}")
        self.ensemble.settle(ticket, completion, error)
        before = len(run.proposal.calls)
        if error is not None:
            run.on_error(error, ticket.spec)
        else:
            run.on_reply(completion, ticket.spec)
        for record in run.proposal.calls[before:]:
            self._record(pending, record, replay_id=pending.replay_id)
        if run.done and run.proposal.ok:
            cand = lifecycle.admit(self._draft(pending))
            twin = self._twin(cand, pending.entry["parents"])
            if twin is not None and run.send_back(twin) and self._ask(pending):
                return None  # one repair round; if it cannot be asked, the duplicate stays as it is
            self._check_stop()
            return cand, pending
        if not run.done and self._ask(pending):
            return None
        self._check_stop()
        proposal = run.proposal
        if proposal.calls and proposal.calls[-1]["outcome"] in ("rejected", "duplicate"):
            return lifecycle.rejected(self._invalid(pending)), pending  # the model's failure: an invalid child
        return None, pending  # no reply to judge: the engine makes this child with a genetic operator

    def links(self, pending: Pending, cand: Optional[Candidate]) -> list[tuple]:
        """(call id, candidate, final outcome, error) for the commit that settles the proposal's calls."""
        made = cand is not None and cand.status != "invalid"
        return [(cid, cand, "child" if call["outcome"] == "ok" and made else call["outcome"], call["error"])
                for cid, call in zip(pending.call_ids, pending.run.proposal.calls)]

    # ------------------------------------------------------------------ internals
    def _draft(self, pending: Pending) -> Candidate:
        proposal, entry = pending.run.proposal, pending.entry
        return Candidate(generation=entry["generation"], kind=proposal.kind, genome=proposal.genome,
                         source=proposal.source or "", parents=list(entry["parents"]), operator=proposal.operator,
                         operator_params=proposal.params, model=proposal.model, created_at=time.time(), timings={})

    def _twin(self, cand: Candidate, parent_ids: list[int]) -> Optional[str]:
        """Why the child is not new (it repeats a parent or an existing candidate), or None."""
        if cand.status == "invalid":
            return None
        same = self.db.find_by_text(cand.genome, cand.source)
        if same is not None:
            who = "its parent" if same.id in parent_ids else "an existing candidate"
            return (f"the child is identical to {who}, candidate {same.id} (same "
                    f"{'program text' if cand.genome and same.genome == cand.genome else 'file'}); "
                    "make a real change to the update rule")
        if cand.duplicate_of is not None:
            who = "its parent" if cand.duplicate_of in parent_ids else "an existing candidate"
            return (f"the child computes exactly what {who}, candidate {cand.duplicate_of}, computes (same "
                    "updates on the probe problem); make a change that alters the update rule")
        return None

    def _invalid(self, pending: Pending) -> Candidate:
        proposal, entry = pending.run.proposal, pending.entry
        return Candidate(generation=entry["generation"], kind=proposal.kind, genome=None, source="",
                         parents=list(entry["parents"]),
                         operator=proposal.operator, operator_params={**proposal.params, "error": proposal.error},
                         model=proposal.model, created_at=time.time(), timings={})

    def _record(self, pending: Pending, record: dict, replay_id: Optional[int] = None, open_: bool = True) -> None:
        """The call, written now (open until its candidate is committed); a replay is already there."""
        if record.get("cached") and replay_id is not None:
            pending.call_ids.append(replay_id)
            return
        call = LLMCall(provider=record["provider"] or "?", model=record["model"] or "?", operator=record["operator"],
                       parent_ids=list(pending.entry["parents"]), prompt=record["prompt"],
                       reply=record["reply"] or "", tokens_in=record["tokens_in"], tokens_out=record["tokens_out"],
                       cost_usd=record["cost_usd"], latency_s=record["latency_s"],
                       outcome=f"open:{record['outcome']}" if open_ else record["outcome"],
                       error=record["error"], created_at=time.time())
        pending.call_ids.append(self.db.add_llm_call(call))
        self.claimed.add(call.id)  # only a reply paid for by an earlier process is ever replayed

    def _replay(self, spec, system: str, user: str) -> Optional[Completion]:
        prompt = f"[system]\n{system}\n\n[user]\n{user}"
        call = self.db.open_llm_reply(spec.label, prompt, exclude=self.claimed)
        if call is None:
            return None
        self.claimed.add(call.id)
        self._claim = call.id
        return Completion(text=call.reply, tokens_in=call.tokens_in, tokens_out=call.tokens_out,
                          cost_usd=call.cost_usd, latency_s=call.latency_s, provider=call.provider,
                          model=spec.model, cached=True)

    def _level(self, parents: list[Candidate], rng) -> str:
        if any(p.genome is None for p in parents) or self.llm_cfg.level == "code":
            return "code"
        if self.llm_cfg.level == "program":
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
        failed = self.db.latest("invalid", 5)
        target = (f"eval accuracy >= {spec.target_accuracy} in as few steps as possible (eval every {spec.eval_every})"
                  if spec.task == "recall" else "the lowest final eval MSE")
        return PromptContext(
            track=spec.name, description=spec.description, max_steps=self.cfg.steps,
            benchmark_steps=spec.max_steps, eval_every=spec.eval_every, target=target,
            fitness_formula=formula(spec.task), parent=self._info(parents[0]),
            other=self._info(parents[1]) if len(parents) > 1 else None,
            best=[self._info(c) for c in best], diverse=[self._info(c) for c in diverse],
            failures=[(c.operator, str(c.operator_params.get("error", ""))) for c in failed],
            attempts=self._attempts(parents[0]))

    def _attempts(self, parent: Candidate) -> list[str]:
        """Children made on the parent's lineage, newest last: what was tried and how the score moved."""
        chain = {c.id: c for c in self.db.lineage(parent.id)[:6]}
        tried = self.db.children_of(list(chain), self.llm_cfg.attempts_shown)
        lines = []
        for child in tried:
            base = chain[child.parents[0]].fitness
            idea = child.operator_params.get("name") or ""
            what = f"{child.operator}" + (f" '{idea}'" if idea else "")
            if child.status in ("scored", "duplicate") and child.fitness is not None:
                delta = f" ({child.fitness - base:+.4f} vs its parent)" if base is not None else ""
                twin = f", same as candidate {child.duplicate_of}" if child.duplicate_of else ""
                outcome = f"fitness {child.fitness:.4f}{delta}{twin}"
            elif child.status == "invalid":
                outcome = f"invalid: {' '.join(str(child.operator_params.get('error', '')).split())[:160]}"
            else:
                outcome = child.status
            lines.append(f"candidate {child.id} from {child.parents[0]} by {what}: {outcome}")
        return lines

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


def with_price(spec, price: Optional[tuple[float, float]]):
    """`--llm-price IN,OUT` for a model the price table does not know (a spec's own price wins)."""
    if price is None or price_of(spec) is not None:
        return spec
    return spec.model_copy(update={"price_in": price[0], "price_out": price[1]})
