"""kolm-coreml: iPhone rows and forecasts. Export through coremltools lands with its own issue."""

from kolm import hookimpl
from kolm.backends import Backend
from kolm.plugin_data import PluginData

BACKEND = Backend(
    name="coreml",
    description="Core ML packages for iPhone, converted by coremltools (prediction needs macOS)",
    tiers={"fp16": "fp16", "int8": "int8 linear", "int4": "int4 per-block", "int3": "3-bit palettize"},
    toolchain=["coremltools"],
    install="pip install kolm-coreml coremltools",
)

_data = PluginData(__package__, backend=BACKEND.name)
device_profiles, forecast_throughput = _data.device_profiles, _data.forecast_throughput


@hookimpl
def backends() -> list[Backend]:
    return [BACKEND]
