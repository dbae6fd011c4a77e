"""How busy the workers stay in an LLM run whose model takes 5 s per answer (target: >= 90%).

A scripted OpenAI-protocol server on 127.0.0.1 (tests/llm_servers.py) answers every request
correctly -- an edit, a rewrite or a crossover against the parent in the prompt -- after `--delay`
seconds. `synth evolve --llm ... --llm-rate R --time-budget M` runs against it; from the run
database: busy share = sum of the evaluations' total_s / (workers x the span from the first
candidate to the last evaluation), the LLM children made, and the calls.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.endswith("_API_KEY")}
    with FakeLLMServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.replies = SlowAnswers(server, args.delay)
        run_dir = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "cli", "evolve", "--track", "mqar", "--generations", "1000",
                        "--population", "8", "--steps", str(args.steps), "--proxy-steps", "0", "--finalists", "0",
                        "--workers", str(args.workers), "--time-budget", str(args.minutes), "--run-dir", str(run_dir),
                        "--llm", f"openai:bench-model@{server.url}/v1,timeout=60", "--llm-rate", str(args.rate),
                        "--quiet"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        with sqlite3.connect(run_dir / "synth.db") as conn:
            start = conn.execute("SELECT min(created_at) FROM candidates").fetchone()[0]
            end = conn.execute("SELECT max(created_at) FROM evaluations").fetchone()[0]
            busy = sum(json.loads(r)["total_s"] for (r,) in conn.execute("SELECT result FROM evaluations"))
            evals = conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]
            llm_children = conn.execute("SELECT count(*) FROM candidates WHERE operator LIKE 'llm_%' "
                                        "AND status != 'invalid'").fetchone()[0]
            calls = conn.execute("SELECT count(*), coalesce(avg(latency_s), 0) FROM llm_calls").fetchone()
    share = busy / (args.workers * (end - start))
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), mqar {args.steps} steps, {args.workers} workers, "
          f"llm-rate {args.rate}, model answers in {args.delay:g} s, {args.minutes:g} min")
    print(f"evaluations {evals}, LLM children {llm_children}, LLM calls {calls[0]} (mean latency {calls[1]:.1f} s)")
    print(f"workers busy {share:.1%} of the run ({busy:.0f} s of {args.workers} x {end - start:.0f} s)")


if __name__ == "__main__":
    main()
