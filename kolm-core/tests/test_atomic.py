"""Outputs survive killed and concurrent writers: a writer killed (SIGKILL, SIGINT) at any step
leaves the target absent or the previous complete output, and what it staged is reaped by the next
writer; a live writer's staging is never touched, and a second live writer is refused in one line.

The writers are real processes (`python -c` over kolm.atomic) that stage an output in steps and
report each step, so the kill lands at a known step; the properties hold whatever the step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kolm.atomic import atomic_dir, atomic_file, claim, scratch_dir
from kolm.errors import OutputError
from kolm_testing import interruptible

STEPS = 6
WRITER = f"""
import sys, time
from pathlib import Path
from kolm.atomic import atomic_dir, scratch_dir

out, label, pause_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with scratch_dir(out) as work, atomic_dir(out) as staging:
    for step in range({STEPS}):
        (work / f"scratch{{step}}").write_bytes(b"x" * 4096)
        (staging / f"part{{step}}").write_text(label)
        print(step, flush=True)
        time.sleep(30 if step == pause_at else 0)  # held there until the test kills it
print("done", flush=True)
"""


def writer(out: Path, label: str, pause_at: int = -1) -> subprocess.Popen:
    """A writer of `out` with `label` in every part; it waits 30 s after step `pause_at`."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out), label, str(pause_at)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )


def complete(out: Path, label: str) -> bool:
    return sorted(p.name for p in out.iterdir()) == [f"part{i}" for i in range(STEPS)] and all(
        p.read_text() == label for p in out.iterdir()
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
@pytest.mark.parametrize("at", range(STEPS))
def test_a_writer_killed_at_any_step_leaves_the_previous_output_and_nothing_the_next_keeps(tmp_path, sig, at):
    out = tmp_path / "export"
    assert writer(out, "first").wait() == 0 and complete(out, "first")
    doomed = writer(out, "second", pause_at=at)
    while int(doomed.stdout.readline()) != at:
        pass
    doomed.send_signal(sig)
    doomed.wait(timeout=30)
    assert complete(out, "first")  # the kill never shows: the previous output, whole
    if sig == signal.SIGKILL:
        assert leftovers(tmp_path)  # it could not clean up after itself
    assert writer(out, "third").wait() == 0 and complete(out, "third")
    assert leftovers(tmp_path) == []  # the next writer reaped the dead one's staging, scratch and lock


def test_a_writer_killed_between_its_two_renames_gets_the_previous_output_back(tmp_path):
    out = tmp_path / "export"
    assert writer(out, "first").wait() == 0
    os.replace(out, tmp_path / ".export.old")  # where a writer killed mid-swap leaves it
    (tmp_path / ".export.tmp1234.part").mkdir()
    with claim(out):
        assert complete(out, "first") and leftovers(tmp_path) == [".export.lock"]
    assert leftovers(tmp_path) == []


def test_a_live_writer_is_left_alone_and_a_second_one_refused(tmp_path):
    out = tmp_path / "export"
    live = writer(out, "live", pause_at=0)
    assert live.stdout.readline().strip() == "0"
    staged = leftovers(tmp_path)
    refusal = r"^another kolm process is writing .*export; run again when it has finished$"
    with pytest.raises(OutputError, match=refusal), atomic_dir(out):
        pass
    assert leftovers(tmp_path) == staged  # its lock, staging and scratch untouched
    live.send_signal(signal.SIGINT)  # it cleans up as it stops
    assert live.wait(timeout=30) != 0 and not out.exists() and leftovers(tmp_path) == []


def test_claims_nest_in_one_process_however_the_path_is_spelled(tmp_path):
    (tmp_path / "sub").mkdir()
    out = tmp_path / "out.kolm"
    with scratch_dir(out) as work, atomic_file(tmp_path / "sub" / ".." / "out.kolm") as part:
        part.write_text("whole")
        assert work.is_dir()
    assert out.read_text() == "whole" and leftovers(tmp_path) == []


FULL = """
import resource, signal, sys
from pathlib import Path
from kolm.atomic import atomic_dir
from kolm.errors import OutputError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    with atomic_dir(Path(sys.argv[1])) as staging:
        (staging / "weights.bin").write_bytes(b"x" * (2 << 20))
except OutputError as exc:
    print(exc)
"""


def test_a_write_the_disk_refuses_is_one_line_and_leaves_the_previous_output(tmp_path):
    out = tmp_path / "export"
    assert writer(out, "first").wait() == 0
    refused = subprocess.run([sys.executable, "-c", FULL, str(out)], capture_output=True, text=True, check=True)
    assert refused.stdout.strip() == f"cannot write {out}: File too large" and refused.stderr == ""
    assert complete(out, "first") and leftovers(tmp_path) == []
