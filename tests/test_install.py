"""docs/install.md as a newcomer follows it: the packages built from this repository (not editable,
so a file missing from a wheel shows), installed into a fresh virtual environment, then a preview,
a pack, an export and a verify run from there. The `bash install` blocks run verbatim, in a copy of
the packages they name (the venv lands in that copy, not in the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kolm_testing import PARIS_ITEM, doc_blocks, write_eval_pack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_the_install_page_works_in_a_fresh_venv(tmp_path):
    for folder in ("kolm-core", "plugins/kolm-gguf", "plugins/kolm-wasm", "docs"):
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "tests", "build", "dist")
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    pack = write_eval_pack(tmp_path / "one.jsonl", [PARIS_ITEM])
    # a fresh venv on the interpreter tox runs on, knowing nothing of this env; KOLM_EVAL_PACK: one item
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"KOLM_EVAL_PACK": str(pack), "OMP_WAIT_POLICY": "passive"}
    blocks = [body for _, body in doc_blocks(ROOT / "docs" / "install.md", "install")]
    assert blocks, "docs/install.md has no ```bash install block"
    outputs = []
    for body in blocks:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{body}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        outputs.append(result.stdout)
    kolm = tmp_path / "kolm-env" / "bin" / "kolm"
    installed = subprocess.run(
        [kolm.with_name("python"), "-c", "import kolm, kolm_gguf; print(kolm.__file__, kolm_gguf.__file__)"],
        capture_output=True,
        text=True,
    ).stdout
    assert str(tmp_path / "kolm-env") in installed and str(ROOT) not in installed  # the wheels, not this checkout
    assert "Forecast (not measured): SmolLM2-135M-Instruct → Raspberry Pi 5, int4" in outputs[1]
    assert "6 of 6 checks passed" in outputs[1]
    page = subprocess.run(
        [kolm.with_name("python"), "-c", "from kolm.ui import render_doc; print(render_doc('install.md')[:2000])"],
        capture_output=True,
        text=True,
    )
    assert "<h1>Install</h1>" in page.stdout, page.stderr  # kolm ui's docs come with the wheel
