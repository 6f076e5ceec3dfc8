"""kolm-tensorrt-edge: Jetson Orin exports, the ONNX folder TensorRT Edge-LLM's `llm_build` turns
into a TensorRT engine on the device.

kolm quantizes and exports on the host's CPU; it runs nothing (the engine is built and run on the
Jetson), so K is not measured by kolm and the export carries `build.sh` and `run.sh`. The backend
joins kolm-gguf's Jetson rows (`runs_on`). Forecasts are answered from data and `size` without
importing the toolchain.
"""

from __future__ import annotations

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
    from kolm_tensorrt_edge.size import tensorrt_edge_size

    return tensorrt_edge_size(spec, tier, recipe.options)


@hookimpl
def cannot_export(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
    from kolm_tensorrt_edge.support import cannot_export as refusal

    return refusal(spec, recipe, device)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    _data.declared.require(*_data.declared.toolchain)
    from kolm_tensorrt_edge.export import export_tensorrt_edge

    return export_tensorrt_edge(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    from kolm_tensorrt_edge.layout import set_manifest

    set_manifest(out_dir / payload[0], manifest_json)
    return True


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    """The tier from the graph (Edge-LLM's int4 GEMM op, int8 weights behind QuantizeLinear, else
    float16) and the manifest from its metadata."""
    _data.declared.require("onnx")
    from kolm_tensorrt_edge.layout import read_graph

    manifest, algo, types = read_graph(request.path / request.payload[0])
    found = [(t, r) for t, r in _data.declared.recipes() if r.options.get("quant_algo", "none") == algo]
    tier, recipe = found[0] if found else (None, None)
    return PayloadFacts(
        manifest_json=manifest,
        tier=tier,
        recipe=recipe.name if recipe else None,
        types=", ".join(f"{n} {dtype}" for dtype, n in types.most_common()) + f" ({algo})",
    )
