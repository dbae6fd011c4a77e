"""The genetic proposer: a child from the registry's operators (synth/search/operators.py), or a `tune` trial.

It tries operators until a child passes the probe (failed tries are kept, as `invalid`); an edit
that computes what its parent computes is redrawn at no cost. The first `tune_seeds` x seeds
children tune the seeds in turn, so the population starts from the known optimizers at good
constants, not at their textbook ones.
"""

from __future__ import annotations

import random
import time
from typing import Optional

from population.records import Candidate
from population.selection import select_parents
from primitives.program import Program
from synth.config import RunConfig
from synth.search.operators import REGISTRY, choose
from synth.search.proposal import Proposal
from synth.genetic.tune import tune_child
from synth.genetic.variation import live_text
from synth.search.view import PopulationView


class GeneticProposer:
    def __init__(self, config: RunConfig, regression: bool) -> None:
        self.config = config
        self.regression = regression

    def propose(self, view: PopulationView, rng: random.Random) -> Proposal:
        made: list[Candidate] = []
        search = self.config.search
        for _ in range(search.max_proposal_tries):
            tuned_seed = self._seed_to_tune(view) if not made else None
            if tuned_seed is not None:
                operator, parents = "tune", [tuned_seed]
                child = self._child(view, rng, operator, parents, redraw=False)
            else:
                spec = choose(rng, search.operator_weights)
                operator = spec.name
                # genetic operators need program text: code-only LLM children are not their parents
                programs = ([c for c in view.alive if c.genome]
                            or view.db.ranked_programs(view.horizon, 100))
                parents = select_parents(programs, spec.parents, search.tournament, rng)
                child = self._child(view, rng, operator, parents)
                if child is None:  # it computes what its parent does: redraw, at no cost to the budget
                    continue
            made.append(child)
            if child.status != "invalid":
                break
        if not made:  # every try was a no-op: keep the last one rather than make nothing
            made.append(self._child(view, rng, operator, parents, redraw=False))
        return Proposal(made)

    def _seed_to_tune(self, view: PopulationView) -> Optional[Candidate]:
        seeds = view.db.seeds_to_tune()
        if not seeds or view.child > self.config.search.tune_seeds * len(seeds):
            return None
        return seeds[(view.child - 1) % len(seeds)]

    def _child(self, view: PopulationView, rng: random.Random, operator: str, parents: list[Candidate],
               redraw: bool = True) -> Optional[Candidate]:
        """One child of a genetic operator (or `tune`); None when it would compute what its first parent
        computes (an edit on a dead slot, a no-op shrink or perturbation) and `redraw` allows another try."""
        programs = [Program.from_text(p.genome) for p in parents]
        if operator == "tune":
            search = self.config.search
            tuned = tune_child(view.db, view.horizon, rng, parents[0], self.regression,
                               trials_per_root=search.tune_trials, startup=search.tune_startup,
                               tracks=tuple(self.config.tracks))
            if tuned is not None:
                root, program, params = tuned
                return program_child(view.admit, self.config.track, program, view.generation, [root], operator,
                                     params)
            operator = "perturb_constants"  # this structure had its trials (or has no constants)
        program, params = REGISTRY[operator].fn(rng, programs, self.config.search.bloat_limits)
        if redraw and live_text(program) == live_text(programs[0]):
            return None
        return program_child(view.admit, self.config.track, program, view.generation, [p.id for p in parents],
                             operator, params)


def program_child(admit, track: str, program: Program, generation: int, parents: list[int], operator: str,
                  params: dict) -> Candidate:
    """A program's child, rendered to the Submission file that is scored, and admitted (probe + dedup)."""
    source = program.render(title=f"synth {track} candidate, operator {operator}")
    return admit(Candidate(
        generation=generation, kind="program", genome=program.to_text(), source=source, parents=parents,
        operator=operator, operator_params=params, created_at=time.time(), timings={}))
