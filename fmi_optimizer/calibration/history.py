"""Calibration history: every calibration, check and recalibration, with the sha256 of its data file,
in its own table of the study database (created on demand; the core schema is untouched)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibration_history (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    study_name TEXT NOT NULL,
    study_id INTEGER,
    data_path TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,
    parameters TEXT NOT NULL,
    metrics TEXT NOT NULL,
    drift INTEGER,
    fmu TEXT,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calibration_history_by_name ON calibration_history(study_name);
"""

KINDS = ("calibration", "check", "recalibration")


@dataclass
class Entry:
    id: int
    created: float
    kind: str
    study_name: str
    study_id: int | None
    data_path: str
    data_sha256: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    drift: bool | None
    fmu: str | None
    details: dict[str, Any]


class History:
    """The ``calibration_history`` table of one study database."""

    def __init__(self, db: Path):
        self.conn = sqlite3.connect(str(db), timeout=30.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def add(self, kind: str, study_name: str, data_path: str, data_sha256: str, parameters: dict[str, Any],
            metrics: dict[str, Any], *, study_id: int | None = None, drift: bool | None = None,
            fmu: str | None = None, details: dict[str, Any] | None = None) -> int:
        assert kind in KINDS, kind
        cur = self.conn.execute(
            "INSERT INTO calibration_history (created, kind, study_name, study_id, data_path, data_sha256, "
            "parameters, metrics, drift, fmu, details) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (time.time(), kind, study_name, study_id, data_path, data_sha256,
             json.dumps(parameters, default=str),
             json.dumps(metrics, default=str), None if drift is None else int(drift), fmu,
             json.dumps(details or {}, default=str)))
        return int(cur.lastrowid or 0)

    def entries(self, study_name: str | None = None) -> list[Entry]:
        sql, args = "SELECT * FROM calibration_history", tuple[str, ...]()
        if study_name is not None:
            sql, args = sql + " WHERE study_name=?", (study_name,)
        return [_entry(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def latest_parameters(self, study_name: str) -> Entry | None:
        """The newest calibration or recalibration of this study (what ``check`` compares against)."""
        row = self.conn.execute(
            "SELECT * FROM calibration_history WHERE study_name=? AND kind IN "
            "('calibration','recalibration') ORDER BY id DESC LIMIT 1", (study_name,)).fetchone()
        return _entry(row) if row is not None else None


def _entry(r: sqlite3.Row) -> Entry:
    return Entry(int(r["id"]), float(r["created"]), r["kind"], r["study_name"], r["study_id"], r["data_path"],
                 r["data_sha256"], json.loads(r["parameters"]), json.loads(r["metrics"]),
                 None if r["drift"] is None else bool(r["drift"]), r["fmu"], json.loads(r["details"]))
