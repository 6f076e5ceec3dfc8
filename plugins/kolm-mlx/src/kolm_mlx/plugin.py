"""kolm-mlx: MLX exports for Apple Silicon through mlx-lm (runs on Linux CPU with `mlx[cpu]`).

Device rows, forecasts and payload reading need no toolchain; export, run, serve and bench import
mlx-lm inside the hook.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from kolm import hookimpl
from kolm.plugin_data import PluginData

if TYPE_CHECKING:
    from kolm.bench import BenchRequest, BenchResult
    from kolm.export import ExportRequest, ExportResult
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec
    from kolm.session import PayloadFacts, RunRequest, Session

_data = PluginData(__package__)
backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput
MLX = _data.backend.name


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str) -> SizeForecast | None:
    if backend != MLX:
        return None
    from kolm_mlx.size import mlx_size

    return mlx_size(spec, tier)


@hookimpl
def export(request: ExportRequest) -> ExportResult | None:
    if request.backend != MLX:
        return None
    from kolm_mlx.export import export_mlx

    return export_mlx(request)


@hookimpl
def embed_manifest(result: ExportResult, manifest_json: str) -> bool | None:
    if result.backend != MLX:
        return None
    from kolm_mlx.safetensors_file import MANIFEST_KEY, set_metadata

    set_metadata(result.out_dir / result.payload[0], MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session | None:
    if request.backend != MLX:
        return None
    from kolm_mlx.runtime import MlxSession

    return MlxSession(request.path)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts | None:
    if request.backend != MLX:
        return None
    from kolm.errors import ArtifactError
    from kolm.session import PayloadFacts

    from kolm_mlx.quant_plan import tier_of, type_mix
    from kolm_mlx.safetensors_file import MANIFEST_KEY, read_header

    metadata, tensors = read_header(request.path / request.payload[0])
    for name in request.payload[1:]:
        if name.endswith(".safetensors"):
            tensors.update(read_header(request.path / name)[1])
    try:
        config = json.loads((request.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{request.path}: no readable config.json ({exc})") from exc
    quant = config.get("quantization")
    said = f"config.json quantization {quant}" if quant else "config.json: not quantized"
    return PayloadFacts(manifest_json=metadata.get(MANIFEST_KEY), tier=tier_of(tensors, config),
                        types=f"{type_mix(tensors)}; {said}")


@hookimpl
def bench(request: BenchRequest) -> BenchResult | None:
    if request.backend != MLX:
        return None
    from kolm_mlx.bench import bench_mlx

    return bench_mlx(request)
