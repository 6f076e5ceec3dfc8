#!/usr/bin/env python3
"""`kolm matrix` on a local Ray against the same cells run serially (`--serial`, in one process):
wall time of each, their ratio, and the scheduling overhead per cell.

The matrix: SmolLM2-135M-Instruct (packed once, benchmarks/common.py) and a second artifact of the
same weights (another eval pack; or, with `--big`, a random Llama with Llama-3.2-1B's shapes) x a
Raspberry Pi 5 (gguf) and the browser (wasm) x int8 and int4. The
cells of one model run one after another (they share its fp16 conversion), so Ray's gain comes from
running models side by side; with one model the two should take about as long. Overhead per cell =
(Ray's wall time - its critical path, the longest model's sum of cell seconds) / cells: starting
Ray, shipping each task, collecting its result. Each run starts from an empty results folder (each
model's first cell converts it to fp16 again, as a user's first run does).

    .venv/bin/python benchmarks/matrix_ray.py [--cpus 2] [--big]
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
from common import CACHE, random_1b_artifact, smollm2_artifact  # noqa: E402

KOLM = Path(sys.executable).with_name("kolm")
TARGETS, TIERS = "raspberry-pi-5,browser", "int8,int4"


def second_model() -> Path:
    """SmolLM2 packed again with another one-item eval pack: the same work as the first model but
    another artifact (its own chain of cells and KOLM_HOME), so the two can run side by side."""
    from common import smollm2_gguf
    from kolm.pack import pack_import
    from kolm.plugins import registry

    twin = CACHE / "SmolLM2-twin.kolm"
    if not twin.exists():
        pack = CACHE / "one-twin.jsonl"
        pack.write_text('{"id": "de", "prompt": "The capital of Germany is", "kind": "contains", "answer": "Berlin"}\n')
        pack_import(registry(), smollm2_gguf(), pack, None, twin, "Apache-2.0", min_k=0.0)
    return twin


def run(models: list[Path], out: Path, *options: str) -> tuple[float, list[dict]]:
    command = [KOLM, "matrix", "-m", ",".join(map(str, models)), "-t", TARGETS, "-q", TIERS, "-o", out, "--json"]
    start = time.perf_counter()
    done = subprocess.run([*command, *options], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"kolm matrix failed: {done.stderr[-2000:]}")
    return wall, [json.loads(line) for line in done.stdout.splitlines()]


def critical_path(results: list[dict]) -> float:
    chains: dict[str, float] = {}
    for r in results:
        chains[r["cell"]["model"]] = chains.get(r["cell"]["model"], 0.0) + (r["seconds"] or 0.0)
    return max(chains.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--big", action="store_true", help="the second model is a random 1B Llama")
    args = parser.parse_args()
    models = [smollm2_artifact(), random_1b_artifact() if args.big else second_model()]
    with tempfile.TemporaryDirectory() as tmp:
        env_home = Path(tmp) / "home"
        os.environ["KOLM_HOME"] = str(env_home)
        serial_wall, serial = run(models, Path(tmp) / "serial", "--serial")
        ray_wall, ray = run(models, Path(tmp) / "ray", "--cpus", str(args.cpus))
    cells = len(ray)
    overhead = (ray_wall - critical_path(ray)) / cells
    print(f"machine: {platform.node()}, {len(os.sched_getaffinity(0))} CPUs; {cells} cells, {len(models)} models")
    print(f"{'run':<22}{'wall s':>8}{'sum of cell s':>16}")
    print(f"{'serial (one process)':<22}{serial_wall:8.1f}{sum(r['seconds'] for r in serial):16.1f}")
    print(f"{f'Ray, {args.cpus} CPUs':<22}{ray_wall:8.1f}{sum(r['seconds'] for r in ray):16.1f}")
    print(f"Ray / serial: {ray_wall / serial_wall:.2f}; scheduling overhead {overhead:.1f} s a cell")


if __name__ == "__main__":
    main()
