"""docs/air-gapped.md, run: its connected-machine block as written (a bundle for a Raspberry Pi 5,
whose wheels must all be linux-aarch64 or pure Python), again for this machine's platform, and the
site's block inside a network namespace with no network (`unshare -n`, as root): the bundle checked,
kolm installed into a fresh venv from the bundle's wheels only, the export verified with its
signature (seven checks) and run. A tampered byte is refused before anything is written.

KOLM_EVAL_PACK holds one item, so pack and verify take seconds; pip needs the package index for
the bundles (CI has it), never at the site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from kolm_testing import PARIS_ITEM, doc_blocks, shell_env, write_eval_pack

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "air-gapped.md"
[(_, ONLINE)] = doc_blocks(GUIDE, "online")
[(_, SITE)] = doc_blocks(GUIDE, "on-device")
HERE = "linux-x86_64"


def bash(script: str, cwd: Path, env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, "bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def guide(tmp_path_factory) -> tuple[Path, dict[str, str], subprocess.CompletedProcess]:
    """The guide's connected-machine block, run as written in a fresh folder."""
    root = tmp_path_factory.mktemp("airgap")
    pack = write_eval_pack(root / "one.jsonl", [PARIS_ITEM])
    env = shell_env(KOLM_EVAL_PACK=str(pack), KOLM_HOME=str(root / "home"), COLUMNS="200")
    done = bash(ONLINE, root, env)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return root, env, done


@pytest.fixture(scope="module")
def here(guide) -> Path:
    """The guide's `kolm bundle` line for this machine: linux-x86_64, with the llama-cpp-python wheel
    the env was installed with (pip's cache) in --wheels, as a user with a build box would."""
    root, env, _ = guide
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "llama-cpp-python==0.3.36", "-w", str(root / "lw")],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [line] = [line for line in ONLINE.splitlines() if line.startswith("kolm bundle ")]
    line = line.replace("linux-aarch64", f"{HERE} --wheels lw").replace("site.kolmb", "here.kolmb")
    done = bash(line, root, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "here.kolmb"


def lock_of(bundle: Path) -> dict:
    with tarfile.open(bundle) as tar:
        return json.loads(tar.extractfile("kolm-bundle.json").read())


def test_the_guide_bundles_for_a_raspberry_pi_with_wheels_for_it(guide):
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    root, _, done = guide
    lock = lock_of(root / "site.kolmb")
    assert (lock["platform"], lock["python"], lock["backend"]) == ("linux-aarch64", "3.11", "gguf")
    wheels = [f["path"].removeprefix("wheels/") for f in lock["files"] if f["path"].endswith(".whl")]
    names = {str(parse_wheel_filename(w)[0]) for w in wheels}
    assert {"kolm-core", "kolm-gguf", "numpy", "gguf", "model-signing", "cryptography"} <= names
    for wheel in wheels:
        tags = parse_wheel_filename(wheel)[3]
        assert all(t.platform == "any" or t.platform.endswith("_aarch64") for t in tags), wheel
        assert any(t.interpreter in ("py3", "cp311") or t.abi == "abi3" for t in tags), wheel
    # llama-cpp-python has no wheel on PyPI: its sdist, and what building it needs, as wheels
    [build] = lock["source_builds"]
    assert parse_sdist_filename(build["sdist"].removeprefix("wheels/"))[0] == "llama-cpp-python"
    assert {"scikit-build-core", "cmake", "ninja"} <= names and "compiler" in build["needs"]
    assert f"built on the target from source: {build['sdist']}" in done.stdout
    assert {f["path"].split("/")[0] for f in lock["files"]} == {
        "README.md",
        "artifact",
        "export",
        "install.sh",
        "reference",
        "wheels",
    }
    assert "export/kolm.sig" in {f["path"] for f in lock["files"]}  # the copy is signed for check 7


def test_the_site_installs_verifies_and_runs_it_with_no_network(guide, here):
    root, env, _ = guide
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs `unshare -n` (root and util-linux) to take the network away")
    site_env = {**env, "KOLM_HOME": str(root / "site-home")}  # nothing cached: the bundle's reference is used
    done = bash(SITE.replace("site.kolmb", here.name), root, site_env, "unshare", "-n")
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    _, ran = done.stdout.split("7 of 7 checks passed")
    assert "Paris" in ran  # `site/venv/bin/kolm run`, the guide's last line
    venv = root / "site" / "venv"
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import kolm, kolm_gguf, llama_cpp; print(kolm.__file__, kolm_gguf.__file__)"],
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0 and where.stdout.count(str(venv)) == 2, where.stderr  # installed from the wheels
    assert list((root / "site-home" / "cache" / "reference" / "gguf").iterdir())  # the bundle's fp16 reference


def test_a_tampered_byte_is_refused_before_anything_is_written(guide, here):
    root, env, _ = guide
    lock = lock_of(here)
    artifact = next(f for f in lock["files"] if f["path"] == lock["artifact"])
    bad = root / "tampered.kolmb"
    shutil.copyfile(here, bad)
    with tarfile.open(bad) as tar:
        offset = tar.getmember(artifact["path"]).offset_data + artifact["size"] // 2
    with open(bad, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))
    done = subprocess.run(
        [Path(sys.executable).with_name("kolm"), "unbundle", bad, "--key", root / "signer.pub.pem", "-o", root / "t"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 5, done.stderr
    assert done.stderr.strip() == (
        f"kolm: error: {bad}: {artifact['path']} differs from the lock (SHA-256); damaged or tampered"
    )
    assert not [p for p in os.listdir(root) if p == "t" or p.startswith(".t.")]
