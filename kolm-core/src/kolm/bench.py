"""Benchmarking on this machine: the request and the measured result (llama-bench style)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kolm import history
from kolm.datamodel import KolmModel

if TYPE_CHECKING:
    from kolm.plugins import Registry


class BenchRequest(KolmModel):
    """Measure the export in folder `path` (`payload` as in `RunRequest`): `n_prompt` prompt tokens,
    `n_gen` generated tokens, each `repetitions` times."""

    path: Path
    backend: str
    payload: list[str]
    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3
    threads: int | None = None


class Rate(KolmModel):
    """A measured rate over the repetitions: mean and sample standard deviation in tokens/s."""

    mean: float
    sd: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Rate:
        import statistics

        sd = statistics.stdev(samples) if len(samples) > 1 else 0.0
        return cls(mean=statistics.fmean(samples), sd=sd, samples=samples)


class BenchResult(KolmModel):
    """What one `kolm bench` measured, and with what."""

    backend: str
    runtime: str
    pp: Rate
    tg: Rate
    load_s: float
    peak_rss_bytes: int
    n_prompt: int
    n_gen: int
    threads: int


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class BenchEntry(KolmModel):
    """One line of the bench log: what was measured, for which device claim, and when."""

    device: str
    model: str
    tier: str
    backend: str
    payload_sha256: str
    result: BenchResult
    measured_at: str
    kolm: str


def latest_measurement(device: str, model: str, tier: str, backend: str) -> BenchEntry | None:
    """The newest logged bench of this model, tier and backend on `device`, if any."""
    return history.latest("bench", BenchEntry,
                          lambda e: (e.device, e.model, e.tier, e.backend) == (device, model, tier, backend))


class BenchReport(KolmModel):
    """`kolm bench`'s answer: the measurement beside the forecast for the claimed device."""

    device: str
    model: str
    tier: str
    backend: str
    result: BenchResult
    forecast_low: float
    forecast_high: float
    forecast_basis: str
    ratio: float
    log: Path


def run_bench(registry: Registry, target: Path, device_name: str, tier: str, n_prompt: int, n_gen: int,
              repetitions: int, threads: int | None, steps) -> BenchReport:
    """Bench an export folder, or a .kolm exported on the fly (no K scoring) at `tier`."""
    import tempfile

    from kolm import __version__
    from kolm.errors import BackendError
    from kolm.export import export_artifact, load_record
    from kolm.forecast import SizeForecast, forecast
    from kolm.modelspec import resolve_model

    device = registry.devices().find(device_name)
    with tempfile.TemporaryDirectory(prefix=".kolm-bench-") as work:
        if target.is_file() and target.suffix == ".kolm":
            planned = forecast(registry, resolve_model(str(target)), device, tier)
            folder = Path(work) / "export"
            record = export_artifact(registry, target, device, tier, planned.backend, folder, planned.size_bytes,
                                     planned.read_per_token_bytes, steps=steps, score=False)
        else:
            folder, record = load_record(target)
        request = BenchRequest(path=folder, backend=record.backend, payload=[p.path for p in record.payload],
                               n_prompt=n_prompt, n_gen=n_gen, repetitions=repetitions, threads=threads)
        with steps(f"benchmarking pp{n_prompt} and tg{n_gen}, {repetitions} runs each"):
            result = registry.hook.bench(request=request)
        if result is None:
            raise BackendError(f"backend {record.backend} cannot bench here; pip install kolm-{record.backend}")
    actual = sum(p.size for p in record.payload)
    read = record.size_check.read_per_token_bytes * actual // max(record.size_check.forecast_bytes, 1)
    size = SizeForecast(bytes=actual, read_per_token_bytes=read, method="the export's payload")
    speed = registry.hook.forecast_throughput(device=device, spec=None, tier=record.tier, backend=record.backend,
                                              size=size)
    entry = BenchEntry(device=device.name, model=record.manifest.base, tier=record.tier, backend=record.backend,
                       payload_sha256=record.payload[0].sha256, result=result,
                       measured_at=history.now(), kolm=__version__)
    return BenchReport(device=device.name, model=record.manifest.base, tier=record.tier, backend=record.backend,
                       result=result, forecast_low=speed.low, forecast_high=speed.high, forecast_basis=speed.basis,
                       ratio=result.tg.mean / ((speed.low + speed.high) / 2), log=history.append("bench", entry))
