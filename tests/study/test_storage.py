"""The SQLite store: a file written by the previous schema opens, is upgraded, and keeps its meaning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fmi_optimizer.errors import OutputError
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.storage import SCHEMA_VERSION, Store


def _version_1_file(path: Path) -> None:
    """What version 1 wrote: no ``seq`` column; rows of two studies interleaved as their runs finished."""
    store = Store(path)
    a = store.create_study("a", "random", 1, "0" * 64, {})
    b = store.create_study("b", "random", 1, "0" * 64, {})
    for i, sid in enumerate([a, b, a, a, b]):
        store.add_evaluation(sid, f"k{i}", Evaluation(Candidate({"x": float(i)}), "ok", {"f": float(i)}, float(i)))
    store.close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE evaluations DROP COLUMN seq")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()


def test_a_version_1_file_is_numbered_in_row_order_per_study(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _version_1_file(db)
    store = Store(db)
    assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert [(e.values["x"], e.seq) for e in store.evaluations(1)] == [(0.0, 1), (2.0, 2), (3.0, 3)]
    assert [(e.values["x"], e.seq) for e in store.evaluations(2)] == [(1.0, 1), (4.0, 2)]
    assert store.last_seq(1) == 3 and store.last_seq(3) == 0
    # a run stored without a place in proposal order (e.g. a calibration's refinement) comes after the last
    ev = Evaluation(Candidate({"x": 9.0}), "ok", {"f": 9.0}, 9.0)
    store.add_evaluation(1, "k9", ev)
    assert ev.seq == 4 and [e.seq for e in store.evaluations(1)] == [1, 2, 3, 4]
    store.close()
    Store(db).close()  # opening an upgraded file again changes nothing
    assert [r[0] for r in sqlite3.connect(db).execute("SELECT seq FROM evaluations ORDER BY id")] == [1, 1, 2, 3, 2, 4]


def test_evaluations_come_back_in_proposal_order_not_storing_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    sid = store.create_study("s", "random", 1, "0" * 64, {})
    for seq in (2, 1, 4, 3):
        store.add_evaluation(sid, f"k{seq}", Evaluation(Candidate({"x": float(seq)}), "ok", seq=seq))
    got = store.evaluations(sid)
    assert [e.seq for e in got] == [1, 2, 3, 4] and [e.id for e in got] == [2, 1, 4, 3]


def test_the_csv_export_lists_evaluations_in_proposal_order_with_feasibility(tmp_path: Path) -> None:
    import csv

    store = Store(tmp_path / "s.db")
    sid = store.create_study("s", "random", 1, "0" * 64, {})
    store.add_evaluation(sid, "k2", Evaluation(Candidate({"x": 2.0}), "ok", {"f": 2.0}, 2.0, (2.0,), (0.5,), seq=2))
    store.add_evaluation(sid, "k1", Evaluation(Candidate({"x": 1.0}), "ok", {"f": 1.0}, 1.0, (1.0,), (-0.5,), seq=1))
    store.add_evaluation(sid, "k3", Evaluation(Candidate({"x": 3.0}), "failed", error="diverged", seq=3))
    rows = list(csv.DictReader(store.export_csv(sid, tmp_path / "e.csv").open()))
    assert [(r["seq"], r["x"], r["feasible"], r["status"]) for r in rows] == [
        ("1", "1.0", "1", "ok"), ("2", "2.0", "0", "ok"), ("3", "3.0", "0", "failed")]
    assert [r["id"] for r in rows] == ["2", "1", "3"]


def test_a_version_1_file_that_cannot_be_upgraded_is_refused_with_the_remedy(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only version 1 file (another user's results) raised a raw sqlite3 error, exit 1; the refusal now
    names the file and what to do. (The write is refused by the file system in real life; tests run as root,
    which may write anywhere, so the upgrade is made to fail the way SQLite fails there.)"""
    db = tmp_path / "old.db"
    _version_1_file(db)

    def read_only(self: Store) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "_upgrade", read_only)
    with pytest.raises(OutputError, match=r"old.db: written by an earlier fmi_optimizer \(schema 1\) and cannot be "
                                          r"upgraded here \(attempt to write a readonly database\); make it writable"):
        Store(db)
