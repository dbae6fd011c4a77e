"""`Program`: the genome. MAX_SLOTS state-slot update trees plus one parameter-update tree.

Semantics, per parameter and step: slots start as zeros shaped like the parameter; the step count
`t` starts at 1; slot updates run in order s0, s1, s2 (each sees earlier slots' new values and later
slots' old values); then `p.add_(update)`. A slot whose tree is its own name (`s2 = s2`) is unused.

Text form, one line per tree, is what the run database stores and what an LLM edits:

    s0 = ema(s0, g, 0.9)
    s1 = ema_sq(s1, g, 0.999)
    s2 = s2
    update = scale(div(debias(s0, 0.9, t), add_eps(sqrt(debias(s1, 0.999, t)), 1e-08)), -0.001)

Trees print with DEAP's `str(PrimitiveTree)` (constants via repr, so they round-trip). They parse
with Python's `ast` rather than `PrimitiveTree.from_string`, because from_string `eval`s tokens,
cannot type constants (a `0.9` must become a Beta or a Scalar depending on where it stands) and
does not check the brackets; the result is the same DEAP `PrimitiveTree`.
"""

from __future__ import annotations

import ast
import inspect
import random

from deap import gp

from primitives import ops
from primitives.submission import submission_class
from primitives.pset import (SLOT_NAMES, Tensor, build_pset, check_constant, is_constant,
                             make_constant, using_rng)

ROLES: tuple[str, ...] = (*SLOT_NAMES, "update")


class ProgramError(ValueError):
    """Program text that does not parse or type-check; the message is one line naming the problem."""


class Program:
    """Immutable by convention: operators copy trees (`Program.with_tree`) rather than edit them."""

    def __init__(self, trees: list[gp.PrimitiveTree]) -> None:
        if len(trees) != len(ROLES):
            raise ValueError(f"a program has {len(ROLES)} trees ({', '.join(ROLES)}), got {len(trees)}")
        self.trees: tuple[gp.PrimitiveTree, ...] = tuple(trees)

    # ------------------------------------------------------------------ text
    @classmethod
    def from_text(cls, text: str) -> "Program":
        """Parses the text form; raises ProgramError (one line) on any problem."""
        found: dict[str, gp.PrimitiveTree] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            role, eq, expr = line.partition("=")
            role = role.strip()
            if not eq:
                raise ProgramError(f"line {number}: expected 'NAME = expression', got {line.strip()[:60]!r}")
            if role not in ROLES:
                raise ProgramError(f"line {number}: unknown tree {role!r}: expected one of {', '.join(ROLES)}")
            if role in found:
                raise ProgramError(f"line {number}: tree {role!r} is given twice")
            try:
                found[role] = parse_tree(expr.strip())
            except ProgramError as error:
                raise ProgramError(f"line {number} ({role}): {error}") from None
        missing = [role for role in ROLES if role not in found]
        if missing:
            raise ProgramError(f"missing line for {', '.join(missing)} (every program has {', '.join(ROLES)})")
        return cls([found[role] for role in ROLES])

    def to_text(self) -> str:
        return "\n".join(f"{role} = {tree}" for role, tree in zip(ROLES, self.trees))

    __str__ = to_text

    def __repr__(self) -> str:
        return f"Program.from_text({self.to_text()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.to_text() == other.to_text()

    def __hash__(self) -> int:
        return hash(self.to_text())

    # ------------------------------------------------------------------ shape
    @property
    def size(self) -> int:
        """Total number of nodes over all trees."""
        return sum(len(tree) for tree in self.trees)

    @property
    def height(self) -> int:
        """Height of the tallest tree (a lone terminal has height 0)."""
        return max(tree.height for tree in self.trees)

    def tree(self, role: str) -> gp.PrimitiveTree:
        return self.trees[ROLES.index(role)]

    def with_tree(self, role: str, tree: gp.PrimitiveTree) -> "Program":
        """A new program with `role`'s tree replaced."""
        trees = list(self.trees)
        trees[ROLES.index(role)] = tree
        return Program(trees)

    def updated_slots(self) -> list[str]:
        """Slots whose tree is more than their own name."""
        return [name for name, tree in zip(SLOT_NAMES, self.trees) if str(tree) != name]

    @property
    def used_slots(self) -> list[str]:
        """Slots the update depends on, directly or through other slots (a never-updated one reads as zeros).

        A slot nothing downstream reads is dead code the search carried along: rendering it would
        only cost time on every step of every evaluation, so it is left out.
        """
        live: set[str] = set()
        frontier = [self.tree("update")]
        while frontier:
            for node in frontier.pop():
                name = node.format() if node.arity == 0 else None
                if name in SLOT_NAMES and name not in live:
                    live.add(name)
                    frontier.append(self.tree(name))
        return [name for name in SLOT_NAMES if name in live]

    def primitive_names(self) -> list[str]:
        """Names of the primitives the program uses, in primitives/ops.py order."""
        used = {node.name for tree in self.trees for node in tree if isinstance(node, gp.Primitive)}
        return [name for name in _OPS_ORDER if name in used]

    # ------------------------------------------------------------------ random programs
    @classmethod
    def random(cls, rng: random.Random, min_depth: int = 1, max_depth: int = 4, slot_rate: float = 0.5) -> "Program":
        """A random program: each slot is updated with probability `slot_rate`, the update always is."""
        pset = build_pset()
        trees = []
        with using_rng(rng):
            for role in ROLES:
                if role != "update" and random.random() >= slot_rate:
                    trees.append(parse_tree(role))
                else:
                    trees.append(gp.PrimitiveTree(gp.genHalfAndHalf(pset, min_depth, max_depth, type_=Tensor)))
        return cls(trees)

    # ------------------------------------------------------------------ the Submission file
    def render(self, title: str = "") -> str:
        """One standalone Python file (imports only torch and math) defining `Submission`: compiled, fast."""
        from primitives.compile import compile_program

        return compile_program(self, title)

    def render_plain(self, title: str = "") -> str:
        """The same optimizer as a literal transcription, one primitive call per node: the reference the
        compiled file is tested against, and what the bench compares it with."""
        return render_submission(self, title)


# ---------------------------------------------------------------------- parsing


def parse_tree(expr: str) -> gp.PrimitiveTree:
    """One expression -> a typed DEAP tree returning a Tensor; raises ProgramError."""
    if not expr:
        raise ProgramError("empty expression")
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError as error:
        raise ProgramError(f"syntax error in {expr[:60]!r}: {error.msg}") from None
    nodes: list = []
    _emit(node, Tensor, nodes, build_pset())
    return gp.PrimitiveTree(nodes)


def _emit(node: ast.AST, expected: type, out: list, pset: gp.PrimitiveSetTyped) -> None:
    """Appends the prefix (DEAP) form of `node`, checking that it produces `expected`."""
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ProgramError(f"unsupported call {ast.unparse(node)[:60]!r}: use name(arg, ...)")
        name = node.func.id
        primitive = pset.mapping.get(name)
        if not isinstance(primitive, gp.Primitive):
            raise ProgramError(f"unknown primitive {name!r}")
        _expect(primitive.ret, expected, name)
        if len(node.args) != primitive.arity:
            raise ProgramError(f"{name} takes {primitive.arity} arguments, got {len(node.args)}")
        out.append(primitive)
        for arg, arg_type in zip(node.args, primitive.args):
            _emit(arg, arg_type, out, pset)
    elif isinstance(node, ast.Name):
        terminal = pset.mapping.get(node.id)
        if not isinstance(terminal, gp.Terminal) or is_constant(terminal):
            kind = "a primitive, not a value" if isinstance(terminal, gp.Primitive) else "unknown"
            raise ProgramError(f"name {node.id!r} is {kind}")
        _expect(terminal.ret, expected, node.id)
        out.append(terminal)
    elif _is_number(node):
        value = float(ast.literal_eval(node))
        if expected is Tensor:
            raise ProgramError(f"constant {value!r} stands where a tensor is expected")
        problem = check_constant(expected, value)
        if problem:
            raise ProgramError(problem)
        out.append(make_constant(expected, value))
    else:
        raise ProgramError(f"unsupported expression {ast.unparse(node)[:60]!r}")


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _expect(got: type, expected: type, what: str) -> None:
    if got is not expected:
        raise ProgramError(f"type error: {what} gives a {got.__name__} where a {expected.__name__} is expected")


# ---------------------------------------------------------------------- rendering

_OPS_ORDER: list[str] = [name for name, fn in inspect.getmembers(ops, inspect.isfunction)
                         if fn.__module__ == ops.__name__]
_OPS_ORDER.sort(key=lambda name: inspect.getsourcelines(getattr(ops, name))[1])


def _python(role: str, tree: gp.PrimitiveTree) -> str:
    """The tree as a Python expression over the step's local names; a bare g or p is copied so no slot aliases them."""
    text = str(tree)
    return f"{text}.clone()" if text in ("g", "p") else text


def render_submission(program: Program, title: str = "") -> str:
    slots = program.used_slots
    updated = [s for s in program.updated_slots() if s in slots]
    helpers = "\n\n\n".join(inspect.getsource(getattr(ops, name)).rstrip() for name in program.primitive_names())
    text = program.to_text().replace("\\", "\\\\")
    heading = f"{title}\n\n" if title else ""
    init_lines = "".join(f'\n                    state["{s}"] = torch.zeros_like(p)' for s in slots)
    load = f'\n                {", ".join(slots)} = {", ".join(f"state[{s!r}]" for s in slots)}' if slots else ""
    load = load.replace("'", '"')
    slot_lines = "".join(f'\n                {s} = state["{s}"] = {_python(s, program.tree(s))}' for s in updated)
    update = f'''        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0{init_lines}
                state["step"] += 1
                t = state["step"]{load}{slot_lines}
                p.add_({program.tree("update")})
'''
    return f'''"""{heading}Optimizer program (synth; slots start at zero, t counts steps from 1):

{text}
"""

import math

import torch


{helpers + chr(10) + chr(10) + chr(10) if helpers else ""}{submission_class(update=update)}'''
