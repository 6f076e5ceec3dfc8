"""kolm-tensorrt: NVIDIA GPU exports, ModelOpt-quantized Hugging Face checkpoints for TensorRT-LLM.

kolm quantizes and exports on the CPU; it runs nothing (TensorRT-LLM needs an NVIDIA GPU and
installs from NVIDIA's own index), so K is not measured by kolm and the export carries `serve.sh`.
The device rows are kolm-gguf's (RTX, Jetson), which name this backend. Forecasts are answered
from data and `size` without importing the toolchain.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kolm import hookimpl
from kolm.api import (
    DeviceProfile,
    ExportRequest,
    ExportResult,
    ModelSpec,
    PayloadFacts,
    RunRequest,
    SizeForecast,
    Tier,
    TierRecipe,
)
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, forecast_throughput = _data.backend, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, tier: Tier, recipe: TierRecipe) -> SizeForecast:
    from kolm_tensorrt.size import tensorrt_size

    return tensorrt_size(spec, tier, recipe.options)


@hookimpl
def cannot_export(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
    from kolm_tensorrt.support import cannot_export as refusal

    return refusal(spec, recipe, device)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    from kolm_tensorrt.export import export_tensorrt

    return export_tensorrt(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    from kolm_tensorrt.checkpoint import set_manifest

    set_manifest(out_dir, manifest_json)
    return True


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    """The tier from ModelOpt's `quant_algo` and the stored weight types (int8 weights for W8A16,
    packed uint8 for W4A16 AWQ, float16 alone for fp16); the manifest from config.json."""
    from kolm.artifact import folder_inventory

    from kolm_tensorrt.checkpoint import CONFIG, MANIFEST_KEY, quant_algo, read_json

    algo = quant_algo(request.path)
    types = Counter(t.dtype for t in folder_inventory(request.path).tensors)
    weight_type = {None: "F16", "W8A16": "I8", "W4A16_AWQ": "U8"}.get(algo)
    found = [
        (tier, recipe)
        for tier, recipe in _data.declared.recipes()
        if recipe.options.get("quant_algo") == algo and weight_type in types
    ]
    tier, recipe = found[0] if found else (None, None)
    return PayloadFacts(
        manifest_json=read_json(request.path / CONFIG).get(MANIFEST_KEY),
        tier=tier,
        recipe=recipe.name if recipe else None,
        types=", ".join(f"{n} {dtype}" for dtype, n in types.most_common()) + f" ({algo or 'no quantization'})",
    )
