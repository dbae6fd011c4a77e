"""The run report (synth/reporting/html.py) and its PNG figures (synth/reporting/png.py), on a real run made by the CLI.

The browser test needs Chromium at /usr/bin/chromium (Debian: `apt-get install -y chromium`); without it
that one test is skipped, the rest still run.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import pytest

from population.db import RunDB
from population.records import Candidate, Evaluation, LLMCall
from synth.reporting.html import write_report
from synth.reporting.png import write_plot
from tests.conftest import synth_cli

CHROMIUM = Path("/usr/bin/chromium")
CHART_IDS = ("progress-chart", "generation-chart", "operator-chart", "lineage-graph", "top-table")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A real (small) run: 2 generations of 6 on single_ar at 50 steps, made the way a user makes one."""
    run = tmp_path_factory.mktemp("report") / "run"
    config = tmp_path_factory.mktemp("config") / "no-seed-tuning.toml"
    config.write_text("tune_seeds = 0\n")  # else a run this small is all seed tuning: one operator to chart
    proc = synth_cli("evolve", "--track", "single_ar", "--generations", "2", "--population", "6", "--steps", "50",
                     "--seed", "0", "--run-dir", str(run), "--quiet", "--config", str(config), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return run


@pytest.fixture(scope="module")
def report(run_dir, tmp_path_factory) -> Path:
    with RunDB.open(run_dir) as db:
        return write_report(db, tmp_path_factory.mktemp("html") / "report.html")


def synthetic_run(run: Path) -> Path:
    """A hand-made run with what the small real run lacks: an LLM edit that paid off, a failure, a code child."""
    db = RunDB.create(run, {"track": "single_ar", "steps": 50})
    program = "s0 = ema_sq(s0, g, 0.99)\nupdate = scale(g, -0.01)\n"
    seed = Candidate(generation=0, genome=program, source="# seed\n", operator="seed", created_at=1.0)
    db.add_candidates([seed])
    kids = [Candidate(generation=1, kind="code", source="# llm rewrite\nimport torch\n", parents=[seed.id],
                      operator="llm_edit", model="fake-model", created_at=2.0),
            Candidate(generation=1, genome=program.replace("0.99", "0.5"), source="# broken\n", parents=[seed.id],
                      operator="perturb_constants", created_at=2.0)]
    db.add_candidates(kids)
    base = {"track": "single_ar", "max_steps": 50, "eval_every": 10, "train_samples": 1, "eval_samples": 1,
            "batch_size": 1}
    for cand, outcome, fit, acc, t in ((seed, "ok", 0.2, 0.2, 3.0), (kids[0], "ok", 0.5, 0.5, 4.0),
                                       (kids[1], "crash", None, float("nan"), 5.0)):
        result = {**base, "outcome": outcome, "final_eval_accuracy": acc}
        db.add_evaluation(Evaluation(candidate_id=cand.id, track="single_ar", seed_set="benchmark", budget=50,
                                     outcome=outcome, fitness=fit, result=result, created_at=t),
                          "scored" if fit is not None else "failed", fit)
    for k, acc in ((1, 0.45), (2, 0.55)):
        db.add_evaluation(Evaluation(candidate_id=kids[0].id, track="single_ar", seed_set=f"heldout-{k}", budget=50,
                                     outcome="ok", fitness=acc, result={**base, "final_eval_accuracy": acc,
                                                                        "seed_set": f"heldout-{k}"}, created_at=6.0),
                          "scored", 0.5)
    db.add_llm_call(LLMCall(provider="fake", model="fake-model", operator="llm_edit", parent_ids=[seed.id],
                            prompt="p", reply="r", tokens_in=100, tokens_out=50, cost_usd=0.0123, outcome="child",
                            child_id=kids[0].id, created_at=2.0))
    db.close()
    return run


# ---------------------------------------------------------------------------- the HTML page
def test_report_is_one_self_contained_page(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for element_id in CHART_IDS:
        assert f'id="{element_id}"' in page or f"id='{element_id}'" in page, element_id
    assert page.count('class="lineage-node') >= 2
    refs = re.findall(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*([^"'\s>]+)""", page, flags=re.I)
    assert not [r for r in refs if re.match(r"(https?:)?//", r, flags=re.I)], refs
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//|@import", page, flags=re.I)
    assert "http://" not in page and "https://" not in page
    assert len(page) < 400_000


def test_report_of_an_empty_run_and_of_llm_edits(tmp_path):
    with RunDB.create(tmp_path / "empty", {"track": "mqar"}) as db:
        page = write_report(db, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "no scored candidate yet" in page and 'id="lineage-graph"' in page
    with RunDB.open(synthetic_run(tmp_path / "synthetic")) as db:
        page = write_report(db, tmp_path / "synthetic.html").read_text(encoding="utf-8")
    assert "$ / improvement" in page and "0.0123" in page  # one LLM improvement for $0.0123
    assert "0.5 ± 0.071 (k=2)" in page  # held-out mean ± std of the LLM child
    assert "fake-model" in page and "llm rewrite" in page  # the code child's source diff is in the data blob


def test_report_header_counts_generations_and_command_time_and_marks_the_target(report, run_dir):
    """The run was `--generations 2` (generation 0 is the seeds), its wall time is what the evolve
    commands took (warm-up and finalists included), and a dashed line marks the pass."""
    page = report.read_text(encoding="utf-8")
    assert "generations <b>2</b>" in page
    with RunDB.open(run_dir) as db:
        sessions = db.get_state("sessions")
    assert sessions and sessions["count"] == 1
    assert f"wall time <b>{sessions['wall_s'] / 60:.1f} min</b>" in page
    assert page.count('class="target"') == 2 and "target: pass (accuracy 0.99)" in page


def test_generation_boxes_show_children_stopped_by_the_cascade(tmp_path):
    run = synthetic_run(tmp_path / "synthetic")
    with RunDB.open(run) as db:
        seed = db.candidates()[0]
        stopped = Candidate(generation=1, genome="s0 = g\nupdate = scale(g, -0.5)\n", source="# stopped\n",
                            parents=[seed.id], operator="mutate_node", created_at=7.0)
        db.add_candidates([stopped])
        db.update_candidate(stopped.id, status="screened", fitness=None)
        page = write_report(db, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "n=1 ⊘1 ✗1" in page


PROBE_HEAD = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));</script>"""
PROBE_TAIL = """<script>(function () {
  const size = id => { const el = document.getElementById(id); if (!el) return null;
    const r = el.getBoundingClientRect();
    return {w: r.width, h: r.height, svg: el.querySelectorAll('svg *').length, rows: el.querySelectorAll('tr').length}; };
  const out = {sizes: {}, errors: window.__errors};
  for (const id of %s) out.sizes[id] = size(id);
  const nodes = document.querySelectorAll('#lineage-graph .lineage-node');
  out.nodes = nodes.length;
  out.nodeSizes = Array.from(nodes).map(n => n.getBoundingClientRect().width);
  const before = document.querySelector('#node-detail pre');
  out.initialDetail = before ? before.textContent : '';
  const target = Array.from(nodes).find(n => n.querySelector('title').textContent.indexOf('seed') < 0) || nodes[0];
  if (target) { target.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    out.clicked = target.dataset.id;
    out.detailTitle = document.querySelector('#node-detail h2').textContent;
    out.detail = document.querySelector('#node-detail pre').textContent; }
  const pre = document.createElement('pre'); pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();</script>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    """The page, offline, draws every chart and the lineage graph; a click shows a node's diff; no console error."""
    page = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE_HEAD, 1)
                      .replace("</body>", PROBE_TAIL % json.dumps(CHART_IDS) + "</body>", 1), encoding="utf-8")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any network fetch would fail and log an error
           "--enable-logging=stderr", "--v=0", "--window-size=1280,2000", "--dump-dom", probed.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, flags=re.S)
    assert found, proc.stdout[-2000:]
    import html

    probe = json.loads(html.unescape(found.group(1)))
    assert probe["errors"] == []
    for element_id in CHART_IDS:
        box = probe["sizes"][element_id]
        assert box and box["w"] > 100 and box["h"] > 50, (element_id, box)
        assert box["svg"] > 10 or box["rows"] > 1, (element_id, box)
    assert probe["nodes"] >= 2 and all(w > 20 for w in probe["nodeSizes"])
    assert probe["initialDetail"]  # the best candidate is shown from the start
    assert probe["detailTitle"].startswith(f"#{probe['clicked']}")
    assert probe["detail"].startswith("---") or "no textual change" in probe["detail"]


# ---------------------------------------------------------------------------- the PNG figures
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("what", ["progress", "operators", "lineage"])
def test_plot_is_a_png_of_the_asked_size(run_dir, tmp_path, what):
    from PIL import Image

    with RunDB.open(run_dir) as db:
        default = write_plot(db, what, tmp_path / f"{what}.png")
        small = write_plot(db, what, tmp_path / f"{what}-small.png", size=(6, 4), dpi=50)
    assert png_size(default) == (800, 500)
    assert png_size(small) == (300, 200)
    with Image.open(default) as im:
        im.verify()
    with Image.open(default) as im:
        assert sum(1 for n in im.convert("L").histogram() if n) > 8  # something was drawn, not a blank canvas


def test_plots_of_an_empty_run_and_a_bad_kind(tmp_path):
    with RunDB.create(tmp_path / "empty", {"track": "mqar"}) as db:
        for what in ("progress", "operators", "lineage"):
            assert png_size(write_plot(db, what, tmp_path / f"{what}.png")) == (800, 500)
        with pytest.raises(ValueError, match="progress, operators, lineage"):
            write_plot(db, "pie", tmp_path / "pie.png")
