"""The two data hooks most backend plugins answer the same way, from JSON shipped in the package:
`devices.json` (device rows) and `throughput.json` (calibration). A plugin binds them in two lines:

    _data = PluginData(__package__, backend="gguf")
    device_profiles, forecast_throughput = _data.device_profiles, _data.forecast_throughput
"""

from __future__ import annotations

from functools import cached_property

from kolm import hookimpl
from kolm.devices import DeviceProfile, load_device_rows
from kolm.forecast import SizeForecast
from kolm.throughput import Calibration, ThroughputForecast, load_calibration, roofline


class PluginData:
    """Device rows and throughput calibration of one backend, loaded on first use."""

    def __init__(self, package: str, backend: str) -> None:
        self.package = package
        self.backend = backend

    @cached_property
    def calibration(self) -> Calibration:
        return load_calibration(self.package)

    @hookimpl
    def device_profiles(self) -> list[DeviceProfile]:
        return load_device_rows(self.package)

    @hookimpl
    def forecast_throughput(
        self, device: DeviceProfile, tier: str, backend: str, size: SizeForecast
    ) -> ThroughputForecast | None:
        if backend != self.backend:
            return None
        efficiency = self.calibration.efficiency_for(device)
        if efficiency is None:
            return None
        forecast = roofline(device, size.read_per_token_bytes, efficiency, self.calibration.factor(tier))
        if tier in self.calibration.tier_factor:
            forecast.sources.append(self.calibration.tier_factor[tier].source)
        return forecast
