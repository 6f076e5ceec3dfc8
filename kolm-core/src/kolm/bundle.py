"""`kolm bundle` and `kolm unbundle`: everything a site without a network needs, in one signed file.

A bundle holds the export folder (its copy signed with the bundle's key: `kolm.sig`), the artifact
it was exported from (the site's `kolm verify` measures K on its eval pack), the cached fp16
reference export its fidelity is measured against (so the site needs no converter), and the wheels
of kolm-core, the backend's plugin and everything they need for the target's platform and Python
(`kolm.wheelhouse`), with `install.sh` and a README. The file format and its byte-for-byte check
are `kolm.bundlefile`.

At the site, `unbundle` checks the signature and every byte before it writes anything, unpacks
(atomically), runs `install.sh` (a fresh venv, `pip install --no-index` from the bundle's wheels
only), puts the fp16 reference into kolm's cache, and runs the venv's `kolm verify --key` on the
export. Run again after a failure (no compiler for a source build, say), it reuses the unpacked folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kolm import __version__
from kolm.api import Steps, silent
from kolm.artifact import Artifact, sha256_file
from kolm.atomic import scratch_dir
from kolm.bundlefile import (
    LOCK,
    SIGNATURE,
    BundleLock,
    LockedFile,
    SourceBuild,
    check_bundle,
    lock_bytes,
    unpack_bundle,
    write_bundle,
)
from kolm.datamodel import KolmModel
from kolm.errors import ArtifactError, BackendError, OutputError, UsageError
from kolm.record import load_record
from kolm.reference import cached_reference, install_reference, reference_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kolm.plugins import Registry

INSTALLED = ".kolm-installed"
"""Written into the venv by install.sh when pip has finished: a venv without it is rebuilt."""


class Bundled(KolmModel):
    """What `kolm bundle` wrote."""

    bundle: str
    size: int
    platform: str
    python: str
    backend: str
    files: int
    wheels: list[str]
    source_builds: list[SourceBuild]


class Unbundled(KolmModel):
    """What `kolm unbundle` did: the folder it unpacked, the venv's kolm, and the verify's exit code."""

    folder: str
    kolm: str
    files: int
    resumed: bool
    verify_exit_code: int
    verification: dict | None = None


def make_bundle(
    registry: Registry,
    export: Path,
    artifact: Path,
    platform: str,
    python: str,
    out: Path,
    private_key: Path,
    certificate: Path | None = None,
    chain: Sequence[Path] = (),
    wheels: Sequence[Path] = (),
    steps: Steps = silent,
) -> Bundled:
    """Bundle `export` (and `artifact`, its source) for `platform` and Python `python`, signed with
    `private_key` (or a certificate and its chain), into `out`, written atomically."""
    from kolm.platforms import platform_named
    from kolm.signing import canonical_signature, sign_export, sign_files
    from kolm.wheelhouse import fetch_wheels

    platform_named(platform)  # an unknown platform fails before any work
    if re.fullmatch(r"3\.\d+", python) is None:
        raise UsageError(f"--python {python!r}: give the target's Python as 3.X, e.g. 3.11")
    folder, record = load_record(export)
    owner = registry.backend(record.backend)
    with Artifact(artifact) as art:
        source = art.manifest
    if (source.base, source.eval_pack) != (record.manifest.base, record.manifest.eval_pack):
        raise UsageError(f"{artifact} is not the artifact {folder} was exported from (base or eval pack differs)")
    reference = None
    if owner.no_runtime is None and record.tier != "fp16":
        if (cached := cached_reference(owner, source)) is None:
            raise UsageError(
                f"no fp16 {owner.name} reference of {artifact.name} is cached here, and the site needs one to "
                f"measure fidelity: run kolm verify {folder} --against {artifact} (it makes one), then bundle"
            )
        reference = (cached[0], f"reference/{reference_key(owner, source)}")
    plugins, base = [], owner
    while base is not None:  # the plugin, and those of the backends it builds on
        plugins.append(base.distribution)
        base = base.base
    with scratch_dir(out, "bundle") as work:
        stage = work / "bundle"
        with steps("copying the export, the artifact and the fp16 reference"):
            _place(folder, stage / "export")
            _place(artifact, stage / "artifact" / f"{artifact.stem}.kolm")
            if reference is not None:
                _place(reference[0], stage / reference[1])
            sign_export(stage / "export", private_key, certificate, chain)  # the copy: the site checks kolm.sig too
        (stage / "wheels").mkdir()
        with steps(f"fetching wheels for {platform}, Python {python} (pip)"):
            builds = fetch_wheels(
                {"kolm-core": {"signing"}, **{p: set() for p in plugins}}, platform, python, stage / "wheels", wheels
            )
        install = ["kolm-core[signing]", *plugins]
        (stage / "install.sh").write_text(_install_script(python, install), encoding="utf-8")
        (stage / "README.md").write_text(_readme(folder.name, platform, python, builds), encoding="utf-8")
        names = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        with steps(f"hashing {len(names)} files") as advance:
            total = sum((stage / n).stat().st_size for n in names)
            locked, done = [], 0
            for name in names:
                size = (stage / name).stat().st_size
                digest = sha256_file(stage / name, lambda d, _t, start=done: advance(start + d, total))
                locked.append(LockedFile(path=name, size=size, sha256=digest))
                done += size
        lock = BundleLock(
            platform=platform,
            python=python,
            backend=record.backend,
            install=install,
            plugins=plugins,
            artifact=f"artifact/{artifact.stem}.kolm",
            reference=None if reference is None else reference[1],
            source_builds=builds,
            made_with=f"kolm-core {__version__}",
            files=locked,
        )
        (work / "lock").mkdir()
        (work / "lock" / LOCK).write_bytes(lock_bytes(lock))
        with steps("signing the lock"):
            sign_files(work / "lock", [LOCK], work / SIGNATURE, private_key, certificate, chain)
        with steps(f"writing {out.name}") as advance:
            write_bundle(out, lock, canonical_signature((work / SIGNATURE).read_bytes()), stage, advance)
    return Bundled(
        bundle=str(out),
        size=out.stat().st_size,
        platform=platform,
        python=python,
        backend=record.backend,
        files=len(locked),
        wheels=sorted(n.removeprefix("wheels/") for n in names if n.startswith("wheels/")),
        source_builds=builds,
    )


def unbundle(
    bundle: Path,
    trust: Path,
    out: Path,
    python: str | None = None,
    steps: Steps = silent,
    as_json: bool = False,
) -> Unbundled:
    """Check `bundle` with `trust` (every byte, before anything is written), unpack it into `out`,
    install its kolm into `out/venv` from its wheels only, cache its fp16 reference, and run the
    venv's `kolm verify` on the export: its report goes to this process's output, or, `as_json`,
    into `Unbundled.verification`."""
    with steps(f"checking {bundle.name}: the signature, then every byte") as advance:
        checked = check_bundle(bundle, trust, advance)
    lock = checked.lock
    interpreter = _interpreter(python, lock.python)
    resumed = out.exists()
    if resumed:
        _check_unpacked(out, checked.lock_raw, lock)
    else:
        with steps(f"unpacking {len(lock.files)} files into {out}") as advance:
            unpack_bundle(checked, out, advance)
    log = out / "install.log"
    with steps(f"installing {', '.join(lock.install)} into {out / 'venv'} (pip, no network)"), open(log, "wb") as f:
        done = subprocess.run(
            ["sh", str(out / "install.sh")],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHON": interpreter, "PIP_CONFIG_FILE": os.devnull},
        )
    if done.returncode != 0:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
        needs = "; ".join(f"{b.name} needs {b.needs}" for b in lock.source_builds)
        raise BackendError(
            f"install.sh failed (exit {done.returncode}): {last[:300]}"
            + (f" ({needs})" if needs else "")
            + f"; the log: {log}; fix it and run kolm unbundle again (the unpacked files are kept)"
        )
    if lock.reference is not None:
        install_reference(out / lock.reference, lock.reference.removeprefix("reference/"))
    kolm = out / "venv" / "bin" / "kolm"
    command = [str(kolm), "verify", str(out / lock.export), "--against", str(out / lock.artifact)]
    command += ["--key", str(trust), *(["--json"] if as_json else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KOLM_LOAD_PLUGINS": ",".join(lock.plugins)}
    verified = subprocess.run(command, env=env, stdout=subprocess.PIPE if as_json else None, text=True)
    try:
        verification = json.loads(verified.stdout) if as_json else None
    except json.JSONDecodeError:
        verification = None  # verify failed before its report (its one-line error went to stderr)
    return Unbundled(
        folder=str(out),
        kolm=str(kolm),
        files=len(lock.files),
        resumed=resumed,
        verify_exit_code=verified.returncode,
        verification=verification,
    )


def _place(source: Path, target: Path) -> None:
    """`source` (a file or a folder of regular files) at `target`: hard links where the filesystem
    allows (nothing copied), copies elsewhere. A symlink is refused: a bundle carries files."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if not p.is_dir())
    for file in files:
        if file.is_symlink() or not file.is_file():
            raise ArtifactError(f"{file}: not a regular file; a bundle carries files only")
        dest = target if source.is_file() else target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, dest)
        except OSError:
            shutil.copy2(file, dest)


def _interpreter(python: str | None, wanted: str) -> str:
    """The Python the site's venv is made with: `python`, else pythonX.Y or this one, if it is X.Y."""
    candidates = [python] if python else [shutil.which(f"python{wanted}"), sys.executable]
    for candidate in filter(None, candidates):
        found = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if found.returncode == 0 and found.stdout.strip() == wanted:
            return candidate
    raise UsageError(f"the bundle's wheels are for Python {wanted}: give --python PATH to a Python {wanted}")


def _check_unpacked(out: Path, raw_lock: bytes, lock: BundleLock) -> None:
    """`out` exists: it must be this bundle, unpacked and unchanged, to be reused."""
    if not (out / LOCK).is_file() or (out / LOCK).read_bytes() != raw_lock:
        raise OutputError(f"{out} exists and is not this bundle unpacked; choose another -o or remove it")
    for entry in lock.files:
        file = out / entry.path
        if not file.is_file() or file.stat().st_size != entry.size or sha256_file(file) != entry.sha256:
            raise OutputError(f"{out}: {entry.path} changed since it was unpacked; remove {out} and unbundle again")


def _install_script(python: str, install: list[str]) -> str:
    wanted = tuple(int(p) for p in python.split("."))
    packages = " ".join(shlex.quote(p) for p in install)
    return f"""#!/bin/sh
# Installs this bundle's kolm into ./venv from ./wheels only: no index, no network.
# `kolm unbundle BUNDLE --key SIGNER.pub.pem -o DIR` checks the bundle, unpacks it and runs this.
set -eu
cd "$(dirname "$0")"
PYTHON="${{PYTHON:-python{python}}}"
if [ -f venv/{INSTALLED} ]; then echo "venv/ is installed"; exit 0; fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != {wanted})' || {{
    echo "install.sh: the wheels are for Python {python}; set PYTHON to a Python {python}" >&2; exit 2; }}
rm -rf venv
"$PYTHON" -m venv venv
PIP_CONFIG_FILE=/dev/null venv/bin/python -m pip install --no-index --find-links wheels \\
    --disable-pip-version-check {packages}
touch venv/{INSTALLED}
echo "installed: venv/bin/kolm"
"""


def _readme(export: str, platform: str, python: str, builds: list[SourceBuild]) -> str:
    built = "".join(f"- `{b.sdist}` is built by pip on the target: it needs {b.needs}.\n" for b in builds)
    return f"""# kolm bundle: {export}, for {platform}, Python {python}

Check and install it (kolm-core[signing] must be installed on the machine that runs this):

    kolm unbundle THIS.kolmb --key SIGNER.pub.pem -o site

That checks the signature over `{LOCK}` and every byte of the bundle against it before writing
anything, unpacks it, installs kolm into `site/venv` from `site/wheels` only (`install.sh`), and
verifies the export with `site/venv/bin/kolm verify`. Then run it:

    site/venv/bin/kolm run site/export --prompt "Hello"

{built}
Contents: `export/` (the export), `artifact/` (the .kolm it came from: verify measures K on its eval
pack), `reference/` (the fp16 export fidelity is measured against), `wheels/`, `install.sh`.
"""
