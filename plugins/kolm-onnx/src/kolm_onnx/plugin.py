"""kolm-onnx: ONNX Runtime exports through onnxruntime-genai's model builder (Android, Windows on ARM).

Forecasts are answered from data and `size` without importing the toolchain; export, run, bench
and read_payload import it inside the hook.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kolm import hookimpl
from kolm.api import (
    BenchRequest,
    BenchResult,
    ExportRequest,
    ExportResult,
    ModelSpec,
    PayloadFacts,
    RunRequest,
    Session,
    SizeForecast,
    TierRecipe,
)
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, recipe: TierRecipe) -> SizeForecast:
    from kolm_onnx.size import onnx_size

    return onnx_size(spec, recipe.options)


@hookimpl
def cannot_export(spec: ModelSpec) -> str | None:
    from kolm_onnx.support import cannot_build

    return cannot_build(spec)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    from kolm_onnx.export import export_onnx

    return export_onnx(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    """Stamp `model.onnx`'s metadata_props (its weights file is not read)."""
    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, set_metadata

    require_toolchain("onnx")
    set_metadata(out_dir / payload[0], MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session:
    from kolm_onnx.runtime import OnnxSession

    return OnnxSession(request.path, n_ctx=request.n_ctx, threads=request.threads)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, metadata, recipe_of, weight_matmuls

    require_toolchain("onnx")
    main = request.path / request.payload[0]
    kinds = weight_matmuls(main)
    tier, recipe = recipe_of(kinds, _data.declared.recipes()) or (None, None)
    return PayloadFacts(
        manifest_json=metadata(main).get(MANIFEST_KEY),
        tier=tier,
        recipe=recipe,
        types=", ".join(f"{n} {kind}" for kind, n in Counter(kinds.values()).most_common()),
    )


@hookimpl
def bench(request: BenchRequest) -> BenchResult:
    from kolm_onnx.bench import bench_onnx

    return bench_onnx(request)
