"""kolm-mlx: MLX exports for Apple Silicon through mlx-lm (runs on Linux CPU with `mlx[cpu]`).

Device rows, forecasts and payload reading need no toolchain; export, run, serve and bench import
mlx-lm inside the hook. Each tier's recipe in backend.json is `mlx_lm.convert`'s own arguments.
"""

from __future__ import annotations

import json
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
    Tier,
    TierRecipe,
)
from kolm.errors import ArtifactError
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, tier: Tier, recipe: TierRecipe) -> SizeForecast:
    from kolm_mlx.size import mlx_size

    return mlx_size(spec, tier, recipe)


@hookimpl
def cannot_export(spec: ModelSpec) -> str | None:
    from kolm_mlx.support import cannot_load

    return cannot_load(spec)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    from kolm_mlx.export import export_mlx

    return export_mlx(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    from kolm_mlx.safetensors_file import MANIFEST_KEY, set_metadata

    set_metadata(out_dir / payload[0], MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session:
    from kolm_mlx.runtime import MlxSession

    return MlxSession(request.path)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    from kolm.safetensors_header import read_header

    from kolm_mlx.quant_plan import recipe_of, type_mix
    from kolm_mlx.safetensors_file import MANIFEST_KEY

    metadata, tensors = read_header(request.path / request.payload[0])
    for name in request.payload[1:]:
        if name.endswith(".safetensors"):
            tensors.update(read_header(request.path / name)[1])
    try:
        config = json.loads((request.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{request.path}: no readable config.json ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("quantization") or {}, dict):
        raise ArtifactError(f"{request.path}: config.json is not a model config (an object, quantization an object)")
    quant = config.get("quantization")
    said = f"config.json quantization {quant}" if quant else "config.json: not quantized"
    tier, recipe = recipe_of(tensors, config, _data.declared.recipes()) or (None, None)
    return PayloadFacts(
        manifest_json=metadata.get(MANIFEST_KEY),
        tier=tier,
        recipe=recipe,
        types=f"{type_mix(tensors)}; {said}",
    )


@hookimpl
def bench(request: BenchRequest) -> BenchResult:
    from kolm_mlx.bench import bench_mlx

    return bench_mlx(request)
