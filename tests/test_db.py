"""The run database on real SQLite files: round trips, atomicity, crash safety, refusals, lineage, stats."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from evaluator.record import EvalPoint, EvalResult
from population.db import DB_NAME, SCHEMA_VERSION, DuplicateEvaluationError, RunDB, RunDirError
from population.records import Candidate, Evaluation, LLMCall

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"track": "mqar", "seed": 7, "population": 16, "operator_weights": {"crossover": 2.0}}


def cand(generation=0, operator="seed", parents=(), **fields) -> Candidate:
    return Candidate(generation=generation, kind="program", genome=f"g{generation}", source=f"# {operator}\n",
                     parents=list(parents), operator=operator, **fields)


def evaluation(cid: int, fitness: float | None = 1.0, steps: int = 400, seed_set: str = "benchmark") -> Evaluation:
    return Evaluation(candidate_id=cid, track="mqar", seed_set=seed_set, budget=steps,
                      outcome="ok" if fitness is not None else "crash", fitness=fitness, result={"steps": steps})


@pytest.fixture
def db(tmp_path):
    with RunDB.create(tmp_path / "run", CONFIG) as db:
        yield db


# ---------------------------------------------------------------------------- round trips
def test_every_record_round_trips_through_the_file(tmp_path):
    run = tmp_path / "run"
    seed = Candidate(generation=0, kind="program", genome="slot0 = grad", source="import torch\n", operator="seed",
                     operator_params={"name": "adam", "nested": {"a": [1, 2.5]}}, fingerprint="fp-1",
                     created_at=123.5, timings={"probe_s": 0.25})
    child = Candidate(generation=1, kind="code", genome=None, source="import math\n", parents=[1], operator="llm_edit",
                      model="gpt-x", fingerprint="fp-1", status="duplicate", duplicate_of=1, fitness=-0.5,
                      created_at=124.0)
    result = EvalResult(track="mqar", max_steps=400, eval_every=50, train_samples=10, eval_samples=5, batch_size=2,
                        final_eval_accuracy=0.75, curve=[EvalPoint(step=0, metric=0.1, loss=2.0)])
    ev = Evaluation(candidate_id=1, track="mqar", seed_set="heldout-1", budget=400, outcome="ok", fitness=0.75,
                    result=result.model_dump(mode="json"), created_at=125.0)
    call = LLMCall(provider="anthropic", model="claude-x", operator="llm_edit", parent_ids=[1], prompt="p\n" * 3,
                   reply="r", tokens_in=100, tokens_out=20, cost_usd=0.0125, latency_s=1.5, outcome="child",
                   child_id=2, error=None, created_at=126.0)
    with RunDB.create(run, CONFIG) as db:
        assert db.add_candidates([seed, child]) == [1, 2]
        db.add_evaluation(ev, candidate_status="scored", candidate_fitness=0.75)
        assert db.add_llm_call(call) == 1
        db.set_state("engine", {"generation": 3, "rng": [1, 2, 3]})
    with RunDB.open(run) as db:  # a fresh connection: everything came from the file
        assert db.config() == CONFIG
        assert db.get_candidate(1) == seed.model_copy(update={"status": "scored", "fitness": 0.75})
        assert db.get_candidate(2) == child
        [back] = db.evaluations()
        assert back.model_dump(exclude={"result"}) == ev.model_dump(exclude={"result"})
        assert json.dumps(back.result) == json.dumps(ev.result)  # NaN fields survive, and compare as text
        assert EvalResult.model_validate(back.result).final_eval_accuracy == 0.75
        assert db.llm_calls() == [call]
        assert db.get_state("engine") == {"generation": 3, "rng": [1, 2, 3]}
        assert db.get_state("missing") is None
        assert db.get_candidate(99) is None


def test_ids_follow_insertion_order_and_are_set_on_the_objects(db):
    first = [cand(), cand()]
    assert db.add_candidates(first) == [1, 2]
    assert [c.id for c in first] == [1, 2]
    assert db.add_candidates([cand(1, "mutate_node", [2])]) == [3]
    assert [c.id for c in db.candidates()] == [1, 2, 3]
    assert [c.id for c in db.candidates(generation=0)] == [1, 2]
    with pytest.raises(ValueError, match="already has id"):
        db.add_candidates([db.get_candidate(1)])


def test_open_or_create_reports_whether_it_resumed(tmp_path):
    db, resumed = RunDB.open_or_create(tmp_path / "r", CONFIG)
    db.add_candidates([cand()])
    db.close()
    db, resumed = RunDB.open_or_create(tmp_path / "r", {"track": "other"})
    assert resumed and db.config() == CONFIG and db.count() == 1
    db.close()


def test_update_candidate_validates_and_only_changes_named_fields(db):
    db.add_candidates([cand(), cand()])
    updated = db.update_candidate(2, status="duplicate", duplicate_of=1, fitness=0.5)
    assert (updated.status, updated.duplicate_of, updated.fitness) == ("duplicate", 1, 0.5)
    assert db.get_candidate(2) == updated and db.get_candidate(1).status == "pending"
    with pytest.raises(ValidationError):
        db.update_candidate(2, status="bogus")
    with pytest.raises(KeyError):
        db.update_candidate(99, status="failed")
    assert db.get_candidate(2) == updated
    assert db.count() == 2 and db.count("duplicate") == 1 and [c.id for c in db.pending()] == [1]


def test_connection_settings(db):
    conn = db._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# ---------------------------------------------------------------------------- evaluations and atomicity
def test_an_evaluation_key_is_recorded_once(db):
    db.add_candidates([cand()])
    db.add_evaluation(evaluation(1, 0.5), "scored", 0.5)
    with pytest.raises(DuplicateEvaluationError, match="candidate 1 already has an evaluation"):
        db.add_evaluation(evaluation(1, None), "failed", None)
    assert len(db.evaluations()) == 1
    assert (db.get_candidate(1).status, db.get_candidate(1).fitness) == ("scored", 0.5)  # the refusal changed nothing
    db.add_evaluation(evaluation(1, 0.6, steps=100), "scored", 0.5)  # another fidelity is another key
    db.add_evaluation(evaluation(1, 0.7, seed_set="heldout-1"), "scored", 0.5)
    assert [e.budget for e in db.evaluations(candidate_id=1)] == [400, 100, 400]
    assert [e.fitness for e in db.evaluations(seed_set="heldout-1")] == [0.7]
    assert db.evaluations(track="other") == []
    with pytest.raises(KeyError):
        db.add_evaluation(evaluation(42), "scored", 1.0)


def test_a_failing_evaluation_write_leaves_neither_half(db):
    db.add_candidates([cand()])
    with pytest.raises(sqlite3.IntegrityError):  # the status CHECK fails after the evaluation row went in
        db.add_evaluation(evaluation(1), "bogus", 1.0)
    assert db.evaluations() == []
    assert db.get_candidate(1).status == "pending"


def test_a_failing_batch_leaves_nothing(db):
    good = [cand(), cand()]
    with pytest.raises(ValueError, match="parent 7 does not exist"):
        db.add_candidates(good + [cand(1, "mutate_node", [7])])
    assert db.count() == 0 and all(c.id is None for c in good)
    assert db.add_candidates(good) == [1, 2]  # nothing was consumed, not even ids


def test_checkpoint_is_all_or_nothing(db):
    db.checkpoint([cand(), cand()], {"generation": 0})
    with pytest.raises(ValueError):
        db.checkpoint([cand(1, "mutate_node", [1]), cand(1, "mutate_node", [9])], {"generation": 1})
    with pytest.raises(TypeError):  # state fails to serialise after the candidates went in
        db.checkpoint([cand(1, "mutate_node", [1])], {"generation": 1, "rng": object()})
    assert db.count() == 2 and db.get_state("engine") == {"generation": 0}
    assert db.checkpoint([cand(1, "mutate_node", [1])], {"generation": 1}) == [3]
    assert db.get_state("engine") == {"generation": 1}


def test_a_reader_keeps_its_snapshot_while_a_writer_commits(tmp_path):
    """WAL: the writer does not wait for the reader, and the reader sees a consistent snapshot."""
    with RunDB.create(tmp_path / "r", CONFIG) as writer, RunDB.open(tmp_path / "r") as reader:
        writer.add_candidates([cand()])
        writer._conn.execute("PRAGMA busy_timeout = 200")  # fail fast instead of 30 s if it would block
        reader._conn.execute("BEGIN")
        assert reader.count() == 1
        writer.add_candidates([cand(), cand()])
        assert reader.count() == 1
        reader._conn.execute("COMMIT")
        assert reader.count() == 3


# ---------------------------------------------------------------------------- SIGKILL
CHILD = textwrap.dedent('''
    import sys
    from population.db import RunDB
    from population.records import Candidate, Evaluation

    run_dir, mode = sys.argv[1], sys.argv[2]
    db, _ = RunDB.open_or_create(run_dir, {"track": "t"})
    if mode != "loop":  # "needle|n": block (for the parent to kill us) at the n-th statement containing needle
        needle, n = mode.split("|")
        seen = [0]
        def trace(sql):
            if needle in sql:
                seen[0] += 1
                if seen[0] == int(n):
                    print("blocked", flush=True)
                    sys.stdin.readline()
        db._conn.set_trace_callback(trace)

    def source(gen, i):
        return f"# gen {gen} child {i}\\n" + "x = 1\\n" * 2000 + "# end\\n"  # spans several pages

    def score(c):
        db.add_evaluation(Evaluation(candidate_id=c.id, track="t", seed_set="benchmark", budget=10, outcome="ok",
                                     fitness=float(c.id), result={"id": c.id, "pad": "r" * 3000}),
                          "scored", float(c.id))
        print("eval", c.id, flush=True)

    for c in db.pending():
        score(c)
    gen = (db.get_state("engine") or {"generation": 0})["generation"]
    while True:
        gen += 1
        children = [Candidate(generation=gen, source=source(gen, i), operator="mutate_node",
                              parents=[gen * 5 - 5] if gen > 1 else [], operator_params={"i": i}) for i in range(5)]
        db.checkpoint(children, {"generation": gen})
        for c in children:
            score(c)
''')


def check_consistent(run: Path) -> int:
    """Opens the killed run and checks every invariant; returns the generation counter."""
    with RunDB.open(run) as db:
        assert [tuple(r) for r in db._conn.execute("PRAGMA integrity_check")] == [("ok",)]
        gen = (db.get_state("engine") or {"generation": 0})["generation"]
        cands = db.candidates()
        assert [c.id for c in cands] == list(range(1, 5 * gen + 1))  # whole generations, matching the state
        evals = {e.candidate_id: e for e in db.evaluations()}
        assert len(evals) == len(db.evaluations())
        for c in cands:
            assert c.generation == (c.id - 1) // 5 + 1 and c.operator_params == {"i": (c.id - 1) % 5}
            assert c.source == f"# gen {c.generation} child {c.operator_params['i']}\n" + "x = 1\n" * 2000 + "# end\n"
            if c.id in evals:
                assert (c.status, c.fitness) == ("scored", float(c.id))
                assert evals[c.id].result == {"id": c.id, "pad": "r" * 3000}
            else:
                assert (c.status, c.fitness) == ("pending", None)
        return gen


def run_child(run: Path, script: Path, mode: str, evals_before_kill: int | None) -> None:
    proc = subprocess.Popen([sys.executable, str(script), str(run), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        seen = 0
        while True:
            line = proc.stdout.readline()
            assert line, f"child died on its own (rc {proc.wait()})"
            seen += line.startswith("eval")
            if line.startswith("blocked") or (evals_before_kill is not None and seen >= evals_before_kill):
                break
    finally:
        proc.kill()  # SIGKILL: no cleanup, no rollback, no checkpoint
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()


def test_sigkill_at_any_moment_leaves_a_consistent_database(tmp_path):
    run, script = tmp_path / "run", tmp_path / "child.py"
    script.write_text(CHILD)
    gens = []
    # free-running writer killed at whatever it is doing, then inside each kind of transaction for sure
    for mode, n in [("loop", 1), ("loop", 4), ("INSERT INTO candidates|3", None), ("loop", 9),
                    ("UPDATE candidates SET status|2", None), ("INSERT INTO state|1", None), ("loop", 13)]:
        run_child(run, script, mode, n)
        gens.append(check_consistent(run))
    assert gens == sorted(gens) and gens[-1] >= 3  # it resumed and made progress each time


# ---------------------------------------------------------------------------- refusals
def assert_refused(run_dir: Path, *fragments: str) -> None:
    path = run_dir / DB_NAME
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(RunDirError) as err:
        RunDB.open(run_dir)
    message = str(err.value)
    assert str(run_dir) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    if before is not None:
        assert path.read_bytes() == before


def test_garbage_file_is_refused_untouched(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"not a database at all\n" * 50)
    assert_refused(tmp_path, "not an SQLite database")
    (tmp_path / DB_NAME).write_bytes(b"")
    assert_refused(tmp_path, "not an SQLite database")


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY, x TEXT)")
    conn.execute("INSERT INTO candidates VALUES (1, 'theirs')")
    conn.commit()
    conn.close()
    assert_refused(tmp_path, "another application")
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_newer_schema_is_refused_untouched(tmp_path):
    RunDB.create(tmp_path / "run", CONFIG).close()
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    assert_refused(tmp_path / "run", "newer synth", f"schema {SCHEMA_VERSION + 1}")


def test_corrupt_database_is_refused_untouched(tmp_path):
    with RunDB.create(tmp_path / "run", CONFIG) as db:
        db.add_candidates([Candidate(generation=0, source="x" * 3000 + str(i), operator="seed") for i in range(40)])
    path = tmp_path / "run" / DB_NAME
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 40 * page
    data[29 * page:30 * page] = bytes(range(256)) * (page // 256)  # a candidates page turned to noise
    path.write_bytes(bytes(data))
    assert_refused(tmp_path / "run", "corrupt")


def test_missing_database_or_directory_is_refused(tmp_path):
    assert_refused(tmp_path, "no synth.db")
    assert not (tmp_path / DB_NAME).exists()
    assert_refused(tmp_path / "nowhere", "no such run directory")
    assert not (tmp_path / "nowhere").exists()


def test_create_refuses_an_existing_run(tmp_path):
    with RunDB.create(tmp_path / "run", CONFIG) as db:
        db.add_candidates([cand()])
    before = (tmp_path / "run" / DB_NAME).read_bytes()
    with pytest.raises(RunDirError, match="already exists"):
        RunDB.create(tmp_path / "run", {"track": "other"})
    assert (tmp_path / "run" / DB_NAME).read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [DB_NAME]


# ---------------------------------------------------------------------------- queries
@pytest.fixture
def tree(db):
    """1, 2 seeds; 3 = mutate(1); 4 = crossover(3, 2); 5 = mutate(4); 6 = mutate(2)."""
    db.add_candidates([cand(), cand()])
    db.add_candidates([cand(1, "mutate_node", [1])])
    db.add_candidates([cand(2, "crossover", [3, 2])])
    db.add_candidates([cand(3, "mutate_node", [4]), cand(1, "mutate_node", [2])])
    return db


def test_lineage_follows_first_parents_back_to_the_seed(tree):
    assert [c.id for c in tree.lineage(5)] == [5, 4, 3, 1]
    assert [c.id for c in tree.lineage(1)] == [1]
    with pytest.raises(KeyError):
        tree.lineage(99)


def test_ancestors_follow_every_parent(tree):
    assert sorted(tree.ancestors(5)) == [1, 2, 3, 4]
    assert tree.ancestors(5)[4].parents == [3, 2]
    assert sorted(tree.ancestors(6)) == [2]
    assert tree.ancestors(1) == {}


def test_find_by_fingerprint_returns_the_earliest_scored(db):
    db.add_candidates([cand(fingerprint="a"), cand(fingerprint="a"), cand(fingerprint="a"), cand(fingerprint="b")])
    assert db.find_by_fingerprint("a") is None  # nothing scored yet
    db.add_evaluation(evaluation(3, 0.3), "scored", 0.3)
    db.add_evaluation(evaluation(2, 0.2), "scored", 0.2)
    db.update_candidate(1, status="duplicate", duplicate_of=2)
    assert db.find_by_fingerprint("a").id == 2
    assert db.find_by_fingerprint("b") is None and db.find_by_fingerprint("zzz") is None


def test_top_orders_by_fitness_with_none_last(db):
    db.add_candidates([cand() for _ in range(5)])
    for cid, fit in [(1, 0.5), (2, 0.9), (4, 0.5)]:
        db.add_evaluation(evaluation(cid, fit), "scored", fit)
    db.add_evaluation(evaluation(3, None), "failed", None)
    db.update_candidate(5, status="duplicate", duplicate_of=2, fitness=0.9)
    assert [c.id for c in db.top(10)] == [2, 5, 1, 4, 3]
    assert [c.id for c in db.top(2)] == [2, 5]
    assert [c.id for c in db.top(10, track="mqar")] == [2, 5, 1, 4, 3]  # 5 counts through its twin
    assert db.top(10, track="other") == []


def test_operator_stats_on_a_hand_built_run(db):
    db.add_candidates([cand(), cand()])
    db.add_evaluation(evaluation(1, 1.0), "scored", 1.0)
    db.add_evaluation(evaluation(2, 2.0), "scored", 2.0)
    db.add_candidates([
        cand(1, "mutate_node", [1]),  # 3: 1.5 vs 1.0  -> improved, +0.5
        cand(1, "mutate_node", [2]),  # 4: 2.0 vs 2.0  -> not improved, +0.0
        cand(1, "mutate_node", [2]),  # 5: failed
        cand(1, "crossover", [1, 2]),  # 6: 2.5 vs max(1, 2) -> improved, +0.5
        cand(1, "crossover", [2, 1]),  # 7: duplicate of 2 (not counted in improved/mean)
        cand(1, "crossover", [1, 2]),  # 8: invalid
        cand(1, "mutate_node", [1]),  # 9: pending
    ])
    for cid, fit in [(3, 1.5), (4, 2.0), (6, 2.5)]:
        db.add_evaluation(evaluation(cid, fit), "scored", fit)
    db.add_evaluation(evaluation(5, None), "failed", None)
    db.update_candidate(7, status="duplicate", duplicate_of=2, fitness=2.0)
    db.update_candidate(8, status="invalid")
    stats = {s["operator"]: s for s in db.operator_stats()}
    assert [s["operator"] for s in db.operator_stats()] == ["crossover", "mutate_node", "seed"]
    assert stats["mutate_node"] == {"operator": "mutate_node", "children": 4, "scored": 2, "failed": 1,
                                    "duplicates": 0, "invalid": 0, "screened": 0, "pending": 1, "improved": 1,
                                    "mean_delta": pytest.approx(0.25)}
    assert stats["crossover"] == {"operator": "crossover", "children": 3, "scored": 1, "failed": 0, "duplicates": 1,
                                  "invalid": 1, "screened": 0, "pending": 0, "improved": 1,
                                  "mean_delta": pytest.approx(0.5)}
    assert stats["seed"]["children"] == 2 and stats["seed"]["improved"] == 0 and stats["seed"]["mean_delta"] is None


def test_llm_totals_per_model(db):
    def call(model, tin, tout, cost, outcome="child"):
        return LLMCall(provider="p", model=model, operator="llm_edit", prompt="", reply="", tokens_in=tin,
                       tokens_out=tout, cost_usd=cost, outcome=outcome)

    assert db.llm_totals() == {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0, "by_model": {}}
    for c in [call("a", 10, 1, 0.25), call("b", 5, 2, 0.5, "failed"), call("a", 20, 3, 0.125)]:
        db.add_llm_call(c)
    assert [c.id for c in db.llm_calls()] == [1, 2, 3]
    assert db.llm_totals() == {
        "calls": 3, "tokens_in": 35, "tokens_out": 6, "cost_usd": 0.875,
        "by_model": {"a": {"calls": 2, "tokens_in": 30, "tokens_out": 4, "cost_usd": 0.375},
                     "b": {"calls": 1, "tokens_in": 5, "tokens_out": 2, "cost_usd": 0.5}}}
