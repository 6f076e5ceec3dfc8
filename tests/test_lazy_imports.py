"""`kolm --help` and `kolm export --preview` must not import a toolchain or converter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = [
    "torch",
    "transformers",
    "llama_cpp",
    "gguf",
    "numpy",
    "safetensors",
    "mlx",
    "mlx_lm",
    "coremltools",
    "onnx",
    "onnxruntime",
    "onnxruntime_genai",
    "optimum",
    "tensorrt_llm",
    "tensorrt_edgellm",
    "modelopt",
    "playwright",
]
PROBE = """
import json, sys
from kolm.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="kolm")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["export", "Llama-3.1-8B", "--target", "raspberry-pi-5", "--quant", "int4", "--preview", "--json"],
        ["pick", "SmolLM2-135M-Instruct", "--json"],
        ["devices"],
    ],
)
def test_no_heavy_module_is_imported(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True)
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == []
