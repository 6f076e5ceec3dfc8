"""Decode throughput forecasts: a memory-bandwidth roofline with per-backend calibration.

Decoding one token reads every weight once, so `tok/s ≈ efficiency × bandwidth / bytes per token`;
where a band says so, a fixed cost per token (kernel launches, sampling) is added to each token's time.
`efficiency` is what a backend really achieves on a class of devices, derived from published
benchmarks (each `Efficiency` row says which and how); `tier_factor` corrects for per-tier kernel
cost (int3's dequantisation is slower per byte than int4's). A measured `kolm bench` replaces all of it.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from kolm.api import ThroughputForecast
from kolm.datamodel import KolmModel
from kolm.devices import DeviceKind, DeviceProfile, Sourced
from kolm.quant import Tier

# The median forecast error kolm holds every device kind x backend to (tests/test_forecast_accuracy.py),
# the line llmfit's CI holds its estimates to (https://github.com/AlexsJones/llmfit). A band calibrated on
# one published run has no spread of its own, so it gets this much either side instead of none.
FORECAST_ERROR_CEILING = 0.25


class Efficiency(KolmModel):
    """Fraction of peak bandwidth a backend reaches while decoding on these device kinds.

    `note` shows the derivation: published tok/s × bytes per token / bandwidth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[DeviceKind] = Field(description="The device kinds this band applies to.")
    low: float = Field(gt=0, le=1, description="Lowest fraction of peak bandwidth measured.")
    high: float = Field(gt=0, le=1, description="Highest fraction of peak bandwidth measured.")
    source: str = Field(pattern=r"^https?://\S+$", description="The public benchmark it is derived from.")
    note: str = Field(description="The derivation: published tok/s x bytes per token / bandwidth, per run used.")
    per_token_ms: Sourced | None = Field(
        None,
        description="A fixed cost per decoded token (kernel launches, sampling, synchronisation), ms, added "
        "to the time the bytes take; dominates for small models on fast devices. Derived from published "
        "small-model runs (the note shows how).",
    )


class Calibration(KolmModel):
    """A backend's throughput constants, shipped as `throughput.json` in its plugin."""

    model_config = ConfigDict(extra="forbid")

    efficiency: list[Efficiency] = Field(
        description="Efficiency bands; the first whose kinds hold the device's is used."
    )
    tier_factor: dict[Tier, Sourced] = Field(
        default_factory=dict, description="Per-tier kernel cost relative to int4 (1.0 when absent), with its source."
    )

    def efficiency_for(self, device: DeviceProfile) -> Efficiency | None:
        return next((e for e in self.efficiency if device.kind in e.kinds), None)

    def factor(self, tier: str) -> float:
        return self.tier_factor[tier].value if tier in self.tier_factor else 1.0


def peak_tok_s(device: DeviceProfile, bytes_per_token: int) -> float:
    """The bandwidth ceiling: tokens/s if every byte a token reads came at the device's bandwidth."""
    return device.bandwidth_gbps.value * 1e9 / max(bytes_per_token, 1)


def roofline(
    device: DeviceProfile, bytes_per_token: int, efficiency: Efficiency, factor: float = 1.0
) -> ThroughputForecast:
    """Apply the roofline with a calibrated efficiency range, plus the band's fixed cost per token:
    `1 / (bytes / (efficiency x bandwidth x factor) + per_token)`."""
    peak = peak_tok_s(device, bytes_per_token)
    overhead_s = efficiency.per_token_ms.value / 1e3 if efficiency.per_token_ms else 0.0

    def rate(fraction: float) -> float:
        return 1 / (1 / (peak * fraction * factor) + overhead_s)

    low, high = efficiency.low, efficiency.high
    spread = ""
    if low == high:
        low, high = low * (1 - FORECAST_ERROR_CEILING), min(1.0, high * (1 + FORECAST_ERROR_CEILING))
        spread = f" (one published run at {efficiency.low:.2f}, ± {FORECAST_ERROR_CEILING:.0%}: kolm's error ceiling)"
    basis = (
        f"{low:.2f}–{high:.2f}{spread} × {device.bandwidth_gbps.value:g} GB/s"
        f" / {bytes_per_token / 1e9:.3g} GB per token" + (f" × tier factor {factor:.2f}" if factor != 1.0 else "")
    )
    sources = [device.bandwidth_gbps.source, efficiency.source]
    if efficiency.per_token_ms:
        basis += f", plus {efficiency.per_token_ms.value:g} ms a token (fixed cost per token)"
        sources.append(efficiency.per_token_ms.source)
    return ThroughputForecast(low=rate(low), high=rate(high), method="forecast", basis=basis, sources=sources)


def ceiling(device: DeviceProfile, bytes_per_token: int, why: str) -> ThroughputForecast:
    """The bandwidth ceiling, labelled as uncalibrated (`why` says what calibration is missing)."""
    peak = peak_tok_s(device, bytes_per_token)
    return ThroughputForecast(
        low=peak,
        high=peak,
        method="ceiling",
        basis=f"uncalibrated ceiling: {device.bandwidth_gbps.value:g} GB/s / {bytes_per_token / 1e9:.3g} GB per token; "
        + why,
        sources=[device.bandwidth_gbps.source],
    )
