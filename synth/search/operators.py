"""The one operator registry: every way a child is made, with its number of parents and default weight.

Genetic operators are plain functions `fn(rng, parents) -> (Program, params)` (synth/genetic/variation.py).
`tune` (synth/genetic/tune.py) needs the study of its structure's earlier trials, and the LLM operators a
model call (synth/llm/proposer.py): their proposers run them, the registry only names them.
Weights in a run's config are merged over these defaults (synth/config.py) and drawn by `choose`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, Optional

from synth.genetic.variation import (Operator, crossover, mutate_insert, mutate_node, mutate_shrink, mutate_subtree,
                             perturb_constants)


@dataclass(frozen=True)
class OperatorSpec:
    name: str
    parents: int
    weight: float  # the default; a run's config may override it
    kind: Literal["genetic", "llm"]
    fn: Optional[Operator] = None  # None: its proposer runs it (tune, the LLM operators)


REGISTRY: dict[str, OperatorSpec] = {spec.name: spec for spec in (
    OperatorSpec("crossover", 2, 2.0, "genetic", crossover),
    OperatorSpec("mutate_subtree", 1, 2.0, "genetic", mutate_subtree),
    OperatorSpec("mutate_node", 1, 2.0, "genetic", mutate_node),
    OperatorSpec("mutate_insert", 1, 1.0, "genetic", mutate_insert),
    OperatorSpec("mutate_shrink", 1, 1.0, "genetic", mutate_shrink),
    OperatorSpec("perturb_constants", 1, 3.0, "genetic", perturb_constants),
    OperatorSpec("tune", 1, 2.0, "genetic"),  # a seeded TPE study over a structure's constants
    OperatorSpec("llm_edit", 1, 3.0, "llm"),
    OperatorSpec("llm_rewrite", 1, 1.0, "llm"),
    OperatorSpec("llm_crossover", 2, 1.0, "llm"),
)}

GENETIC_WEIGHTS = {s.name: s.weight for s in REGISTRY.values() if s.kind == "genetic"}
LLM_WEIGHTS = {s.name: s.weight for s in REGISTRY.values() if s.kind == "llm"}


def choose(rng: random.Random, weights: dict[str, float]) -> OperatorSpec:
    """An operator drawn with probability proportional to its weight (names sorted: order-independent;
    zero weights stay in the draw so a weight set to 0 changes no other draw)."""
    names = sorted(weights)
    return REGISTRY[rng.choices(names, weights=[weights[n] for n in names], k=1)[0]]
