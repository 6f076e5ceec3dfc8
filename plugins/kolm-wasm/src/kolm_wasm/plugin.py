"""kolm-wasm: the browser target. The payload is the GGUF that the `gguf` backend writes; every
hook that touches it (size, export, manifest, run, read-back, bench) is asked of that backend
through the hook, never by importing kolm-gguf. This plugin adds the page, wllama's runtime, the
split into browser-sized parts, and a static server (`kolm serve`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
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
WASM = _data.backend.name


def _as_gguf(request):
    """The same request, addressed to the gguf backend (the registry checked to have it)."""
    from kolm_wasm.bundle import GGUF, gguf_registry

    return gguf_registry(), request.model_copy(update={"backend": GGUF})


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str, device: DeviceProfile) -> SizeForecast | None:
    if backend != WASM:
        return None
    from kolm.plugins import registry

    return registry().hook.forecast_size(spec=spec, tier=tier, backend="gguf", device=device)


@hookimpl
def export(request: ExportRequest) -> ExportResult | None:
    if request.backend != WASM:
        return None
    from kolm_wasm.bundle import export_bundle

    return export_bundle(request)


@hookimpl
def embed_manifest(result: ExportResult, manifest_json: str) -> bool | None:
    if result.backend != WASM:
        return None
    reg, as_gguf = _as_gguf(result)
    return reg.hook.embed_manifest(result=as_gguf, manifest_json=manifest_json)


@hookimpl
def run(request: RunRequest) -> Session | None:
    if request.backend != WASM:
        return None
    from kolm_wasm.session import WasmSession

    reg, as_gguf = _as_gguf(request)
    return WasmSession(request.path, reg.hook.run(request=as_gguf))


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts | None:
    if request.backend != WASM:
        return None
    reg, as_gguf = _as_gguf(request)
    if len(request.payload) == 1:
        return reg.hook.read_payload(request=as_gguf)
    from kolm_wasm.bundle import merge_parts

    with tempfile.TemporaryDirectory(prefix=".kolm-wasm-") as work:  # the tensor types span every part
        merged = merge_parts([request.path / p for p in request.payload], Path(work) / "merged.gguf")
        return reg.hook.read_payload(request=as_gguf.model_copy(update={"path": merged.parent,
                                                                        "payload": [merged.name]}))


@hookimpl
def bench(request: BenchRequest) -> BenchResult | None:
    if request.backend != WASM:
        return None
    reg, as_gguf = _as_gguf(request)
    result = reg.hook.bench(request=as_gguf)
    return result.model_copy(update={"backend": WASM, "runtime": f"{result.runtime} (native; the tab runs wllama)"})
