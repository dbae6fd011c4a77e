"""The `tune` operator: a program structure judged at good constants, not at the ones it was born with.

A structure found by the genetic operators arrives with whatever learning rate and decay rates it
happened to carry; judged at those, a good structure is often thrown away for a bad learning rate.
`tune` keeps a structure (its *root*, the program it was first asked to tune) and proposes new values
for all of its numeric constants at once, from a seeded Optuna TPE study over the root's constants
that knows every earlier tuning trial of the same root. Each trial is one child, scored like any
other, so tuning is spread over the steady-state loop and costs one evaluation per trial.

Constants are searched as log2 factors of the root's values (a Beta as a factor of 1 - beta), so the
root itself is the point 0 and every trial is a few octaves around it. A root gets at most
`tune_trials` trials (the run's search config); then `tune` falls back to `perturb_constants`.

Deterministic: the study holds only what the engine lets a child see (the root and the finished
trials inside the window), in id order, and its sampler is seeded from the engine's RNG.
"""

from __future__ import annotations

import copy
import math
import random
import warnings

import optuna
from optuna.distributions import FloatDistribution

from population.records import Candidate
from primitives.program import Program
from primitives.pset import Beta, Eps, is_constant, make_constant
from synth.genetic.variation import perturbed

OCTAVES = {Beta: 5.0, Eps: 6.0}  # log2 range either side of the root's value (Scalar: the default)
DEFAULT_OCTAVES = 4.0
FAILED_VALUE = -1e6


def constant_sites(program: Program) -> list[tuple[int, int, type]]:
    """(tree, node, type) of every numeric constant, in tree order."""
    return [(r, i, node.ret) for r, tree in enumerate(program.trees) for i, node in enumerate(tree) if is_constant(node)]


def distributions(program: Program) -> dict[str, FloatDistribution]:
    octaves = {f"c{n}": OCTAVES.get(t, DEFAULT_OCTAVES) for n, (_, _, t) in enumerate(constant_sites(program))}
    return {name: FloatDistribution(-o, o) for name, o in octaves.items()}


def apply_factors(root: Program, factors: dict[str, float]) -> tuple[Program, list[dict]]:
    """The root with each constant scaled by 2**factor (betas: 1 - beta scaled), 4 significant digits."""
    trees = [copy.deepcopy(tree) for tree in root.trees]
    changes = []
    for n, (r, i, type_) in enumerate(constant_sites(root)):
        old = trees[r][i].value
        new = perturbed(type_, old, factors[f"c{n}"], digits=4)
        trees[r][i] = make_constant(type_, new)
        changes.append({"index": i, "tree": r, "old": old, "new": new})
    return Program(trees), changes


def trial_value(cand: Candidate, regression: bool, tracks: tuple[str, ...] = ()) -> float:
    """What the sampler maximises: the search fitness; a screened run's proxy metric scored as a failing
    run stopped there (below a full run from the same metric); a failed run the worst of all. In a
    multi-track run (`tracks`), the track whose gate stopped it stands for its worst track."""
    if cand.fitness is not None:
        return cand.fitness
    from synth.search.cascade import gate_on, stored

    if cand.status == "screened" and len(tracks) > 1 and stored(cand) is not None:
        from evaluator.tracks import get_track
        from synth.search.fitness import combined

        for track in tracks:
            gate = gate_on(cand, track, tracks[0])
            if gate is not None and gate.metric is not None and gate.promoted is False:
                value = -math.log10(max(gate.metric, 1e-30)) if get_track(track).task == "regression" \
                    else 0.99 * gate.metric
                return combined({track: value})
    gate = stored(cand)
    metric = gate.metric if gate is not None else None
    if cand.status == "screened" and metric is not None:
        return -math.log10(max(metric, 1e-30)) if regression else 0.99 * metric
    return FAILED_VALUE


def root_of(cand: Candidate) -> int:
    """The structure a tune child belongs to: its root, or the candidate itself."""
    return cand.operator_params.get("root", cand.id) if cand.operator == "tune" else cand.id


def propose(rng: random.Random, root: Candidate, trials: list[Candidate], regression: bool,
            startup: int = 3, tracks: tuple[str, ...] = ()) -> tuple[Program, dict]:
    """One new trial for `root`, given its finished trials (in id order) that the child may see."""
    program = Program.from_text(root.genome)
    dists = distributions(program)
    seed = rng.randrange(2**32)
    if not dists:
        raise ValueError(f"candidate {root.id} has no constants to tune")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    points = [({name: 0.0 for name in dists}, root)] + [(t.operator_params["factors"], t) for t in trials]
    for factors, cand in points:
        study.add_trial(optuna.trial.create_trial(params=factors, distributions=dists,
                                                  value=trial_value(cand, regression, tracks)))
    factors = study.ask(dists).params
    child, changes = apply_factors(program, factors)
    return child, {"root": root.id, "trial": len(trials) + 1, "seed": seed, "factors": factors, "changes": changes}


def tune_child(db, horizon: int, rng: random.Random, parent: Candidate, regression: bool,
               trials_per_root: int = 8, startup: int = 3,
               tracks: tuple[str, ...] = ()) -> tuple[int, Program, dict] | None:
    """(root id, child, params) of the next trial of `parent`'s structure; None when the structure has had
    its `trials_per_root` trials or has no constants. Sees the trials below `horizon` (the engine's window);
    `db` need only answer queries (synth/search/view.py)."""
    root = db.get_candidate(root_of(parent))
    if not root.genome or not constant_sites(Program.from_text(root.genome)):
        return None
    trials = db.tune_trials(root.id)
    if len(trials) >= trials_per_root:
        return None
    seen = [c for c in trials if c.id < horizon and c.status != "pending"]
    program, params = propose(rng, root, seen, regression, startup, tracks)
    return root.id, program, params


optuna.logging.set_verbosity(optuna.logging.WARNING)
