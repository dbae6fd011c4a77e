"""Genetic operators: deterministic per seed, they change the program, respect the bloat limits and keep betas valid."""

import json
import random

import pytest

from primitives.program import Program
from primitives.pset import Beta, is_constant
from primitives.seeds import seed_programs
from synth.search.operators import REGISTRY, choose
from synth.config import RunConfig
from synth.genetic.variation import DEFAULT_LIMITS, BloatLimits, perturbed

OPERATORS = {name: spec.fn for name, spec in REGISTRY.items() if spec.fn is not None}

SEEDS = list(seed_programs().values())


def parents_for(rng, pool):
    return [rng.choice(pool), rng.choice(pool)]


def pool(seed=0, n=40):
    rng = random.Random(seed)
    return SEEDS + [Program.random(rng, 1, 3) for _ in range(n)]


def within_limits(program, limits=DEFAULT_LIMITS):
    return all(tree.height <= limits.max_height and len(tree) <= limits.max_nodes for tree in program.trees)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operators_are_deterministic_for_a_fixed_seed(name):
    programs = pool()
    for seed in range(30):
        parents = parents_for(random.Random(1000 + seed), programs)
        runs = [OPERATORS[name](random.Random(seed), parents) for _ in range(2)]
        assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operators_change_the_program_and_children_round_trip(name):
    programs = pool(seed=1)
    rng = random.Random(2)
    changed = 0
    for _ in range(100):
        parents = parents_for(rng, programs)
        child, params = OPERATORS[name](rng, parents)
        assert Program.from_text(child.to_text()) == child
        assert json.loads(json.dumps(params)) == params
        changed += child != parents[0]
    minimum = {"mutate_node": 100, "perturb_constants": 100, "crossover": 60, "mutate_shrink": 80}.get(name, 90)
    assert changed >= minimum, (name, changed)


def test_mutate_node_always_changes_even_lone_terminals():
    rng = random.Random(3)
    bare = Program.from_text("s0 = s0\ns1 = s1\ns2 = s2\nupdate = g")
    for parent in SEEDS + [bare] * 20:
        child, params = OPERATORS["mutate_node"](rng, [parent])
        assert child != parent, params


def test_long_chains_of_variation_stay_within_limits_and_parse():
    rng = random.Random(4)
    population = list(SEEDS)
    names = sorted(OPERATORS)
    for _ in range(500):
        name = rng.choice(names)
        parents = parents_for(rng, population)
        child, _ = OPERATORS[name](rng, parents)
        assert within_limits(child), (name, child.to_text())
        assert Program.from_text(child.to_text()).to_text() == child.to_text()
        population.append(child)
        population = population[-30:]


def test_the_search_configs_bloat_limits_bind_every_tree_operator():
    """`max_height = 4` in a run's config reaches the operators: chains that the defaults let grow past
    it stay within it."""
    limits = RunConfig(max_height=4, max_nodes=12).search.bloat_limits
    assert limits == BloatLimits(4, 12)
    rng = random.Random(8)
    small = [p for p in SEEDS if within_limits(p, limits)]
    population, grown = list(small), 0
    for _ in range(300):
        name = rng.choice(sorted(OPERATORS))
        child, _ = OPERATORS[name](rng, parents_for(rng, population), limits)
        assert within_limits(child, limits), (name, child.to_text())
        default_child, _ = OPERATORS[name](random.Random(rng.random()), parents_for(rng, population))
        grown += not within_limits(default_child, limits)
        population = (population + [child])[-30:]
    assert grown > 0  # the default limits would have let these parents grow past the tight ones


def test_perturb_constants_keeps_betas_in_unit_interval():
    rng = random.Random(5)
    program = seed_programs()["adam"]
    for _ in range(300):
        program, params = OPERATORS["perturb_constants"](rng, [program])
        for tree in program.trees:
            for node in tree:
                if is_constant(node) and node.ret is Beta:
                    assert 0.0 < node.value < 1.0
        assert Program.from_text(program.to_text()) == program
    for z in (-10.0, -3.0, 0.0, 3.0, 10.0):
        for beta in (1e-6, 0.5, 0.9, 0.999999):
            assert 0.0 < perturbed(Beta, beta, z) < 1.0


def test_perturb_constants_records_what_it_changed():
    child, params = OPERATORS["perturb_constants"](random.Random(6), [seed_programs()["sgd_momentum"]])
    change = params["changes"][0]
    assert change["role"] in ("s0", "update") and change["old"] in (0.9, -0.1) and change["new"] != change["old"]


def test_crossover_needs_two_parents_and_only_mixes_the_same_role():
    with pytest.raises(ValueError):
        OPERATORS["crossover"](random.Random(0), SEEDS[:1])
    rng = random.Random(7)
    for _ in range(50):
        a, b = parents_for(rng, SEEDS)
        child, params = OPERATORS["crossover"](rng, [a, b])
        if params.get("unchanged"):
            continue
        differing = [i for i, (x, y) in enumerate(zip(child.trees, a.trees)) if str(x) != str(y)]
        assert len(differing) == 1


def test_registry_names_every_operator_once_with_its_parents():
    assert set(REGISTRY) == set(OPERATORS) | {"llm_crossover", "llm_edit", "llm_rewrite", "tune"}
    assert {name for name, spec in REGISTRY.items() if spec.parents == 2} == {"crossover", "llm_crossover"}


def test_choose():
    weights = {"crossover": 1.0, "mutate_node": 3.0, "mutate_shrink": 0.0}
    draws = [choose(random.Random(s), weights).name for s in range(200)]
    assert draws == [choose(random.Random(s), weights).name for s in range(200)]
    assert set(draws) == {"crossover", "mutate_node"} and draws.count("mutate_node") > draws.count("crossover")
