"""The static policy's walk over a candidate's AST (evaluator/policy.py is its entry point): imports,
names, attributes, calls, constants, definitions, each against the rules of policy_rules.py.

A finding is (line, rule, message); the first per (line, rule) is kept. The Submission contract is
checked in policy_contract.py once the walk is done.
"""

from __future__ import annotations

import ast
from typing import Iterable

from evaluator.policy_contract import is_optimizer_base
from evaluator.policy_rules import (
    BENCHMARK_SEEDS, NAME_RULES, MODULE_RULES, TORCH_RULES, IMPORT_ONLY_FORBIDDEN, ALLOWED_PRIVATE_TORCH,
    ALWAYS_IMPORTABLE, REFLECTION, ALLOWED_DUNDER_DEFS, HARMLESS_DUNDERS, PATCH_ATTRS, TENSOR_FIELDS,
    PASS_THROUGH_CALLS, PLAIN_VALUES, OWN_NAMES_ALLOWED, FORMAT_GADGET)

Finding = tuple[int, str, str]  # line, rule, message


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _has_prefix(dotted: str, prefixes: Iterable[str]) -> str | None:
    return next((p for p in prefixes if dotted == p or dotted.startswith(p + ".")), None)


def _root(node: ast.AST) -> ast.AST:
    """The base of an attribute/subscript chain: `torch` in torch.nn.Module.forward."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node


def _is_super_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _fold(node: ast.AST, depth: int = 0):
    """Constant-folds small int/str arithmetic (1728 + 1, 12**3 + 1, '17' + '29'); None if not constant."""
    if depth > 50:
        return None
    if isinstance(node, ast.Constant) and type(node.value) in (int, str):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
        a = _fold(node.operand, depth + 1)
        if type(a) is int:
            return -a if isinstance(node.op, ast.USub) else (~a if isinstance(node.op, ast.Invert) else a)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        a, b = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        if type(a) is int and type(b) is int and 0 <= b <= 64 and abs(a) < 2**20 and (abs(a) <= 1 or b * abs(a).bit_length() <= 64):
            return a**b
        return None
    if isinstance(node, ast.BinOp):
        a, b = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        if type(a) is int and type(b) is int and abs(a) < 2**40 and abs(b) < 2**40:
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b, ast.BitOr: lambda: a | b,
                   ast.BitXor: lambda: a ^ b, ast.BitAnd: lambda: a & b,
                   ast.LShift: lambda: a << b if 0 <= b < 40 else None}
            try:
                return ops[type(node.op)]() if type(node.op) in ops else None
            except ZeroDivisionError:
                return None
        if type(a) is str and type(b) is str and isinstance(node.op, ast.Add) and len(a) + len(b) < 64:
            return a + b
    return None


class Checker(ast.NodeVisitor):
    """One pass over the tree; flow-insensitive facts (aliases, bound names) are gathered first."""

    def __init__(self, tree: ast.Module, allowed_imports: Iterable[str]):
        self.tree = tree
        self.allowed = set(allowed_imports) | set(ALWAYS_IMPORTABLE)
        self.found: dict[tuple[int, str], Finding] = {}
        self.aliases: dict[str, str] = {}  # local name -> dotted module/object name it was imported as
        self.bound: set[str] = set()       # every name the file binds itself
        self.stored: set[str] = set()      # names assigned anywhere (a reassigned `self` is not own)
        self.scopes: list[dict[str, bool]] = []  # per function: parameter -> is it an own instance (self/cls)
        self.methods = {id(s) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for s in c.body
                        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.classes = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound.add(node.id)
                self.stored.add(node.id)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bound.add(node.name)
        self.foreign = self._foreign_names()
        self.defined_members = {s.name for c in self.classes.values() for s in c.body
                                if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}

    # -------------------------------------------------------------- bookkeeping
    def report(self, node: ast.AST, rule: str, message: str) -> None:
        line = getattr(node, "lineno", None) or 1
        self.found.setdefault((line, rule), (line, rule, message))

    def result(self) -> list[Finding]:
        return sorted(self.found.values(), key=lambda f: f[0])

    def resolve(self, node: ast.AST) -> str | None:
        """Dotted name of an imported object: F.mse_loss -> torch.nn.functional.mse_loss."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _mentions_foreign(self, expr: ast.AST, foreign: set[str]) -> bool:
        """May `expr` hand out a foreign object (a module, torch's classes)? Calls make fresh objects."""
        if isinstance(expr, ast.Name):
            return expr.id in foreign
        if isinstance(expr, ast.Call):
            return isinstance(expr.func, ast.Name) and expr.func.id in PASS_THROUGH_CALLS
        if isinstance(expr, ast.Lambda):
            return False
        if isinstance(expr, ast.Attribute) and expr.attr in PLAIN_VALUES and self.resolve(expr):
            return False  # torch.float32, math.pi: values
        return any(self._mentions_foreign(child, foreign) for child in ast.iter_child_nodes(expr))

    def _foreign_names(self) -> set[str]:
        """Imported names, plus names assigned from them (`O = torch.optim`), to a fixpoint."""
        pairs: list[tuple[ast.AST, ast.AST]] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign):
                pairs += [(t, node.value) for t in node.targets]
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value:
                pairs.append((node.target, node.value))
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                pairs.append((node.target, node.iter))
            elif isinstance(node, ast.withitem) and node.optional_vars:
                pairs.append((node.optional_vars, node.context_expr))
            elif isinstance(node, ast.arguments):
                positional = node.posonlyargs + node.args
                pairs += [(ast.Name(a.arg), d) for a, d in zip(positional[len(positional) - len(node.defaults):], node.defaults)]
                pairs += [(ast.Name(a.arg), d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d]
        foreign = set(self.aliases)
        changed = True
        while changed:
            changed = False
            for target, value in pairs:
                if isinstance(target, (ast.Attribute, ast.Subscript)):
                    target = _root(target)  # `box["m"] = F` makes `box` foreign
                names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} - foreign
                if names and self._mentions_foreign(value, foreign):
                    foreign |= names
                    changed = True
        return foreign

    # -------------------------------------------------------------- name checks shared by visitors
    def check_name(self, node: ast.AST, name: str, what: str) -> bool:
        if name in NAME_RULES:
            rule, why = NAME_RULES[name]
            self.report(node, rule, f"{what} `{name}` {why}")
            return True
        return False

    def check_dotted(self, node: ast.AST, dotted: str | None) -> bool:
        if not dotted or not (dotted == "torch" or dotted.startswith("torch.")):
            return False
        prefix = _has_prefix(dotted, TORCH_RULES)
        if prefix:
            self.report(node, TORCH_RULES[prefix], f"`{dotted}` is off limits to an optimizer ({prefix})")
            return True
        reexport = next((p for p in dotted.split(".")[1:] if p in MODULE_RULES), None)
        if reexport:  # torch re-exports os, sys, ctypes, inspect, importlib ...: the same modules by another path
            self.report(node, MODULE_RULES[reexport], f"`{dotted}` reaches the `{reexport}` module through torch")
            return True
        private = next((p for p in dotted.split(".")[1:] if p.startswith("_") and not _is_dunder(p)), None)
        if private and not private.startswith(ALLOWED_PRIVATE_TORCH):
            self.report(node, "native", f"`{dotted}` reaches torch's private internals")
            return True
        return False

    def check_attr_name(self, node: ast.AST, attr: str, owner: ast.AST | None) -> None:
        own = attr in OWN_NAMES_ALLOWED and owner is not None and (
            self.is_own(_root(owner)) or attr in self.defined_members)
        if not own and self.check_name(node, attr, "attribute"):
            return
        if _is_dunder(attr) and attr not in HARMLESS_DUNDERS:
            base_init = attr in ALLOWED_DUNDER_DEFS and owner is not None and (
                _is_super_call(owner) or (isinstance(owner, ast.Name) and owner.id in self.classes)
                or is_optimizer_base(self.resolve(owner)))
            if not base_init:
                self.report(node, "dunder", f"dunder attribute `{attr}` (only super().__init__(...) is allowed)")

    def is_own(self, root: ast.AST) -> bool:
        """`self`/`cls` of a method (never reassigned), or a class this file defines."""
        if not isinstance(root, ast.Name) or root.id in self.foreign:
            return False
        if root.id in self.classes:
            return root.id not in self.stored
        for scope in reversed(self.scopes):
            if root.id in scope:
                return scope[root.id] and root.id not in self.stored
        return False

    def check_patch(self, node: ast.AST, target: ast.AST, attr: str | None, how: str) -> None:
        """Assigning or deleting an attribute: only the candidate's own objects (and p.data/p.grad) may change."""
        root = _root(target)
        if attr in PATCH_ATTRS:
            self.report(node, "monkeypatch", f"{how} `.{attr}` replaces what the harness calls")
        elif self.is_own(root) or (attr in TENSOR_FIELDS and isinstance(root, ast.Name) and root.id not in self.foreign):
            return
        else:
            shown = self.resolve(target) or (root.id if isinstance(root, ast.Name) else "an expression result")
            self.report(node, "monkeypatch", f"{how} `.{attr}` of `{shown}`, which is not the candidate's own")

    # -------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.check_import(node, a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            self.report(node, "import", "relative imports are not allowed")
            return
        if not self.check_import(node, node.module):
            for a in node.names:
                if a.name == "*":
                    self.report(node, "import", f"`from {node.module} import *` hides what is used")
                elif not self.check_name(node, a.name, "import of") and node.module != "__future__":
                    self.check_import(node, f"{node.module}.{a.name}")

    def check_import(self, node: ast.AST, dotted: str) -> bool:
        top = dotted.split(".")[0]
        if top not in self.allowed:
            kind = MODULE_RULES.get(top, "not in the allowlist")
            self.report(node, "import", f"import of `{dotted}` ({kind}); allowed: {', '.join(sorted(self.allowed - set(ALWAYS_IMPORTABLE)))}")
            return True
        forbidden = _has_prefix(dotted, (*TORCH_RULES, *IMPORT_ONLY_FORBIDDEN))
        private = any(p.startswith("_") and not p.startswith(ALLOWED_PRIVATE_TORCH) for p in dotted.split(".")[1:])
        if top == "torch" and (forbidden or private):
            self.report(node, "import", f"import of `{dotted}`: that part of torch is off limits to an optimizer")
            return True
        return False

    # -------------------------------------------------------------- names and attributes
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        own = name in OWN_NAMES_ALLOWED and name in self.bound
        if not own and self.check_name(node, name, "name"):
            return
        if name in REFLECTION:
            self.report(node, "introspection", f"`{name}` may only be called directly with a constant name")
        elif _is_dunder(name) and name not in HARMLESS_DUNDERS:
            self.report(node, "dunder", f"dunder name `{name}`")
        elif isinstance(node.ctx, ast.Load) and self.check_dotted(node, self.aliases.get(name)):
            pass
        elif name in MODULE_RULES and name not in self.bound and name not in self.aliases:
            self.report(node, MODULE_RULES[name], f"module `{name}` used without being imported")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not self.check_dotted(node, self.resolve(node)):
            self.check_attr_name(node, node.attr, node.value)
        if not isinstance(node.ctx, ast.Load):
            self.check_patch(node, node.value, node.attr, "assigning to" if isinstance(node.ctx, ast.Store) else "deleting")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            root = _root(node)
            if isinstance(root, ast.Name) and root.id in self.aliases:
                self.report(node, "monkeypatch", f"writing into `{root.id}[...]`, which is not the candidate's own")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in REFLECTION and func.id not in self.bound:
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                self.report(node, "introspection", f"`{func.id}` with a non-constant attribute name")
            else:
                owner = node.args[0]
                if not self.check_dotted(node, f"{self.resolve(owner)}.{name.value}" if self.resolve(owner) else None):
                    self.check_attr_name(node, name.value, owner)
                if func.id in ("setattr", "delattr"):
                    self.check_patch(node, owner, name.value, f"{func.id}() on")
            for child in (*node.args, *node.keywords):
                self.visit(child)
            return
        self.generic_visit(node)

    # -------------------------------------------------------------- constants (hidden seeds, format gadgets)
    def check_seed(self, node: ast.AST, value) -> None:
        if isinstance(value, str):
            value = value.strip().replace("_", "")
            value = int(value) if value.isdigit() and len(value) < 10 else None
        if type(value) in (int, float) and value in BENCHMARK_SEEDS:
            seed = int(value)
            self.report(node, "hidden-seed", f"literal {seed} is the benchmark's {BENCHMARK_SEEDS[seed]} seed")

    def visit_Constant(self, node: ast.Constant) -> None:
        self.check_seed(node, node.value)
        if isinstance(node.value, str) and FORMAT_GADGET.search(node.value):
            self.report(node, "dunder", "format string reads private attributes (`{x.__...}`)")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.check_seed(node, _fold(node))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        self.check_seed(node, _fold(node))
        self.generic_visit(node)

    # -------------------------------------------------------------- definitions
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if _is_dunder(node.name) and node.name not in ALLOWED_DUNDER_DEFS:
            self.report(node, "dunder", f"defining `{node.name}` (only {', '.join(sorted(ALLOWED_DUNDER_DEFS))} may be defined)")
        a = node.args
        params = {arg.arg: False for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if arg}
        first = (a.posonlyargs + a.args)[:1]
        static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        if id(node) in self.methods and first and not static:
            params[first[0].arg] = True
        self.scopes.append(params)
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        a = node.args
        self.scopes.append({arg.arg: False for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if arg})
        self.generic_visit(node)
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for kw in node.keywords:
            self.report(node, "contract-class", f"class `{node.name}` passes `{kw.arg}=` (metaclasses are not allowed)")
        self.generic_visit(node)
