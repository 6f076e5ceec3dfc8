"""GGUF export: Hugging Face weights -> F16 GGUF (llama.cpp's own converter, `kolm_gguf.upstream`)
-> llama.cpp's own quantizer (`llama_model_quantize` of the pinned llama-cpp-python).

The F16 GGUF of the models converted last stays in `$KOLM_HOME/cache/gguf/` (`kolm.cache`: one model
unless KOLM_CACHE_MODELS says more), keyed by the artifact's payload hashes and the converter's
commit: `kolm pack` converts once to measure the fp16 K, and exporting the model's tiers after it
reuses that conversion."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, kolm_home, toolchain_versions
from kolm.atomic import atomic_file
from kolm.cache import make_room, used
from kolm.errors import BackendError

from kolm_gguf.runtime import captured_stderr, import_llama_cpp


def payload_name(request: ExportRequest) -> str:
    return f"{request.manifest.base}.{request.spelling}.gguf"


def quantize(source: Path, target: Path, spelling: str) -> None:
    """`llama_model_quantize` into a temporary name; a failure leaves no file behind."""
    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{spelling}")
    params.nthread = os.cpu_count() or 1
    with atomic_file(target) as partial:
        with captured_stderr() as log:
            code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if code != 0:
            reason = next((line for line in reversed(log) if line.strip()), "no message")
            raise BackendError(f"llama.cpp's quantizer failed turning {source.name} into {spelling}: {reason}")


def converted(request: ExportRequest) -> Path:
    """The model's F16 GGUF from llama.cpp's converter: the cached one if this artifact was
    converted lately, else a new conversion, which takes the place of the least recently used
    (`kolm.cache`)."""
    from kolm_gguf import upstream

    hashes = "".join(sorted(p.sha256 for p in request.manifest.payload))
    key = hashlib.sha256(f"{hashes}{upstream.commit()}".encode()).hexdigest()[:32]
    cache = kolm_home() / "cache" / "gguf"
    f16 = cache / f"{key}.F16.gguf"
    if f16.is_file():
        with request.steps("reusing the F16 GGUF llama.cpp's converter wrote for this model"):
            return used(f16)
    cache.mkdir(parents=True, exist_ok=True)
    make_room(cache.glob("*.F16.gguf"))
    with request.steps(f"converting to GGUF F16 with llama.cpp's converter ({upstream.commit()[:10]})"):
        upstream.convert(request.model_dir, f16, request.manifest.base)
    return f16


def export_gguf(request: ExportRequest) -> ExportResult:
    from kolm_gguf import upstream

    f16 = converted(request)
    target = request.out_dir / payload_name(request)
    if request.spelling == "F16":
        shutil.copyfile(f16, target)  # a copy: the manifest is embedded into the payload in place
    else:
        with request.steps(f"quantizing to {request.spelling} with llama.cpp"):
            quantize(f16, target, request.spelling)
    return ExportResult(
        payload=[target.name],
        toolchain={
            **toolchain_versions("kolm-gguf", "llama-cpp-python", "torch", "transformers", "sentencepiece"),
            "llama.cpp": upstream.commit(),
        },
        flags={
            "converter": "convert_hf_to_gguf.py --outtype f16 (vendored from llama-cpp-python's sdist)",
            "ftype": request.spelling,
            "quantizer": "llama_model_quantize defaults" if request.spelling != "F16" else "none",
        },
    )
