"""Replaying published decode measurements through kolm's throughput forecast: how far the
forecast's midpoint lands from what people measured, per device kind and backend.

`published_runs.json` (tests/data/) holds each run as its source states it: device, model, quant,
file size or parameter count, backend, tok/s, URL and quote. A run is replayed on kolm's own row for
its device with the bytes a token reads (the file size the source gives, else parameters x the tier's
nominal bits) through the backend's calibration; runs whose source is a calibration's own source are
in-sample, and the table says how many."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from kolm.api import SizeForecast
from kolm.datamodel import KolmModel
from kolm.forecast import NOMINAL_BITS, speed_of

# How a published quant maps onto kolm's tiers (llama.cpp type names; mlx's bits).
TIER_OF_QUANT = {
    "F16": "fp16",
    "BF16": "fp16",
    "Q8_0": "int8",
    "mlx-8bit": "int8",
    "Q4_0": "int4",
    "Q4_K_M": "int4",
    "Q4_K_S": "int4",
    "mlx-4bit": "int4",
    "Q3_K_S": "int3",
}


class Replayed(KolmModel):
    """One published run beside kolm's forecast of it."""

    device: str
    kind: str
    backend: str
    model: str
    quant: str
    measured: float
    low: float
    high: float
    in_sample: bool
    source: str

    @property
    def error(self) -> float:
        """|forecast midpoint / measured - 1|."""
        return abs((self.low + self.high) / 2 / self.measured - 1)

    @property
    def within_band(self) -> bool:
        return self.low <= self.measured <= self.high


class ClassError(KolmModel):
    """The forecast's error over the runs of one device kind and backend."""

    kind: str
    backend: str
    runs: int
    in_sample: int
    median: float
    p90: float
    within_band: float


def load_runs(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["runs"]


def replay(registry, runs: list[dict]) -> tuple[list[Replayed], list[str]]:
    """(the runs kolm can replay, why each other run was left out)."""
    from kolm.errors import KolmError

    table, done, skipped = registry.devices(), [], []
    for run in runs:
        tier = TIER_OF_QUANT.get(run["quant"].split()[0])
        why = (
            "no kolm device row" if not run.get("kolm_device") else
            f"quant {run['quant']} has no kolm tier" if tier is None else
            "neither file size nor parameters" if not (run.get("file_gb") or run.get("params_b")) else None
        )  # fmt: skip
        if why is None:
            try:
                device = table.find(run["kolm_device"])
                owner = registry.backend(run["backend"])
            except KolmError as exc:
                why = str(exc)
        if why:
            skipped.append(f"{run['device']} {run['model']} {run['quant']}: {why}")
            continue
        read = int(run["file_gb"] * 1e9) if run.get("file_gb") else int(run["params_b"] * 1e9 * NOMINAL_BITS[tier] / 8)
        size = SizeForecast(bytes=read, read_per_token_bytes=read, method="the published run's file size")
        speed = speed_of(owner, run["backend"], device, None, tier, size)
        done.append(
            Replayed(
                device=device.name,
                kind=device.kind,
                backend=run["backend"],
                model=run["model"],
                quant=run["quant"],
                measured=run["tok_s"],
                low=speed.low,
                high=speed.high,
                in_sample=run["source"].split("#")[0] in {s.split("#")[0] for s in speed.sources},
                source=run["source"],
            )
        )
    return done, skipped


def errors_by_class(replayed: list[Replayed]) -> list[ClassError]:
    """Median and 90th-percentile error, and the share of runs inside the claimed band, per class."""
    classes: dict[tuple[str, str], list[Replayed]] = {}
    for run in replayed:
        classes.setdefault((run.kind, run.backend), []).append(run)
    rows = []
    for (kind, backend), runs in sorted(classes.items()):
        errors = sorted(r.error for r in runs)
        rows.append(
            ClassError(
                kind=kind,
                backend=backend,
                runs=len(runs),
                in_sample=sum(r.in_sample for r in runs),
                median=statistics.median(errors),
                p90=errors[min(len(errors) - 1, int(0.9 * len(errors)))],
                within_band=sum(r.within_band for r in runs) / len(runs),
            )
        )
    return rows
