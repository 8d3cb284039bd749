"""The compact pool <-> worker format: what goes in comes out, contexts travel once per worker."""

from __future__ import annotations

import pickle

import numpy as np

from fmi_optimizer.engine.protocol import (
    ContextTable,
    KnownContexts,
    RunReply,
    RunRequest,
    decode_reply,
    encode_reply,
    unpack_runs,
)
from fmi_optimizer.fmu.simulator import SimSettings

A = SimSettings(stop_time=1.0, output_interval=0.1)
B = SimSettings(stop_time=2.0, output_interval=0.1)


def _roundtrip(reply: RunReply) -> RunReply:
    return decode_reply(pickle.loads(pickle.dumps(encode_reply(reply))))


def test_replies_survive_the_wire_with_writable_arrays() -> None:
    t = np.linspace(0.0, 1.0, 11)
    ok = RunReply(7, "ok", t, {"y": t**2, "z": -t}, "", 0.25, 0.2, "local-1")
    back = _roundtrip(ok)
    assert (back.task_id, back.status, back.error, back.wall_seconds, back.cpu_seconds, back.worker) == \
        (7, "ok", "", 0.25, 0.2, "local-1")
    assert list(back.outputs) == ["y", "z"]
    assert np.array_equal(back.time, t) and np.array_equal(back.outputs["y"], t**2)
    back.outputs["z"][0] = 5.0  # consumers may modify what they get
    failed = _roundtrip(RunReply(8, "failed", None, {}, "boom", 0.1, 0.0, "local-2"))
    assert failed.time is None and failed.outputs == {} and failed.error == "boom"
    odd = _roundtrip(RunReply(9, "ok", t, {"y": t, "p": np.array([3.0])}, "", 0.0, 0.0, "w"))
    assert np.array_equal(odd.outputs["p"], [3.0]) and np.array_equal(odd.outputs["y"], t)


def test_contexts_travel_once_per_worker_and_requests_come_back_whole() -> None:
    table = ContextTable()
    signal = np.zeros(3, dtype=[("time", float), ("u", float)])
    reqs = [RunRequest(1, {"x": 1.0}, A, ("y",)), RunRequest(2, {"x": 2.0}, A, ("y",)),
            RunRequest(3, {"x": 3.0}, B, ("y",)), RunRequest(4, {"x": 4.0}, A, ("y",), signal)]
    known = KnownContexts()
    first = table.message(reqs[:3], known)
    assert len(first[2]) == 2  # contexts A and B
    again = table.message(reqs[:3], known)
    assert again[2] == []  # this worker has them already
    assert len(table.message(reqs[:1], KnownContexts())[2]) == 1  # another worker gets A
    contexts: dict = {}
    got = unpack_runs(pickle.loads(pickle.dumps(first)), contexts)
    got += unpack_runs(pickle.loads(pickle.dumps(table.message(reqs[3:], known))), contexts)
    assert [r.task_id for r in got] == [1, 2, 3, 4]
    assert [r.settings for r in got] == [A, A, B, A]
    assert got[2].start_values == {"x": 3.0} and got[0].inputs is None
    assert got[3].inputs is not None and np.array_equal(got[3].inputs, signal)


def test_the_table_stays_bounded_and_workers_forget_with_it() -> None:
    table = ContextTable()
    known = KnownContexts()
    contexts: dict = {}
    for i in range(3 * ContextTable.LIMIT):  # a new input table per run: every run is a new context
        signal = np.full(2, float(i), dtype=[("time", float), ("u", float)])
        (req,) = unpack_runs(table.message([RunRequest(i, {}, A, ("y",), signal)], known), contexts)
        assert req.inputs is not None and req.inputs["u"][0] == i
        assert len(contexts) <= ContextTable.LIMIT and len(table._contexts) <= ContextTable.LIMIT
    assert table.generation >= 2
