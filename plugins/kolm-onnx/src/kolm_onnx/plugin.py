"""kolm-onnx: ONNX Runtime exports through onnxruntime-genai's model builder (Android, Windows on ARM).

Forecasts are answered from data and `size` without importing the toolchain; export, run, bench
and read_payload import it inside the hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kolm import hookimpl
from kolm.plugin_data import PluginData

if TYPE_CHECKING:
    from kolm.bench import BenchRequest, BenchResult
    from kolm.devices import DeviceProfile
    from kolm.export import ExportRequest, ExportResult
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec
    from kolm.session import PayloadFacts, RunRequest, Session

_data = PluginData(__package__)
backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput
ONNX = _data.backend.name


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str, device: DeviceProfile) -> SizeForecast | None:
    if backend != ONNX:
        return None
    from kolm_onnx.size import onnx_size

    return onnx_size(spec, tier, with_ort=device is not None and device.kind == "phone")


@hookimpl
def export(request: ExportRequest) -> ExportResult | None:
    if request.backend != ONNX:
        return None
    from kolm_onnx.export import export_onnx

    return export_onnx(request)


@hookimpl
def embed_manifest(result: ExportResult, manifest_json: str) -> bool | None:
    """Stamp `model.onnx`'s metadata_props; the phone's `model.ort` is re-serialised from it."""
    if result.backend != ONNX:
        return None
    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, ORT_FILE, set_metadata, write_ort

    require_toolchain("onnx")
    main = result.out_dir / result.payload[0]
    set_metadata(main, MANIFEST_KEY, manifest_json)
    if ORT_FILE in result.payload:
        write_ort(main, result.out_dir / ORT_FILE)
    return True


@hookimpl
def run(request: RunRequest) -> Session | None:
    if request.backend != ONNX:
        return None
    from kolm_onnx.runtime import OnnxSession

    return OnnxSession(request.path, n_ctx=request.n_ctx, threads=request.threads)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts | None:
    if request.backend != ONNX:
        return None
    from kolm.session import PayloadFacts

    from kolm_onnx.export import require_toolchain
    from kolm_onnx.graph import MANIFEST_KEY, matmul_kinds, metadata, tier_of

    require_toolchain("onnx")
    main = request.path / request.payload[0]
    kinds = matmul_kinds(main)
    return PayloadFacts(manifest_json=metadata(main).get(MANIFEST_KEY), tier=tier_of(kinds),
                        types=", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))


@hookimpl
def bench(request: BenchRequest) -> BenchResult | None:
    if request.backend != ONNX:
        return None
    from kolm_onnx.bench import bench_onnx

    return bench_onnx(request)
