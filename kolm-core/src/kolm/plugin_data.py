"""The three data hooks every backend plugin answers the same way, from JSON shipped in its package:
`backend.json` (the `Backend` it owns), `devices.json` (device rows) and `throughput.json`
(calibration). A plugin binds them in two lines:

    _data = PluginData(__package__)
    backends, device_profiles, forecast_throughput = _data.backends, _data.device_profiles, _data.forecast_throughput
"""

from __future__ import annotations

from functools import cached_property
from importlib.resources import files

from kolm import hookimpl
from kolm.backends import Backend
from kolm.devices import DeviceProfile, load_device_rows
from kolm.forecast import SizeForecast
from kolm.throughput import Calibration, ThroughputForecast, load_calibration, roofline


class PluginData:
    """The backend declaration, device rows and throughput calibration of one plugin package."""

    def __init__(self, package: str) -> None:
        self.package = package

    @cached_property
    def backend(self) -> Backend:
        return Backend.model_validate_json(files(self.package).joinpath("backend.json").read_text(encoding="utf-8"))

    @cached_property
    def calibration(self) -> Calibration:
        return load_calibration(self.package)

    @hookimpl
    def backends(self) -> list[Backend]:
        return [self.backend]

    @hookimpl
    def device_profiles(self) -> list[DeviceProfile]:
        return load_device_rows(self.package)

    @hookimpl
    def forecast_throughput(
        self, device: DeviceProfile, tier: str, backend: str, size: SizeForecast
    ) -> ThroughputForecast | None:
        if backend != self.backend.name:
            return None
        efficiency = self.calibration.efficiency_for(device)
        if efficiency is None:
            return None
        forecast = roofline(device, size.read_per_token_bytes, efficiency, self.calibration.factor(tier))
        if tier in self.calibration.tier_factor:
            forecast.sources.append(self.calibration.tier_factor[tier].source)
        return forecast
