"""SQLite store (WAL): studies, evaluations committed one by one, method snapshots, exports.

Every finished evaluation is committed before the next one is handled, so a process
killed with SIGKILL loses nothing that finished; readers in other processes see a
consistent snapshot while a study writes.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import OutputError, StudyError
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.writeback.atomic import atomic_output, write_text_atomic

SCHEMA_VERSION = 2  # 2: evaluations.seq, the proposal order (version 1 files are upgraded on open)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    fmu_sha256 TEXT NOT NULL,
    config TEXT NOT NULL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    cache_key TEXT NOT NULL,
    values_json TEXT NOT NULL,
    replication INTEGER NOT NULL,
    tag TEXT NOT NULL,
    seed INTEGER,
    status TEXT NOT NULL,
    kpis TEXT NOT NULL,
    objective REAL,
    objectives TEXT NOT NULL,
    constraints TEXT NOT NULL,
    error TEXT NOT NULL,
    wall_seconds REAL NOT NULL,
    cpu_seconds REAL NOT NULL,
    worker TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    cached INTEGER NOT NULL,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS evaluations_by_key ON evaluations(cache_key);
CREATE INDEX IF NOT EXISTS evaluations_by_study ON evaluations(study_id);
"""


class Store:
    """One SQLite file; safe to read from other processes while a study writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.OperationalError) as exc:
            raise OutputError(f"{self.path}: cannot create the study database ({exc}); choose a writable "
                              "--out folder") from exc
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):  # SQLite writes even to open a WAL database
                raise OutputError(f"{self.path}: cannot be opened for writing ({exc}); a study database is "
                                  "written even to be read: copy the results folder somewhere writable"
                                  ) from exc
            raise StudyError(f"{self.path}: not a fmi_optimizer database ({exc}); pass the .db file a study "
                             "wrote") from exc
        except sqlite3.DatabaseError as exc:
            raise StudyError(f"{self.path}: not a fmi_optimizer database ({exc}); pass the .db file a study "
                             "wrote") from exc
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row["value"]) > SCHEMA_VERSION:
            raise StudyError(f"{self.path}: schema version {row['value']} is newer than this fmi_optimizer "
                             f"understands ({SCHEMA_VERSION}); upgrade fmi_optimizer")
        elif int(row["value"]) < SCHEMA_VERSION:
            try:
                self._upgrade()
            except sqlite3.OperationalError as exc:  # e.g. a read-only file of an earlier version
                raise OutputError(f"{self.path}: written by an earlier fmi_optimizer (schema {row['value']}) "
                                  f"and cannot be upgraded here ({exc}); make it writable once, or work on a "
                                  "copy") from exc

    def _upgrade(self) -> None:
        """Version 1 -> 2 in one transaction: number each study's stored evaluations in row order (the
        order they finished, the best a version 1 file knows)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            columns = {r["name"] for r in self.conn.execute("PRAGMA table_info(evaluations)")}
            if "seq" not in columns:
                self.conn.execute("ALTER TABLE evaluations ADD COLUMN seq INTEGER")
            self.conn.execute("UPDATE evaluations SET seq = (SELECT COUNT(*) FROM evaluations AS e WHERE "
                              "e.study_id = evaluations.study_id AND e.id <= evaluations.id) "
                              "WHERE seq IS NULL")
            self.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    # -- studies ------------------------------------------------------------------------
    def create_study(self, name: str, method: str, seed: int, fmu_sha256: str, config: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO studies (name, created, status, method, seed, fmu_sha256, config) VALUES "
            "(?,?,?,?,?,?,?)",
            (name, time.time(), "running", method, seed, fmu_sha256, json.dumps(config, default=str)),
        )
        return int(cur.lastrowid or 0)

    def set_status(self, study_id: int, status: str, result: dict[str, Any] | None = None) -> None:
        self.conn.execute("UPDATE studies SET status=?, result=COALESCE(?, result) WHERE id=?",
                          (status, json.dumps(result, default=str) if result is not None else None, study_id))

    def set_config(self, study_id: int, config: dict[str, Any]) -> None:
        self.conn.execute("UPDATE studies SET config=? WHERE id=?",
                          (json.dumps(config, default=str), study_id))

    def study(self, study_id: int | None = None) -> sqlite3.Row:
        """One study row (the latest when ``study_id`` is None)."""
        if study_id is None:
            row = self.conn.execute("SELECT * FROM studies ORDER BY id DESC LIMIT 1").fetchone()
        else:
            row = self.conn.execute("SELECT * FROM studies WHERE id=?", (study_id,)).fetchone()
        if row is None:
            raise StudyError(f"{self.path}: holds no "
                             f"study{'' if study_id is None else f' with id {study_id}'}")
        return row

    def studies(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM studies ORDER BY id"))

    # -- evaluations --------------------------------------------------------------------
    def add_evaluation(self, study_id: int, key: str, ev: Evaluation) -> int:
        """Store one finished evaluation and commit at once (autocommit). One without a ``seq`` (a run
        outside the method loop) is numbered after the study's last."""
        if ev.seq is None:
            ev.seq = self.last_seq(study_id) + 1
        cur = self.conn.execute(
            "INSERT INTO evaluations (study_id, cache_key, values_json, replication, tag, seed, status, "
            "kpis, objective, objectives, constraints, error, wall_seconds, cpu_seconds, worker, started, "
            "finished, cached, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (study_id, key, json.dumps(ev.candidate.values), ev.candidate.replication, ev.candidate.tag,
             ev.seed,
             ev.status, json.dumps(ev.kpis), ev.objective, json.dumps(list(ev.objectives)),
             json.dumps(list(ev.constraints)), ev.error, ev.wall_seconds, ev.cpu_seconds, ev.worker,
             ev.started, ev.finished, int(ev.cached), ev.seq),
        )
        ev.id = int(cur.lastrowid or 0)
        return ev.id

    def replace_evaluation(self, ev: Evaluation) -> None:
        """Overwrite a stored evaluation's outcome (a run repeated on a fresh instance replaces it)."""
        self.conn.execute(
            "UPDATE evaluations SET status=?, kpis=?, objective=?, objectives=?, constraints=?, error=?,"
            " wall_seconds=?, cpu_seconds=?, worker=?, finished=? WHERE id=?",
            (ev.status, json.dumps(ev.kpis), ev.objective, json.dumps(list(ev.objectives)),
             json.dumps(list(ev.constraints)), ev.error, ev.wall_seconds, ev.cpu_seconds, ev.worker,
             ev.finished,
             ev.id),
        )

    def lookup(self, key: str) -> Evaluation | None:
        """A finished, simulated (non-timeout) evaluation with this cache key, from any study in the file."""
        row = self.conn.execute(
            "SELECT * FROM evaluations WHERE cache_key=? AND status IN ('ok','failed') AND cached=0 ORDER BY "
            "id LIMIT 1",
            (key,),
        ).fetchone()
        return _row_to_evaluation(row) if row is not None else None

    def last_seq(self, study_id: int) -> int:
        """The highest ``seq`` stored for the study (0 when none)."""
        row = self.conn.execute("SELECT MAX(seq) AS m FROM evaluations WHERE study_id=?",
                                (study_id,)).fetchone()
        return int(row["m"] or 0)

    def evaluations(self, study_id: int) -> list[Evaluation]:
        """The study's evaluations in proposal order (``seq``), not in the order the workers finished."""
        return [_row_to_evaluation(r) for r in self.iter_rows(study_id)]

    def iter_rows(self, study_id: int) -> Iterator[sqlite3.Row]:
        yield from self.conn.execute("SELECT * FROM evaluations WHERE study_id=? ORDER BY seq, id",
                                     (study_id,))

    # -- export -------------------------------------------------------------------------
    def export_csv(self, study_id: int, path: Path) -> Path:
        rows = self.evaluations(study_id)
        names = sorted({k for e in rows for k in e.values})
        kpis = sorted({k for e in rows for k in e.kpis})
        with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["seq", "id", "status", "replication", "tag", "seed", *names, *kpis, "objective",
                        "feasible", "error", "wall_seconds", "cpu_seconds", "worker", "cached"])
            for e in rows:
                w.writerow([e.seq, e.id, e.status, e.candidate.replication, e.candidate.tag, e.seed,
                            *[e.values.get(n, "") for n in names], *[e.kpis.get(k, "") for k in kpis],
                            "" if e.objective is None else e.objective, int(e.feasible), e.error,
                            f"{e.wall_seconds:.6f}", f"{e.cpu_seconds:.6f}", e.worker, int(e.cached)])
        return path

    def export_json(self, study_id: int, path: Path) -> Path:
        study = self.study(study_id)
        data = {
            "study": {k: study[k] for k in study.keys() if k not in ("config", "result")},
            "config": json.loads(study["config"]),
            "result": json.loads(study["result"]) if study["result"] else None,
            "evaluations": [evaluation_to_dict(e) for e in self.evaluations(study_id)],
        }
        return write_text_atomic(path, json.dumps(data, indent=2, default=str))


def evaluation_to_dict(e: Evaluation) -> dict[str, Any]:
    return {
        "seq": e.seq, "id": e.id, "values": e.values, "replication": e.candidate.replication,
        "tag": e.candidate.tag, "seed": e.seed, "status": e.status, "kpis": e.kpis, "objective": e.objective,
        "objectives": list(e.objectives), "constraints": list(e.constraints), "feasible": e.feasible,
        "error": e.error, "wall_seconds": e.wall_seconds, "cpu_seconds": e.cpu_seconds, "worker": e.worker,
        "cached": e.cached,
    }


def _row_to_evaluation(r: sqlite3.Row) -> Evaluation:
    return Evaluation(
        candidate=Candidate(json.loads(r["values_json"]), int(r["replication"]), str(r["tag"])),
        status=r["status"],
        kpis=json.loads(r["kpis"]),
        objective=r["objective"],
        objectives=tuple(json.loads(r["objectives"])),
        constraints=tuple(json.loads(r["constraints"])),
        error=r["error"],
        wall_seconds=float(r["wall_seconds"]),
        cpu_seconds=float(r["cpu_seconds"]),
        worker=r["worker"],
        seed=r["seed"],
        started=float(r["started"]),
        finished=float(r["finished"]),
        cached=bool(r["cached"]),
        id=int(r["id"]),
        seq=None if r["seq"] is None else int(r["seq"]),
    )
