"""kolm-wasm: the browser row and its forecast. The payload is the GGUF that kolm-gguf writes, so
its size is asked of the `gguf` backend through the hook, never by importing that plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kolm import hookimpl
from kolm.backends import Backend
from kolm.plugin_data import PluginData

if TYPE_CHECKING:
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec

BACKEND = Backend(
    name="wasm",
    description="A static browser bundle: wllama (llama.cpp in WebAssembly) and a GGUF payload",
    tiers={"fp16": "F16", "int8": "Q8_0", "int4": "Q4_K_M", "int3": "Q3_K_S"},
    toolchain=["llama_cpp", "gguf"],
    install="pip install kolm-wasm kolm-gguf",
)

_data = PluginData(__package__, backend=BACKEND.name)
device_profiles, forecast_throughput = _data.device_profiles, _data.forecast_throughput


@hookimpl
def backends() -> list[Backend]:
    return [BACKEND]


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str) -> SizeForecast | None:
    if backend != BACKEND.name:
        return None
    from kolm.plugins import registry

    return registry().hook.forecast_size(spec=spec, tier=tier, backend="gguf")
