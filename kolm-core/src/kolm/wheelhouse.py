"""The wheels a site without a network needs, for its platform and Python, fetched with pip
(`kolm bundle`).

kolm's own distributions (kolm-core, the backend's plugin) come as wheels made from where they are
installed here: a source folder is built with `pip wheel`, a wheel file is copied, anything else is
downloaded from the index. Their requirements are resolved for the target by `pip download
--only-binary=:all: --platform ... --python-version ...`. A requirement with no wheel for the target
(llama-cpp-python ships only as source) comes as its sdist instead, with its own requirements and its
build requirements as wheels, so that `pip install --no-index` builds it on the target; the target
then needs a compiler, which the bundle's README names. Wheels you built for the target yourself
(`--wheels DIR`) are preferred to the index.
"""

from __future__ import annotations

import email.parser
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.parse
import urllib.request
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import TYPE_CHECKING

from kolm.bundlefile import SourceBuild
from kolm.errors import BackendError, UsageError
from kolm.platforms import platform_named

if TYPE_CHECKING:
    from packaging.requirements import Requirement


def fetch_wheels(
    own: dict[str, set[str]], platform: str, python: str, dest: Path, find_links: list[Path]
) -> list[SourceBuild]:
    """Fill `dest` with wheels of `own` (kolm distributions installed here -> the extras wanted) and
    of everything they need on `platform` under Python `python`; sdists where the target has no
    wheel, each returned as a `SourceBuild`."""
    target = _target_args(platform, python, find_links)
    markers = _markers(platform, python)
    sources = [folder for name in own if (folder := _own_wheel(name, dest, target)) is not None]
    if sources:  # one pip for all: each build sets up its isolated build env anyway
        _pip_or_raise("wheel", "--no-deps", "-w", str(dest), *map(str, sources))
    from packaging.utils import canonicalize_name

    ours = {canonicalize_name(n) for n in own}
    wanted = [r for name, extras in own.items() for r in _requirements(name, extras, markers)]
    wanted = _unique([r for r in wanted if canonicalize_name(r.name) not in ours])
    builds: list[SourceBuild] = []
    while (result := _pip("download", "-d", str(dest), *target, *map(str, wanted))).returncode != 0:
        missing = _no_wheel(result.stderr, wanted)  # a requirement pip found no wheel of, for the target
        if missing is None or any(b.name == missing.name for b in builds):
            hint = " (build a wheel of it for the target; give --wheels DIR)" if "No matching" in result.stderr else ""
            raise BackendError(f"pip download failed for {platform}, Python {python}: {_pip_error(result)}{hint}")
        sdist = _sdist(missing, dest, find_links)
        needs, more = _sdist_requirements(sdist, missing.extras, markers)
        builds.append(SourceBuild(name=missing.name, sdist=f"wheels/{sdist.name}", needs=needs))
        others = [r for r in wanted if r.name != missing.name]
        wanted = _unique(others + [r for r in more if canonicalize_name(r.name) not in ours])
    return builds


def _no_wheel(stderr: str, wanted: list[Requirement]) -> Requirement | None:
    """The requirement among `wanted` that pip said it found no distribution of, if it said so."""
    from packaging.utils import canonicalize_name

    said = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)", stderr)
    if said is None:
        return None
    return next((r for r in wanted if canonicalize_name(r.name) == canonicalize_name(said.group(1))), None)


def _target_args(platform: str, python: str, find_links: list[Path]) -> list[str]:
    abi = "cp" + python.replace(".", "")
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    args += [a for abi_tag in (abi, "abi3", "none") for a in ("--abi", abi_tag)]
    args += [a for tag in platform_named(platform).tags for a in ("--platform", tag)]
    for folder in find_links:
        if not folder.is_dir():
            raise UsageError(f"--wheels {folder}: no such folder")
        args += ["--find-links", str(folder)]
    return args


def _markers(platform: str, python: str) -> dict[str, str]:
    return platform_named(platform).markers | {
        "os_name": "posix",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def _own_wheel(name: str, dest: Path, target: list[str]) -> Path | None:
    """A wheel of the installed distribution `name` in `dest`, copied from the wheel file it was
    installed from or downloaded from the index; or the source folder it is installed from, to build."""
    try:
        dist = distribution(name)
    except PackageNotFoundError as exc:
        raise UsageError(f"{name} is not installed here; install it, then bundle again") from exc
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    url = direct.get("url", "")
    local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)) if url.startswith("file:") else None
    if local is not None and "dir_info" in direct and local.is_dir():
        return local
    if local is not None and local.suffix == ".whl" and local.is_file():
        shutil.copy2(local, dest / local.name)
    else:
        _pip_or_raise("download", "--no-deps", "-d", str(dest), *target, f"{name}=={dist.version}")
    return None


def _requirements(name: str, extras: set[str], markers: dict[str, str]) -> list[Requirement]:
    return _applicable(distribution(name).requires or [], extras, markers)


def _applicable(lines: list[str], extras: set[str], markers: dict[str, str]) -> list[Requirement]:
    """The requirements among `lines` that apply on the target with `extras`, markers removed."""
    from packaging.requirements import Requirement

    found = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate(markers | {"extra": e}) for e in (extras or {""})):
            req.marker = None
            found.append(req)
    return found


def _unique(reqs: list[Requirement]) -> list[Requirement]:
    return list({str(r): r for r in reqs}.values())


def _sdist(req: Requirement, dest: Path, find_links: list[Path]) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        links = [a for folder in find_links for a in ("--find-links", str(folder))]
        bare = f"{req.name}{req.specifier}"
        _pip_or_raise("download", "--no-deps", "--no-binary=:all:", "-d", tmp, *links, bare)
        (sdist,) = Path(tmp).iterdir()
        return Path(shutil.move(sdist, dest / sdist.name))


def _sdist_requirements(sdist: Path, extras: set[str], markers: dict[str, str]) -> tuple[str, list[Requirement]]:
    """What building `sdist` on the target needs, in words, and the requirements to carry as wheels:
    its own (PKG-INFO) and its build system's (pyproject.toml; CMake and Ninja for scikit-build-core,
    which asks pip for them where the system has none)."""
    found: dict[str, str] = {}
    try:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 2 and member.isfile() and parts[1] in ("PKG-INFO", "pyproject.toml"):
                    found[parts[1]] = tar.extractfile(member).read(1 << 20).decode()
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"{sdist.name}: cannot read it ({exc})") from exc
    metadata, pyproject = found.get("PKG-INFO"), found.get("pyproject.toml")
    if metadata is None:
        raise BackendError(f"{sdist.name}: no PKG-INFO; cannot tell what it needs")
    runs = _applicable(email.parser.Parser().parsestr(metadata).get_all("Requires-Dist") or [], extras, markers)
    system = tomllib.loads(pyproject or "").get("build-system", {})
    builds = _applicable(system.get("requires", ["setuptools", "wheel"]), set(), markers)
    needs = f"a C/C++ compiler to build {sdist.name} (pip builds it on the target)"
    if system.get("build-backend", "").startswith("scikit_build_core"):
        builds += _applicable(["cmake>=3.21", "ninja"], set(), markers)
        needs = f"a C/C++ compiler (gcc and g++, or clang) to build {sdist.name}; CMake and Ninja come as wheels"
    return needs, runs + builds


def _pip(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", *args[:1], "--disable-pip-version-check", "--no-input", *args[1:]]
    return subprocess.run(command, capture_output=True, text=True)


def _pip_or_raise(*args: str) -> None:
    result = _pip(*args)
    if result.returncode != 0:
        raise BackendError(f"pip {args[0]} failed: {_pip_error(result)}")


def _pip_error(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    return (errors or result.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("ERROR: ")
