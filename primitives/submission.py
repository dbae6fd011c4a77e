"""The `Submission` class every generated optimizer file shares, written once: the contract's
`__init__(self, params)` and a `step(closure)` that runs the closure with gradients on and returns its
loss. The program renderer (program.py), the compiler (compile.py) and `synth baseline`'s optimizers
(synth/baseline/optimizers.py) give only what differs: the defaults, the update, extra methods.
"""

from __future__ import annotations

STEP = '''
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
'''


def submission_class(defaults: str = "dict()", update: str | None = None, doc: str = "", base: str = "Optimizer",
                     methods: str = "") -> str:
    """The class's text. `defaults`: the expression passed to torch's __init__; `update`: step's lines after
    the closure (indented 8 spaces, each ending in a newline), None for a torch optimizer used as it is;
    `doc`: the class docstring's text; `base`: the torch.optim class; `methods`: more methods, after step."""
    text = f"class Submission(torch.optim.{base}):\n"
    if doc:
        text += f'    """{doc}"""\n\n'
    text += f"    def __init__(self, params):\n        super().__init__(params, {defaults})\n"
    if update is not None:
        text += STEP + update + "        return loss\n"
    return text + methods
