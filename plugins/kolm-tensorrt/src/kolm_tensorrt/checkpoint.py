"""The files of a kolm-tensorrt export, the Hugging Face checkpoint layout TensorRT-LLM's
`trtllm-serve` loads: `model.safetensors` or its shards (as ModelOpt's `export_hf_checkpoint` writes them),
`hf_quant_config.json` (ModelOpt's quantization record, absent at fp16), the artifact's own
`config.json` with ModelOpt's `quantization_config` added and the RS-1 manifest under
`kolm_manifest`, the tokenizer files and chat template byte for byte, and `serve.sh`."""

from __future__ import annotations

import json
from pathlib import Path

from kolm.atomic import atomic_file
from kolm.errors import ArtifactError
from kolm.pack import MODEL_FILES

QUANT_CONFIG, CONFIG, SERVE = "hf_quant_config.json", "config.json", "serve.sh"
INDEX = "model.safetensors.index.json"
MANIFEST_KEY = "kolm_manifest"
SIDE_FILES = tuple(name for name in MODEL_FILES if name not in (CONFIG, INDEX))
"""The artifact's files copied as they are: generation config, tokenizer, chat template."""

SERVE_SCRIPT = """#!/bin/sh
# Serve this folder with TensorRT-LLM's OpenAI-compatible server (PyTorch backend: no engine build).
# Needs an NVIDIA GPU and TensorRT-LLM 1.2 or later, which installs from NVIDIA's index:
#   pip install tensorrt-llm --extra-index-url https://pypi.nvidia.com
# Binds 127.0.0.1 unless HOST says otherwise; then: curl http://127.0.0.1:8000/v1/models
set -e
cd "$(dirname "$0")"
exec trtllm-serve . --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --max_seq_len "${MAX_SEQ_LEN:-4096}"
"""


def read_json(path: Path) -> dict:
    """A JSON object file of the export, or one line saying why it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path.name}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{path.name}: not a JSON object")
    return data


def write_json(path: Path, data: dict) -> None:
    """`data` as `path`, replacing it only once completely written (kolm.atomic.atomic_file)."""
    with atomic_file(path) as part:
        part.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_config(out_dir: Path, original: dict, quantization: dict | None) -> None:
    """The artifact's config.json, with ModelOpt's `quantization_config` where it quantized."""
    write_json(out_dir / CONFIG, {**original, **({"quantization_config": quantization} if quantization else {})})


def write_serve_script(out_dir: Path) -> None:
    path = out_dir / SERVE
    path.write_text(SERVE_SCRIPT, encoding="utf-8")
    path.chmod(0o755)


def set_manifest(out_dir: Path, manifest_json: str) -> None:
    """Stamp the RS-1 manifest into config.json (transformers and TensorRT-LLM keep unknown keys)."""
    write_json(out_dir / CONFIG, {**read_json(out_dir / CONFIG), MANIFEST_KEY: manifest_json})


def quant_algo(out_dir: Path) -> str | None:
    """ModelOpt's `quant_algo` (`W8A16`, `W4A16_AWQ` ...), None for an unquantized checkpoint."""
    if not (out_dir / QUANT_CONFIG).is_file():
        return None
    quantization = read_json(out_dir / QUANT_CONFIG).get("quantization")
    if not isinstance(quantization, dict):
        raise ArtifactError(f"{QUANT_CONFIG}: no `quantization` object")
    return quantization.get("quant_algo")
