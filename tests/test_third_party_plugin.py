"""Third-party plugins install with pip and change nothing in kolm-core: tests/example_plugin adds a
RISC-V board to the gguf backend; tests/example_npu adds a forecast-only backend (RKLLM on an
RK3588 board) with its tier table, device row, size rule and throughput calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "tests" / "example_plugin"
NPU = ROOT / "tests" / "example_npu"
README = (ROOT / "README.md").read_text()


def pip_install(source: Path, target: Path) -> dict[str, str]:
    """Install `source` into `target` as a user would (wheel built by pip), and the env that sees it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return {"PYTHONPATH": str(target)}


def test_pip_installed_plugin_adds_a_device(kolm, tmp_path: Path):
    env = pip_install(EXAMPLE, tmp_path / "site")
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


@pytest.fixture(scope="module")
def npu_env(tmp_path_factory) -> dict[str, str]:
    return pip_install(NPU, tmp_path_factory.mktemp("npu-site"))


def test_a_forecast_only_backend_forecasts_with_its_own_rules(kolm, npu_env):
    result = kolm(
        "export", "Qwen2.5-0.5B", "--target", "rock-5a", "--quant", "int8", "--preview", "--json", env=npu_env
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    forecast = json.loads(result.stdout)
    assert forecast["backend"] == "rkllm" and forecast["backend_installed"]
    assert forecast["command"] is None and forecast["refusal"] == "kolm-example-npu 0.1.0 forecasts only"
    assert "rkllm cannot export Qwen2.5-0.5B-Instruct: kolm-example-npu 0.1.0 forecasts only" in forecast["notes"]
    assert forecast["size_method"] == "w8a8: 8-bit weights, fp32 row scales (example rule)"
    assert forecast["tok_s"]["method"] == "forecast" and forecast["tok_s"]["basis"].startswith("0.42–0.59 × 34.1 GB/s")
    assert any("VenomekPL/RockchipLlama" in source for source in forecast["forecast_sources"])


def test_a_forecast_only_backend_refuses_export_and_other_tiers_in_one_line(kolm, npu_env, tiny_artifact, tmp_path):
    result = kolm(
        "export", str(tiny_artifact), "--target", "rock-5a", "--quant", "int8", "-o", str(tmp_path / "out"), env=npu_env
    )
    assert result.returncode == 7 and result.stderr == (
        "kolm: error: backend rkllm cannot export: kolm-example-npu 0.1.0 does not implement `export` "
        "(forecasts only)\n"
    )
    assert not (tmp_path / "out").exists()
    result = kolm("export", "Qwen2.5-0.5B", "--target", "rock-5a", "--quant", "int4", "--preview", env=npu_env)
    assert result.returncode == 7 and result.stderr == "kolm: error: int4 is not supported by rkllm; use int8\n"
    gguf = kolm(
        "export",
        "Qwen2.5-0.5B",
        "--target",
        "rock-5a",
        "--quant",
        "int4",
        "--backend",
        "gguf",
        "--preview",
        "--json",
        env=npu_env,
    )
    assert json.loads(gguf.stdout)["command"].endswith("--backend gguf")  # the board's other backend


def test_the_backend_is_listed_with_its_toolchain_and_validated_data(kolm, npu_env):
    plugins = {p["name"]: p for p in json.loads(kolm("plugins", "--json", env=npu_env).stdout)}
    assert plugins["rkllm"] == {
        "name": "rkllm",
        "distribution": "kolm-example-npu",
        "version": "0.1.0",
        "hooks": ["backend", "device_profiles", "forecast_size", "forecast_throughput"],
        "backend": "rkllm",
        "recipes": {"int8": ["w8a8"]},
        "toolchain": {"rkllm": False},
        "install": "pip install rkllm-toolkit (Rockchip's, for x86 Linux)",
        "error": None,
    }
    rock = next(r for r in json.loads(kolm("devices", "--json", env=npu_env).stdout) if r["name"] == "Radxa ROCK 5A")
    assert rock["backends"] == ["rkllm", "gguf"]


def test_readme_shows_the_example_plugins_verbatim():
    assert (EXAMPLE / "kolm_riscv_example.py").read_text() in README
    assert (NPU / "kolm_example_npu" / "__init__.py").read_text() in README
    assert (NPU / "kolm_example_npu" / "backend.json").read_text() in README
