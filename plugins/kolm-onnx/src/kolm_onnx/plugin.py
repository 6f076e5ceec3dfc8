"""kolm-onnx: Android rows and forecasts. Export through ONNX Runtime lands with its own issue."""

from kolm import hookimpl
from kolm.backends import Backend
from kolm.plugin_data import PluginData

BACKEND = Backend(
    name="onnx",
    description="ONNX Runtime models for Android and Windows on ARM (MatMulNBits weight quantization)",
    tiers={"fp16": "fp16", "int8": "int8 MatMulNBits", "int4": "int4 MatMulNBits"},
    toolchain=["onnxruntime"],
    install="pip install kolm-onnx onnxruntime",
)

_data = PluginData(__package__, backend=BACKEND.name)
device_profiles, forecast_throughput = _data.device_profiles, _data.forecast_throughput


@hookimpl
def backends() -> list[Backend]:
    return [BACKEND]
