"""The static policy: honest optimizers pass untouched; hostile snippets fail with the right rule and line."""

from __future__ import annotations

import textwrap

import pytest

from evaluator.policy import (CONTRACT, DEFAULT_ALLOWED_IMPORTS, OPTIMIZER_CLASSES, PolicyError, Violation,
                              check_source, enforce)
from tests.conftest import ADAMW_SUBMISSION, HOSTILE

HEADER = "import torch\nimport math\n\n\nclass Submission(torch.optim.Optimizer):\n"  # 5 lines
INIT = "    def __init__(self, params):\n        super().__init__(params, dict(lr=0.01))\n"  # lines 6-7


def in_step(body: str) -> str:
    """An honest SGD Submission with `body` placed first in step(); `body` starts on line 11."""
    return (HEADER + INIT + "\n    @torch.no_grad()\n    def step(self, closure=None):\n"
            + textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8) + "\n"
            + "        for group in self.param_groups:\n"
            + "            for p in group['params']:\n"
            + "                p.add_(p.grad, alpha=-group['lr'])\n")


STEP_LINE = 11

# ------------------------------------------------------------------ legitimate optimizers
LEGIT = {
    "adamw_subclass": ADAMW_SUBMISSION,
    "adam": '''
import math
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] / bias_correction1
                denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
''',
    "adamw_decoupled": '''
import math

import torch
from torch.optim import Optimizer


class Submission(Optimizer):
    def __init__(self, params, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def __repr__(self):
        return "AdamW-like"

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                p.mul_(1 - lr * wd)
                st["m"].lerp_(p.grad, 1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = st["m"] / (1 - b1 ** st["t"])
                v_hat = st["v"] / (1 - b2 ** st["t"])
                p.add_(m_hat / (v_hat.sqrt() + eps), alpha=-lr)
''',
    "sgd_momentum": '''
import torch
from torch import optim


class Submission(optim.Optimizer):
    def __init__(self, params, lr=0.1, momentum=0.9, nesterov=True):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = p.grad.clone().detach()
                else:
                    buf.mul_(group["momentum"]).add_(p.grad)
                update = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.add_(update, alpha=-group["lr"])
''',
    "lion": '''
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                p.mul_(1 - group["lr"] * group["weight_decay"])
                signal = exp_avg.mul(beta1).add_(p.grad, alpha=1 - beta1).sign_()
                p.add_(signal, alpha=-group["lr"])
                exp_avg.mul_(beta2).add_(p.grad, alpha=1 - beta2)
''',
    "muon": '''
import math

import torch


def newton_schulz(G, steps=5, eps=1e-7):
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.float()
    X = X / (torch.linalg.norm(X) + eps)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    if transposed:
        X = X.mT
    return X


class Submission(torch.optim.Optimizer):
    def __init__(self, params, lr=0.02, momentum=0.95, *, adam_lr=3e-3, **extra):
        super().__init__(params, dict(lr=lr, momentum=momentum, adam_lr=adam_lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                state = self.state[p]
                if "buf" not in state:
                    state["buf"] = torch.zeros_like(g)
                buf = state["buf"]
                buf.mul_(group["momentum"]).add_(g)
                if p.ndim == 2:
                    update = newton_schulz(g.add(buf, alpha=group["momentum"]))
                    scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                    p.add_(update.to(p.dtype), alpha=-group["lr"] * scale)
                else:
                    p.add_(buf.sign(), alpha=-group["adam_lr"] * math.sqrt(1.0))
''',
    "adafactor": '''
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class Submission(torch.optim.Optimizer):
    """Factored second moments for matrices, full ones for vectors."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(1e-30, 1e-3), clip=1.0):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, clip=clip))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            eps1, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    if grad.dim() >= 2:
                        state["row"] = torch.zeros(grad.shape[:-1])
                        state["col"] = torch.zeros(grad.shape[:-2] + grad.shape[-1:])
                    else:
                        state["v"] = torch.zeros_like(grad)
                state["step"] += 1
                beta2 = 1.0 - math.pow(state["step"], group["beta2_decay"])
                sq = grad.square().add_(eps1)
                if grad.dim() >= 2:
                    state["row"].lerp_(sq.mean(dim=-1), 1 - beta2)
                    state["col"].lerp_(sq.mean(dim=-2), 1 - beta2)
                    r = state["row"] / state["row"].mean(dim=-1, keepdim=True)
                    v = r.unsqueeze(-1) * state["col"].unsqueeze(-2)
                else:
                    state["v"].lerp_(sq, 1 - beta2)
                    v = state["v"]
                update = grad * v.rsqrt()
                update.div_((update.norm() / math.sqrt(update.numel()) / group["clip"]).clamp_(min=1.0))
                scale = max(eps2, p.norm().item() / math.sqrt(p.numel()))
                p.add_(F.normalize(update.flatten(), dim=0).view_as(p) * update.norm(), alpha=-group["lr"] * scale)
''',
    "foreach_and_helper_base": '''
import torch


class _Base(torch.optim.SGD):
    def __init__(self, params, lr=0.05):
        super().__init__(params, lr=lr, momentum=0.9)

    def __setstate__(self, state):
        super().__setstate__(state)


class Submission(_Base):
    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        torch._foreach_mul_(grads, 0.5)
        return super().step(closure)
''',
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legitimate_optimizers_pass(name):
    assert check_source(LEGIT[name]) == []
    enforce(LEGIT[name])  # does not raise


def test_every_concrete_torch_optimizer_is_an_accepted_base():
    """Reads torch.optim's __all__ from its source (importing torch would cost seconds)."""
    import ast
    import importlib.util

    from pathlib import Path

    optim_init = Path(importlib.util.find_spec("torch").origin).parent / "optim" / "__init__.py"
    tree = ast.parse(optim_init.read_text())
    exported = next(ast.literal_eval(s.value) for s in tree.body if isinstance(s, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in s.targets))
    real = {n for n in exported if n[0].isupper() and n != "Optimizer"}
    assert {"AdamW", "SGD", "Muon"} <= real <= OPTIMIZER_CLASSES
    for name in sorted(real):
        source = f"import torch\n\n\nclass Submission(torch.optim.{name}):\n    pass\n"
        assert check_source(source) == [], name


# ------------------------------------------------------------------ hostile snippets: (source, rule, line)
HOSTILE_SNIPPETS = {
    # the file itself
    "syntax": ("import torch\nclass Submission(torch.optim.Optimizer:\n    pass\n", "syntax", 2),
    "no_submission": ("import torch\n\n\nclass Opt(torch.optim.Optimizer):\n    pass\n", "contract-class", 1),
    "wrong_base": ("import torch\n\n\nclass Submission(torch.nn.Module):\n    pass\n", "contract-class", 4),
    "metaclass": ("import torch\n\n\nclass Submission(torch.optim.SGD, metaclass=type):\n    pass\n",
                  "contract-class", 4),
    "submission_rebound": (ADAMW_SUBMISSION + "\nSubmission = torch.optim.SGD\n", "contract-class", 8),
    "bare_optimizer_no_init": ("import torch\n\n\nclass Submission(torch.optim.Optimizer):\n    pass\n",
                               "contract-init", 4),
    "init_without_params": (HEADER + "    def __init__(self):\n        pass\n", "contract-init", 6),
    "required_keyword_only": (HEADER + "    def __init__(self, params, *, lr):\n        pass\n",
                              "contract-init", 6),
    # imports
    "import_os_disguised": ("import os as torch_helpers\n" + ADAMW_SUBMISSION, "import", 1),
    "from_torch_import_hub": ("from torch import hub\n" + ADAMW_SUBMISSION, "import", 1),
    "import_torch_utils": ("import torch.utils.cpp_extension\n" + ADAMW_SUBMISSION, "import", 1),
    "import_torch_private": ("from torch._C import _get_tracing_state\n" + ADAMW_SUBMISSION, "import", 1),
    "import_torch_backends": ("import torch.backends.cudnn\n" + ADAMW_SUBMISSION, "import", 1),
    "star_import": ("from torch import *\n" + ADAMW_SUBMISSION, "import", 1),
    "relative_import": ("from . import helpers\n" + ADAMW_SUBMISSION, "import", 1),
    "import_inside_step": (in_step("import subprocess"), "import", STEP_LINE),
    "numpy": (in_step("import numpy as np"), "import", STEP_LINE),
    # builtins and reflection
    "exec": (in_step("exec('import os')"), "builtin", STEP_LINE),
    "eval": (in_step("lr = eval('0.1')"), "builtin", STEP_LINE),
    "open": (in_step("open('/tmp/x', 'w').write('hi')"), "builtin", STEP_LINE),
    "lambda_import": (in_step("loader = lambda: __import__('os')"), "builtin", STEP_LINE),
    "builtin_as_attribute": (in_step("torch.compile(self.step)"), "native", STEP_LINE),
    "getattr_concatenated_seed": (in_step("getattr(torch, 'manual_' + 'seed')(0)"), "introspection", STEP_LINE),
    "getattr_constant_forbidden": (in_step("getattr(torch, 'manual_seed')(0)"), "rng", STEP_LINE),
    "getattr_as_value": (in_step("g = getattr\ng(torch, 'load')"), "introspection", STEP_LINE),
    "globals": (in_step("globals()['x'] = 1"), "builtin", STEP_LINE),
    # dunders and introspection
    "module_dict_lookup": (in_step("load = torch.__dict__['load']"), "dunder", STEP_LINE),
    "subclasses_walk": (in_step("classes = ().__class__.__bases__[0].__subclasses__()"), "dunder", STEP_LINE),
    "dunder_method_defined": (HEADER + INIT + "    def __getattribute__(self, name):\n        return 1\n",
                              "dunder", 8),
    "format_gadget": (in_step("s = '{0.__globals__}'.format(self.step)"), "dunder", STEP_LINE),
    "frame_walk": (in_step("import torch as t\nf = t.ones(1).grad_fn.f_back"), "introspection", STEP_LINE + 1),
    "bare_sys": (in_step("sys.modules['torch'].load"), "process", STEP_LINE),
    "bare_gc": (in_step("objs = gc.get_objects()"), "introspection", STEP_LINE),
    "private_torch": (in_step("torch._C._set_grad_enabled(True)"), "native", STEP_LINE),
    "module_hook": (in_step("torch.nn.modules.module.register_module_forward_hook(print)"),
                    "introspection", STEP_LINE),
    # rng
    "manual_seed": (in_step("torch.manual_seed(0)"), "rng", STEP_LINE),
    "generator": (in_step("g = torch.Generator()"), "rng", STEP_LINE),
    "get_rng_state": (in_step("s = torch.get_rng_state()"), "rng", STEP_LINE),
    "torch_random": (in_step("torch.random.fork_rng()"), "rng", STEP_LINE),
    "from_import_manual_seed": ("from torch.cuda import manual_seed\n" + ADAMW_SUBMISSION, "rng", 1),
    # serialization and files
    "torch_load": (in_step("w = torch.load('/tmp/teacher.pt')"), "serialization", STEP_LINE),
    "torch_save": (in_step("torch.save(self.state, 'x.pt')"), "serialization", STEP_LINE),
    "torch_hub": (in_step("torch.hub.load('a/b', 'c')"), "serialization", STEP_LINE),
    "from_file": (in_step("x = torch.from_file('/etc/passwd')"), "io", STEP_LINE),
    "tofile": (in_step("p.detach().numpy().tofile('/tmp/p')"), "io", STEP_LINE),
    "set_num_threads": (in_step("torch.set_num_threads(16)"), "global-state", STEP_LINE),
    # monkeypatching
    "patch_torch_function": (in_step("torch.zeros = torch.ones"), "monkeypatch", STEP_LINE),
    "patch_functional": ("import torch.nn.functional as F\n" + in_step("F.mse_loss = lambda *a: 0"),
                         "monkeypatch", STEP_LINE + 1),
    "patch_module_forward": (in_step("torch.nn.Module.forward = lambda self, x: x"), "monkeypatch", STEP_LINE),
    "patch_math": (in_step("math.pi = 3"), "monkeypatch", STEP_LINE),
    "patch_via_alias": (in_step("Module = torch.nn.Module\nModule.train = print"), "monkeypatch", STEP_LINE + 1),
    "patch_setattr": (in_step("setattr(torch, 'zeros', torch.ones)"), "monkeypatch", STEP_LINE),
    "patch_type_of_param": (in_step("type(self.param_groups[0]['params'][0]).add_ = print"),
                            "monkeypatch", STEP_LINE),
    "patch_any_forward": (in_step("self.model.forward = print"), "monkeypatch", STEP_LINE),
    "patch_backends": (in_step("torch.backends.cudnn.benchmark = True"), "monkeypatch", STEP_LINE),
    # hidden seeds, also obfuscated
    "seed_literal": (in_step("n = 271828"), "hidden-seed", STEP_LINE),
    "seed_arithmetic": (in_step("n = 1700 + 29"), "hidden-seed", STEP_LINE),
    "seed_string": (in_step("n = int('314159')"), "hidden-seed", STEP_LINE),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SNIPPETS))
def test_hostile_snippet_is_rejected_with_rule_and_line(name):
    source, rule, line = HOSTILE_SNIPPETS[name]
    violations = check_source(source)
    assert (line, rule) in {(v.line, v.rule) for v in violations}, violations
    with pytest.raises(PolicyError):
        enforce(source)


def test_snippet_helper_is_itself_legitimate():
    """Guards the table above: without the injected line, the scaffold passes."""
    assert check_source(in_step("pass")) == []
    assert in_step("marker = 1").splitlines()[STEP_LINE - 1].strip() == "marker = 1"


# ------------------------------------------------------------------ hostile files
def test_teacher_reconstruction_from_seed_1729_is_rejected():
    source = (HOSTILE / "teacher_from_seed_1729.py").read_text()
    violations = check_source(source)
    rules = {v.rule for v in violations}
    assert {"rng", "hidden-seed"} <= rules
    lines = source.splitlines()
    seed_line = next(v.line for v in violations if v.rule == "hidden-seed")
    rng_line = next(v.line for v in violations if v.rule == "rng")
    assert "1729" in lines[seed_line - 1]
    assert "manual_seed" in lines[rng_line - 1]
    with pytest.raises(PolicyError) as err:
        enforce(source)
    assert str(err.value).startswith(f"line {violations[0].line}: [")


def test_two_argument_constructor_is_rejected_with_the_contract_rule():
    source = (HOSTILE / "two_arg_constructor.py").read_text()
    violations = check_source(source)
    assert [v.rule for v in violations] == ["contract-init"]
    assert "def __init__(self, params, lr)" in source.splitlines()[violations[0].line - 1]
    assert CONTRACT in violations[0].message
    assert "Submission(model.parameters())" in str(violations[0])


@pytest.mark.parametrize("name,rule", [
    ("fork_bomb.py", "import"), ("frame_peek.py", "introspection"), ("gc_eval_data.py", "import"),
    ("monkeypatch_forward.py", "monkeypatch"), ("monkeypatch_loss.py", "monkeypatch"),
    ("reseed_global_rng.py", "rng"), ("sleep_wall_time.py", "import"), ("write_outside_scratch.py", "builtin"),
])
def test_red_team_files_are_rejected_statically(name, rule):
    path = HOSTILE / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    assert rule in {v.rule for v in check_source(path.read_text())}


# ------------------------------------------------------------------ robustness and the error shape
@pytest.mark.parametrize("garbage", ["", "   \n", "\x00\x01\x02", "def (:", "\ufeffclass", "(" * 500 + ")" * 500,
                                     "x = " + "-" * 100_000 + "1", "\udcff", b"\xff\xfe\x00", b"import torch", None, 42])
def test_check_source_never_raises(garbage):
    violations = check_source(garbage)
    assert violations and all(isinstance(v, Violation) and v.line >= 1 for v in violations)


def test_empty_file_names_the_missing_class():
    assert [(v.line, v.rule) for v in check_source("")] == [(1, "contract-class")]


def test_syntax_error_line_is_reported():
    violations = check_source("import torch\n\n\n\nx = = 1\n")
    assert [(v.line, v.rule) for v in violations] == [(5, "syntax")]


def test_violation_and_error_are_one_line():
    v = Violation(3, "rng", "multi\nline   message")
    assert str(v) == "line 3: [rng] multi line message"
    err = PolicyError([v, Violation(9, "io", "x"), Violation(12, "io", "y")])
    assert str(err) == "line 3: [rng] multi line message (+2 more)"
    assert err.violations[1].line == 9 and isinstance(err, ValueError)
    assert str(PolicyError([v])) == "line 3: [rng] multi line message"


def test_violations_are_sorted_by_line():
    source = in_step("torch.manual_seed(1)\nx = 1729\nopen('f')")
    lines = [v.line for v in check_source(source)]
    assert lines == sorted(lines) and len(lines) == 3


def test_allowlist_is_a_parameter():
    source = "import numpy\n" + ADAMW_SUBMISSION
    assert DEFAULT_ALLOWED_IMPORTS[:2] == ("torch", "math") and "os" not in DEFAULT_ALLOWED_IMPORTS
    assert [v.rule for v in check_source(source)] == ["import"]
    assert check_source(source, allowed_imports=("torch", "math", "numpy")) == []
    assert [v.rule for v in check_source(ADAMW_SUBMISSION, allowed_imports=("math",))] == ["import"]


def test_rng_noise_from_the_global_generator_is_allowed():
    assert check_source(in_step("noise = torch.randn(3) * 1e-3\nm = torch.rand_like(noise)")) == []


def test_own_objects_and_tensor_fields_may_be_assigned():
    body = ("self.count = 1\nself.state['dtype'] = torch.float32\nSubmission.shared = 0\n"
            "for g in self.param_groups:\n    g['eps'] = math.pi * 0\n"
            "    for q in g['params']:\n        q.data = q.data.clone()\n        q.grad = None")
    assert check_source(in_step(body)) == []


@pytest.mark.parametrize("body", [
    "t = type(self.param_groups[0]['params'][0])\nt.grad = None",  # patches torch.nn.Parameter
    "d = {}\nd['m'] = torch.nn.functional\nd['m'].mse_loss = print",
    "self = torch.nn.functional\nself.mse_loss = print",
    "def g(self):\n    self.mse_loss = print\ng(torch.nn.functional)",
    "torch.Tensor.data = None",
])
def test_laundered_monkeypatches_are_caught(body):
    assert "monkeypatch" in {v.rule for v in check_source(in_step(body))}


def test_own_variable_named_like_a_module_is_fine():
    assert check_source(in_step("signal = torch.ones(1)\nrandom = signal.sign()")) == []
