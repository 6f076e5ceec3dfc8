"""kolm-mlx: Apple Silicon rows and forecasts. Export through mlx-lm lands with its own issue."""

from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput
