"""This machine as a device: what it is (OS, architecture, CPU, memory, GPU) and how fast it copies
memory, measured. `kolm devices --here` and `kolm bench` profile it into a device row, saved in
`$KOLM_HOME/this-machine.json`; a bench logged as another device must not contradict it."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from kolm.datamodel import KolmModel, utc_now
from kolm.devices import MEASURED, DeviceKind, DeviceProfile, Sourced, normalize_name
from kolm.errors import UsageError
from kolm.home import kolm_home

ALIASES = ["this-machine", "here"]
COPY_BYTES = 64 * 2**20  # per process: well past any CPU's last-level cache
COPY_ROUNDS = 5
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64", "riscv64": "riscv64"}
# A device's memory matches this machine's when one of its sizes is within this fraction of what the
# OS reports (the kernel and firmware keep some; GB vs GiB): 8 GB and 16 GB never match.
MEMORY_TOLERANCE = 0.25


class HostProfile(KolmModel):
    """What this machine is, as read from the OS, and its memory bandwidth as measured here."""

    hostname: str
    os: str
    arch: str
    cpu: str
    cores: int
    memory_gb: float
    board: str = ""
    gpu: str = ""
    kind: DeviceKind
    bandwidth_gbps: float
    bandwidth_method: str
    profiled_at: str

    @property
    def name(self) -> str:
        """The device row's name: `this machine (HOSTNAME)`."""
        return f"this machine ({self.hostname})"

    def summary(self) -> str:
        gpu = f", {self.gpu}" if self.gpu else ", no GPU"
        return f"{self.arch} {self.os}, {self.cpu}, {self.cores} cores, {self.memory_gb:.1f} GB{gpu}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00 \n")
    except OSError:
        return ""


def _command(*args: str) -> str:
    """stdout of a short command, or "" when it is absent or fails."""
    if shutil.which(args[0]) is None:
        return ""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    if sys.platform == "darwin":
        return _command("sysctl", "-n", "machdep.cpu.brand_string") or platform.machine()
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "uarch") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> int:
    """Total RAM: sysconf on Linux and macOS, GlobalMemoryStatusEx on Windows (not tested here)."""
    try:
        if sys.platform == "win32":
            import ctypes

            class MemoryStatus(ctypes.Structure):
                _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong)] + [
                    (name, ctypes.c_ulonglong)
                    for name in ("phys", "avail_phys", "page", "avail_page", "virtual", "avail_virtual", "ext")
                ]

            status = MemoryStatus(length=ctypes.sizeof(MemoryStatus))
            if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                raise OSError("GlobalMemoryStatusEx failed")
            return status.phys
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError) as exc:
        raise UsageError(f"cannot read this machine's memory size on {sys.platform}: {exc}") from exc


def gpu_name() -> str:
    """An NVIDIA GPU through nvidia-smi, a Jetson's integrated one, Apple silicon's; else ""."""
    if listed := _command("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"):
        return listed.splitlines()[0].replace(", ", " (") + ")"
    if "jetson" in _read("/proc/device-tree/model").lower():
        return "integrated NVIDIA GPU (unified memory)"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "Apple silicon GPU (unified memory)"
    return ""


def _copy_worker(start, rounds: int, size: int, results) -> None:
    source, target = bytearray(os.urandom(4096) * (size // 4096)), bytearray(size)
    target[:] = source  # touch every page before timing
    start.wait()
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        target[:] = source
        best = min(best, time.perf_counter() - began)
    results.put(best)


def measure_bandwidth() -> tuple[float, str]:
    """(GB/s, how): one process per core copying its own buffer at once, STREAM's copy counting
    (bytes read + bytes written); the best of COPY_ROUNDS rounds per process."""
    import multiprocessing

    cores = os.cpu_count() or 1
    size = max(4096, min(COPY_BYTES, memory_bytes() // (16 * cores)) // 4096 * 4096)
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    start, results = context.Barrier(cores), context.Queue()
    workers = [context.Process(target=_copy_worker, args=(start, COPY_ROUNDS, size, results)) for _ in range(cores)]
    for worker in workers:
        worker.start()
    times = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    gbps = sum(2 * size / t for t in times) / 1e9
    how = f"measured: {cores} processes each copying {size // 2**20} MiB (read + write), best of {COPY_ROUNDS}"
    return gbps, how


def profile_host() -> HostProfile:
    """Read the OS's facts and measure the copy bandwidth (about a second)."""

    gbps, how = measure_bandwidth()
    board = _read("/proc/device-tree/model")
    return HostProfile(
        hostname=socket.gethostname() or "localhost",
        os={"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform.rstrip("0123456789")),
        arch=ARCHES.get(platform.machine().lower(), platform.machine().lower()),
        cpu=cpu_model(),
        cores=os.cpu_count() or 1,
        memory_gb=round(memory_bytes() / 1e9, 2),
        board=board,
        gpu=gpu_name(),
        kind=kind_of(board),
        bandwidth_gbps=round(gbps, 1),
        bandwidth_method=how,
        profiled_at=utc_now(),
    )


def saved_path() -> Path:
    return kolm_home() / "this-machine.json"


def saved_host() -> HostProfile | None:
    """The profile `kolm devices --here` or `kolm bench` saved, if it is this machine's."""
    try:
        host = HostProfile.model_validate_json(saved_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return host if host.hostname == (socket.gethostname() or "localhost") else None


def this_machine(refresh: bool = False) -> HostProfile:
    """This machine's profile: the saved one, or a new one (saved) when asked or when none is."""
    from kolm.atomic import write_json_model

    host = None if refresh else saved_host()
    if host is None:
        host = profile_host()
        write_json_model(saved_path(), host)
    return host


def kind_of(board: str) -> DeviceKind:
    """The class of device this machine is (its `board`, the device tree's model), for the
    throughput calibration of its kind."""
    if "raspberry pi" in board.lower():
        return "sbc"
    if "jetson" in board.lower():
        return "edge-gpu"
    model = _command("sysctl", "-n", "hw.model") if sys.platform == "darwin" else ""
    laptop = "book" in model.lower() or any(Path("/sys/class/power_supply").glob("BAT*"))
    return "laptop" if laptop else "desktop"


def as_device(host: HostProfile, backends: list[str]) -> DeviceProfile:
    """The device row of this machine: its memory read from the OS, its bandwidth measured."""
    gpu = f" GPU: {host.gpu}; its own bandwidth is not measured (forecast it by its own row)." if host.gpu else ""
    return DeviceProfile(
        name=host.name,
        aliases=ALIASES,
        kind=host.kind,
        os=host.os,
        arch=host.arch,
        memory_gb=Sourced(value=host.memory_gb, source=MEASURED, note="total RAM as the OS reports it"),
        memory_kind="unified" if "unified" in host.gpu else "ram",
        bandwidth_gbps=Sourced(
            value=host.bandwidth_gbps,
            source=MEASURED,
            note=f"{host.bandwidth_method} on {host.profiled_at}: below the datasheet peak the "
            "calibrations were derived against, so forecasts here lean low",
        ),
        backends=backends,
        notes=f"{host.cpu}, {host.cores} cores; profiled by kolm.{gpu}",
    )


def is_this_machine(name: str) -> bool:
    return normalize_name(name) in {normalize_name(a) for a in ALIASES} or name.startswith("this machine (")


def contradiction(host: HostProfile, device: DeviceProfile) -> str | None:
    """Why this machine cannot be `device`, or None: architecture, OS, memory size, or a GPU the
    device has and this machine lacks. A browser runs on any machine."""
    if device.os == "browser":
        return None
    if device.arch != host.arch:
        return f"this machine is {host.arch}, {device.name} is {device.arch}"
    same_os = {device.os, host.os} <= {"linux", "android"} or device.os == host.os
    if not same_os:
        return f"this machine runs {host.os}, {device.name} runs {device.os}"
    if device.kind in ("desktop-gpu", "edge-gpu") and not host.gpu:
        return f"{device.name} has a GPU and this machine has none"
    sizes = [device.memory_gb.value, *device.memory_options_gb]
    if device.memory_kind != "vram" and all(abs(host.memory_gb / s - 1) > MEMORY_TOLERANCE for s in sizes):
        listed = ", ".join(f"{s:g}" for s in sorted(set(sizes)))
        return f"this machine has {host.memory_gb:.1f} GB of memory, {device.name} has {listed} GB"
    return None


def check_claim(host: HostProfile, device: DeviceProfile) -> None:
    """Refuse, in one line, to log a run on this machine as `device` when the two contradict."""
    if reason := contradiction(host, device):
        raise UsageError(
            f"this machine is not a {device.name} ({reason}): bench it as itself (leave out --device), "
            f"or pass --trust-device to log it as {device.name} anyway"
        )
