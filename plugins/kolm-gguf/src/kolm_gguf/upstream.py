"""llama.cpp's own Hugging Face -> GGUF converter, vendored unmodified in `vendor/llama.cpp/` from the
llama-cpp-python sdist kolm-gguf pins (so conversion and the quantizer come from one llama.cpp
commit; `scripts/refresh_llama_cpp.py` refreshes it). It runs in a subprocess of this interpreter:
its own gguf-py (newer than PyPI's) shadows any installed `gguf` there, torch is imported only
there, and a crash or a memory spike never takes kolm down with it.

Its toolchain is the `convert` extra: torch (CPU wheel), transformers, sentencepiece, numpy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from kolm.api import ModelSpec
from kolm.atomic import atomic_file, scratch_dir
from kolm.errors import BackendError, KolmError, ToolchainMissingError, UnsupportedModelError

VENDORED = Path(__file__).parent / "vendor" / "llama.cpp"
CONVERTER = VENDORED / "convert_hf_to_gguf.py"
NEEDS = ("torch", "transformers", "sentencepiece", "numpy")
INSTALL = (
    "pip install 'kolm-gguf[convert]' (torch's CPU wheel: add --extra-index-url https://download.pytorch.org/whl/cpu)"
)
# The converter's last exception says whose problem it is: the model's (unsupported architecture or
# tokenizer, a config it cannot read) or the toolchain's (a missing module, memory, the disk).
MODEL_ERRORS = (
    "NotImplementedError",
    "KeyError",
    "ValueError",
    "AssertionError",
    "TypeError",
    "IndexError",
    "AttributeError",
)
TOOLCHAIN_MISSING = ("ModuleNotFoundError", "ImportError")
EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception))(?::\s*(.*))?$")


@cache
def commit() -> str:
    """The llama.cpp commit the vendored converter comes from."""
    return json.loads((VENDORED / "VENDORED.json").read_text(encoding="utf-8"))["llama.cpp_commit"]


@cache
def architectures() -> frozenset[str]:
    """The Hugging Face architectures the vendored converter registers (recorded when vendored)."""
    return frozenset(json.loads((VENDORED / "VENDORED.json").read_text(encoding="utf-8"))["architectures"])


# Architectures whose converter reads only a SentencePiece tokenizer.model (conversion/gemma.py
# Gemma2Model.set_vocab; conversion/phi.py Phi3MiniModel.set_vocab, unless the tokenizer is GPT-2's).
SENTENCEPIECE_ONLY = {"Gemma2ForCausalLM", "Phi3ForCausalLM"}


def cannot_convert(spec: ModelSpec) -> str | None:
    """Why the converter will refuse `spec`, known without running it: an architecture it does not
    register, a model folder without a tokenizer (it writes the vocabulary into the GGUF), or
    without the SentencePiece model its architecture's converter reads."""
    if spec.arch not in architectures():
        return f"llama.cpp's converter ({commit()[:7]}) does not convert {spec.arch}"
    files = spec.model_files()
    if files is None:
        return None
    if not files & {"tokenizer.json", "tokenizer.model"}:
        return "the model has no tokenizer (tokenizer.json or tokenizer.model); llama.cpp's converter needs one"
    if spec.arch in SENTENCEPIECE_ONLY and "tokenizer.model" not in files and not gpt2_tokenizer(spec):
        return f"llama.cpp's converter reads {spec.arch}'s vocabulary only from a SentencePiece tokenizer.model"
    return None


def gpt2_tokenizer(spec: ModelSpec) -> bool:
    """Whether the model's tokenizer_config names GPT-2's tokenizer, which the converter reads as BPE
    even beside a tokenizer.model (conversion/phi.py)."""
    raw = spec.read_model_file("tokenizer_config.json")
    return raw is not None and json.loads(raw).get("tokenizer_class") == "GPT2Tokenizer"


def require_toolchain() -> None:
    """One line naming the install when a module the converter imports is missing."""
    missing = [module for module in NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        raise ToolchainMissingError(f"llama.cpp's converter needs {', '.join(missing)}: {INSTALL}")


def convert(model_dir: Path, out_path: Path, model: str) -> None:
    """Convert the Hugging Face folder `model_dir` to an F16 GGUF at `out_path` (written under a
    temporary name, renamed when complete), named `model` whatever the folder is called."""
    require_toolchain()
    # Python's bytecode cache as usual (PYTHONDONTWRITEBYTECODE dropped): where torch and transformers
    # were installed without .pyc files (uv, pip --no-compile) the first conversion writes them, and
    # every later one starts ~1 s sooner (5.1 s instead of 6.2 s to the converter's --help, 2026-11-30).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the converter must use its own gguf-py
    # The converter's metadata falls back to the folder's name (general.finetune, basename, size
    # label): it reads the model's name, never a scratch folder's, so that the bytes do not depend on
    # which kolm command extracted the weights (pack's scratch once leaked into every export's GGUF).
    with atomic_file(out_path) as partial, scratch_dir(out_path) as named:
        source = named / model.replace("/", "-")
        source.symlink_to(Path(model_dir).resolve(), target_is_directory=True)
        command = [sys.executable, str(CONVERTER), str(source), "--outtype", "f16", "--outfile", str(partial)]
        command += ["--model-name", model]
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise failure(proc.stderr + proc.stdout, model, proc.returncode)


def failure(output: str, model: str, code: int) -> KolmError:
    """The converter's own reason, in one line, as the error whose exit code says whose problem it is."""
    if code < 0:
        return BackendError(f"llama.cpp's converter was killed (signal {-code}) converting {model}")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    raised = next((m for line in reversed(lines) if (m := EXCEPTION.match(line))), None)
    if raised is None:
        refused = next((line.split(":", 2)[-1] for line in reversed(lines) if line.startswith("ERROR:")), None)
        if refused:  # the converter's own refusal, logged before it exits (e.g. "Model X is not supported")
            return UnsupportedModelError(f"llama.cpp's converter cannot convert {model}: {refused}")
        return BackendError(f"llama.cpp's converter failed on {model}: {lines[-1] if lines else f'exit code {code}'}")
    kind, message = raised.group(1), (raised.group(2) or "").strip().rstrip(":")
    reason = f"{kind}: {message}" if message else kind
    if kind in TOOLCHAIN_MISSING:
        return ToolchainMissingError(f"llama.cpp's converter cannot run: {reason}; {INSTALL}")
    if kind in MODEL_ERRORS:
        return UnsupportedModelError(f"llama.cpp's converter cannot convert {model}: {reason}")
    return BackendError(f"llama.cpp's converter failed on {model}: {reason}")
