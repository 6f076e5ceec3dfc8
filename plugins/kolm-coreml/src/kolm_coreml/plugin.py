"""kolm-coreml: iPhone rows and forecasts. Export through coremltools lands with its own issue."""

from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput
