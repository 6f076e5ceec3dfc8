"""Local measurement logs in `$KOLM_HOME` (default ~/.local/share/kolm), one JSON line per entry:
`bench.jsonl` (kolm bench) and `k.jsonl` (K measured by kolm export). Later forecasts prefer a
logged measurement over published constants and typical deltas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kolm.api import BenchResult
from kolm.datamodel import KolmModel
from kolm.devices import DeviceProfile
from kolm.home import kolm_home
from kolm.host import HostProfile, contradiction
from kolm.manifest import KRecord

Entry = TypeVar("Entry", bound=KolmModel)


class KEntry(KolmModel):
    """One line of the K log: K measured on an export, so later forecasts show the real loss."""

    model: str
    tier: str
    backend: str
    recipe: str | None = None
    eval_pack: str | None = None
    """The SHA-256 of the eval pack K was measured on (None in lines older than it)."""
    k: KRecord
    export: str
    measured_at: str


class BenchEntry(KolmModel):
    """One line of the bench log: what was measured, logged as which device, on which machine (its
    profile; absent in lines older than the profile), and when. `trusted_claim`: logged as a device
    this machine contradicts, on the user's word (`--trust-device`)."""

    device: str
    model: str
    tier: str
    backend: str
    payload_sha256: str
    result: BenchResult
    measured_at: str
    kolm: str
    host: HostProfile | None = None
    trusted_claim: bool = False


def log_path(name: str) -> Path:
    return kolm_home() / f"{name}.jsonl"


def append(name: str, entry: KolmModel) -> Path:
    path = log_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(entry.model_dump_json() + "\n")
    return path


def latest(name: str, kind: type[Entry], match: Callable[[Entry], bool]) -> Entry | None:
    """The newest entry of log `name` that `match` accepts; damaged lines are skipped."""
    path = log_path(name)
    if not path.is_file():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = kind.model_validate_json(line)
        except ValueError:
            continue  # a damaged line never breaks a forecast
        if match(entry):
            found = entry
    return found


def latest_bench(device: DeviceProfile, model: str, tier: str, backend: str) -> BenchEntry | None:
    """The newest logged bench of this model, tier and backend on `device`, if any, from a machine
    that could be it (or was logged as it on the user's word). Lines without the machine's profile
    (older kolm) are not trusted: nothing says where they ran."""

    def usable(e: BenchEntry) -> bool:
        if (e.device, e.model, e.tier, e.backend) != (device.name, model, tier, backend) or e.host is None:
            return False
        return e.trusted_claim or contradiction(e.host, device) is None

    return latest("bench", BenchEntry, usable)


def latest_k(model: str, tier: str, backend: str, recipe: str, eval_pack: str) -> KEntry | None:
    """The newest K that `kolm export` measured for this model, tier, backend and recipe on the eval
    pack with SHA-256 `eval_pack`, if any (entries logged before exports named their recipe and
    pack match none: a K on another pack says nothing about this one)."""
    key = (model, tier, backend, recipe, eval_pack)
    return latest("k", KEntry, lambda e: (e.model, e.tier, e.backend, e.recipe, e.eval_pack) == key)
