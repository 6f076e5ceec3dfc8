"""ONNX export: onnxruntime-genai's model builder (`-p fp32|int8|int4 -e cpu`) and the artifact's own
tokenizer files. Phones get the same `model.onnx`: onnxruntime-genai on Android runs on the full
`onnxruntime-android` package, which loads ONNX-format models (the ORT-format-only
`onnxruntime-mobile` package ended at 1.18.0, https://mvnrepository.com/artifact/com.microsoft.onnxruntime/onnxruntime-mobile)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from kolm.api import ExportRequest, ExportResult, toolchain_versions
from kolm.errors import BackendError
from kolm.plugin_data import read_data

from kolm_onnx.size import TOKENIZER_FILES

MAIN = "model.onnx"
BUILDER = "onnxruntime_genai.models.builder"


def require_toolchain(*modules: str) -> None:
    """One line naming the first missing module and backend.json's install."""
    read_data("kolm_onnx", "backend").require(*modules)


def precision(options: dict) -> str:
    """The builder's `-p` for a recipe's options: `int8`/`int4` by `bits`, `fp32` without."""
    return f"int{options['bits']}" if "bits" in options else "fp32"


def extra_options(options: dict) -> list[str]:
    """The builder's `--extra_options` for a recipe's options: every option but `bits` (which the
    precision, `-p int4`, already says), as `key=value`."""
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items() if k != "bits"]


def build(request: ExportRequest) -> list[str]:
    """Run the model builder into `request.out_dir`; returns its exact command line."""
    command = [
        sys.executable,
        "-m",
        BUILDER,
        "-i",
        str(request.model_dir),
        "-o",
        str(request.out_dir),
        "-p",
        precision(request.recipe.options),
        "-e",
        "cpu",
        "-c",
        str(request.work_dir / "builder-cache"),
    ]
    if extra := extra_options(request.recipe.options):
        command += ["--extra_options", *extra]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise BackendError(
            f"onnxruntime-genai's builder failed at {request.spelling}: {lines[-1] if lines else 'no message'}"
        )
    return command


def use_artifact_tokenizer(request: ExportRequest) -> None:
    """Replace the tokenizer files the builder re-saved (with the builder's transformers) by the
    artifact's own, byte for byte, so older loaders read them too and the forecast counts them."""
    for name in TOKENIZER_FILES:
        (request.out_dir / name).unlink(missing_ok=True)
        if (request.model_dir / name).is_file():
            shutil.copyfile(request.model_dir / name, request.out_dir / name)


def export_onnx(request: ExportRequest) -> ExportResult:
    require_toolchain("onnxruntime_genai", "onnxruntime", "onnx", "torch", "transformers")
    with request.steps(f"building the ONNX model ({request.spelling}) with onnxruntime-genai"):
        command = build(request)
    use_artifact_tokenizer(request)
    files = sorted(p.name for p in request.out_dir.iterdir() if p.is_file() and p.name != MAIN)
    flags: dict[str, str | int | bool] = {
        "builder": " ".join(["python", "-m", BUILDER, "-i", "MODEL", "-o", "OUT", *command[7:11], *command[13:]]),
        "precision": precision(request.recipe.options),
        "execution_provider": "cpu",
        "tokenizer": "artifact's files, unchanged",
    }
    if request.recipe.options:
        flags.update(request.recipe.options, symmetric=True, scales="float32")
    return ExportResult(
        payload=[MAIN, *files],
        toolchain=toolchain_versions("kolm-onnx", "onnxruntime-genai", "onnxruntime", "onnx", "transformers", "torch"),
        flags=flags,
    )
