"""kolm-onnx's unhappy paths and laziness: a missing toolchain is one line, and forecasting never
imports ONNX Runtime, onnx, torch or transformers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


def test_missing_toolchain_is_one_line(kolm, smol_pack, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime_genai" else real(name, *a)
    )
    result = kolm("export", smol_pack, "--target", "pixel-8", "--quant", "int4", "-o", tmp_path / "out")
    assert result.exit_code != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("onnxruntime_genai is not installed; pip install 'kolm-onnx[toolchain]'")
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_preview_does_not_import_the_toolchain(smol_pack):
    code = (
        "import sys; from click.testing import CliRunner; from kolm.cli import cli;"
        f"r = CliRunner().invoke(cli, ['export', {str(smol_pack)!r}, '--target', 'pixel-8', '--quant', 'int4',"
        " '--preview']);"
        "assert r.exit_code == 0, r.output;"
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxruntime_genai', 'torch', 'transformers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
