#!/usr/bin/env python3
"""Wall time of `kolm export`, K included, for every backend at every tier on SmolLM2-135M-Instruct
packed with kolm's default eval pack (131 items). Goal: each within 3 minutes on this machine.

Tiers a backend does not offer are left out. Run it with the Python of an environment that has the
backend's toolchain (kolm-onnx's conflicts with kolm-gguf's: `.tox/onnx/bin/python ... --backends
onnx`). Each backend starts from an empty KOLM_HOME, so its first tier pays for what later tiers reuse
(llama.cpp's F16 conversion, the fp16 reference for fidelity), as a user's first export does.

    .venv/bin/python benchmarks/export_times.py [--backends gguf,mlx,onnx,wasm] [--tiers fp16,int8,int4,int3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import CACHE, smollm2_gguf  # noqa: E402

GOAL_S = 180
DEVICE = {"gguf": "raspberry-pi-5", "mlx": "m3-pro", "onnx": "pixel-8", "wasm": "browser"}
KOLM = [sys.executable, "-m", "kolm.cli"]


def default_pack_artifact() -> Path:
    """SmolLM2-135M-Instruct with kolm's default eval pack (`kolm pack --from-gguf`), cached."""
    out = CACHE / "SmolLM2-135M-Instruct.default-pack.kolm"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([*KOLM, "pack", "--from-gguf", str(smollm2_gguf()), "-o", str(out)], check=True)
    return out


def export(artifact: Path, backend: str, tier: str, out: Path) -> tuple[float, dict | str]:
    """(seconds, the printed record) of one `kolm export --json`, or (seconds, its error line)."""
    command = [*KOLM, "export", str(artifact), "--target", DEVICE[backend], "--backend", backend]
    command += ["--quant", tier, "-o", str(out), "--json", "--allow-drop"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return seconds, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="gguf,mlx,onnx,wasm")
    parser.add_argument("--tiers", default="fp16,int8,int4,int3")
    args = parser.parse_args()
    from kolm.plugins import registry

    artifact = default_pack_artifact()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print(f"{'backend':<8}{'tier':<6}{'seconds':>9}  {'K':>6} {'top-1':>6}  within {GOAL_S} s")
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        for backend in args.backends.split(","):
            os.environ["KOLM_HOME"] = str(Path(work) / f"home-{backend}")
            offered = registry().backend(backend).tiers
            for tier in (t for t in args.tiers.split(",") if t in offered):
                seconds, record = export(artifact, backend, tier, Path(work) / f"{backend}-{tier}")
                if isinstance(record, str):
                    print(f"{backend:<8}{tier:<6}{seconds:9.1f}  failed: {record}")
                    continue
                k = record["k"]
                top1 = f"{k['fidelity']['top1_agreement']:.3f}" if k.get("fidelity") else "-"
                verdict = "yes" if seconds <= GOAL_S else "NO"
                print(f"{backend:<8}{tier:<6}{seconds:9.1f}  {k['score']:6.3f} {top1:>6}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
