"""The merged device table with every plugin of this repo installed: the seed's devices are all
there, each constant cites a public source, and the forecast answers for every row."""

from __future__ import annotations

import json

import pytest

SEED = [
    "Raspberry Pi 5",
    "Jetson Orin Nano",
    "Jetson AGX Orin",
    "Apple M3 Pro",
    "Apple M3 Max",
    "iPhone 15 Pro",
    "Pixel 8",
    "Steam Deck",
    "Snapdragon X Elite",
    "RTX 4090",
    "browser",
    "x86 laptop",
]


@pytest.fixture(scope="module")
def rows(kolm) -> list[dict]:
    result = kolm("devices", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_seed_device_is_present(rows):
    names = {r["name"] for r in rows}
    assert [d for d in SEED if d not in names] == []


def test_every_constant_cites_a_public_source(rows):
    """Shipped rows cite a URL; this machine's row (measured) and a user's own (their word) say so."""
    for row in rows:
        for field in ("memory_gb", "bandwidth_gbps"):
            own = row[field]["source"] in ("kolm:measured", "kolm:user")
            assert own or row[field]["source"].startswith(("https://", "http://")), (row["name"], field)
            assert row[field]["value"] > 0


@pytest.mark.parametrize(
    "name, expected",
    [("rtx-4090", "RTX 4090"), ("RTX 4090", "RTX 4090"), ("raspberry_pi_5", "Raspberry Pi 5"), ("PIXEL-8", "Pixel 8")],
)
def test_names_match_case_and_punctuation_insensitively(kolm, name, expected):
    result = kolm("export", "SmolLM2-135M", "--target", name, "--quant", "int4", "--preview", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["device"] == expected


def test_picker_covers_every_device_and_tier(kolm, rows):
    result = kolm("pick", "SmolLM2-135M-Instruct", "--json")
    picks = json.loads(result.stdout)
    assert {p["device"] for p in picks} == {r["name"] for r in rows}
    onnx = [p for p in picks if p["backend"] == "onnx"]
    assert onnx and "int3" not in {p["tier"] for p in onnx}  # onnx refuses int3
    for p in picks:
        assert p["tok_s"]["low"] <= p["tok_s"]["high"] and p["forecast_sources"]


def test_onnx_refuses_int3_in_one_line(kolm):
    result = kolm("export", "SmolLM2-135M", "--target", "pixel-8", "--quant", "int3", "--preview")
    assert result.returncode == 7
    assert result.stderr == "kolm: error: int3 is not supported by onnx; use fp16, int8, int4\n"


def test_export_without_the_backends_toolchain_names_the_install(kolm, tiny_artifact):
    """kolm-coreml is installed here without coremltools (its [toolchain] extra): one line, exit 8."""
    result = kolm("export", str(tiny_artifact), "--target", "iphone-15-pro", "--quant", "int4")
    assert result.returncode == 8, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kolm: error:")]
    assert len(errors) == 1 and "pip install 'kolm-coreml[toolchain]'" in errors[0], result.stderr


def test_the_iphone_steps_hand_the_export_to_xcode_instead_of_scp(kolm):
    """kolm-coreml's handoff: a stock iPhone has no ssh, so no scp command; kolm run runs on a Mac."""
    result = kolm("export", "Llama-3.2-1B", "--target", "iphone-15-pro", "--quant", "int4", "--preview", "--json")
    assert result.returncode == 0, result.stderr
    _, copy, run, _ = json.loads(result.stdout)["steps"]
    assert copy["command"] is None and "Xcode" in copy["note"] and "KolmChat" in copy["note"]
    assert run["where"].startswith("a Mac with macOS 15") and run["command"].startswith("kolm run ")
