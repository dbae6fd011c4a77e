"""Program: text round-trips exactly, bad text fails in one line, and every program renders to a runnable file."""

import ast
import random

import pytest
import torch
from torch import nn

from primitives.program import ROLES, Program, ProgramError
from primitives.pset import MAX_SLOTS
from primitives.seeds import SEED_PROGRAMS

ADAM = SEED_PROGRAMS["adam"]
FORBIDDEN_INTEGERS = {1729, 271828, 161803, 141421, 314159}


def random_programs(n, seed=0, max_depth=4):
    rng = random.Random(seed)
    return [Program.random(rng, 1, max_depth) for _ in range(n)]


def load(source):
    namespace = {}
    exec(compile(source, "<submission>", "exec"), namespace)
    return namespace["Submission"]


class SmallModel(nn.Module):
    """Every kind of parameter shape the tracks have: tall, square and wide matrices, and vectors."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(40, 6)
        self.square = nn.Linear(6, 6)
        self.wide = nn.Linear(6, 3)

    def forward(self, tokens):
        return self.wide(torch.tanh(self.square(self.embed(tokens).mean(dim=1))))


def step_a_few_times(optimizer_cls, steps=3):
    model = SmallModel()
    optimizer = optimizer_cls(model.parameters())
    tokens = torch.randint(40, (8, 5), generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        model(tokens).square().mean().backward()
        optimizer.step()
    return model


# ---------------------------------------------------------------------- text


def test_seed_texts_round_trip_exactly():
    for name, text in SEED_PROGRAMS.items():
        program = Program.from_text(text)
        assert program.to_text() == text, name
        assert Program.from_text(program.to_text()) == program


def test_random_programs_round_trip_exactly():
    for program in random_programs(500):
        text = program.to_text()
        again = Program.from_text(text)
        assert again.to_text() == text
        assert again == program and hash(again) == hash(program)
        assert [str(a) for a in again.trees] == [str(b) for b in program.trees]


def test_text_is_normalised_on_parse():
    messy = "\n  update = scale( g , -1e-1 )\ns2 = s2\n\ns0=s0\ns1 = s1\n"
    assert Program.from_text(messy).to_text() == "s0 = s0\ns1 = s1\ns2 = s2\nupdate = scale(g, -0.1)"


@pytest.mark.parametrize("text, fragment", [
    (ADAM.replace("ema(s0", "emma(s0"), "unknown primitive 'emma'"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g)"), "ema takes 3 arguments, got 2"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, t, 0.9)"), "type error: t gives a Scalar where a Tensor is expected"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g, 1.5)"), "not a beta in (0, 1)"),
    (ADAM.replace("1e-08", "-1e-08"), "not a positive eps"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, 0.5, 0.9)"), "where a tensor is expected"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, q, 0.9)"), "name 'q' is unknown"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g, 0.9"), "syntax error"),
    (ADAM.replace("ema(s0, g, 0.9)", "s0 + g"), "unsupported expression"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g, float('nan'))"), "unknown primitive 'float'"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g, beta=0.9)"), "unsupported call"),
    (ADAM.replace("-0.001", "1e999"), "constant inf is not finite"),
    (ADAM.replace("ema(s0, g, 0.9)", "ema(s0, g, 0.9)(g)"), "unsupported call"),
    (ADAM.replace("s2 = s2\n", ""), "missing line for s2"),
    (ADAM + "\ns1 = s1", "tree 's1' is given twice"),
    (ADAM.replace("s2 = s2", "s9 = s2"), "unknown tree 's9'"),
    (ADAM.replace("s2 = s2", "s2 s2"), "expected 'NAME = expression'"),
    (ADAM.replace("s2 = s2", "s2 = "), "empty expression"),
    ("", "missing line for s0, s1, s2, update"),
])
def test_bad_text_fails_with_one_line_naming_the_problem(text, fragment):
    with pytest.raises(ProgramError) as error:
        Program.from_text(text)
    message = str(error.value)
    assert "\n" not in message and fragment in message, message


# ---------------------------------------------------------------------- shape


def test_size_height_and_used_slots():
    adam = Program.from_text(ADAM)
    assert adam.size == 4 + 4 + 1 + 14 and adam.height == 5
    assert adam.used_slots == ["s0", "s1"] and adam.updated_slots() == ["s0", "s1"]
    read_only = Program.from_text("s0 = s0\ns1 = s1\ns2 = s2\nupdate = scale(s2, -0.1)")
    assert read_only.used_slots == ["s2"] and read_only.updated_slots() == []
    assert len(ROLES) == MAX_SLOTS + 1


# ---------------------------------------------------------------------- rendering


def assert_clean_source(source):
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {alias.name for alias in node.names} <= {"torch", "math"}
        assert not isinstance(node, ast.ImportFrom)
        if isinstance(node, ast.Name):
            assert node.id not in {"eval", "exec", "open", "getattr", "compile", "__import__"}, node.id
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__") or node.attr == "__init__", node.attr
            assert node.attr not in {"manual_seed", "Generator", "seed"}, node.attr
        if isinstance(node, ast.Constant) and type(node.value) is int:
            assert node.value not in FORBIDDEN_INTEGERS
    try:
        from evaluator.policy import check_source
    except ImportError:
        return
    assert check_source(source) == []


@pytest.mark.parametrize("name", sorted(SEED_PROGRAMS))
def test_every_seed_renders_to_a_clean_file_that_steps(name):
    program = Program.from_text(SEED_PROGRAMS[name])
    source = program.render(title=f"seed {name}")
    assert_clean_source(source)
    assert program.to_text() in ast.get_docstring(ast.parse(source))
    model = step_a_few_times(load(source))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_random_programs_render_to_clean_files_that_step():
    for program in random_programs(200, seed=1):
        source = program.render()
        assert_clean_source(source)
        step_a_few_times(load(source), steps=2)


def test_rendered_code_reads_like_a_hand_written_optimizer():
    """The compiled file (tests/test_compile.py checks its speed-ups); the plain one transcribes the trees."""
    source = Program.from_text(ADAM).render()
    assert "torch._foreach_lerp_(s0, grads, " in source and "bias_correction(0.9, t)" in source
    assert "def bias_correction(beta, t):" in source and "def orthogonalize" not in source
    plain = Program.from_text(ADAM).render_plain()
    assert 's0 = state["s0"] = ema(s0, g, 0.9)' in plain
    assert "p.add_(scale(div(debias(s0, 0.9, t)," in plain
    assert "def ema(m, x, beta):" in plain and "def orthogonalize" not in plain


@pytest.mark.parametrize("render", ["render", "render_plain"])
def test_random_programs_render_to_clean_files_both_ways(render):
    for program in random_programs(40, seed=2):
        assert_clean_source(getattr(program, render)())


def test_slots_update_in_order_and_never_alias_gradient_or_parameter():
    """s0 sees g; s1 sees s0's new value and s2's old one; a slot copied from p keeps p's value before the update."""
    # the update reads s1 and s2 (times zero) so that every slot is live and rendered
    text = "s0 = add(s1, g)\ns1 = add(s0, s2)\ns2 = p\nupdate = sub(scale(g, -1.0), scale(add(s1, s2), 0.0))"
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = load(Program.from_text(text).render())([p])
    for step, g in enumerate([torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0])]):
        before = p.detach().clone()
        p.grad = g
        optimizer.step()
        state = optimizer.state[p]
        assert torch.equal(state["s2"], before)
        assert torch.equal(p.detach(), before - g)
    # step 1: s0 = 0 + g1 = 1, s1 = 1 + 0 = 1, s2 = p0; step 2: s0 = s1 + g2 = 11, s1 = 11 + p0
    assert torch.equal(state["s0"], torch.tensor([11.0, 11.0]))
    assert torch.equal(state["s1"], torch.tensor([12.0, 13.0]))
    assert state["step"] == 2


def test_dead_slots_are_not_rendered_and_change_nothing():
    """A slot the update never reads, even indirectly, is dead code: gone from the file, same optimizer."""
    import torch

    from evaluator.probe import run_probe

    live = "s0 = ema_sq(s1, g, 0.99)\ns1 = absolute(scale(s0, 0.5))\ns2 = s2\nupdate = scale(div(g, add_eps(sqrt(s0), 1e-08)), -0.01)"
    dead = live.replace("s2 = s2", "s2 = rms_norm(lerp(s2, g, 0.8))")
    with_dead, without = Program.from_text(dead), Program.from_text(live)
    assert with_dead.used_slots == without.used_slots == ["s0", "s1"]  # s1 is live through s0
    source = with_dead.render()
    assert 'state["s2"]' not in source and "rms_norm" not in source.split("class Submission")[1]

    def optimizer(text):
        namespace = {}
        exec(text, namespace)
        return namespace["Submission"]

    torch.manual_seed(0)
    assert run_probe(optimizer(source)).fingerprint == run_probe(optimizer(without.render())).fingerprint
