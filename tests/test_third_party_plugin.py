"""A third-party plugin (tests/example_plugin: a RISC-V board) installs with pip and shows up in
`kolm devices` and the forecast, with no change to kolm-core."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent / "example_plugin"


def test_pip_installed_plugin_adds_a_device(kolm, tmp_path: Path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True)
    env = {"PYTHONPATH": str(target)}
    rows = json.loads(kolm("devices", "--json", env=env).stdout)
    mars = next(r for r in rows if r["name"] == "Milk-V Mars")
    assert mars["arch"] == "riscv64" and mars["backends"] == ["gguf"]

    result = kolm("export", "SmolLM2-135M", "--target", "jh7110", "--quant", "int4", "--preview", "--json", env=env)
    assert result.returncode == 0, result.stderr
    forecast = json.loads(result.stdout)
    assert forecast["backend"] == "gguf" and forecast["fit"]["verdict"] == "pass"
    assert "https://milkv.io/docs/mars/overview" in forecast["forecast_sources"]

    plugins = {p["name"]: p for p in json.loads(kolm("plugins", "--json", env=env).stdout)}
    assert plugins["riscv_example"]["distribution"] == "kolm-riscv-example"
    assert "kolm-riscv-example" not in {r["name"] for r in rows}  # and nothing else changed


def test_readme_shows_the_example_plugin_verbatim():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert (EXAMPLE / "kolm_riscv_example.py").read_text() in readme
