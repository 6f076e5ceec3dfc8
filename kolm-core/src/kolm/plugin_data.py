"""The data files a plugin ships and the three hooks answered from them.

- `backend.json`: the `kolm.api.Backend` the plugin owns (its tier table, or `builds_on`);
- `devices.json`: `{"devices": [DeviceProfile, ...]}`, every constant with its source;
- `throughput.json`: the `kolm.throughput.Calibration` of the roofline.

Each is validated against its schema (`kolm schema backend|devices|throughput`); a file that does
not validate is one `PluginError` line naming the file and the field. A plugin binds the hooks in
two lines:

    _data = PluginData(__package__)
    backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput
"""

from __future__ import annotations

from functools import cached_property
from importlib.resources import files

from pydantic import ConfigDict, Field, ValidationError, model_validator

from kolm import hookimpl
from kolm.api import Backend, ModelSpec, SizeForecast, ThroughputForecast
from kolm.datamodel import KolmModel
from kolm.devices import MEASURED, USER, DeviceProfile
from kolm.errors import PluginError, one_line
from kolm.quant import Tier
from kolm.throughput import Calibration, ceiling, roofline


class DeviceRows(KolmModel):
    """`devices.json`: the device rows a plugin contributes."""

    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceProfile] = Field(description="The rows; a row for a known name only adds backends and aliases.")

    @model_validator(mode="after")
    def _published_sources(self) -> DeviceRows:
        """A shipped row cites what it was read from: only this machine's row is measured by kolm, and
        only a user's own rows are the user's word."""
        for row in self.devices:
            if {row.memory_gb.source, row.bandwidth_gbps.source} & {MEASURED, USER}:
                raise ValueError(f"{row.name}: a shipped row cites a public URL, not {MEASURED} or {USER}")
        return self


SCHEMAS: dict[str, type[KolmModel]] = {"backend": Backend, "devices": DeviceRows, "throughput": Calibration}
"""The data files' names (without `.json`) and the models that are their schemas."""


def read_data(package: str, name: str):
    """`package`'s data file `name`.json, validated against its schema; one line if it does not."""
    where = f"{package}/{name}.json"
    try:
        text = files(package).joinpath(f"{name}.json").read_text(encoding="utf-8")
        return SCHEMAS[name].model_validate_json(text)
    except OSError as exc:
        raise PluginError(f"{where}: cannot read it ({exc.strerror or exc})") from exc
    except ValidationError as exc:
        raise PluginError(f"{where}: {one_line(exc)}") from exc


class PluginData:
    """The backend declaration, device rows and throughput calibration of one plugin package."""

    def __init__(self, package: str) -> None:
        self.package = package

    @cached_property
    def declared(self) -> Backend:
        return read_data(self.package, "backend")

    @cached_property
    def calibration(self) -> Calibration:
        return read_data(self.package, "throughput")

    @hookimpl
    def backend(self) -> Backend:
        return self.declared

    @hookimpl
    def device_profiles(self) -> list[DeviceProfile]:
        return read_data(self.package, "devices").devices

    @hookimpl
    def forecast_throughput(
        self, device: DeviceProfile, spec: ModelSpec | None, tier: Tier, size: SizeForecast
    ) -> ThroughputForecast | None:
        efficiency = self.calibration.efficiency_for(device)
        if efficiency is None:
            return None
        if spec is not None and spec.active_params < spec.inventory.params:
            return ceiling(
                device,
                size.read_per_token_bytes,
                "the efficiency bands were measured on dense models, none on a mixture of experts",
            )
        forecast = roofline(device, size.read_per_token_bytes, efficiency, self.calibration.factor(tier))
        if tier in self.calibration.tier_factor:
            forecast.sources.append(self.calibration.tier_factor[tier].source)
        return forecast


def json_schema(name: str) -> dict:
    """The JSON Schema of data file `name` (`kolm schema`)."""
    schema = SCHEMAS[name].model_json_schema()
    schema["$id"] = f"https://kolm.dev/schema/plugin/{name}.json"
    schema["title"] = f"{name}.json of a kolm plugin"
    return schema
