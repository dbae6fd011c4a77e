"""A candidate's lifecycle allows only its documented moves, and a proposer's view of the population is
read-only (no back door to the database or the engine)."""

import dataclasses
import random

import pydantic
import pytest

from evaluator.pool import LocalPool
from population.db import RunDB
from population.records import Candidate
from primitives.seeds import seed_programs
from synth.config import RunConfig
from synth.genetic.proposer import GeneticProposer, program_child
from synth.search.lifecycle import PROPOSED, IllegalTransition, Lifecycle, check
from synth.search.view import PopulationView, Queries, frozen


@pytest.fixture(scope="module")
def pool():
    with LocalPool(workers=1) as p:
        yield p


@pytest.fixture
def db(tmp_path):
    with RunDB.create(tmp_path / "run", RunConfig(track="single_ar").flat()) as run:
        yield run


def stored(db, status: str, fitness=None) -> Candidate:
    cand = Candidate(generation=0, source="x", operator="seed", status=status, fitness=fitness)
    db.checkpoint([cand], {"children": 0})
    return db.get_candidate(cand.id)


@pytest.mark.parametrize("old, new", [
    ("scored", "pending"), ("failed", "scored"), ("invalid", "pending"), ("duplicate", "scored"),
    ("screened", "scored"), (PROPOSED, "scored"), ("pending", PROPOSED),
])
def test_illegal_transitions_raise(old, new):
    with pytest.raises(IllegalTransition, match=f"from '{old}' to '{new}'"):
        check(old, new)


def test_a_finished_candidate_cannot_be_finished_again(db):
    lifecycle = Lifecycle(db, probe=None)
    done = stored(db, "scored", fitness=1.5)
    with pytest.raises(IllegalTransition):
        lifecycle._write(done, "failed")
    assert db.get_candidate(done.id).status == "scored"  # nothing written


def test_admit_probes_and_finds_twins(db, pool):
    lifecycle = Lifecycle(db, pool.probe)
    sgd = seed_programs()["sgd_momentum"]
    first = program_child(lifecycle.admit, "single_ar", sgd, 0, [], "seed", {})
    assert first.status == "pending" and first.fingerprint and first.duplicate_of is None
    db.checkpoint([first], {"children": 0})
    twin = program_child(lifecycle.admit, "single_ar", sgd, 1, [first.id], "mutate_node", {})
    assert twin.status == "pending" and twin.duplicate_of == first.id  # waits for its pending twin
    broken = lifecycle.admit(Candidate(generation=1, source="import os\n", operator="llm_rewrite"))
    assert broken.status == "invalid" and broken.operator_params["error"]


def test_a_proposer_sees_a_read_only_view(db, pool):
    lifecycle = Lifecycle(db, pool.probe)
    seed = program_child(lifecycle.admit, "single_ar", seed_programs()["adam"], 0, [], "seed", {})
    db.checkpoint([seed], {"children": 0})
    db.update_candidate(seed.id, status="scored", fitness=0.5)
    members = tuple(frozen(c) for c in db.candidates(status="scored"))
    view = PopulationView(child=1, generation=1, horizon=1, alive=members, db=Queries(db),
                          admit=lifecycle.admit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.alive = ()
    with pytest.raises(AttributeError):
        view.alive.append(seed)
    with pytest.raises(pydantic.ValidationError):
        view.alive[0].fitness = 9.0
    with pytest.raises(AttributeError, match="read-only"):
        view.db.update_candidate(seed.id, status="failed")
    with pytest.raises(AttributeError, match="read-only"):
        view.db.checkpoint([], {})
    assert view.db.get_candidate(seed.id).fitness == 0.5  # queries still answer
    # and a real proposer makes its child from it without writing anything
    proposal = GeneticProposer(RunConfig(track="single_ar", population=2, tournament=1, elites=0),
                               regression=False).propose(view, random.Random(0))
    assert proposal.candidates and all(c.id is None for c in proposal.candidates)
    assert db.count() == 1 and db.get_candidate(seed.id).status == "scored"
