"""The compiler's middle: a program as one graph of shared nodes, simplified and analysed.

`build_graph` lowers the four trees into structurally-equal `Node`s (so a subexpression written
twice is one node: common subexpressions come for free), then:
- folds constant subtrees with the primitives themselves (`beta_mul(0.99883, 0.895)` becomes one
  number, bit for bit what the plain program computes at run time);
- proves which slots can only ever hold zero (never written from anything non-zero) and replaces
  their reads by `ZERO`, which simplifies through zero-preserving primitives
  (`square(orthogonalize(s1))` of a zero slot is zero, no Newton-Schulz at all);
- keeps the slots the update still depends on, and bounds from below what each node can hold
  (`floor`), so that `sqrt` of a second moment skips its `abs` and Adam's denominator
  `add_eps(sqrt(v), 1e-08)` needs no protected division.

A slot read carries a version (0: the value from the previous step, 1: this step's new value),
because slots update in order and the same name means different values before and after.
Every rewrite is exact up to the sign of a zero (-0.0 == 0.0), which no primitive can tell apart
except through a division the protected `div` already treats alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from deap import gp

from primitives import ops
from primitives.pset import SIGNATURES, SLOT_NAMES, Tensor, is_constant


@dataclass(frozen=True)
class Node:
    """op is a primitive name or a leaf: g, p, t, const (value), slot (value=(name, version)), zero, shape."""

    op: str
    args: tuple = ()
    value: object = None

    def __repr__(self) -> str:
        if self.op == "const":
            return repr(self.value)
        if self.op == "slot":
            return f"{self.value[0]}@{self.value[1]}"
        return f"{self.op}({', '.join(map(repr, self.args))})" if self.args else self.op


ZERO = Node("zero")  # a tensor of zeros shaped like the parameter, known at compile time
SHAPE = Node("shape")  # shape_scale of the parameter: every tensor in a program has the parameter's shape
STEP = Node("t")

# Extra nodes the lowering introduces; each computes exactly what the primitive it replaces does.
EXTRA_SIGNATURES = {
    "bias_correction": "scalar",  # debias's divisor: max(1 - beta ** max(t, 1), 1e-12) (floored as ops.debias)
    "debias_by": "tensor",  # x / bias_correction
    "sabs": "scalar",  # abs(c): clip's bound
}
TENSOR_LEAVES = frozenset({"g", "p", "slot", "zero"})
REDUCTIONS = frozenset({"rms_norm", "row_rms_norm", "frob_norm", "cos_sim", "orthogonalize", "factored_sq",
                        "kron_stat", "kron_precond"})
# Primitives that map an all-zero tensor argument to zeros whatever their (finite, constant) other arguments.
ZERO_PRESERVING = frozenset({"neg", "absolute", "sign", "square", "sqrt", "tanh", "rms_norm", "row_rms_norm",
                             "orthogonalize", "factored_sq", "maximum", "minimum", "lerp", "ema_sq", "debias_by"})


def const(value: float) -> Node:
    return Node("const", value=float(value))


def is_tensor(node: Node) -> bool:
    if node.op in TENSOR_LEAVES:
        return True
    if node.op in SIGNATURES:
        return SIGNATURES[node.op][1] is Tensor
    return EXTRA_SIGNATURES.get(node.op) == "tensor"


def scalar_level(node: Node) -> int:
    """0 constant, 1 depends on the step t only, 2 on the parameter's shape, 3 on tensor values."""
    if node.op == "const":
        return 0
    if node.op == "t":
        return 1
    if node.op == "shape":
        return 2
    if node.op in ("frob_norm", "cos_sim"):
        return 3
    return max((scalar_level(a) for a in node.args if not is_tensor(a)), default=0)


# ---------------------------------------------------------------------- lowering


def _to_node(tree: gp.PrimitiveTree, version: dict[str, int], updated: set[str]) -> Node:
    def build(index: int) -> tuple[Node, int]:
        item = tree[index]
        if isinstance(item, gp.Primitive):
            args, nxt = [], index + 1
            for _ in range(item.arity):
                arg, nxt = build(nxt)
                args.append(arg)
            return _lowered(item.name, tuple(args)), nxt
        if is_constant(item):
            return const(item.value), index + 1
        name = item.format()
        if name in SLOT_NAMES:
            return (Node("slot", value=(name, version[name])) if name in updated else ZERO), index + 1
        return Node(name), index + 1

    return build(0)[0]


def _lowered(name: str, args: tuple) -> Node:
    """Primitives rewritten into the forms the code generator emits, each bit-identical to ops."""
    if name == "ema":  # torch.lerp(m, x, 1 - beta), exactly as ops.ema
        return Node("lerp", (args[0], args[1], Node("complement", (args[2],))))
    if name == "debias":
        return Node("debias_by", (args[0], Node("bias_correction", args[1:])))
    if name == "clip":
        return Node("clip", (args[0], Node("sabs", (args[1],))))
    if name == "shape_scale":
        return SHAPE
    return Node(name, args)


# ---------------------------------------------------------------------- simplification


def _evaluate(op: str, values: list[float]) -> Optional[float]:
    try:
        if op == "bias_correction":
            correction = 1 - values[0] ** max(values[1], 1)
            return float(correction if correction > 1e-12 else 1e-12)
        if op == "sabs":
            return float(abs(values[0]))
        return float(getattr(ops, op)(*values))
    except (ArithmeticError, ValueError, TypeError):
        return None  # leave it to run time, where it behaves as the plain program does


def simplify(node: Node, zero_slots: frozenset[str], memo: dict) -> Node:
    if node in memo:
        return memo[node]
    if node.op == "slot":
        out = ZERO if node.value[0] in zero_slots else node
    elif not node.args:
        out = node
    else:
        args = tuple(simplify(a, zero_slots, memo) for a in node.args)
        out = _rewrite(node.op, args)
        if out is None:
            out = Node(node.op, args)
        elif out != node:
            out = simplify(out, zero_slots, memo)
    memo[node] = out
    return out


def _finite_const(node: Node) -> bool:
    return node.op == "const" and math.isfinite(node.value)


def _rewrite(op: str, args: tuple) -> Optional[Node]:
    if not is_tensor(Node(op, args)) and all(a.op == "const" for a in args):
        value = _evaluate(op, [a.value for a in args])
        return None if value is None else const(value)
    if op == "scale" and args[1].op == "const" and args[1].value == 1.0:
        return args[0]  # x * 1 == x, NaN included
    if ZERO not in args:
        return None
    tensors = [a for a in args if is_tensor(a)]
    scalars_finite = all(_finite_const(a) for a in args if not is_tensor(a))
    if op == "add":
        return args[1] if args[0] == ZERO else args[0]
    if op == "sub":
        return args[0] if args[1] == ZERO else Node("neg", (args[1],))
    if op == "mul":
        return ZERO if all(a == ZERO for a in args) else Node("scale", (args[0] if args[1] == ZERO else args[1], const(0.0)))
    if op == "frob_norm":
        return const(0.0)
    if op == "cos_sim" and all(a == ZERO for a in args):
        return const(0.0)
    if op in ("scale", "clip") and scalars_finite:
        return ZERO
    if op in ZERO_PRESERVING and all(a == ZERO for a in tensors) and (scalars_finite or op == "debias_by"):
        return ZERO  # debias_by's divisor is always within [1e-12, 1] or inf-safe: 0 / d == 0
    return None  # a zero the code must materialise (`torch.zeros_like(p)`)


# ---------------------------------------------------------------------- lower bounds

_NONNEG = frozenset({"absolute", "square", "sqrt", "exp", "rsqrt", "addsign_gain", "powersign_gain", "factored_sq"})
_NONNEG_IF_ALL = frozenset({"mul", "div", "lerp", "tanh", "sign", "rms_norm", "row_rms_norm", "debias_by"})


def floor(node: Node, slot_floor: dict[str, Optional[float]], memo: dict) -> Optional[float]:
    """A lower bound on every non-NaN element node can hold (None: unknown), valid in every float dtype."""
    if node in memo:
        return memo[node]
    op, args = node.op, node.args
    sub = [floor(a, slot_floor, memo) if is_tensor(a) else None for a in args]
    tensor_floors = [f for a, f in zip(args, sub) if is_tensor(a)]
    nonneg = all(f is not None and f >= 0 for f in tensor_floors)
    out: Optional[float] = None
    if op == "zero":
        out = 0.0
    elif op == "slot":
        out = slot_floor.get(node.value[0])
    elif op in _NONNEG:
        out = 0.0
    elif op in _NONNEG_IF_ALL and nonneg:
        out = 0.0  # lerp's weights are decay rates in (0, 1): a convex combination of non-negatives
    elif op == "ema_sq" and sub[0] is not None and sub[0] >= 0:
        out = 0.0
    elif op == "add" and nonneg:
        out = max(tensor_floors)  # a + b >= a when b >= 0, rounding being monotone
    elif op == "add_eps" and nonneg:
        out = args[1].value if args[1].op == "const" else 0.0  # x + eps >= eps when x >= 0
    elif op == "scale" and nonneg and args[1].op == "const" and args[1].value >= 0:
        out = 0.0
    elif op == "maximum" and any(f is not None for f in tensor_floors):
        out = max(f for f in tensor_floors if f is not None)
    elif op == "minimum" and all(f is not None for f in tensor_floors):
        out = min(tensor_floors)
    memo[node] = out
    return out


# ---------------------------------------------------------------------- the graph


@dataclass
class Graph:
    """A simplified program: live slots in update order with their new values, and the update."""

    slots: dict[str, Node]
    update: Node
    zero_slots: list[str]
    slot_floor: dict[str, Optional[float]] = field(default_factory=dict)
    _floors: dict = field(default_factory=dict)

    def floor(self, node: Node) -> Optional[float]:
        return floor(node, self.slot_floor, self._floors)

    def nodes(self) -> list[Node]:
        """Every node reachable from the roots, children before parents."""
        seen: dict[Node, None] = {}

        def visit(node: Node) -> None:
            if node in seen:
                return
            for arg in node.args:
                visit(arg)
            seen[node] = None

        for root in (*self.slots.values(), self.update):
            visit(root)
        return list(seen)

    @property
    def elementwise(self) -> bool:
        """True when every tensor op works element by element, so one foreach call can cover all parameters."""
        return not any(n.op in REDUCTIONS or n.op == "shape" for n in self.nodes())


def build_graph(program) -> Graph:
    updated = set(program.updated_slots())
    version = dict.fromkeys(SLOT_NAMES, 0)
    raw: dict[str, Node] = {}
    for name in SLOT_NAMES:
        if name in updated:
            raw[name] = _to_node(program.tree(name), version, updated)
            version[name] = 1
    raw_update = _to_node(program.tree("update"), version, updated)

    # Greatest fixed point: assume every slot stays zero, drop the assumption for any slot whose new
    # value is not provably zero under it, repeat. Sound by induction over steps (slots start at zero).
    zero = frozenset(raw)
    while True:
        memo: dict = {}
        trees = {name: simplify(tree, zero, memo) for name, tree in raw.items()}
        still = frozenset(name for name in zero if trees[name] == ZERO)
        if still == zero:
            break
        zero = still
    update = simplify(raw_update, zero, memo)

    live: set[str] = set()
    frontier = [update]
    while frontier:
        node = frontier.pop()
        if node.op == "slot" and node.value[0] not in live:
            live.add(node.value[0])
            frontier.append(trees[node.value[0]])
        frontier.extend(node.args)
    slots = {name: trees[name] for name in SLOT_NAMES if name in live}
    graph = Graph(slots, update, sorted(name for name in zero if name in program.used_slots))

    # Slots start at zero, so "non-negative" is the best bound a slot can have: same fixed point.
    graph.slot_floor = dict.fromkeys(slots, 0.0)
    while True:
        graph._floors = {}
        bad = [name for name, tree in slots.items()
               if graph.slot_floor[name] is not None and (graph.floor(tree) is None or graph.floor(tree) < 0)]
        if not bad:
            return graph
        for name in bad:
            graph.slot_floor[name] = None
