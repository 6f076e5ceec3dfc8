#!/usr/bin/env python3
"""CLI start-up: wall time of `kolm --help` and of a forecast preview against a bare interpreter.

Goal: at most 150 ms over `python -c pass`, and no heavy module (toolchain, numpy) imported.
Run with the interpreter of the environment kolm is installed in:
    .venv/bin/python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = [
    "torch",
    "transformers",
    "llama_cpp",
    "gguf",
    "numpy",
    "safetensors",
    "mlx",
    "coremltools",
    "onnxruntime",
    "optimum",
    "tensorrt_llm",
]
PREVIEW = ["export", "Llama-3.1-8B", "--target", "raspberry-pi-5", "--quant", "int4", "--preview", "--json"]
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "kolm --help": [sys.executable, "-m", "kolm.cli", "--help"],
    "kolm export ... --preview --json": [sys.executable, "-m", "kolm.cli", *PREVIEW],
}


def wall(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def heavy_modules(args: list[str]) -> list[str]:
    probe = (
        "import sys\nfrom kolm.cli import cli\ntry:\n    cli.main(args=sys.argv[1:], prog_name='kolm')\n"
        f"except SystemExit:\n    pass\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
    return json.loads(proc.stderr.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    results = {name: wall(cmd, runs) for name, cmd in CASES.items()}
    base = statistics.median(results["python -c pass"])
    print(f"{'command':<36}{'min ms':>9}{'median ms':>11}{'over python':>13}  heavy modules")
    for name, times in results.items():
        median = statistics.median(times)
        heavy = (
            ""
            if name.startswith("python")
            else ", ".join(heavy_modules(["--help"] if "help" in name else PREVIEW)) or "none"
        )
        print(f"{name:<36}{min(times) * 1e3:>9.0f}{median * 1e3:>11.0f}{(median - base) * 1e3:>+12.0f}  {heavy}")
    print(f"\n{runs} runs each; goal: ≤ +150 ms over python and no heavy module")


if __name__ == "__main__":
    main()
