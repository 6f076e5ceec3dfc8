#!/usr/bin/env python3
"""CLI start-up: wall time of `kolm --help` and of a forecast preview against a bare interpreter,
and where the preview's time goes.

Goal: at most 150 ms over `python -c pass`, and no heavy module (toolchain, numpy) imported.
Each command runs once first with bytecode caching on (a user's second run), then `--runs` times
as a new process; the median is reported. The breakdown sums `python -X importtime` self times
by top-level package (one run, so it is indicative) and counts the rest as run time.
Run with the interpreter of the environment kolm is installed in:
    .venv/bin/python benchmarks/cli_startup.py [--runs 11]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

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
# What any CLI on kolm's stack pays before kolm's own code: click, pluggy (+ importlib.metadata for
# entry points) and one validated pydantic model (pydantic builds its machinery on first use).
FLOOR = (
    "import click, pluggy, importlib.metadata\nfrom pydantic import BaseModel, Field\n"
    "class M(BaseModel):\n    a: int = Field(0, ge=0)\nM(a=1).model_dump()"
)
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dependencies alone (see FLOOR)": [sys.executable, "-c", FLOOR],
    "kolm --help": [sys.executable, "-m", "kolm.cli", "--help"],
    "kolm export ... --preview --json": [sys.executable, "-m", "kolm.cli", *PREVIEW],
}
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as on a user's machine


def wall(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)  # writes .pyc
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        times.append(time.perf_counter() - start)
    return times


def heavy_modules(args: list[str]) -> list[str]:
    probe = (
        "import sys\nfrom kolm.cli import cli\ntry:\n    cli.main(args=sys.argv[1:], prog_name='kolm')\n"
        f"except SystemExit:\n    pass\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=ENV)
    return json.loads(proc.stderr.strip().splitlines()[-1].replace("'", '"'))


def import_breakdown(args: list[str]) -> tuple[dict[str, float], float]:
    """Self import time per top-level package (ms) of one run, and that run's total wall time (ms)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kolm.cli", *args], capture_output=True, text=True, env=ENV
    )
    total = (time.perf_counter() - start) * 1e3
    by_package: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = line.removeprefix("import time:").split("|")
            top = name.strip().split(".")[0]
            by_package[
                top
                if top in ("pydantic", "pydantic_core", "click", "pluggy", "rich") or top.startswith("kolm")
                else "stdlib and other"
            ] += int(self_us) / 1e3
    return dict(by_package), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    runs = parser.parse_args().runs
    results = {name: wall(cmd, runs) for name, cmd in CASES.items()}
    base = statistics.median(results["python -c pass"])
    print(f"{'command':<36}{'min ms':>9}{'median ms':>11}{'over python':>13}  heavy modules")
    for name, times in results.items():
        median = statistics.median(times)
        heavy = (
            ""
            if not name.startswith("kolm")
            else ", ".join(heavy_modules(["--help"] if "help" in name else PREVIEW)) or "none"
        )
        print(f"{name:<36}{min(times) * 1e3:>9.0f}{median * 1e3:>11.0f}{(median - base) * 1e3:>+12.0f}  {heavy}")
    own = statistics.median(results["kolm export ... --preview --json"]) - statistics.median(
        results["dependencies alone (see FLOOR)"]
    )
    print(f"\n{runs} runs each; goal: ≤ +150 ms over python and no heavy module")
    print(f"kolm's own share of the preview, over the dependencies alone: {own * 1e3:+.0f} ms")
    imports, total = import_breakdown(PREVIEW)
    print(f"\nwhere one preview run's {total:.0f} ms go (python -X importtime self times, summed by package):")
    for package, ms in sorted(imports.items(), key=lambda kv: -kv[1]):
        print(f"  import {package:<24}{ms:>7.0f} ms")
    print(f"  {'interpreter start, plugins, forecast':<31}{total - sum(imports.values()):>7.0f} ms  (the rest)")


if __name__ == "__main__":
    main()
