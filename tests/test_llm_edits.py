"""Reply parsing: SEARCH/REPLACE blocks and fenced code blocks."""

from __future__ import annotations

import pytest

from synth.llm.edits import EditError, apply_blocks, apply_edit, extract_fenced, parse_blocks

PARENT = """import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    def step(self):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.add_(p.grad, alpha=-group["lr"])
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_exact_block():
    reply = "Raise the rate.\n```python\n" + block("    def __init__(self, params, lr=0.01):",
                                                     "    def __init__(self, params, lr=0.05):") + "```"
    assert "lr=0.05" in apply_edit(PARENT, reply)


def test_whitespace_tolerant_block_keeps_parent_indentation():
    search = 'for p in group["params"]:   \n    p.add_(p.grad, alpha=-group["lr"])'  # no indent, trailing spaces
    replace = 'for p in group["params"]:\n    p.add_(p.grad.sign(), alpha=-group["lr"])'
    child = apply_edit(PARENT, block(search, replace))
    assert '                    p.add_(p.grad.sign(), alpha=-group["lr"])' in child.splitlines()
    assert child.endswith("\n") and child.count("for p in") == 1


def test_several_blocks_apply_in_order():
    reply = block("lr=0.01", "lr=0.02") + "and\n" + block("lr=0.02", "lr=0.03")
    assert "lr=0.03" in apply_edit(PARENT, reply) and len(parse_blocks(reply)) == 2


def test_missing_search_names_the_block():
    reply = block("lr=0.01", "lr=0.02") + block("momentum = 0.9", "momentum = 0.95")
    with pytest.raises(EditError, match=r"^block 2: SEARCH text not found.*momentum = 0.9"):
        apply_edit(PARENT, reply)


def test_ambiguous_search_is_an_error():
    text = "a = 1\nb = 2\na = 1\n"
    with pytest.raises(EditError, match="block 1: SEARCH text is ambiguous"):
        apply_blocks(text, parse_blocks(block("a = 1", "a = 3")))
    with pytest.raises(EditError, match="block 1: SEARCH text is ambiguous .*ignoring whitespace"):
        apply_blocks("  x\ny\n x\n", parse_blocks(block("x ", "z")))


@pytest.mark.parametrize("reply,message", [
    ("no blocks here", "no SEARCH/REPLACE blocks"),
    ("<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", "block 1: expected '======='"),
    ("<<<<<<< SEARCH\na\n=======\nb\n", "block 1: not closed"),
    (block("lr=0.01", "lr=0.01"), "unchanged"),
])
def test_malformed_blocks(reply, message):
    with pytest.raises(EditError, match=message) as info:
        apply_edit(PARENT, reply)
    assert "\n" not in str(info.value)


def test_extract_fenced_prefers_tag_then_longest():
    reply = "Idea.\n```\nshort\n```\n```python\nimport torch\nx = 1\n```\n```python\nimport torch\n```"
    assert extract_fenced(reply, "python") == "import torch\nx = 1\n"
    assert extract_fenced("```program\ns0 = s0\n```", "program") == "s0 = s0\n"
    assert extract_fenced("text\n```\nupdate = g\n```\nmore", "program") == "update = g\n"


@pytest.mark.parametrize("reply,message", [
    ("just prose", "no fenced ```python code block"),
    ("```json\n{}\n```", "found ```json instead"),
    ("```python\nimport torch\n", "not closed"),
    ("```python\n\n```", "empty"),
])
def test_extract_fenced_failures(reply, message):
    with pytest.raises(EditError, match=message):
        extract_fenced(reply, "python")
