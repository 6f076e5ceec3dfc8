"""kolm-core's own hook implementations, registered like any plugin and called last.

They answer only when no backend plugin does: a nominal size (tier bits per weight plus one fp16
scale per 32-weight block) and the bandwidth ceiling of the roofline, labelled as uncalibrated.
"""

from __future__ import annotations

from kolm import hookimpl
from kolm.devices import DeviceProfile
from kolm.forecast import SizeForecast
from kolm.modelspec import ModelSpec
from kolm.throughput import ThroughputForecast

# Bits per weight of each tier stored as blocks of 32 weights with one fp16 scale: b + 16/32.
NOMINAL_BITS = {"fp16": 16.0, "int8": 8.5, "int4": 4.5, "int3": 3.5}


@hookimpl(trylast=True)
def forecast_size(spec: ModelSpec, tier: str, backend: str) -> SizeForecast:
    bits = NOMINAL_BITS[tier]
    weights = int(spec.inventory.params * bits / 8)
    embedding = spec.input_embedding_params()
    return SizeForecast(
        bytes=weights,
        read_per_token_bytes=weights - int(embedding * bits / 8),
        method=f"nominal {bits:g} bits per weight (no size model for backend {backend})",
    )


@hookimpl(trylast=True)
def forecast_throughput(
    device: DeviceProfile, spec: ModelSpec, tier: str, backend: str, size: SizeForecast
) -> ThroughputForecast:
    ceiling = device.bandwidth_gbps.value * 1e9 / size.read_per_token_bytes
    return ThroughputForecast(
        low=ceiling,
        high=ceiling,
        method="ceiling",
        basis=(
            f"uncalibrated ceiling: {device.bandwidth_gbps.value:g} GB/s / "
            f"{size.read_per_token_bytes / 1e9:.3g} GB per token; no calibration for {backend} on {device.kind}"
        ),
        sources=[device.bandwidth_gbps.source],
    )
