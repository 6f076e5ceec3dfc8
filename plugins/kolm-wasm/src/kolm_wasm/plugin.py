"""kolm-wasm: the browser row and its forecast. The payload is the GGUF that kolm-gguf writes, so
its size is asked of the `gguf` backend through the hook, never by importing that plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kolm import hookimpl
from kolm.plugin_data import PluginData

if TYPE_CHECKING:
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec

_data = PluginData(__package__)
backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, tier: str, backend: str) -> SizeForecast | None:
    if backend != _data.backend.name:
        return None
    from kolm.plugins import registry

    return registry().hook.forecast_size(spec=spec, tier=tier, backend="gguf")
