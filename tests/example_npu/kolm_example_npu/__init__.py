"""A forecast-only third-party backend: Rockchip's RKLLM on an RK3588 NPU. kolm cannot run RKLLM's
toolkit here, so the plugin has no `export` hook and `kolm export` says so in one line."""

from kolm import hookimpl
from kolm.api import ModelSpec, SizeForecast, TierRecipe
from kolm.plugin_data import PluginData

_data = PluginData(__package__)  # backend.json, devices.json, throughput.json beside this file
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, recipe: TierRecipe) -> SizeForecast:
    """Example rule, not checked against an RKLLM file: weights at `bits`, one fp32 scale per row."""
    bits = recipe.options["bits"]
    weights = sum(
        t.numel * bits // 8 + 4 * t.shape[0] if len(t.shape) == 2 else 2 * t.numel for t in spec.inventory.tensors
    )
    return SizeForecast(
        bytes=weights,
        read_per_token_bytes=weights,
        method=f"{recipe.spelling}: {bits}-bit weights, fp32 row scales (example rule)",
    )
