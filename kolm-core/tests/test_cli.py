"""The CLI as a user sees it: output, JSON, exit codes, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from kolm.cli import cli

COMMANDS = [
    "devices",
    "plugins",
    "bases",
    "schema",
    "pack",
    "inspect",
    "pick",
    "export",
    "run",
    "bench",
    "verify",
    "sign",
    "ui",
]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str):
    result = run(command, "--help")
    assert result.exit_code == 0 and "kolm " + command in result.output and "Example" in result.output


def test_devices_json_carries_sources(registry):
    rows = json.loads(run("devices", "--json").output)
    board = next(r for r in rows if r["name"] == "Test Board 4")
    assert board["bandwidth_gbps"] == {"value": 10.0, "source": "https://example.org/spec", "note": ""}


def test_devices_table(registry):
    assert "Test Board 4" in run("devices").output


def test_plugins_json(registry):
    rows = json.loads(run("plugins", "--json").output)
    assert rows == [
        {
            "name": "board",
            "distribution": "kolm-test-boards",
            "version": "0.1",
            "hooks": ["device_profiles"],
            "backend": None,
            "recipes": {},
            "toolchain": {},
            "install": None,
            "error": None,
        }
    ]


def test_bases_lists_the_seed_models():
    names = [row["name"] for row in json.loads(run("bases", "--json").output)]
    for name in (
        "Llama-3.1-8B",
        "Llama-3.2-3B",
        "Llama-3.2-1B",
        "Phi-3-mini-3.8B",
        "Mistral-7B",
        "SmolLM2-135M-Instruct",
        "Qwen2.5-0.5B-Instruct",
        "Qwen2.5-1.5B-Instruct",
    ):
        assert name in names


def test_schema_is_the_rs1_json_schema():
    schema = json.loads(run("schema").output)
    assert schema["title"] == "RS-1 manifest" and "payload" in schema["properties"]


@pytest.mark.parametrize("name", ["rs1", "backend", "devices", "throughput"])
def test_schemas_equal_the_copies_in_docs(name):
    """docs/schemas/ is what plugin authors read; regenerate with `kolm schema NAME > docs/schemas/NAME.schema.json`."""
    committed = Path(__file__).parents[2] / "docs" / "schemas" / f"{name}.schema.json"
    assert json.loads(run("schema", name).output) == json.loads(committed.read_text())


def test_pack_and_inspect(tmp_path: Path, hf_folder: Path, eval_pack: Path):
    out = tmp_path / "t.kolm"
    result = run("pack", str(hf_folder), "--eval", str(eval_pack), "--base", "tiny", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: tiny, ") and "2 eval items, K not measured" in result.stdout
    data = json.loads(run("inspect", str(out), "--json").output)
    assert data["manifest"]["schema"] == "RS-1" and data["tensors"]["count"] == 20
    assert data["tensors"]["dtype_bytes"] == {"F16": 2 * data["tensors"]["params"]}
    assert "not measured" in run("inspect", str(out)).output


def test_preview_json_has_the_documented_keys(registry, artifact: Path):
    result = run("export", str(artifact), "--target", "tb4", "--quant", "int4", "--preview", "--json")
    data = json.loads(result.output)
    for key in ("size_bytes", "k_loss_points", "backend", "command", "forecast_sources"):
        assert key in data
    assert set(data["tok_s"]) >= {"low", "high"}
    assert set(data["fit"]) >= {"verdict", "need_bytes", "memory_bytes"}


def test_preview_human(registry):
    result = run("export", "SmolLM2-135M", "--target", "Test GPU", "--quant", "q8_0", "--preview")
    assert "Forecast (not measured): SmolLM2-135M-Instruct → Test GPU, int8" in result.output
    assert "PASS" in result.output


def test_pick_table(registry):
    result = run("pick", "Llama-3.1-8B", "--target", "tb4")
    assert result.exit_code == 0
    assert "OVER" in result.output  # 8B at fp16 does not fit a 4 GB board


def test_pick_table_is_readable_at_80_columns(registry):
    result = CliRunner().invoke(cli, ["pick", "Llama-3.1-8B"], env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    assert "…" not in result.output  # no cell cut short
    rows = json.loads(run("pick", "Llama-3.1-8B", "--target", "tb4", "--quant", "int4", "--json").output)
    board = next(line for line in lines if line.startswith("Test Board"))
    assert f"{rows[0]['size_bytes'] / 1e9:.1f} GB {rows[0]['fit']['verdict'].upper()}" in board


def test_export_of_a_base_name_needs_an_artifact(registry):
    result = run("export", "Llama-3.1-8B", "--target", "tb4", "--quant", "int4")
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == "kolm: error: export needs a .kolm artifact; Llama-3.1-8B is a base (add --preview to forecast)"
    )


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("export", "SmolLM2-135M", "--target", "pi9", "--quant", "int4", "--preview"), 3, "unknown device 'pi9'"),
        (("export", "SmolLM2-135M", "--target", "tb4", "--quant", "int2", "--preview"), 2, "unknown quant tier 'int2'"),
        (("export", "nope-model", "--target", "tb4", "--quant", "int4", "--preview"), 4, "is not a .kolm file"),
        (("inspect", "/no/such.kolm"), 5, "no such file"),
    ],
)
def test_errors_are_one_line_with_distinct_exit_codes(registry, args, code, message):
    result = run(*args)
    assert result.exit_code == code
    assert message in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_corrupt_artifact_one_line(tmp_path: Path):
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(b"PK\x03\x04 truncated")
    result = run("inspect", str(bad))
    assert result.exit_code == 5 and result.output.startswith("kolm: error: ") and result.output.count("\n") == 1


def test_debug_shows_the_exception(tmp_path: Path):
    result = run("--debug", "inspect", str(tmp_path / "missing.kolm"))
    assert type(result.exception).__name__ == "ArtifactError"


def test_real_subprocess_error_goes_to_stderr(tmp_path: Path):
    kolm = Path(sys.executable).with_name("kolm")
    proc = subprocess.run([str(kolm), "inspect", str(tmp_path / "missing.kolm")], capture_output=True, text=True)
    assert proc.returncode == 5 and proc.stdout == ""
    assert proc.stderr == f"kolm: error: {tmp_path / 'missing.kolm'}: no such file\n"
