"""Who begat whom, and how each operator's children fared: reads over the candidates table.

A mixin of RunDB (population/db.py), which provides `get_candidate` and the connection.
"""

from __future__ import annotations

import json

from population.records import Candidate


class LineageQueries:
    def lineage(self, id: int) -> list[Candidate]:
        """[the candidate, its first parent, that one's first parent, ..., the seed]."""
        cand = self.get_candidate(id)
        if cand is None:
            raise KeyError(f"no candidate {id}")
        chain = [cand]
        while chain[-1].parents:
            chain.append(self.get_candidate(chain[-1].parents[0]))
        return chain

    def ancestors(self, id: int) -> dict[int, Candidate]:
        """Every ancestor through every parent (not the candidate itself), by id."""
        cand = self.get_candidate(id)
        if cand is None:
            raise KeyError(f"no candidate {id}")
        found: dict[int, Candidate] = {}
        todo = list(cand.parents)
        while todo:
            pid = todo.pop()
            if pid not in found:
                found[pid] = self.get_candidate(pid)
                todo.extend(found[pid].parents)
        return dict(sorted(found.items()))

    # ------------------------------------------------------------------ operators
    def operator_stats(self) -> list[dict]:
        """Per operator: children made, their outcomes, and how scored children compare with their best parent.

        `improved` and `mean_delta` count only children that were scored themselves and have at least
        one parent with a fitness; mean_delta = mean(child fitness - best parent fitness), None if none.
        """
        rows = self._conn.execute("SELECT id, operator, parents, status, fitness FROM candidates ORDER BY id").fetchall()
        fitness = {r["id"]: r["fitness"] for r in rows}
        stats: dict[str, dict] = {}
        for r in rows:
            s = stats.setdefault(r["operator"], {"operator": r["operator"], "children": 0, "scored": 0, "failed": 0,
                                                 "duplicates": 0, "invalid": 0, "screened": 0, "pending": 0,
                                                 "improved": 0,
                                                 "deltas": []})
            s["children"] += 1
            s[{"duplicate": "duplicates"}.get(r["status"], r["status"])] += 1
            parent_fits = [fitness[p] for p in json.loads(r["parents"]) if fitness.get(p) is not None]
            if r["status"] == "scored" and r["fitness"] is not None and parent_fits:
                delta = r["fitness"] - max(parent_fits)
                s["deltas"].append(delta)
                s["improved"] += delta > 0
        for s in stats.values():
            deltas = s.pop("deltas")
            s["mean_delta"] = sum(deltas) / len(deltas) if deltas else None
        return [stats[name] for name in sorted(stats)]
