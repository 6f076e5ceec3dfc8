"""The scripts an export carries for the Jetson: `build.sh` builds the TensorRT engine there with
TensorRT Edge-LLM's `llm_build` (engines are tied to the device's TensorRT and JetPack, so they are
never built on the host), `run.sh` generates with `llm_inference` from `input.json`.

The commands are those of TensorRT Edge-LLM 0.11.0's installation guide and quick start (C++
build on the device with `-DEMBEDDED_TARGET=jetson-orin`; `llm_build --onnxDir --engineDir
--maxBatchSize --maxInputLen --maxKVCacheCapacity`; `llm_inference --engineDir --inputFile
--outputFile --dumpProfile`). Its support matrix lists Jetson Orin on JetPack 7.2 (CUDA 13.2,
FP16 / INT8 / INT4); 0.10.0 listed JetPack 6.2 (CUDA 12.6) as compatible.
"""

from __future__ import annotations

import json
from pathlib import Path

SOURCE_REVISION = "74f8732a7e8d1377e34471ad2652988346f18813"
"""The commit TensorRT Edge-LLM 0.11.0's wheels were built from (`source_revision` in their
`tensorrt_edgellm/_native/variants.json`): the C++ tools must match the exporter's ONNX."""

BUILD, RUN, INPUT = "build.sh", "run.sh", "input.json"

PREAMBLE = f"""#!/bin/sh
# On the Jetson Orin (JetPack 7.2, L4T R39.2), with TensorRT Edge-LLM's C++ tools built there once
# from the source of the exporter that made this folder (TensorRT Edge-LLM 0.11.0):
#   sudo apt install -y cmake build-essential git
#   git clone https://github.com/NVIDIA/TensorRT-Edge-LLM.git && cd TensorRT-Edge-LLM
#   git checkout {SOURCE_REVISION} && git submodule update --init --recursive
#   mkdir -p build && cd build && cmake .. -DCMAKE_BUILD_TYPE=Release -DTRT_PACKAGE_DIR=/usr \\
#     -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64_linux_toolchain.cmake -DEMBEDDED_TARGET=jetson-orin \\
#     -DCUDA_CTK_VERSION=13.2 -DENABLE_CUTE_DSL=ALL && make -j"$(nproc)"
# then point EDGELLM_BUILD at that build folder: EDGELLM_BUILD=$HOME/TensorRT-Edge-LLM/build sh THIS
set -e
cd "$(dirname "$0")"
TOOLS="${{EDGELLM_BUILD:?set EDGELLM_BUILD to TensorRT-Edge-LLM/build (see the top of this script)}}/examples/llm"
"""

BUILD_SCRIPT = (
    PREAMBLE
    + """# Builds engine/ from this folder, once per device and JetPack (how long it takes has not been
# measured by kolm). Longer prompts or contexts: MAX_INPUT_LEN / MAX_KV_CACHE (tokens), more memory.
exec "$TOOLS/llm_build" --onnxDir . --engineDir engine --maxBatchSize 1 \\
  --maxInputLen "${MAX_INPUT_LEN:-1024}" --maxKVCacheCapacity "${MAX_KV_CACHE:-4096}"
"""
)

RUN_SCRIPT = (
    PREAMBLE
    + """# Generates for the requests in input.json (or INPUT) into output.json (or OUTPUT) and prints
# prefill and decode tokens/s (--dumpProfile).
exec "$TOOLS/llm_inference" --engineDir engine --inputFile "${INPUT:-input.json}" \\
  --outputFile "${OUTPUT:-output.json}" --dumpProfile
"""
)

INPUT_REQUESTS = {
    "batch_size": 1,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 1,
    "max_generate_length": 128,
    "requests": [{"messages": [{"role": "user", "content": "What is the capital of France?"}]}],
}
"""One greedy request (top_k 1) in llm_inference's input format."""


def write_device_scripts(out_dir: Path) -> list[str]:
    """Write build.sh, run.sh (executable) and input.json into `out_dir`; returns their names."""
    for name, text in ((BUILD, BUILD_SCRIPT), (RUN, RUN_SCRIPT)):
        (out_dir / name).write_text(text, encoding="utf-8")
        (out_dir / name).chmod(0o755)
    (out_dir / INPUT).write_text(json.dumps(INPUT_REQUESTS, indent=2) + "\n", encoding="utf-8")
    return [BUILD, RUN, INPUT]


def scripts_bytes() -> int:
    """What the three files weigh, for the size forecast."""
    return len(BUILD_SCRIPT.encode()) + len(RUN_SCRIPT.encode()) + len(json.dumps(INPUT_REQUESTS, indent=2)) + 1
