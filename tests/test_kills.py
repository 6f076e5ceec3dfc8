"""`kolm pack` and `kolm export` killed part-way, as real processes (SIGKILL and SIGINT at a sweep of
delays, so the kills land in different steps on any machine), over a complete earlier output: that
output stays byte for byte, never half-replaced, and nothing stale survives the next complete run
(kolm.atomic reaps what a dead writer left). The properties hold wherever a kill lands; the delays
only spread the kills over the work.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kolm_testing import SMOL_EVAL_ITEMS, interruptible, shell_env, smollm2_gguf, write_eval_pack

KOLM = Path(sys.executable).with_name("kolm")  # the console script of this env
DELAYS = (0.5, 1.5, 3.0, 6.0)  # seconds after start; a pack or export of SmolLM2 takes 10-40 s here


def digest(path: Path) -> str:
    """The bytes of a file, or of every file of a folder with its relative names."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode() + f.read_bytes())
    return h.hexdigest()


def stale(folder: Path) -> list[str]:
    """What kolm left hidden in `folder` (staging, scratch, locks)."""
    return sorted(str(p) for p in folder.rglob(".*"))


def killed(args: list[str], delay: float, sig: signal.Signals, env: dict[str, str]) -> int:
    proc = subprocess.Popen(
        [str(KOLM), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=interruptible
    )
    time.sleep(delay)
    proc.send_signal(sig)
    return proc.wait(timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "delays"),
    [
        pytest.param(signal.SIGKILL, DELAYS[1::2], id="SIGKILL"),
        pytest.param(signal.SIGKILL, DELAYS, id="SIGKILL-sweep", marks=pytest.mark.long),
        pytest.param(signal.SIGINT, DELAYS, id="SIGINT-sweep", marks=pytest.mark.long),
    ],
)
def test_pack_then_export_killed_at_any_point_lose_nothing_and_leave_nothing(tmp_path, sig, delays):
    env = shell_env(KOLM_HOME=str(tmp_path / "home"))
    pack = write_eval_pack(tmp_path / "items.jsonl", SMOL_EVAL_ITEMS)
    out = tmp_path / "out"
    out.mkdir()
    artifact, export = out / "smol.kolm", out / "smol-pi"
    pack_args = ["pack", "--from-gguf", str(smollm2_gguf()), "--eval", str(pack), "-o", str(artifact), "--min-k", "0"]
    export_args = ["export", str(artifact), "--target", "raspberry-pi-5", "--quant", "int8", "-o", str(export)]
    for args, output in ((pack_args, artifact), (export_args, export)):
        first = subprocess.run([str(KOLM), *args], env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        before = digest(output)
        landed = 0
        for delay in delays:
            landed += killed(args, delay, sig, env) != 0  # 0: it had finished before the signal
            assert digest(output) == before, f"{args[0]} killed after {delay} s changed {output}"
        assert landed, f"every {args[0]} finished before its signal: no kill was tried"
        again = subprocess.run([str(KOLM), *args], env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert stale(out) == [], f"{args[0]} left {stale(out)}"
    verified = subprocess.run([str(KOLM), "verify", str(export), "--against", str(artifact), "--min-k", "0"], env=env)
    assert verified.returncode == 0
