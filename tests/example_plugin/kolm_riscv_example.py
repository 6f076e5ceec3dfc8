"""A complete third-party kolm plugin: one device row, served by the existing gguf backend."""

from kolm import hookimpl
from kolm.devices import DeviceProfile, Sourced

MARS_DOCS = "https://milkv.io/docs/mars/overview"


@hookimpl
def device_profiles() -> list[DeviceProfile]:
    return [
        DeviceProfile(
            name="Milk-V Mars",
            aliases=["mars", "jh7110"],
            kind="sbc",
            os="linux",
            arch="riscv64",
            memory_gb=Sourced(value=8, source=MARS_DOCS, note="2/4/8 GB LPDDR4 options"),
            memory_kind="ram",
            memory_options_gb=[2, 4, 8],
            bandwidth_gbps=Sourced(value=11.2, source=MARS_DOCS, note="LPDDR4 2800 MT/s x 32-bit bus, theoretical"),
            backends=["gguf"],
        )
    ]
