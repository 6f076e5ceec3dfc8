#!/usr/bin/env python3
"""What `kolm verify` spends its time on.

1. SHA-256 throughput of kolm (kolm.artifact.sha256_file) vs coreutils `sha256sum` on a 1 GB
   file (goal >= 0.9x).
2. K-scoring time per eval item for SmolLM2-135M-Instruct at each tier, on the default pack.

    .venv/bin/python benchmarks/verify_speed.py [--gb 1] [--items 40] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import CACHE, smollm2_artifact, timed  # noqa: E402


def sha_throughput(gb: float, runs: int) -> tuple[float, float]:
    from kolm.artifact import sha256_file

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE) as f:
        chunk = os.urandom(2**20)
        for _ in range(int(gb * 1024)):
            f.write(chunk)
        f.flush()
        path = Path(f.name)
        ours = timed(lambda: sha256_file(path), runs)
        theirs = timed(lambda: subprocess.run(["sha256sum", str(path)], check=True, capture_output=True), runs)
        size = path.stat().st_size
    return size / statistics.median(ours) / 1e6, size / statistics.median(theirs) / 1e6


def scoring_per_item(n_items: int) -> list[tuple[str, float, float]]:
    from kolm.evalpack import DEFAULT_EVAL_PACK, load_eval_pack
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.kscore import score_pack
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry
    from kolm.quant import TIERS
    from kolm.record import open_session

    reg = registry()
    artifact = smollm2_artifact()
    items = load_eval_pack(DEFAULT_EVAL_PACK)[:n_items]
    device = reg.devices().find("raspberry-pi-5")
    rows = []
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        for tier in TIERS:
            planned = forecast(reg, resolve_model(str(artifact)), device, tier)
            out = Path(work) / tier
            record = export_artifact(
                reg, artifact, device, tier, "gguf", out, planned.size_bytes, planned.read_per_token_bytes, score=False
            )
            with open_session(reg, out, record) as session:
                start = time.perf_counter()
                result = score_pack(session, items)
                rows.append((tier, (time.perf_counter() - start) / len(items), result.k))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ours, theirs = sha_throughput(args.gb, args.runs)
    print(f"SHA-256 of a {args.gb:g} GB file, median of {args.runs}")
    print(f"  kolm (hashlib, 8 MiB reads)  {ours:8.0f} MB/s")
    print(f"  sha256sum                    {theirs:8.0f} MB/s")
    print(f"  ratio kolm / sha256sum: {ours / theirs:.2f}x  (goal >= 0.9x)\n")
    print(f"K-scoring SmolLM2-135M-Instruct, first {args.items} items of the default pack, {os.cpu_count()} cores")
    print(f"  {'tier':<6}{'s / item':>10}{'K':>8}")
    for tier, per_item, k in scoring_per_item(args.items):
        print(f"  {tier:<6}{per_item:>10.3f}{k:>8.3f}")


if __name__ == "__main__":
    main()
