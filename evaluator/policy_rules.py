"""The static policy's rules, as data: what a candidate file may import, call, read and define.

evaluator/policy.py walks a file's syntax tree against these tables; each entry names the rule it
breaks and why, so a rejection reads as one line a person (or the LLM) can act on.
"""

from __future__ import annotations

import re

# torch and math, and the standard library's pure-computation helpers an optimizer may reasonably use
DEFAULT_ALLOWED_IMPORTS = ("torch", "math", "copy", "functools", "itertools", "collections", "dataclasses",
                           "typing", "operator", "numbers", "enum", "abc")
CONTRACT = "the harness calls Submission(model.parameters()) with no other argument"
BENCHMARK_SEEDS = {1729: "teacher", 271828: "train data", 161803: "eval data",
                   141421: "batch indices", 314159: "student"}

# ------------------------------------------------------------------ rules as data
def _rule(rule: str, why: str, *names: str) -> dict[str, tuple[str, str]]:
    return dict.fromkeys(names, (rule, why))


# Names checked wherever they appear: bare names, attribute names, getattr() constants, from-imports.
NAME_RULES: dict[str, tuple[str, str]] = {
    **_rule("builtin", "runs code or reaches the interpreter outside the optimizer",
            "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars",
            "breakpoint", "input", "memoryview"),
    **_rule("introspection", "inspects interpreter frames or code objects",
            "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "gi_frame", "gi_code",
            "tb_frame", "tb_next", "cr_frame", "ag_frame", "_getframe", "co_code", "co_consts"),
    **_rule("introspection", "hooks the harness's own model or tensor operations",
            "register_module_forward_hook", "register_module_forward_pre_hook",
            "register_module_full_backward_hook", "register_module_full_backward_pre_hook",
            "register_module_backward_hook", "register_module_buffer_registration_hook",
            "register_module_module_registration_hook", "register_module_parameter_registration_hook",
            "saved_tensors_hooks", "save_on_cpu", "TorchFunctionMode", "TorchDispatchMode"),
    **_rule("rng", "seeds or reads RNG state (may reconstruct the benchmark's hidden data)",
            "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "set_rng_state",
            "get_rng_state", "set_rng_state_all", "get_rng_state_all", "fork_rng", "Generator",
            "default_generator", "get_state", "set_state"),
    **_rule("io", "reads or writes files", "tofile", "fromfile", "from_file", "dump"),
    **_rule("global-state", "changes process-wide torch settings the harness relies on",
            "set_num_threads", "set_num_interop_threads", "set_default_dtype", "set_default_device",
            "set_default_tensor_type", "set_flush_denormal", "use_deterministic_algorithms",
            "set_float32_matmul_precision"),
}

# Modules a step never needs; also flagged as bare names the file never binds itself.
MODULE_RULES: dict[str, str] = {
    **dict.fromkeys(("os", "sys", "subprocess", "signal", "resource", "threading", "multiprocessing",
                     "ctypes", "cffi"), "process"),
    **dict.fromkeys(("socket", "urllib", "http", "requests", "ssl"), "network"),
    **dict.fromkeys(("pickle", "marshal", "shelve", "dill", "joblib", "copyreg"), "serialization"),
    **dict.fromkeys(("io", "pathlib", "shutil", "tempfile", "glob"), "io"),
    **dict.fromkeys(("gc", "inspect", "importlib", "builtins", "traceback", "types", "weakref"),
                    "introspection"),
    **dict.fromkeys(("random", "numpy", "np"), "rng"),
}

# Dotted names under torch (after resolving import aliases), matched as prefixes.
TORCH_RULES: dict[str, str] = {
    **dict.fromkeys(("torch.hub", "torch.load", "torch.save", "torch.serialization", "torch.package"),
                    "serialization"),
    "torch.from_file": "io",
    **dict.fromkeys(("torch.utils", "torch.multiprocessing"), "process"),
    "torch.distributed": "network",
    **dict.fromkeys(("torch.library", "torch.jit", "torch.compile", "torch.compiler", "torch.ops",
                     "torch.classes", "torch._C"), "native"),
    **dict.fromkeys(("torch.overrides", "torch.autograd.graph"), "introspection"),
    "torch.random": "rng",
}
IMPORT_ONLY_FORBIDDEN = ("torch.backends", "torch.cuda.random")  # reading torch.backends.* is fine
ALLOWED_PRIVATE_TORCH = ("_foreach_",)  # torch._foreach_add_ and friends: plain tensor math
ALWAYS_IMPORTABLE = ("__future__",)

REFLECTION = ("getattr", "setattr", "delattr", "hasattr")
ALLOWED_DUNDER_DEFS = frozenset({"__init__", "__setstate__", "__getstate__", "__repr__"})
HARMLESS_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__"})
PATCH_ATTRS = frozenset({"forward", "__call__"})
TENSOR_FIELDS = frozenset({"data", "grad", "requires_grad"})  # p.data = ..., p.grad = None
PASS_THROUGH_CALLS = frozenset({"type", "getattr"})  # calls whose result may be someone else's class
PLAIN_VALUES = frozenset({  # torch/math attributes that are values, not patchable objects
    "float16", "bfloat16", "float32", "float64", "half", "float", "double", "int8", "int16", "int32",
    "int64", "long", "int", "bool", "uint8", "complex64", "complex128", "preserve_format",
    "contiguous_format", "channels_last", "inf", "nan", "pi", "e", "tau"})
# Names a file may use for its own things (a helper method, a local, an attribute on self): harmless
# there, and only flagged where they can mean torch's or the interpreter's.
OWN_NAMES_ALLOWED = frozenset({"input", "seed", "get_state", "set_state", "dump", "vars", "compile"})
FORMAT_GADGET = re.compile(r"\{[^{}]*\.\s*_")  # "{0.__class__}".format(x) reads attributes

OPTIMIZER_CLASSES = frozenset({
    "ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "Muon", "NAdam",
    "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam"})
BASE_OPTIMIZER = frozenset({"torch.optim.Optimizer", "torch.optim.optimizer.Optimizer"})
