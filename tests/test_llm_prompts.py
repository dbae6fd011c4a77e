"""Prompt rendering: every operator and level fills, `--prompts DIR` overrides single files."""

from __future__ import annotations

import pytest

from prompts.render import CandidateInfo, PromptContext, render

SOURCE = "import torch\n\n\nclass Submission(torch.optim.Optimizer):\n    pass  # PARENT-SOURCE\n"
PROGRAM = "s0 = ema(s0, g, 0.9)\ns1 = s1\ns2 = s2\nupdate = scale(sign(s0), -0.01)\n"


def context(**changes) -> PromptContext:
    parent = CandidateInfo(id="7", fitness=0.912345, source=SOURCE, program=PROGRAM,
                           summary="fail; final eval accuracy 0.9180", curve=[(50, 0.25), (100, 0.5)])
    other = CandidateInfo(id="9", fitness=0.5, source=SOURCE.replace("PARENT", "OTHER"),
                          program="OTHER-PROGRAM")
    fields = dict(track="mqar", description="multi-query associative recall", max_steps=400, eval_every=50,
                  target="eval accuracy >= 0.99", parent=parent, other=other,
                  best=[CandidateInfo(id="3", fitness=1.5, source="BEST-SOURCE", program="BEST-PROGRAM")],
                  failures=[("llm_edit", "line 1: [import] import os is not allowed")],
                  vocabulary="- sign(Tensor) -> Tensor: VOCAB", seeds={"adam": "SEED-ADAM"})
    return PromptContext(**{**fields, **changes})


@pytest.mark.parametrize("operator", ["edit", "llm_rewrite", "crossover"])
@pytest.mark.parametrize("level", ["program", "code"])
def test_every_operator_and_level_renders(operator, level):
    system, user = render(operator, context(), level)
    assert "Submission" in system and "$" not in user.replace("$$", "")
    assert "mqar" in user and "0.9123" in user and "50: 0.25\n100: 0.5" in user
    assert "import os is not allowed" in user
    if level == "program":  # the language, vocabulary and examples are static: in the system prompt
        assert "ema(s0, g, 0.9)" in user and "VOCAB" in system and "SEED-ADAM" in system
        assert "PARENT-SOURCE" not in user and "VOCAB" not in user
    else:
        assert "PARENT-SOURCE" in user and "VOCAB" not in system + user
    assert "step(self, closure=None)" in system and "takes no closure" not in system
    if operator == "edit":
        assert "<<<<<<< SEARCH" in user and ">>>>>>> REPLACE" in user
    if operator == "crossover":
        assert "candidate 9" in user and ("OTHER-PROGRAM" if level == "program" else "OTHER-SOURCE") in user
    else:
        assert "BEST-" in user


def test_repair_prompt_carries_error_attempt_and_task():
    _, user = render("repair", context(), "code", repair_of="edit", attempt="MY-BAD-REPLY",
                     error="block 1: SEARCH text not found")
    assert "block 1: SEARCH text not found" in user and "MY-BAD-REPLY" in user
    assert "PARENT-SOURCE" in user and "SEARCH/REPLACE" in user


def test_program_level_needs_program_text():
    ctx = context(parent=CandidateInfo(id="1", source=SOURCE))
    with pytest.raises(ValueError, match="code-only"):
        render("edit", ctx, "program")


def test_prompts_dir_overrides_only_its_files(tmp_path):
    (tmp_path / "edit.txt").write_text("CUSTOM EDIT for $track, parent $parent_id, cost $$5\n")
    system, user = render("edit", context(), "code", tmp_path)
    assert user == "CUSTOM EDIT for mqar, parent 7, cost $5\n"
    assert system == render("edit", context(), "code")[0]  # system.txt falls back to the packaged one
    assert "CUSTOM" not in render("rewrite", context(), "code", tmp_path)[1]


def test_unknown_placeholder_names_the_file(tmp_path):
    (tmp_path / "rewrite.txt").write_text("hello $nonsense\n")
    with pytest.raises(ValueError, match=r"rewrite.txt: unknown placeholder \$nonsense"):
        render("rewrite", context(), "code", tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        render("rewrite", context(), "code", tmp_path / "missing")


def test_program_level_uses_the_real_vocabulary_and_seeds():
    pytest.importorskip("primitives.pset")
    pytest.importorskip("primitives.seeds")
    from primitives.seeds import SEED_PROGRAMS

    system, _ = render("rewrite", context(vocabulary=None, seeds=None), "program")
    assert "ema(Tensor, Tensor, Beta) -> Tensor" in system and "g : Tensor (the gradient)" in system
    assert all(text.strip().splitlines()[0] in system for text in SEED_PROGRAMS.values())


def test_the_prompt_gives_the_true_horizon_the_fitness_and_earlier_attempts():
    ctx = context(max_steps=100, benchmark_steps=400, fitness_formula="FORMULA-TEXT",
                  attempts=["candidate 12 from 7 by llm_edit 'nesterov': fitness 0.9 (+0.0100 vs its parent)"])
    _, user = render("edit", ctx, "code")
    assert "for 100 steps" in user and "trains for 400" in user and "FORMULA-TEXT" in user
    assert "- candidate 12 from 7 by llm_edit 'nesterov'" in user
    _, user = render("edit", context(max_steps=400, benchmark_steps=400), "code")
    assert "400 steps, the benchmark's own horizon" in user
