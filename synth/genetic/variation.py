"""Genetic operators on programs: DEAP's tree operators, applied to one tree role at a time.

Every operator is a plain function `fn(rng, parents) -> (child, params)`: `params` is a JSON-able
record of what it did (which tree, which node, old and new constants), stored with the child.
Operators are deterministic given `rng`: DEAP's functions draw from the module-level `random`, so
they run inside `using_rng(rng)`, which lends them `rng`'s state and takes it back afterwards.

Bloat control: `gp.staticLimit` caps each tree's height and node count (`BloatLimits`, from the run's
search config); an over-limit child is replaced by the parent's tree for that role, and the operator
retries a few times before giving up and returning the parent unchanged.
"""

from __future__ import annotations

import copy
import operator as op
import random
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from deap import base, gp

from primitives.program import ROLES, Program
from primitives.pset import Beta, Eps, build_pset, is_constant, make_constant, using_rng

RETRIES = 8
NODE_RETRIES = 100  # mutate_node must change the program; a change is nearly always found in a few tries


@dataclass(frozen=True)
class BloatLimits:
    """The most any one tree of a child may have (SearchConfig's max_height and max_nodes, which default
    to these)."""
    max_height: int = 8
    max_nodes: int = 48


DEFAULT_LIMITS = BloatLimits()
Operator = Callable[[random.Random, list[Program], BloatLimits], tuple[Program, dict]]


def cx_one_point(ind1: gp.PrimitiveTree, ind2: gp.PrimitiveTree):
    """DEAP's `gp.cxOnePoint` for typed trees, with the common types in a fixed order.

    DEAP draws the crossover type from a `set` of type objects, whose order follows memory
    addresses and so changes from one process to the next; the same seed must give the same child.
    """
    if len(ind1) < 2 or len(ind2) < 2:
        return ind1, ind2
    types1: dict = defaultdict(list)
    types2: dict = defaultdict(list)
    for idx, node in enumerate(ind1[1:], 1):
        types1[node.ret].append(idx)
    for idx, node in enumerate(ind2[1:], 1):
        types2[node.ret].append(idx)
    common = sorted(set(types1) & set(types2), key=lambda t: t.__name__)
    if common:
        type_ = random.choice(common)
        slice1 = ind1.searchSubtree(random.choice(types1[type_]))
        slice2 = ind2.searchSubtree(random.choice(types2[type_]))
        ind1[slice1], ind2[slice2] = ind2[slice2], ind1[slice1]
    return ind1, ind2


@lru_cache(maxsize=8)
def tree_toolbox(limits: BloatLimits = DEFAULT_LIMITS) -> base.Toolbox:
    """DEAP's tree operators under the bloat limits, registered by their DEAP-style names."""
    pset = build_pset()
    toolbox = base.Toolbox()
    toolbox.register("expr_mut", gp.genGrow, min_=0, max_=2)
    toolbox.register("cx_one_point", cx_one_point)
    toolbox.register("mut_uniform", gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    toolbox.register("mut_node_replacement", gp.mutNodeReplacement, pset=pset)
    toolbox.register("mut_insert", gp.mutInsert, pset=pset)
    toolbox.register("mut_shrink", gp.mutShrink)
    for name in ("cx_one_point", "mut_uniform", "mut_node_replacement", "mut_insert", "mut_shrink"):
        toolbox.decorate(name, gp.staticLimit(key=op.attrgetter("height"), max_value=limits.max_height))
        toolbox.decorate(name, gp.staticLimit(key=len, max_value=limits.max_nodes))
    return toolbox


def _first_difference(before: gp.PrimitiveTree, after: gp.PrimitiveTree) -> int:
    """Index of the first node that differs (where the edit happened, for the record)."""
    for index, (a, b) in enumerate(zip(before, after)):
        if type(a) is not type(b) or a.name != b.name or (a.arity == 0 and a.format() != b.format()):
            return index
    return min(len(before), len(after))


def _edit_one_tree(rng: random.Random, parents: list[Program], edit: Callable[[list[gp.PrimitiveTree]], gp.PrimitiveTree],
                   min_len: int = 1, retries: int = RETRIES) -> tuple[Program, dict]:
    """Applies `edit` to one randomly chosen tree role (the same role in every parent) until the tree changes."""
    parent = parents[0]
    eligible = [r for r in ROLES if all(len(p.tree(r)) >= min_len for p in parents)] or list(ROLES)
    with using_rng(rng):
        for attempt in range(1, retries + 1):
            role = random.choice(eligible)
            before = parent.tree(role)
            after = edit([copy.deepcopy(p.tree(role)) for p in parents])
            if str(after) != str(before):
                return parent.with_tree(role, after), {
                    "role": role, "index": _first_difference(before, after), "tries": attempt,
                    "before": str(before), "after": str(after)}
    return parent, {"role": role, "tries": retries, "unchanged": True}


# ---------------------------------------------------------------------- the operators


def crossover(rng: random.Random, parents: list[Program],
              limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """One-point subtree crossover between the same tree role of two parents; the first parent's child."""
    if len(parents) < 2:
        raise ValueError("crossover needs two parents")
    toolbox = tree_toolbox(limits)
    return _edit_one_tree(rng, parents[:2], lambda trees: toolbox.cx_one_point(trees[0], trees[1])[0], min_len=2)


def mutate_subtree(rng: random.Random, parents: list[Program],
                   limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """Replaces a random subtree with a fresh random one (depth <= 2)."""
    return _edit_one_tree(rng, parents[:1], lambda trees: tree_toolbox(limits).mut_uniform(trees[0])[0])


def mutate_node(rng: random.Random, parents: list[Program],
                limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """Swaps one node for another of the same signature (add -> mul, g -> s1, 0.9 -> 0.99); always changes the program."""
    parent = parents[0]
    if all(len(tree) < 2 for tree in parent.trees):
        return _replace_root_terminal(rng, parent)
    toolbox = tree_toolbox(limits)
    child, params = _edit_one_tree(rng, [parent], lambda trees: toolbox.mut_node_replacement(trees[0])[0],
                                   min_len=2, retries=NODE_RETRIES)
    if params.get("unchanged"):
        raise RuntimeError(f"mutate_node found no change in {NODE_RETRIES} tries:\n{parent.to_text()}")
    return child, params


def _replace_root_terminal(rng: random.Random, parent: Program) -> tuple[Program, dict]:
    """mutNodeReplacement never touches a root; a program of lone terminals changes one of them instead."""
    role = rng.choice(ROLES)
    before = parent.tree(role)
    options = [t for t in build_pset().terminals[before[0].ret] if not isinstance(t, type) and t.format() != before[0].format()]
    after = gp.PrimitiveTree([rng.choice(options)])
    return parent.with_tree(role, after), {"role": role, "index": 0, "tries": 1, "before": str(before), "after": str(after)}


def mutate_insert(rng: random.Random, parents: list[Program],
                  limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """Wraps a random subtree in a new primitive that takes it as one argument."""
    return _edit_one_tree(rng, parents[:1], lambda trees: tree_toolbox(limits).mut_insert(trees[0])[0])


def mutate_shrink(rng: random.Random, parents: list[Program],
                  limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """Replaces a random primitive by one of its own arguments (the inverse of mutate_insert)."""
    return _edit_one_tree(rng, parents[:1], lambda trees: tree_toolbox(limits).mut_shrink(trees[0])[0], min_len=3)


def perturb_constants(rng: random.Random, parents: list[Program],
                      limits: BloatLimits = DEFAULT_LIMITS) -> tuple[Program, dict]:
    """Multiplies constants by 2**N(0, 1), as the Lion search did; a beta's (1 - beta) is scaled instead.

    Each constant is perturbed with probability 1/2 (at least one is). A program without constants
    gets `mutate_node` instead, so the child always differs.
    """
    parent = parents[0]
    sites = [(r, i) for r, tree in enumerate(parent.trees) for i, node in enumerate(tree) if is_constant(node)]
    for attempt in range(1, RETRIES + 1):
        if not sites:
            break
        chosen = [site for site in sites if rng.random() < 0.5] or [rng.choice(sites)]
        trees = [copy.deepcopy(tree) for tree in parent.trees]
        changes = []
        for r, i in chosen:
            node = trees[r][i]
            new = perturbed(node.ret, node.value, rng.gauss(0.0, 1.0))
            trees[r][i] = make_constant(node.ret, new)
            changes.append({"role": ROLES[r], "index": i, "old": node.value, "new": new})
        child = Program(trees)
        if child != parent:
            return child, {"changes": changes, "tries": attempt}
    child, params = mutate_node(rng, [parent], limits)
    return child, {**params, "fallback": "mutate_node"}


def perturbed(type_: type, value: float, z: float, digits: int = 3) -> float:
    """`value` scaled by 2**z (to `digits` significant digits); betas scale 1 - beta and stay in [0.001, 0.999999]."""
    if type_ is Beta:
        gap = min(max(float(f"{(1.0 - value) * 2.0 ** z:.{digits}g}"), 1e-6), 0.999)
        return round(1.0 - gap, 12)
    new = float(f"{value * 2.0 ** z:.{digits}g}")
    if type_ is Eps:
        return min(max(new, 1e-30), 1.0)
    return min(max(new, -1e30), 1e30)


def live_text(program: Program) -> str:
    """What a program computes, as text: the update and the slots it reads (dead slots left out)."""
    return "\n".join(f"{role} = {program.tree(role)}" for role in (*program.used_slots, "update"))
