"""Turning a model's reply into a candidate text: SEARCH/REPLACE blocks applied to the parent, or a
whole file / program text taken from a fenced code block.

Every failure is an `EditError` with one line that names the block or the missing fence, because
that line goes back to the model in the repair prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
FENCE_RE = re.compile(r"^\s*(`{3,})\s*([\w.+-]*)\s*$")


class EditError(ValueError):
    """The reply could not be turned into a candidate; str() is one line."""


@dataclass(frozen=True)
class EditBlock:
    index: int  # 1-based, as the error messages count
    search: str
    replace: str


def parse_blocks(reply: str) -> list[EditBlock]:
    """All SEARCH/REPLACE blocks in the reply, in order."""
    blocks: list[EditBlock] = []
    state, search, replace = "out", [], []
    for line in reply.splitlines():
        if state == "out":
            if SEARCH_RE.match(line):
                state, search, replace = "search", [], []
        elif state == "search":
            if DIVIDER_RE.match(line):
                state = "replace"
            elif SEARCH_RE.match(line) or REPLACE_RE.match(line):
                raise EditError(f"block {len(blocks) + 1}: expected '=======' between SEARCH and REPLACE")
            else:
                search.append(line)
        elif REPLACE_RE.match(line):
            blocks.append(EditBlock(len(blocks) + 1, "\n".join(search), "\n".join(replace)))
            state = "out"
        elif SEARCH_RE.match(line):
            raise EditError(f"block {len(blocks) + 1}: missing '>>>>>>> REPLACE' before the next SEARCH")
        else:
            replace.append(line)
    if state != "out":
        raise EditError(f"block {len(blocks) + 1}: not closed with '>>>>>>> REPLACE'")
    if not blocks:
        raise EditError("no SEARCH/REPLACE blocks found (expected <<<<<<< SEARCH / ======= / >>>>>>> REPLACE)")
    return blocks


def apply_blocks(text: str, blocks: list[EditBlock]) -> str:
    """Apply blocks in order; each SEARCH must match exactly once (exactly, else line by line ignoring
    indentation and trailing whitespace)."""
    for block in blocks:
        text = _apply_one(text, block)
    return text


def apply_edit(parent: str, reply: str) -> str:
    """Parse and apply the reply's blocks; an edit that changes nothing is an error too."""
    child = apply_blocks(parent, parse_blocks(reply))
    if child.strip() == parent.strip():
        raise EditError("the SEARCH/REPLACE blocks leave the parent unchanged")
    return child


def _apply_one(text: str, block: EditBlock) -> str:
    if not block.search.strip():
        if not text.strip():
            return block.replace + "\n"
        raise EditError(f"block {block.index}: SEARCH is empty; copy the lines to replace from the parent")
    count = text.count(block.search)
    if count == 1:
        return text.replace(block.search, block.replace, 1)
    if count > 1:
        raise EditError(f"block {block.index}: SEARCH text is ambiguous (found {count} times); add surrounding lines")
    lines = text.splitlines()
    search = _trim_blank(block.search.splitlines())
    key = [line.strip() for line in search]
    hits = [i for i in range(len(lines) - len(key) + 1)
            if [line.strip() for line in lines[i:i + len(key)]] == key]
    if not hits:
        first = next((line.strip() for line in search if line.strip()), "")
        raise EditError(f"block {block.index}: SEARCH text not found in the parent (first line: {first[:80]!r})")
    if len(hits) > 1:
        raise EditError(f"block {block.index}: SEARCH text is ambiguous (matches {len(hits)} places "
                        f"ignoring whitespace); add surrounding lines")
    start = hits[0]
    replaced = _reindent(_trim_blank(block.replace.splitlines()), _indent(search[0]), _indent(lines[start]))
    out = lines[:start] + replaced + lines[start + len(key):]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _trim_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(lines: list[str], old: str, new: str) -> list[str]:
    """Shift the replacement by the indentation difference between the SEARCH text and the parent."""
    if old == new:
        return lines
    out = []
    for line in lines:
        if line.startswith(old):
            out.append(new + line[len(old):])
        elif not line.strip():
            out.append("")
        else:
            out.append(new + line.lstrip())
    return out


def extract_fenced(reply: str, kind: str) -> str:
    """The body of the fenced block for `kind` ("python" or "program"): a block tagged with it, else an
    untagged one; the longest if several."""
    aliases = {"python": ("python", "py", "python3"), "program": ("program", "text", "txt")}[kind]
    blocks: list[tuple[str, str]] = []
    lines = reply.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE_RE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, tag = match.group(1), match.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{fence}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise EditError(f"the ```{tag} block is not closed with ```")
        blocks.append((tag, "\n".join(body)))
        i += 1
    tagged = [body for tag, body in blocks if tag in aliases]
    untagged = [body for tag, body in blocks if not tag]
    chosen = tagged or untagged
    if not chosen:
        if blocks:
            raise EditError(f"no ```{kind} block found (found ```{blocks[0][0]} instead)")
        raise EditError(f"no fenced ```{kind} code block found in the reply")
    body = max(chosen, key=len).strip("\n")
    if not body.strip():
        raise EditError(f"the ```{kind} block is empty")
    return body + "\n"
