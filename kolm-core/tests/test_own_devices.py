"""A device no plugin lists: described by its numbers (--bandwidth, --memory, --kind) or a JSON row
(--device-file), forecast like any other, kept in $KOLM_HOME/devices/ for later --target."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kolm_testing import invoke

ROW = {
    "name": "Lab Box",
    "kind": "laptop",
    "os": "linux",
    "arch": "x86_64",
    "memory_gb": {"value": 8, "source": "kolm:user"},
    "memory_kind": "ram",
    "bandwidth_gbps": {"value": 25, "source": "kolm:user"},
    "backends": ["table"],
}


def preview(*args: str) -> dict:
    result = invoke("export", "Llama-3.2-1B", "--quant", "int8", "--preview", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_two_numbers_forecast_a_device_and_it_is_kept_for_later(table):
    planned = preview("--target", "my-box", "--bandwidth", "68", "--memory", "16", "--kind", "laptop")
    assert planned["device"] == "my-box" and planned["backend"] == "table"
    assert "68 GB/s" in planned["tok_s"]["basis"] and planned["fit"]["memory_bytes"] == 16_000_000_000
    assert "kolm:user" in planned["forecast_sources"]
    assert preview("--target", "my-box") == planned  # kept: --target finds it by name
    [row] = [r for r in json.loads(invoke("devices", "--json").stdout) if r["name"] == "my-box"]
    assert row["bandwidth_gbps"] == {"value": 68.0, "source": "kolm:user", "note": "given by the user"}


def test_a_device_file_is_a_row_pick_forecasts(table, tmp_path):
    file = tmp_path / "lab-box.json"
    file.write_text(json.dumps(ROW))
    picked = invoke("pick", "Llama-3.2-1B", "--device-file", file, "--json")
    assert picked.exit_code == 0, picked.output
    rows = json.loads(picked.stdout)
    assert {r["device"] for r in rows} == {"Lab Box"} and {r["tier"] for r in rows} == {"fp16", "int8", "int4"}
    assert preview("--target", "lab-box")["fit"]["memory_bytes"] == 8_000_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", "x", "--bandwidth", "68"), "--bandwidth needs --memory (both above 0)"),
        (("--bandwidth", "68", "--memory", "16"), "--bandwidth needs --memory (both above 0) and a name"),
        (("--target", "x", "--bandwidth", "-1", "--memory", "16"), "--bandwidth needs --memory (both above 0)"),
        (("--device-file", "missing.json"), "cannot read device file missing.json"),
        (("--device-file", "bad.json"), "bad.json: not a device row (name: Input should be a valid string"),
        (("--device-file", "bad.json", "--bandwidth", "1"), "give your device as --device-file or as --bandwidth"),
    ],
)
def test_a_device_described_wrong_is_one_line(table, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    Path("bad.json").write_text('{"name": 3}')
    result = invoke("export", "Llama-3.2-1B", "--quant", "int8", "--preview", *args)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"kolm: error: {message}"), line


def test_a_damaged_saved_row_is_named(table):
    saved = Path(os.environ["KOLM_HOME"]) / "devices" / "broken.json"
    saved.parent.mkdir(parents=True)
    saved.write_text("{")
    result = invoke("devices")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"kolm: error: {saved}: not a device row (")
    assert result.stderr.strip().endswith("; fix or delete it")


def test_the_kinds_a_user_may_give_are_the_device_kinds_but_the_browser():
    from typing import get_args

    from kolm.cli import KINDS
    from kolm.devices import DeviceKind

    assert KINDS == [k for k in get_args(DeviceKind) if k != "browser"]
