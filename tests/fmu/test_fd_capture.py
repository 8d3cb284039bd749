"""fd_capture: native writes to fds 1 and 2 are captured (bounded), and the fds are restored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fmi_optimizer.fmu.fd_capture import capture_fds


def test_native_writes_are_captured_and_fds_restored() -> None:
    code = """
import ctypes, json, os, sys
from fmi_optimizer.fmu.fd_capture import capture_fds
libc = ctypes.CDLL(None)
with capture_fds(limit=1000) as c:
    libc.printf(b"native stdout {not json\\n")
    os.write(2, b"native stderr\\n")
    print("python print")
print(json.dumps({"text": c.text, "truncated": c.truncated}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and len(done.stdout.splitlines()) == 1  # nothing leaked past the capture
    reply = json.loads(done.stdout)
    assert "native stdout {not json" in reply["text"] and "native stderr" in reply["text"]
    assert "python print" in reply["text"] and reply["truncated"] is False


def test_output_is_bounded_head_and_tail() -> None:
    with capture_fds(limit=100) as c:
        os.write(1, b"HEAD" + b"x" * 10_000 + b"TAIL")
    assert c.truncated and c.bytes_written == 10_008
    assert c.text.startswith("HEAD") and c.text.endswith("TAIL") and "skipped" in c.text
    assert len(c.text) < 200


def test_fds_are_restored_when_the_block_raises() -> None:
    code = """
import os
from fmi_optimizer.fmu.fd_capture import capture_fds
try:
    with capture_fds() as c:
        os.write(1, b"inside")
        raise RuntimeError("boom")
except RuntimeError:
    pass
os.write(1, b"after:" + c.text.encode())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "after:inside"
