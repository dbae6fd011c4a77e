"""The DEAP primitive set: which primitives exist, their types, the terminals and the constants.

Types keep trees meaningful: a decay rate (`Beta`) can only go where a decay rate is expected, so
perturbing it stays meaningful, and an `Eps` only where a floor is expected. Every type has at least
one primitive returning it and at least one terminal, so DEAP's generators never get stuck.

DEAP draws from the module-level `random`; `using_rng` swaps a caller's `random.Random` in for the
duration of a call, so the same seed always produces the same tree.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from deap import gp

from primitives import ops

MAX_SLOTS = 3
SLOT_NAMES: tuple[str, ...] = tuple(f"s{i}" for i in range(MAX_SLOTS))
TENSOR_TERMINALS: tuple[str, ...] = ("g", "p", *SLOT_NAMES)
STEP_TERMINAL = "t"


class Tensor:
    """A tensor shaped like the parameter (gradient, parameter, state slots, updates)."""


class Scalar:
    """A plain Python number: the step count, learning rates, norms, schedules."""


class Beta:
    """A decay rate in (0, 1) (EMA betas, interpolation weights)."""


class Eps:
    """A small positive floor (denominators)."""


T, S, B, E = Tensor, Scalar, Beta, Eps

# name -> (argument types, return type); the function of the same name lives in primitives.ops.
SIGNATURES: dict[str, tuple[tuple[type, ...], type]] = {
    "add": ((T, T), T), "sub": ((T, T), T), "mul": ((T, T), T), "div": ((T, T), T),
    "neg": ((T,), T), "absolute": ((T,), T), "sign": ((T,), T), "square": ((T,), T),
    "sqrt": ((T,), T), "rsqrt": ((T, E), T), "exp": ((T,), T), "log": ((T,), T), "tanh": ((T,), T),
    "clip": ((T, S), T), "maximum": ((T, T), T), "minimum": ((T, T), T),
    "scale": ((T, S), T), "add_eps": ((T, E), T),
    "lerp": ((T, T, B), T), "ema": ((T, T, B), T), "ema_sq": ((T, T, B), T), "debias": ((T, B, S), T),
    "rms_norm": ((T,), T), "row_rms_norm": ((T,), T), "frob_norm": ((T,), S), "cos_sim": ((T, T), S),
    "addsign_gain": ((T, T), T), "powersign_gain": ((T, T), T),
    "orthogonalize": ((T,), T), "shape_scale": ((T,), S), "factored_sq": ((T,), T),
    "kron_stat": ((T, T, B), T), "kron_precond": ((T, T, E), T),
    "linear_decay": ((S,), S), "cosine_decay": ((S,), S), "wsd_decay": ((S,), S), "warmup": ((S,), S),
    "sadd": ((S, S), S), "ssub": ((S, S), S), "smul": ((S, S), S), "sdiv": ((S, S), S),
    "sneg": ((S,), S), "ssqrt": ((S,), S),
    "complement": ((B,), S), "beta_mul": ((B, B), B), "eps_mul": ((E, E), E),
}

SCALAR_CHOICES = (1.0, 0.5, 0.1, 0.01, 0.001, 0.0001)
BETA_CHOICES = (0.5, 0.9, 0.95, 0.98, 0.99, 0.999)
EPS_CHOICES = (1e-12, 1e-10, 1e-08, 1e-06)


# Ephemeral generators: module-level functions (DEAP pickles them), drawing from `random`.
def random_scalar() -> float:
    """A learning-rate-like constant of either sign."""
    return random.choice((-1.0, 1.0)) * random.choice(SCALAR_CHOICES)


def random_beta() -> float:
    return random.choice(BETA_CHOICES)


def random_eps() -> float:
    return random.choice(EPS_CHOICES)


CONSTANT_TYPES: dict[type, str] = {Scalar: "synth_scalar", Beta: "synth_beta", Eps: "synth_eps"}
_GENERATORS = {Scalar: random_scalar, Beta: random_beta, Eps: random_eps}


@lru_cache(maxsize=None)
def build_pset() -> gp.PrimitiveSetTyped:
    """The primitive set, built once per process."""
    pset = gp.PrimitiveSetTyped("optimizer", [Tensor] * len(TENSOR_TERMINALS) + [Scalar], Tensor)
    pset.renameArguments(**{f"ARG{i}": name for i, name in enumerate((*TENSOR_TERMINALS, STEP_TERMINAL))})
    for name, (args, ret) in SIGNATURES.items():
        pset.addPrimitive(getattr(ops, name), list(args), ret, name=name)
    for type_, name in CONSTANT_TYPES.items():
        pset.addEphemeralConstant(name, _GENERATORS[type_], type_)
    return pset


def constant_class(type_: type):
    """The DEAP ephemeral class whose instances are constants of `type_`."""
    return build_pset().mapping[CONSTANT_TYPES[type_]]


def make_constant(type_: type, value: float) -> gp.Terminal:
    """A constant node of `type_` holding exactly `value`."""
    cls = constant_class(type_)
    node = object.__new__(cls)
    node.value = float(value)
    return node


def is_constant(node) -> bool:
    """True for a constant (an ephemeral terminal), False for g, p, slots, t and primitives."""
    return isinstance(type(node), gp.MetaEphemeral)


def check_constant(type_: type, value: float) -> str | None:
    """Why `value` is not a valid constant of `type_`, or None when it is."""
    if value != value or value in (float("inf"), float("-inf")):
        return f"constant {value!r} is not finite"
    if type_ is Beta and not 0.0 < value < 1.0:
        return f"constant {value!r} is not a beta in (0, 1)"
    if type_ is Eps and not value > 0.0:
        return f"constant {value!r} is not a positive eps"
    return None


@contextmanager
def using_rng(rng: random.Random) -> Iterator[None]:
    """Runs the block with the module-level `random` in `rng`'s state, then hands the state back to `rng`."""
    saved = random.getstate()
    random.setstate(rng.getstate())
    try:
        yield
    finally:
        rng.setstate(random.getstate())
        random.setstate(saved)
