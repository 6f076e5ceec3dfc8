"""kolm-mlx: Apple Silicon rows and forecasts. Export through mlx-lm lands with its own issue."""

from kolm import hookimpl
from kolm.backends import Backend
from kolm.plugin_data import PluginData

BACKEND = Backend(
    name="mlx",
    description="MLX safetensors for Apple Silicon, converted and run by mlx-lm",
    tiers={"fp16": "fp16", "int8": "8-bit g64", "int4": "4-bit g64", "int3": "3-bit g64"},
    toolchain=["mlx", "mlx_lm"],
    install="pip install kolm-mlx mlx-lm  (Linux CPU: pip install 'mlx[cpu]' mlx-lm)",
)

_data = PluginData(__package__, backend=BACKEND.name)
device_profiles, forecast_throughput = _data.device_profiles, _data.forecast_throughput


@hookimpl
def backends() -> list[Backend]:
    return [BACKEND]
