"""Device profiles: the rows plugins contribute, merged into one table.

Every constant that comes from the world (memory, bandwidth) is a `Sourced` value carrying the
public URL it was taken from, so `kolm devices` can show where each number came from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from kolm.datamodel import KolmModel
from kolm.errors import UnknownDeviceError, UsageError, one_line

MEASURED = "kolm:measured"  # the `source` of a figure kolm measured on this machine (`kolm devices --here`)
USER = "kolm:user"  # the `source` of a figure a user gave for their own device (`--bandwidth`, `--device-file`)
DeviceKind = Literal["sbc", "phone", "laptop", "desktop", "desktop-gpu", "edge-gpu", "browser"]


class Sourced(KolmModel):
    """A number taken from a public document: the value, the URL, and how it was read there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(description="The number, in the unit its field names (GB, GB/s).")
    source: str = Field(
        pattern=rf"^(https?://\S+|{MEASURED}|{USER})$",
        description="The public URL it was read from; `kolm:measured` for a figure kolm measured on this "
        "machine, `kolm:user` for one a user gave for their own device.",
    )
    note: str = Field("", description="How it was read or derived there; say 'theoretical' or 'estimated' if so.")


class DeviceProfile(KolmModel):
    """One target device: what it holds in memory, how fast it reads it, which backends run there.

    `memory_gb` is the memory a model lives in (VRAM for discrete GPUs, RAM otherwise);
    `backends` lists backend names in order of preference; the first one installed is recommended.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The device's name as a user knows it (`Raspberry Pi 5`).")
    aliases: list[str] = Field(default_factory=list, description="Other names `--target` accepts.")
    kind: DeviceKind = Field(description="The class of device; throughput calibrations are per kind.")
    os: str = Field(description="Operating system (`linux`, `android`, `ios`, `macos`, `windows`, `browser`).")
    arch: str = Field(description="CPU architecture (`arm64`, `x86_64`, `riscv64`, `wasm32`).")
    memory_gb: Sourced = Field(description="The memory a model lives in, GB: VRAM for discrete GPUs, else RAM.")
    memory_kind: Literal["ram", "vram", "unified"]
    memory_options_gb: list[float] = Field(default_factory=list, description="Other sizes the device is sold with.")
    bandwidth_gbps: Sourced = Field(description="Memory bandwidth in GB/s, what decode speed is bound by.")
    backends: list[str] = Field(description="Backend names that run here, most preferred first.")
    notes: str = Field("", description="Limits a user should know (per-file caps, OS memory limits).")

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb.value * 1e9)

    @property
    def slug(self) -> str:
        """The name as typed on a command line: `Raspberry Pi 5` -> `raspberry-pi-5`."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def names(self) -> list[str]:
        return [self.name, *self.aliases]


def normalize_name(name: str) -> str:
    """Case- and punctuation-insensitive key: `RTX 4090`, `rtx-4090` and `rtx_4090` are equal."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


class DeviceTable(KolmModel):
    """The merged device table. Later rows for a known name add backends, never replace constants."""

    rows: list[DeviceProfile]

    @classmethod
    def merge(cls, contributions: list[list[DeviceProfile]]) -> DeviceTable:
        merged: dict[str, DeviceProfile] = {}
        for rows in contributions:
            for row in rows:
                key = normalize_name(row.name)
                if key not in merged:
                    merged[key] = row
                    continue
                known = merged[key]
                extra_backends = [b for b in row.backends if b not in known.backends]
                extra_aliases = [a for a in row.aliases if a not in known.aliases]
                merged[key] = known.model_copy(
                    update={
                        "backends": [*known.backends, *extra_backends],
                        "aliases": [*known.aliases, *extra_aliases],
                    }
                )
        return cls(rows=sorted(merged.values(), key=lambda r: (r.kind, r.name)))

    def add_backends(self, runs_on: dict[str, list[str]]) -> DeviceTable:
        """This table with each backend appended to the rows it declares it runs on (by any of their
        names); rows that list it already, and names no row has, are left as they are."""
        wanted = {backend: {normalize_name(n) for n in names} for backend, names in runs_on.items()}
        rows = []
        for row in self.rows:
            names = {normalize_name(n) for n in row.names()}
            extra = [b for b, on in wanted.items() if b not in row.backends and names & on]
            rows.append(row.model_copy(update={"backends": [*row.backends, *extra]}) if extra else row)
        return DeviceTable(rows=rows)

    def find(self, name: str) -> DeviceProfile:
        key = normalize_name(name)
        for row in self.rows:
            if key in {normalize_name(n) for n in row.names()}:
                return row
        if not self.rows:
            raise UnknownDeviceError(
                f"unknown device {name!r}: no installed plugin brings device rows "
                "(pip install kolm-gguf; kolm plugins lists what loaded)"
            )
        known = ", ".join(r.name for r in self.rows)
        raise UnknownDeviceError(f"unknown device {name!r}; known devices: {known}")


def user_dir() -> Path:
    """Where the rows users add live (`--device-file`, `--bandwidth`): one DeviceProfile JSON each."""
    from kolm.home import kolm_home

    return kolm_home() / "devices"


def user_rows() -> list[DeviceProfile]:
    """The rows users added; a file that is not a device row is one line naming it."""
    rows = []
    for path in sorted(user_dir().glob("*.json")):
        try:
            rows.append(DeviceProfile.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a device row ({one_line(exc)}); fix or delete it") from exc
    return rows


def save_user_row(row: DeviceProfile) -> Path:
    """Keep `row` for later commands (`--target` finds it by name), replacing one of the same name."""
    from kolm.atomic import write_json_model

    return write_json_model(user_dir() / f"{row.slug}.json", row)


def read_device_file(path: Path) -> DeviceProfile:
    """A user's device row: a DeviceProfile JSON (`kolm schema devices` describes its fields), or a
    plugin's `{"devices": [one row]}`; one line when it is not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("devices"), list) and len(data["devices"]) == 1:
            data = data["devices"][0]
        return DeviceProfile.model_validate(data)
    except OSError as exc:
        raise UsageError(f"cannot read device file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: not a device row ({one_line(exc)})") from exc
