"""How busy the workers stay in an LLM run whose model takes 5 s per answer (target: >= 90%).

A scripted OpenAI-protocol server on 127.0.0.1 (tests/llm_servers.py) answers every request
correctly -- an edit, a rewrite or a crossover against the parent in the prompt -- after `--delay`
seconds. `synth evolve --llm ... --llm-rate R --time-budget M` runs against it, then the same run
without an LLM as the baseline. From each run database: busy share = evaluation seconds /
(workers x span), over the whole run (first candidate to last evaluation) and over the steady part
(first child to last child proposed: no seed phase, no drain at the end), where an evaluation's
seconds are its total_s ending at its row's created_at, clipped to the span.
Usage: python bench/llm_busy.py [--minutes 3] [--workers 2] [--rate 0.5] [--delay 5] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.llm_servers import FakeLLMServer  # noqa: E402
from tests.test_llm_evolve import Answers  # noqa: E402


class SlowAnswers(Answers):
    def __init__(self, server, delay: float):
        super().__init__(server)
        self.delay = delay

    def get_nowait(self):
        reply = super().get_nowait()
        reply.slow_s = self.delay
        return reply


def busy_share(conn, workers: int, start: float, end: float) -> float:
    busy = 0.0
    for created, result in conn.execute("SELECT created_at, result FROM evaluations"):
        total = json.loads(result)["total_s"]
        busy += max(0.0, min(created, end) - max(created - total, start))
    return busy / (workers * (end - start))


def run(server_url: str | None, args, tmp: str, env: dict) -> dict:
    run_dir = Path(tmp) / ("llm" if server_url else "baseline")
    llm = ["--llm", f"openai:bench-model@{server_url}/v1,timeout=60", "--llm-rate", str(args.rate)] if server_url else []
    subprocess.run([sys.executable, "-m", "cli", "evolve", "--track", "mqar", "--generations", "1000",
                    "--population", "8", "--steps", str(args.steps), "--proxy-steps", "0", "--finalists", "0",
                    "--workers", str(args.workers), "--time-budget", str(args.minutes), "--run-dir", str(run_dir),
                    *llm, "--quiet"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    with sqlite3.connect(run_dir / "synth.db") as conn:
        first = conn.execute("SELECT min(created_at) FROM candidates").fetchone()[0]
        last = conn.execute("SELECT max(created_at) FROM evaluations").fetchone()[0]
        child0, child1 = conn.execute("SELECT min(created_at), max(created_at) FROM candidates "
                                      "WHERE generation > 0").fetchone()
        return {"whole": busy_share(conn, args.workers, first, last),
                "steady": busy_share(conn, args.workers, child0, child1),
                "evals": conn.execute("SELECT count(*) FROM evaluations").fetchone()[0],
                "llm_children": conn.execute("SELECT count(*) FROM candidates WHERE operator LIKE 'llm_%' "
                                             "AND status != 'invalid'").fetchone()[0],
                "calls": conn.execute("SELECT count(*), coalesce(avg(latency_s), 0) FROM llm_calls").fetchone()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.endswith("_API_KEY")}
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), mqar {args.steps} steps, {args.workers} workers, "
          f"population 8, {args.minutes:g} min per run")
    with FakeLLMServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.replies = SlowAnswers(server, args.delay)
        runs = {f"LLM (rate {args.rate}, answers in {args.delay:g} s)": run(server.url, args, tmp, env)}
        if not args.skip_baseline:
            runs["no LLM (baseline)"] = run(None, args, tmp, env)
    for name, r in runs.items():
        calls = f", {r['calls'][0]} LLM calls (mean latency {r['calls'][1]:.1f} s), {r['llm_children']} LLM children" \
            if r["calls"][0] else ""
        print(f"{name}: workers busy {r['steady']:.1%} while children were proposed, {r['whole']:.1%} over the "
              f"whole run; {r['evals']} evaluations{calls}")


if __name__ == "__main__":
    main()
