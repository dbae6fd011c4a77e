"""The code each node compiles to: one table per path (a parameter at a time, or all at once with foreach).

An entry is (out_of_place, in_place, commutative). `{0}`, `{1}`, ... name the node's arguments (for
`ema_sq`, `{3}` is 1 - beta). An out-of-place form is an expression, or statements writing `{out}`;
an in-place form is statements that overwrite `{0}`, used only when `{0}` is a tensor this step made
and nothing else reads (or the slot being updated). Every form computes what the primitive in
primitives/ops.py computes, bit for bit (`orthogonalize` to a stated tolerance, see kernels.py).
Variants: `/exact` when the denominator is provably >= 1e-12 or NaN (no protection needed), `/nonneg`
when the argument is provably >= 0 or NaN (no `abs` needed).
"""

Template = tuple  # (str, str | None, bool)

PER_TENSOR: dict[str, Template] = {
    "add": ("{0} + {1}", "{0}.add_({1})", True),
    "sub": ("{0} - {1}", "{0}.sub_({1})", False),
    "mul": ("{0} * {1}", "{0}.mul_({1})", True),
    "div": ("safe_div({0}, {1})", None, False),
    "div/exact": ("{0} / {1}", "{0}.div_({1})", False),
    "neg": ("-{0}", "{0}.neg_()", False),
    "absolute": ("{0}.abs()", "{0}.abs_()", False),
    "sign": ("{0}.sign()", "{0}.sign_()", False),
    "square": ("{0} * {0}", "{0}.mul_({0})", False),
    "sqrt": ("{0}.abs().sqrt_()", "{0}.abs_().sqrt_()", False),
    "sqrt/nonneg": ("{0}.sqrt()", "{0}.sqrt_()", False),
    "rsqrt": ("({0}.abs() + {1}).rsqrt_()", "{0}.abs_().add_({1}).rsqrt_()", False),
    "rsqrt/nonneg": ("({0} + {1}).rsqrt_()", "{0}.add_({1}).rsqrt_()", False),
    "exp": ("{0}.clamp(max=20.0).exp_()", "{0}.clamp_(max=20.0).exp_()", False),
    "log": ("({0}.abs() + 1e-12).log_()", "{0}.abs_().add_(1e-12).log_()", False),
    "tanh": ("{0}.tanh()", "{0}.tanh_()", False),
    "clip": ("{0}.clamp(-{1}, {1})", "{0}.clamp_(-{1}, {1})", False),
    "maximum": ("torch.maximum({0}, {1})", None, False),
    "minimum": ("torch.minimum({0}, {1})", None, False),
    "scale": ("{0} * {1}", "{0}.mul_({1})", False),
    "add_eps": ("{0} + {1}", "{0}.add_({1})", False),
    "lerp": ("torch.lerp({0}, {1}, {2})", "{0}.lerp_({1}, {2})", False),
    "ema_sq": ("torch.addcmul({0} * {2}, {1}, {1}, value={3})", "{0}.mul_({2}).addcmul_({1}, {1}, value={3})", False),
    "debias_by": ("{0} / {1}", "{0}.div_({1})", False),
    "rms_norm": ("rms_norm({0})", None, False),
    "row_rms_norm": ("row_rms_norm({0})", None, False),
    "addsign_gain": ("addsign_gain({0}, {1})", None, False),
    "powersign_gain": ("powersign_gain({0}, {1})", None, False),
    "orthogonalize": ("orthogonalize({0})", None, False),
    "factored_sq": ("factored_sq({0})", None, False),
    "kron_stat": ("kron_stat({0}, {1}, {2})", None, False),
    "kron_precond": ("kron_precond({0}, {1}, {2})", None, False),
    "zero": ("torch.zeros_like(p)", None, False),
    "clone": ("{0}.clone()", None, False),
}

FOREACH: dict[str, Template] = {
    "add": ("torch._foreach_add({0}, {1})", "torch._foreach_add_({0}, {1})", True),
    "sub": ("torch._foreach_sub({0}, {1})", "torch._foreach_sub_({0}, {1})", False),
    "mul": ("torch._foreach_mul({0}, {1})", "torch._foreach_mul_({0}, {1})", True),
    "div": ("[safe_div(a, b) for a, b in zip({0}, {1})]", None, False),
    "div/exact": ("torch._foreach_div({0}, {1})", "torch._foreach_div_({0}, {1})", False),
    "neg": ("torch._foreach_neg({0})", "torch._foreach_neg_({0})", False),
    "absolute": ("torch._foreach_abs({0})", "torch._foreach_abs_({0})", False),
    "sign": ("torch._foreach_sign({0})", "torch._foreach_sign_({0})", False),
    "square": ("torch._foreach_mul({0}, {0})", "torch._foreach_mul_({0}, {0})", False),
    "sqrt": ("{out} = torch._foreach_abs({0}); torch._foreach_sqrt_({out})",
             "torch._foreach_abs_({0}); torch._foreach_sqrt_({0})", False),
    "sqrt/nonneg": ("torch._foreach_sqrt({0})", "torch._foreach_sqrt_({0})", False),
    "rsqrt": ("{out} = torch._foreach_abs({0}); torch._foreach_add_({out}, {1}); torch._foreach_rsqrt_({out})",
              "torch._foreach_abs_({0}); torch._foreach_add_({0}, {1}); torch._foreach_rsqrt_({0})", False),
    "rsqrt/nonneg": ("{out} = torch._foreach_add({0}, {1}); torch._foreach_rsqrt_({out})",
                     "torch._foreach_add_({0}, {1}); torch._foreach_rsqrt_({0})", False),
    "exp": ("{out} = torch._foreach_clamp_max({0}, 20.0); torch._foreach_exp_({out})",
            "torch._foreach_clamp_max_({0}, 20.0); torch._foreach_exp_({0})", False),
    "log": ("{out} = torch._foreach_abs({0}); torch._foreach_add_({out}, 1e-12); torch._foreach_log_({out})",
            "torch._foreach_abs_({0}); torch._foreach_add_({0}, 1e-12); torch._foreach_log_({0})", False),
    "tanh": ("torch._foreach_tanh({0})", "torch._foreach_tanh_({0})", False),
    "clip": ("[v.clamp(-{1}, {1}) for v in {0}]", None, False),
    "maximum": ("[torch.maximum(a, b) for a, b in zip({0}, {1})]", None, False),
    "minimum": ("[torch.minimum(a, b) for a, b in zip({0}, {1})]", None, False),
    "scale": ("torch._foreach_mul({0}, {1})", "torch._foreach_mul_({0}, {1})", False),
    "add_eps": ("torch._foreach_add({0}, {1})", "torch._foreach_add_({0}, {1})", False),
    "lerp": ("torch._foreach_lerp({0}, {1}, {2})", "torch._foreach_lerp_({0}, {1}, {2})", False),
    "ema_sq": ("{out} = torch._foreach_mul({0}, {2}); torch._foreach_addcmul_({out}, {1}, {1}, value={3})",
               "torch._foreach_mul_({0}, {2}); torch._foreach_addcmul_({0}, {1}, {1}, value={3})", False),
    "debias_by": ("torch._foreach_div({0}, {1})", "torch._foreach_div_({0}, {1})", False),
    "addsign_gain": ("[addsign_gain(a, b) for a, b in zip({0}, {1})]", None, False),
    "powersign_gain": ("[powersign_gain(a, b) for a, b in zip({0}, {1})]", None, False),
    "zero": ("[torch.zeros_like(v) for v in params]", None, False),
    "clone": ("[v.clone() for v in {0}]", None, False),
}

# Scalars are plain Python numbers (0-d float64 tensors when computed from tensor values).
SCALAR: dict[str, str] = {
    "sadd": "{0} + {1}", "ssub": "{0} - {1}", "smul": "{0} * {1}", "sneg": "-{0}", "sabs": "abs({0})",
    "complement": "1 - {0}", "beta_mul": "{0} * {1}", "eps_mul": "{0} * {1}",
    "sdiv": "sdiv({0}, {1})", "ssqrt": "ssqrt({0})", "linear_decay": "linear_decay({0})",
    "cosine_decay": "cosine_decay({0})", "wsd_decay": "wsd_decay({0})", "warmup": "warmup({0})",
    "bias_correction": "bias_correction({0}, {1})",
    "frob_norm": "frob_norm({0})", "cos_sim": "cos_sim({0}, {1})",
}
