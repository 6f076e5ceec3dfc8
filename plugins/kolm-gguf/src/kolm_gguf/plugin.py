"""kolm-gguf: GGUF exports through llama.cpp (llama-cpp-python and gguf).

Forecasts are answered from data and `quant_plan` without importing the toolchain; export, run
and bench import it inside the hook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from kolm import hookimpl
from kolm.errors import ArtifactError
from kolm.plugin_data import PluginData

if TYPE_CHECKING:
    from kolm.bench import BenchRequest, BenchResult
    from kolm.export import ExportRequest, ExportResult
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec
    from kolm.session import PayloadFacts, RunRequest, Session

_data = PluginData(__package__)
backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput
GGUF = _data.backend.name


@hookimpl
def import_weights(source: Path, out_dir: Path, steps) -> str | None:
    with open(source, "rb") as f:
        if f.read(4) != b"GGUF":
            if source.suffix.lower() == ".gguf":
                raise ArtifactError(f"{source}: not a GGUF file (no GGUF magic)")
            return None
    from kolm_gguf.convert import gguf_to_hf

    with steps(f"dequantizing {source.name} to float16 safetensors") as advance:
        gguf_to_hf(source, out_dir, progress=advance)
    return source.name.split(".")[0]  # SmolLM2-135M-Instruct.Q4_1.gguf -> SmolLM2-135M-Instruct


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str) -> SizeForecast | None:
    if backend != GGUF:
        return None
    from kolm_gguf.size import gguf_size

    return gguf_size(spec, tier)


@hookimpl
def export(request: ExportRequest) -> ExportResult | None:
    if request.backend != GGUF:
        return None
    from kolm_gguf.export import export_gguf

    return export_gguf(request)


@hookimpl
def embed_manifest(result: ExportResult, manifest_json: str) -> bool | None:
    if result.backend != GGUF:
        return None
    from kolm_gguf.gguf_file import MANIFEST_KEY, set_string

    set_string(result.out_dir / result.payload[0], MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session | None:
    if request.backend != GGUF:
        return None
    from kolm_gguf.runtime import GgufSession

    return GgufSession(request.path / request.payload[0], n_ctx=request.n_ctx,
                       threads=request.threads or os.cpu_count(), seed=request.seed)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts | None:
    if request.backend != GGUF:
        return None
    from kolm.session import PayloadFacts

    from kolm_gguf.gguf_file import MANIFEST_KEY, read_header
    from kolm_gguf.size import tier_of, type_mix

    header = read_header(request.path / request.payload[0])
    return PayloadFacts(manifest_json=header.get(MANIFEST_KEY),
                        tier=tier_of(header.tensors, header.get("general.architecture", "llama")),
                        types=type_mix(kind for _, _, kind in header.tensors)[1])


@hookimpl
def bench(request: BenchRequest) -> BenchResult | None:
    if request.backend != GGUF:
        return None
    from kolm_gguf.bench import bench_gguf

    return bench_gguf(request, request.path / request.payload[0])
