"""The Submission contract, checked after policy_checker.py's walk: one top-level `class Submission` that
subclasses a torch.optim optimizer and whose __init__ the harness can call as Submission(params)."""

from __future__ import annotations

import ast

from evaluator.policy_rules import BASE_OPTIMIZER, CONTRACT, OPTIMIZER_CLASSES


def is_optimizer_base(dotted: str | None) -> bool:
    """A torch.optim optimizer a Submission may subclass."""
    return bool(dotted) and (dotted in BASE_OPTIMIZER or (
        dotted.startswith("torch.optim.") and dotted.rsplit(".", 1)[-1] in OPTIMIZER_CLASSES))


def torch_base(checker, cls: ast.ClassDef, seen: frozenset = frozenset()) -> tuple[str | None, ast.AST | None]:
    """(torch base it reaches, own __init__ found first on the way), walking own bases in order."""
    init = next((s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "__init__"), None)
    for base in cls.bases:
        dotted = checker.resolve(base)
        if is_optimizer_base(dotted):
            return dotted, init
        if isinstance(base, ast.Name) and base.id in checker.classes and base.id not in seen:
            found, inherited = torch_base(checker, checker.classes[base.id], seen | {cls.name})
            if found:
                return found, init or inherited
    return None, init


def check_contract(checker) -> None:
    """Reports on `checker` (a policy_checker.Checker that has walked the tree) what breaks the contract:
    one top-level `Submission`, a torch optimizer subclass, an __init__ the harness can call."""
    defs = [s for s in checker.tree.body if isinstance(s, ast.ClassDef) and s.name == "Submission"]
    rebinds = [s for s in ast.walk(checker.tree) if s not in defs and (
        (isinstance(s, ast.Name) and s.id == "Submission" and not isinstance(s.ctx, ast.Load))
        or (isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and s.name == "Submission")
        or (isinstance(s, ast.alias) and (s.asname or s.name) == "Submission"))]
    if not defs:
        checker.report(checker.tree.body[0] if checker.tree.body else checker.tree, "contract-class",
                    "no top-level `class Submission(torch.optim.Optimizer)`")
        return
    cls = defs[-1]
    for other in [*defs[:-1], *rebinds]:
        checker.report(other if hasattr(other, "lineno") else cls, "contract-class", "`Submission` is defined more than once")
    base, init = torch_base(checker, cls)
    if base is None:
        checker.report(cls, "contract-class", "`Submission` must subclass torch.optim.Optimizer (or a torch.optim optimizer)")
        return
    if init is None:
        if base in BASE_OPTIMIZER:
            checker.report(cls, "contract-init", f"`Submission` has no __init__, so torch.optim.Optimizer's needs `defaults`; {CONTRACT}")
        return
    a = init.args
    positional = a.posonlyargs + a.args
    required = positional[1:len(positional) - len(a.defaults)] if positional else []
    kw_required = [k.arg for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    if not positional:
        problem = "takes no `self`"
    elif len(required) > 1:
        problem = f"requires {len(required)} arguments ({', '.join(p.arg for p in required)})"
    elif not required and len(positional) == 1 and not a.vararg:
        problem = "accepts no parameters argument"
    elif kw_required:
        problem = f"requires keyword-only {', '.join(kw_required)}"
    else:
        return
    checker.report(init, "contract-init", f"__init__ {problem}; {CONTRACT}")
