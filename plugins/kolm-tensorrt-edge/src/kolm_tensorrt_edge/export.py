"""kolm-tensorrt-edge's export, TensorRT Edge-LLM's two host steps on the CPU:

1. int8 / int4: its quantizer (`quantize_and_export`, the `tensorrt-edgellm-quantize llm` command's
   function, ModelOpt underneath) on the CPU, calibrated on prompts of kolm's default eval pack
   instead of a dataset from the Hub; fp16 starts from the artifact's own weights;
2. its exporter, run as its own command (`python -m tensorrt_edgellm.scripts.export CKPT OUT`, the
   `tensorrt-edgellm-export` console script), which writes `OUT/llm/`.

The quantized checkpoint gets the artifact's tokenizer files back before step 2 (the quantizer
re-saves them through transformers), so every tier's folder carries the same tokenizer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, toolchain_versions
from kolm.errors import BackendError
from kolm.evalpack import CALIBRATION_PROMPTS, calibration_prompts
from kolm.pack import MODEL_FILES
from kolm.quiet import quiet

from kolm_tensorrt_edge.device_scripts import write_device_scripts
from kolm_tensorrt_edge.layout import GRAPH, WEIGHTS

TOKENIZER_FILES = tuple(name for name in MODEL_FILES if name.startswith(("tokenizer", "special_tokens")))


def quantized_checkpoint(model_dir: Path, quantization: str, into: Path) -> None:
    """Edge-LLM's quantizer on the CPU: `model_dir` quantized with `quantization` into `into`."""
    prompts = calibration_prompts()
    with quiet("modelopt", "tensorrt_edgellm"):
        from tensorrt_edgellm.quantization.quantize import quantize_and_export

        quantize_and_export(
            model_dir=str(model_dir),
            output_dir=str(into),
            quantization=quantization,
            device="cpu",
            text_dataset=lambda: iter(prompts),
            num_samples=len(prompts),
        )
    for name in TOKENIZER_FILES:
        (into / name).unlink(missing_ok=True)
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, into / name)


def onnx_export(checkpoint: Path, into: Path, log: Path) -> Path:
    """Edge-LLM's exporter as its own process; returns the `llm/` folder it wrote, or one line with
    the last thing it printed when it fails."""
    command = [sys.executable, "-m", "tensorrt_edgellm.scripts.export", str(checkpoint), str(into)]
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not (into / "llm" / GRAPH).is_file():
        printed = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
        last = next((line for line in reversed(printed) if line), f"exit {done.returncode}")
        raise BackendError(f"tensorrt-edgellm-export failed: {last}")
    return into / "llm"


def export_tensorrt_edge(request: ExportRequest) -> ExportResult:
    options, work = request.recipe.options, request.work_dir
    checkpoint = request.model_dir
    if options:
        checkpoint = work / "quantized"
        with request.steps(f"quantizing ({request.spelling}) with TensorRT Edge-LLM's quantizer on the CPU"):
            try:
                quantized_checkpoint(request.model_dir, options["quantization"], checkpoint)
            except (IndexError, NotImplementedError, ValueError) as exc:  # a shape ModelOpt cannot pack
                raise BackendError(f"Edge-LLM's quantizer could not quantize {request.manifest.base}: {exc}") from exc
    with request.steps("exporting ONNX with tensorrt-edgellm-export"):
        llm = onnx_export(checkpoint, work / "onnx", work / "tensorrt-edgellm-export.log")
    exported = sorted(p.name for p in llm.iterdir() if p.is_file())
    for name in exported:
        os.replace(llm / name, request.out_dir / name)
    scripts = write_device_scripts(request.out_dir)
    first = [GRAPH, WEIGHTS]
    payload = first + [n for n in exported if n not in first] + scripts
    versions = ("kolm-tensorrt-edge", "tensorrt-edgellm", "torch", "transformers", "onnx")
    return ExportResult(
        payload=payload,
        toolchain=toolchain_versions(*versions, *(("nvidia-modelopt",) if options else ())),
        flags={"format": "TensorRT Edge-LLM ONNX (llm_build --onnxDir)", "builder": "llm_build", **options}
        | ({"calibration": f"{CALIBRATION_PROMPTS} prompts of kolm's default eval pack"} if options else {}),
    )
