"""GGUF export: Hugging Face weights -> F16 GGUF (llama.cpp's own converter, `kolm_gguf.upstream`)
-> llama.cpp's own quantizer (`llama_model_quantize` of the pinned llama-cpp-python)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, toolchain_versions
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
    partial = target.with_name(f".{target.name}.part")
    try:
        with captured_stderr() as log:
            code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if code != 0:
            reason = next((line for line in reversed(log) if line.strip()), "no message")
            raise BackendError(f"llama.cpp's quantizer failed turning {source.name} into {spelling}: {reason}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def export_gguf(request: ExportRequest) -> ExportResult:
    from kolm_gguf import upstream

    f16 = request.work_dir / "model.F16.gguf"
    with request.steps(f"converting to GGUF F16 with llama.cpp's converter ({upstream.commit()[:10]})"):
        upstream.convert(request.model_dir, f16, request.manifest.base)
    target = request.out_dir / payload_name(request)
    if request.spelling == "F16":
        os.replace(f16, target)
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
