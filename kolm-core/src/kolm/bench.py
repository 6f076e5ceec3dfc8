"""`kolm bench`: measure an export on this machine (llama-bench style) beside the forecast for the
device the user says this machine is, and log it for later forecasts."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kolm import __version__, history
from kolm.api import BenchRequest, BenchResult, SizeForecast, Steps
from kolm.datamodel import KolmModel, utc_now
from kolm.devices import DeviceProfile
from kolm.errors import BackendError
from kolm.export import export_artifact
from kolm.forecast import forecast, speed_of
from kolm.host import HostProfile
from kolm.modelspec import resolve_model
from kolm.quant import Tier
from kolm.record import load_record
from kolm.throughput import peak_tok_s

if TYPE_CHECKING:
    from kolm.plugins import Registry


class BenchReport(KolmModel):
    """`kolm bench`'s answer: the measurement beside the forecast for the device it is logged as."""

    device: str
    host: HostProfile
    model: str
    tier: str
    backend: str
    result: BenchResult
    forecast_low: float
    forecast_high: float
    forecast_basis: str
    ratio: float
    log: Path


# A decode rate above the device's bandwidth ceiling by more than this is not logged. Not 1.0: a
# small model partly held in cache, and this machine's bandwidth measured by a copy (below the peak),
# let a real run pass the ceiling a little.
CEILING_MARGIN = 1.5


def check_ceiling(tg: float, device: DeviceProfile, read_per_token_bytes: int) -> None:
    """Refuse to log a decode rate the device's memory could not feed: a measurement error, or a run
    on another machine than the device it is logged as."""
    ceiling = peak_tok_s(device, read_per_token_bytes)
    if tg > CEILING_MARGIN * ceiling:
        raise BackendError(
            f"measured {tg:.1f} tok/s is {tg / ceiling:.1f}x the bandwidth ceiling of {device.name} "
            f"({device.bandwidth_gbps.value:g} GB/s / {read_per_token_bytes / 1e9:.3f} GB per token = {ceiling:.1f} "
            "tok/s): not logged, as a measurement error or a run on another machine"
        )


def run_bench(
    registry: Registry,
    target: Path,
    device_name: str | None,
    trust_device: bool,
    tier: Tier,
    n_prompt: int,
    n_gen: int,
    repetitions: int,
    threads: int | None,
    steps: Steps,
) -> BenchReport:
    """Bench an export folder, or a .kolm exported on the fly (no K scoring) at `tier`, on this
    machine; logged as `device_name` (default: this machine), which must not contradict this
    machine unless `trust_device`."""
    from kolm.host import check_claim, is_this_machine, this_machine

    with steps("profiling this machine"):
        host = this_machine()
    if device_name is None or is_this_machine(device_name):
        device = registry.host_device(host)
    else:
        device = registry.devices().find(device_name)
        if not trust_device:
            check_claim(host, device)
    with tempfile.TemporaryDirectory(prefix=".kolm-bench-") as work:
        if target.is_file() and target.suffix == ".kolm":
            planned = forecast(registry, resolve_model(str(target)), device, tier)
            folder = Path(work) / "export"
            record = export_artifact(
                registry,
                target,
                device,
                tier,
                planned.backend,
                folder,
                planned.size_bytes,
                planned.read_per_token_bytes,
                steps=steps,
                score=False,
            )
        else:
            folder, record = load_record(target)
        owner = registry.backend(record.backend)
        request = BenchRequest(
            path=folder,
            payload=[p.path for p in record.payload],
            n_prompt=n_prompt,
            n_gen=n_gen,
            repetitions=repetitions,
            threads=threads,
        )
        with steps(f"benchmarking pp{n_prompt} and tg{n_gen}, {repetitions} runs each"):
            result = owner.bench(request)
    actual = sum(p.size for p in record.payload)
    read = record.size_check.read_per_token_bytes * actual // max(record.size_check.forecast_bytes, 1)
    size = SizeForecast(bytes=actual, read_per_token_bytes=read, method="the export's payload")
    speed = speed_of(owner, owner.name, device, None, record.tier, size)
    check_ceiling(result.tg.mean, device, read)
    entry = history.BenchEntry(
        device=device.name,
        model=record.manifest.base,
        tier=record.tier,
        backend=record.backend,
        payload_sha256=record.payload[0].sha256,
        result=result,
        measured_at=utc_now(),
        kolm=__version__,
        host=host,
        trusted_claim=trust_device and not is_this_machine(device.name),
    )
    return BenchReport(
        device=device.name,
        host=host,
        model=record.manifest.base,
        tier=record.tier,
        backend=record.backend,
        result=result,
        forecast_low=speed.low,
        forecast_high=speed.high,
        forecast_basis=speed.basis,
        ratio=result.tg.mean / ((speed.low + speed.high) / 2),
        log=history.append("bench", entry),
    )
