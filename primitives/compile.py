"""Compile a program to a fast standalone Submission file (what `Program.render` writes).

The plain rendering (`Program.render_plain`) calls one primitive per node, allocating a tensor
each time, once per parameter. Here the simplified graph of primitives/ir.py becomes:
- one statement per distinct node (common subexpressions once), in the order the semantics need;
- slot updates in place when the new value starts from the slot (`s0.lerp_(g, 0.1)`,
  `s1.mul_(0.99).addcmul_(g, g, value=0.01)`), and any single-use temporary reused in place;
- scalars of the step t only (bias corrections, schedules) computed once per step, constants
  folded into one literal;
- for an elementwise program, `torch._foreach_*` over all parameters at once; with reductions or
  Newton-Schulz, a loop over parameters (Newton-Schulz with fused multiply-adds, in Gram space
  for non-square matrices: kernels.orthogonalize);
- the protected division only where the denominator can come near zero, tensor-valued scalars
  kept as 0-d tensors (no `.item()`).
Everything but Newton-Schulz computes what the plain rendering computes, bit for bit
(tests/test_compile.py checks it on many random programs).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections import Counter

from primitives import kernels, ops
from primitives.ir import ZERO, Graph, Node, build_graph, is_tensor, scalar_level
from primitives.submission import submission_class
from primitives.templates import FOREACH, PER_TENSOR, SCALAR

_HELPERS = {name: fn for module in (ops, kernels)  # kernels' versions win
            for name, fn in inspect.getmembers(module, inspect.isfunction) if fn.__module__ == module.__name__}


def literal(value: float) -> str:
    """The float as Python source; a folded `1 - beta` reads as such (`(1 - 0.9)`, not 0.09999999999999998)."""
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    text, beta = repr(value), repr(1 - value)
    if len(text) > 12 and len(beta) <= 8 and 1 - float(beta) == value:
        return f"(1 - {beta})"
    return text


class _Emitter:
    """Walks the graph once, naming each node and writing the statements that compute it."""

    def __init__(self, graph: Graph, foreach: bool) -> None:
        self.graph, self.foreach = graph, foreach
        self.table = FOREACH if foreach else PER_TENSOR
        self.names: dict[Node, str] = {}
        self.fresh: set[str] = set()  # names of tensors this step made that nothing else holds
        self.header: list[str] = []  # once per step count t
        self.body: list[str] = []  # per parameter, or once for all of them (foreach)
        self.counts: Counter = Counter()
        self.uses: Counter = Counter()
        for node in graph.nodes():
            self.uses.update(node.args)
        self.uses.update([*graph.slots.values(), graph.update])
        self.slot_reads = {slot: _paths_to(tree, Node("slot", value=(slot, 0)), {}) for slot, tree in graph.slots.items()}
        leaves = {"g": "grads", "p": "params"} if foreach else {"g": "g", "p": "p"}
        for node in graph.nodes():
            if node.op in leaves:
                self.names[node] = leaves[node.op]
            elif node.op == "slot":
                self.names[node] = node.value[0]
            elif node.op == "t":
                self.names[node] = "t"
            elif node.op == "const":
                self.names[node] = literal(node.value)

    def _new(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}{self.counts[prefix]}"

    # ------------------------------------------------------------------ nodes
    def name(self, node: Node, slot: str | None = None, root: bool = False) -> str:
        """The local holding node's value, emitting its statements first.

        `slot`: the slot whose update this node belongs to, which may then be overwritten in place;
        `root`: the node is the slot's new value, computed under the slot's own name.
        """
        if node in self.names:
            return self.names[node]
        if node.op == "shape":
            self.body.append("shape = shape_scale(p)")
            name = "shape"
        elif not is_tensor(node):
            args = [self.name(a) for a in node.args]
            name = self._new("c")
            lines = self.header if scalar_level(node) <= 1 else self.body
            lines.append(f"{name} = {SCALAR[node.op].format(*args)}")
        else:
            name = self._tensor(node, slot, root)
        self.names[node] = name
        return name

    def _variant(self, node: Node) -> str:
        op, args = node.op, node.args
        if op == "div":
            bound = self.graph.floor(args[1])
            return "div/exact" if bound is not None and bound >= 1e-12 else "div"
        if op in ("sqrt", "rsqrt", "absolute"):
            bound = self.graph.floor(args[0])
            if bound is not None and bound >= 0:
                return "alias" if op == "absolute" else f"{op}/nonneg"
        return op

    def _consumable(self, node: Node, arg: Node, slot: str | None) -> bool:
        if slot is not None and self.names.get(arg) == slot:
            # the slot's old value (or a chain of in-place updates of it): overwrite it if nothing else
            # in the slot's tree reads it, or if this node reads it once and is the last to run
            return self.slot_reads[slot] == 1 or node.args.count(arg) == 1 and node == self.graph.slots[slot]
        return self.uses[arg] == 1 and self.names.get(arg) in self.fresh

    def _tensor(self, node: Node, slot: str | None, root: bool) -> str:
        if node == ZERO:
            return self._emit_out("zero", [], "zeros")
        args = list(node.args)
        # a scalar computed from tensor values is a 0-d float64 tensor (or a number): cast it as torch
        # casts a Python number, or a 0-d parameter would be promoted to float64
        names = [f"torch.as_tensor({name}, dtype=p.dtype)" if not is_tensor(a) and scalar_level(a) == 3 else name
                 for a, name in zip(args, (self.name(a, slot) for a in args))]
        if node.op == "ema_sq":
            names.append(literal(1 - args[2].value))
        key = self._variant(node)
        if key == "alias":
            return names[0]
        _, in_place, commutative = self.table[key]
        targets = sorted([0, 1] if commutative else [0], key=lambda i: names[i] != slot)  # the slot first
        for i in targets:
            if in_place and is_tensor(args[i]) and self._consumable(node, args[i], slot):
                if i:
                    names[0], names[1] = names[1], names[0]
                self.body.extend(line.strip() for line in in_place.format(*names).split(";"))
                if names[0] == slot:
                    self.fresh.discard(slot)  # the state holds it
                return names[0]
        return self._emit_out(key, names, slot if root else self._new("v"))

    def _emit_out(self, key: str, names: list[str], out: str) -> str:
        form = self.table[key][0]
        if "{out}" in form:
            self.body.extend(line.strip() for line in form.format(*names, out=out).split(";"))
        else:
            self.body.append(f"{out} = {form.format(*names)}")
        self.fresh.add(out)
        return out

    # ------------------------------------------------------------------ roots
    def slot(self, slot: str, tree: Node) -> None:
        """Computes the slot's new value into the local `slot` and stores it in the parameter's state."""
        if tree in self.names:  # computed before under another role: copy, so no two slots share storage
            value = self.names[tree]
            self._emit_out("clone", [value], slot)
        else:
            value = self.name(tree, slot, root=True)
            if value == slot and slot in self.fresh:
                pass  # written out of place under its own name
            elif value == slot:
                self.names[Node("slot", value=(slot, 1))] = slot
                return  # updated in place: the state already holds it
            elif value in self.fresh and self.uses[tree] == 1:
                self.body.append(f"{slot} = {value}")
                self.fresh.discard(value)
            else:  # g, p, another slot or a shared temporary: copy
                self._emit_out("clone", [value], slot)
        self.fresh.discard(slot)
        self.names[Node("slot", value=(slot, 1))] = slot
        if self.foreach:
            self.body.append(f'for state, value in zip(states, {slot}):')
            self.body.append(f'    state["{slot}"] = value')
        else:
            self.body.append(f'state["{slot}"] = {slot}')

    def update(self, tree: Node) -> None:
        if tree == ZERO:
            return  # p + 0 == p: the parameter never moves
        value = self.name(tree)
        self.body.append(f"torch._foreach_add_(params, {value})" if self.foreach else f"p.add_({value})")


def _paths_to(node: Node, leaf: Node, memo: dict) -> int:
    """How many times `leaf` occurs in node written out as a tree."""
    if node not in memo:
        memo[node] = (node == leaf) + sum(_paths_to(a, leaf, memo) for a in node.args)
    return memo[node]


def _indent(lines: list[str], depth: int) -> str:
    return "".join(f"\n{'    ' * depth}{line}" for line in lines)


def _helpers(code: str, fast_newton_schulz: bool) -> str:
    """The source of every helper the code calls, primitives first; the plain Newton-Schulz on request."""
    helpers = _HELPERS if fast_newton_schulz else {**_HELPERS, "orthogonalize": ops.orthogonalize}
    used = [name for name in helpers if re.search(rf"(?<![\w.]){name}\(", code)]
    used.sort(key=lambda name: (helpers[name].__module__ != ops.__name__, name))
    sources = [_source(helpers[name]) for name in used]
    return "".join(f"{source}\n\n\n" for source in sources)


@functools.lru_cache(maxsize=None)
def _source(function) -> str:
    return inspect.getsource(function).rstrip()


def _emit(graph: Graph, foreach: bool) -> _Emitter:
    emitter = _Emitter(graph, foreach)
    for slot, tree in graph.slots.items():
        emitter.slot(slot, tree)
    emitter.update(graph.update)
    return emitter


def _foreach_body(graph: Graph, emitter: _Emitter) -> list[str]:
    return [f'{s} = [state["{s}"] for state in states]' for s in graph.slots] + emitter.body


def _per_tensor_body(graph: Graph, emitter: _Emitter) -> list[str]:
    slots = list(graph.slots)
    load = [f'{", ".join(slots)} = {", ".join(f"state[{chr(34)}{s}{chr(34)}]" for s in slots)}'] if slots else []
    return ["for p, g, state in zip(params, grads, states):", *("    " + line for line in load + emitter.body or ["pass"])]


def compile_program(program, title: str = "", fast_newton_schulz: bool = True, foreach: bool | None = None) -> str:
    """One standalone Python file (imports only torch and math) defining `Submission`.

    An elementwise program gets both paths, chosen at run time by device (`foreach` None): on a CPU,
    one parameter at a time, because the allocator then hands each temporary the memory the previous
    parameter's just freed, where a foreach call's temporaries for all parameters at once come back
    from the system, page by page, every step (measured: bench/optimizer_speed.py); elsewhere, torch._foreach_*,
    one kernel per operation for all parameters. `foreach` True or False keeps one path.
    """
    graph = build_graph(program)
    paths = {False: _emit(graph, False)}
    if graph.elementwise and foreach is not False:
        paths[True] = _emit(graph, True)
        assert paths[True].header == paths[False].header  # both walk the graph in the same order
        if foreach:
            del paths[False]
    header = next(iter(paths.values())).header
    if len(paths) == 2:
        body = ["if params[0].device.type == \"cpu\":", *("    " + line for line in _per_tensor_body(graph, paths[False])),
                "else:", *("    " + line for line in _foreach_body(graph, paths[True]) or ["pass"])]
        notes = "elementwise, so one parameter at a time on a CPU and all at once (torch._foreach_*) elsewhere"
    elif True in paths:
        body, notes = _foreach_body(graph, paths[True]) or ["pass"], "all parameters at once (torch._foreach_*)"
    else:
        body, notes = _per_tensor_body(graph, paths[False]), "one parameter at a time"
    if graph.zero_slots:
        notes += f"; {', '.join(graph.zero_slots)} can only hold zero and is left out"
    loop = _indent(header + body, 3)
    init = _indent([f'state["{s}"] = torch.zeros_like(p)' for s in graph.slots], 5)
    submission = submission_class(update=f"        for t, params, grads, states in self.batches():{loop}\n",
                                  methods=_BATCHES.replace("{init}", init))
    return _FILE.format(heading=f"{title}\n\n" if title else "", text=program.to_text().replace("\\", "\\\\"),
                        notes=notes, helpers=_helpers(loop, fast_newton_schulz)) + submission


_FILE = '''"""{heading}Optimizer program (synth; slots start at zero, t counts steps from 1):

{text}

Compiled: {notes}.
"""

import math

import torch


{helpers}'''

# Submission.batches: parameters of one step count together, so that a foreach path runs per group
_BATCHES = '''
    def batches(self):
        """Parameters that have a gradient, with their state, grouped by their step count t (from 1)."""
        for group in self.param_groups:
            by_step = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0{init}
                state["step"] += 1
                by_step.setdefault(state["step"], []).append(p)
            for t, params in by_step.items():
                yield t, params, [p.grad for p in params], [self.state[p] for p in params]
'''
