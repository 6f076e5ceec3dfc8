"""The export and verify pipelines around a backend, end to end through the CLI with kolm-core's
table backend: a staged export with its record, the K-drop gate, and `kolm verify`'s checks, each
failing on the tampering it guards against, with one-line errors for bad inputs."""

from __future__ import annotations

import json
import zipfile

import pytest
from kolm_testing import VERIFY_CHECKS, failed, invoke, verify


def test_export_writes_payload_record_and_binder(exported):
    folder = exported("int8")
    record = json.loads((folder / "kolm-export.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == [
        "binder.json",
        "kolm-export.json",
        "model.json",
        "model.safetensors",
    ]
    assert [p["path"] for p in record["payload"]] == ["model.json", "model.safetensors"]
    assert record["backend"] == "table" and record["spelling"] == "I8" and record["device"] == "Test Table Box"
    assert record["k"]["score"] == 1.0 and record["k"]["drop_points"] == 0.0
    assert json.loads(json.loads((folder / "model.json").read_text())["manifest"]) == record["manifest"]


def test_the_k_drop_gate_writes_nothing(table, packed, tmp_path):
    out = tmp_path / "gated"
    result = invoke("export", packed, "--target", "ttb", "--quant", "int4", "-o", out)
    assert result.exit_code == 10
    assert result.stderr.splitlines()[-1] == (
        "kolm: error: K 0.500 is 50.0 points below the fp16 reference 1.000, "
        "beyond --max-k-drop 5; --allow-drop exports anyway"
    )
    assert not out.exists() and not list(tmp_path.glob(".kolm-*"))


def test_a_good_export_passes_the_six_checks(exported, packed):
    code, evidence = verify(exported("int4"), packed)
    assert code == 0 and [c["name"] for c in evidence["checks"]] == VERIFY_CHECKS and failed(evidence) == []
    assert evidence["binder"]["k"]["k"] == 0.5 and evidence["binder"]["fidelity"]["top1_agreement"] < 1


def test_the_gate_check_fails_beyond_the_drop(exported, packed):
    result = invoke("verify", exported("int4"), "--against", packed, "--json")
    assert result.exit_code == 11 and failed(json.loads(result.stdout)) == [6]


def test_a_flipped_payload_byte_fails_check_2(exported, packed):
    folder = exported("fp16")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    code, evidence = verify(folder, packed)
    assert code == 11 and failed(evidence) == [2] and "model.safetensors" in evidence["checks"][1]["found"]


def test_an_edited_eval_pack_fails_check_3(exported, packed, tmp_path):
    edited = tmp_path / "edited.kolm"
    with zipfile.ZipFile(packed) as src, zipfile.ZipFile(edited, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, data.replace(b"Paris", b"Lyon") if info.filename == "eval/pack.jsonl" else data)
    code, evidence = verify(exported("fp16"), edited)
    assert code == 11 and 3 in failed(evidence)


def test_a_record_relabelled_by_hand_fails_check_1(exported, packed):
    folder = exported("int8")
    record_path = folder / "kolm-export.json"
    record = json.loads(record_path.read_text())
    record["manifest"]["quant"] = "int4"
    record_path.write_text(json.dumps(record))
    code, evidence = verify(folder, packed)
    assert code == 11 and failed(evidence) == [1] and evidence["checks"][0]["found"] == "differs from kolm-export.json"


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04truncated"])
def test_a_bad_artifact_is_one_line(exported, tmp_path, content):
    folder = exported("fp16")
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(content)
    result = invoke("verify", folder, "--against", bad)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("✓ ")]  # progress lines aside
    assert result.exit_code == 5 and len(errors) == 1 and errors[0].startswith("kolm: error: ")


def test_a_forecast_only_backend_is_refused_before_anything_is_read(registry, artifact, tmp_path):
    from kolm import hookimpl
    from kolm.api import Backend

    class ForecastOnly:
        @hookimpl
        def backend(self):
            return Backend(name="testbe", description="-", tiers={"int4": "w4"}, install="-")

    assert registry.add(ForecastOnly(), "testbe", "kolm-testbe", "0.2")
    preview = json.loads(invoke("export", artifact, "--target", "tb4", "--quant", "int4", "--preview", "--json").stdout)
    assert preview["command"] is None and preview["refusal"] == "kolm-testbe 0.2 forecasts only"
    assert "testbe cannot export tiny-llama: kolm-testbe 0.2 forecasts only" in preview["notes"]
    result = invoke("export", artifact, "--target", "tb4", "--quant", "int4", "-o", tmp_path / "out")
    assert result.exit_code == 7 and result.stderr == (
        "kolm: error: backend testbe cannot export: kolm-testbe 0.2 does not implement `export` (forecasts only)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack.jsonl", "tiny-llama", "tiny.kolm"]


def test_a_backend_that_cannot_convert_the_model_says_so_before_anything_is_read(table_backend, packed, tmp_path):
    table_backend.refusal = "no {arch} here"
    preview = json.loads(invoke("export", packed, "--target", "ttb", "--quant", "int8", "--preview", "--json").stdout)
    assert preview["command"] is None and preview["refusal"] == "no LlamaForCausalLM here"
    assert "table cannot export tiny-llama: no LlamaForCausalLM here" in preview["notes"]
    result = invoke("export", packed, "--target", "ttb", "--quant", "int8", "-o", tmp_path / "out")
    assert result.exit_code == 6
    assert result.stderr == "kolm: error: table cannot export tiny-llama: no LlamaForCausalLM here\n"
    assert not (tmp_path / "out").exists()


def test_pack_measures_the_reference_k_with_a_backend_that_accepts_the_model(
    table, table_backend, hf_folder, eval_pack, tmp_path
):
    from kolm.pack import pack_folder

    table_backend.refusal = "no {arch} here"
    _, note = pack_folder(hf_folder, eval_pack, "tiny", tmp_path / "t.kolm", "-", registry=table, min_k=0)
    assert note == "not measured: table: no LlamaForCausalLM here"


def test_a_toolchain_failing_unforeseen_is_one_line_and_exit_code_7(packed, tmp_path, monkeypatch):
    """An exception a plugin did not foresee (here IndexError, as mlx-lm's Gemma 3 raises on a config
    it indexes past while K is measured) ends `kolm export` with one line, never a traceback, and
    no output."""
    import kolm.export

    def broken(session, items, progress=None):
        raise IndexError("list index out of range")

    monkeypatch.setattr(kolm.export, "score_pack", broken)
    out = tmp_path / "out"
    result = invoke("export", packed, "--target", "ttb", "--quant", "int8", "-o", out)
    assert result.exit_code == 7 and not out.exists()
    assert result.output.splitlines()[-1] == (
        "kolm: error: unexpected IndexError: list index out of range (--debug shows where)"
    )
    assert "Traceback" not in result.output


def test_a_backend_without_a_runtime_exports_with_k_not_measured_and_fails_verify_5_and_6(
    packed, table_backend, tmp_path
):
    """The table backend without `run` (kolm runs none of its exports): K is recorded as not
    measured, with the reason, and verify fails checks 5 and 6 as not run."""
    from kolm import plugins

    runless = type("RunlessTable", (type(table_backend),), {"run": None})
    plugins.registry.cache_clear()
    assert plugins.registry().add(runless(), "table", "kolm-test-runless", "0.1")
    out = tmp_path / "runless"
    result = invoke("export", packed, "--target", "ttb", "--quant", "int8", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["k"] is None and printed["manifest"]["k_score"] is None
    assert printed["k_not_measured"] == "kolm runs no table export: kolm-test-runless 0.1 implements no `run`"
    code, evidence = verify(out, packed)
    assert code == 11 and failed(evidence) == [5, 6]
    assert evidence["checks"][4]["found"].startswith("not run: kolm runs no table export")
