"""kolm-tensorrt's export: the artifact's Hugging Face model quantized on the CPU by NVIDIA ModelOpt
(`mtq.quantize` with the recipe's config, calibrated on prompts of kolm's default eval pack) and
written by ModelOpt's `export_hf_checkpoint`, the checkpoint format TensorRT-LLM's `trtllm-serve`
loads (`hf_quant_config.json` names the algorithm). fp16 is the artifact's own weights.

Around it: the artifact's config.json with ModelOpt's `quantization_config` (not the one
transformers re-serialises, which an older transformers inside TensorRT-LLM may not read), the
tokenizer files and chat template byte for byte, and `serve.sh` with the exact `trtllm-serve` line."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, toolchain_versions
from kolm.errors import BackendError
from kolm.evalpack import CALIBRATION_PROMPTS, calibration_prompts
from kolm.plugin_data import read_data
from kolm.quiet import quiet

from kolm_tensorrt.checkpoint import (
    CONFIG,
    INDEX,
    QUANT_CONFIG,
    SIDE_FILES,
    read_json,
    write_config,
    write_serve_script,
)


def modelopt_config(name: str, group_size: int | None) -> dict:
    """ModelOpt's quantization config `name`, its weight quantizers' block size set to `group_size`
    where the recipe gives one (INT4_AWQ_CFG ships groups of 128)."""
    import modelopt.torch.quantization as mtq

    config = copy.deepcopy(getattr(mtq, name))
    if group_size:
        for entry in config["quant_cfg"]:
            if entry.get("quantizer_name") == "*weight_quantizer":
                entry["cfg"]["block_sizes"][-1] = group_size
    return config


def quantized_checkpoint(model_dir: Path, options: dict, into: Path) -> dict:
    """Quantize the model in `model_dir` with the recipe's ModelOpt config on the CPU and export it
    to `into`; returns the `quantization_config` ModelOpt put in its config.json."""
    with quiet("modelopt"):
        import modelopt.torch.quantization as mtq
        import torch
        from modelopt.torch.export import export_hf_checkpoint
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        batches = [tokenizer(p, return_tensors="pt").input_ids for p in calibration_prompts()]
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

        def calibrate(m) -> None:
            with torch.no_grad():
                for ids in batches:
                    m(ids)

        model = mtq.quantize(model, modelopt_config(options["config"], options.get("group_size")), calibrate)
        with torch.inference_mode():
            export_hf_checkpoint(model.half(), dtype=torch.float16, export_dir=into)
    return read_json(into / CONFIG)["quantization_config"]


def weight_files(folder: Path) -> list[str]:
    """The checkpoint's weights: `model.safetensors`, or its shards and their index."""
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    return shards + ([INDEX] if (folder / INDEX).is_file() else [])


def export_tensorrt(request: ExportRequest) -> ExportResult:
    read_data("kolm_tensorrt", "backend").require("modelopt", "torch", "transformers")
    options, out = request.recipe.options, request.out_dir
    quantization = None
    if options:
        staged = request.work_dir / "modelopt"
        with request.steps(f"quantizing ({request.spelling}) with NVIDIA ModelOpt on the CPU"):
            try:
                quantization = quantized_checkpoint(request.model_dir, options, staged)
            except (NotImplementedError, ValueError) as exc:  # a shape or layer ModelOpt cannot export
                raise BackendError(f"ModelOpt could not export {request.manifest.base}: {exc}") from exc
        for name in (*weight_files(staged), QUANT_CONFIG):
            os.replace(staged / name, out / name)
    else:
        for name in weight_files(request.model_dir):
            shutil.copyfile(request.model_dir / name, out / name)
    write_config(out, read_json(request.model_dir / CONFIG), quantization)
    for name in SIDE_FILES:
        if (request.model_dir / name).is_file():
            shutil.copyfile(request.model_dir / name, out / name)
    write_serve_script(out)
    weights = weight_files(out)
    payload = [*weights, *sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in weights)]
    versions = ("kolm-tensorrt", "nvidia-modelopt", "torch", "transformers") if options else ("kolm-tensorrt",)
    return ExportResult(
        payload=payload,
        toolchain=toolchain_versions(*versions),
        flags={"format": "ModelOpt Hugging Face checkpoint (hf_quant_config.json)", "server": "trtllm-serve", **options}
        | ({"calibration": f"{CALIBRATION_PROMPTS} prompts of kolm's default eval pack"} if options else {}),
    )
