"""kolm-onnx: ONNX Runtime exports through onnxruntime-genai's model builder (Android, Windows on ARM).

Forecasts are answered from data and `size` without importing the toolchain; export, run, bench
and read_payload import it inside the hook.
"""

from __future__ import annotations

from pathlib import Path

from kolm import hookimpl
from kolm.api import (
    BenchRequest,
    BenchResult,
    DeviceProfile,
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
def forecast_size(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> SizeForecast:
    from kolm_onnx.size import onnx_size, ships_ort

    return onnx_size(spec, recipe.options, with_ort=ships_ort(device))


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
    """Stamp `model.onnx`'s metadata_props; the phone's `model.ort` is re-serialised from it."""
    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, ORT_FILE, set_metadata, write_ort

    require_toolchain("onnx")
    main = out_dir / payload[0]
    set_metadata(main, MANIFEST_KEY, manifest_json)
    if ORT_FILE in payload:
        write_ort(main, out_dir / ORT_FILE)
    return True


@hookimpl
def run(request: RunRequest) -> Session:
    from kolm_onnx.runtime import OnnxSession

    return OnnxSession(request.path, n_ctx=request.n_ctx, threads=request.threads)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, matmul_kinds, metadata, tier_of

    require_toolchain("onnx")
    main = request.path / request.payload[0]
    kinds = matmul_kinds(main)
    recipes = {tier: recipe.options for tier, recipe in _data.declared.tiers.items()}
    return PayloadFacts(
        manifest_json=metadata(main).get(MANIFEST_KEY),
        tier=tier_of(kinds, recipes),
        types=", ".join(f"{n} {kind}" for kind, n in kinds.most_common()),
    )


@hookimpl
def bench(request: BenchRequest) -> BenchResult:
    from kolm_onnx.bench import bench_onnx

    return bench_onnx(request)
