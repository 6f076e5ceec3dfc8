"""The platforms `kolm bundle` fetches wheels for: each one's wheel tags and environment markers."""

from __future__ import annotations

from dataclasses import dataclass

from kolm.errors import UsageError


@dataclass(frozen=True)
class Platform:
    """A target platform: the wheel platform tags pip may take for it, and its environment markers."""

    tags: tuple[str, ...]
    markers: dict[str, str]


def _linux(arch: str) -> Platform:
    # glibc 2.28 or newer (manylinux_2_28 down to manylinux2014 = 2.17, PEP 600), and linux_ARCH: wheels
    # a user built on the target (--wheels; PyPI holds none)
    tags = (*(f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)), f"manylinux2014_{arch}", f"linux_{arch}")
    return Platform(tags, {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": arch})


PLATFORMS = {
    "linux-x86_64": _linux("x86_64"),
    "linux-aarch64": _linux("aarch64"),
    # macOS 14 or newer; pip also takes 11.0-13.x and universal2 wheels for this tag
    "macos-arm64": Platform(
        ("macosx_14_0_arm64",), {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"}
    ),
}


def platform_named(name: str) -> Platform:
    """The platform called `name` (a key of PLATFORMS); a UsageError naming the choices otherwise."""
    if name not in PLATFORMS:
        raise UsageError(f"unknown platform {name!r}; choose one of {', '.join(PLATFORMS)}")
    return PLATFORMS[name]
