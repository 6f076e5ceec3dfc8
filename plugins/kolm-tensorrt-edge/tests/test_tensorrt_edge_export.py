"""Exports made by TensorRT Edge-LLM's quantizer and exporter on the CPU, read back: the graph's ops
and weight types, the manifest in its metadata, the folder `llm_build` takes, the Jetson scripts;
then `kolm verify`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import onnx
import pytest
from kolm_testing import VERIFY_CHECKS, cli_exporter, failed, flip_last_byte, invoke, verify


@pytest.fixture(scope="module")
def exports(random_pack: Path, smol_pack: Path, tmp_path_factory: pytest.TempPathFactory):
    """export(which, tier) for the random Llama and SmolLM2 on the Jetson AGX Orin, through `kolm export`."""
    root = tmp_path_factory.mktemp("exports")
    made = {
        "random": cli_exporter(random_pack, root, "jetson-agx-orin", "--backend", "tensorrt-edge"),
        "smol": cli_exporter(smol_pack, root, "jetson-agx-orin", "--backend", "tensorrt-edge"),
    }
    return lambda which, tier: made[which](tier)


def weights(folder: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    return {
        t.name.removeprefix("_model."): (onnx.TensorProto.DataType.Name(t.data_type), tuple(t.dims))
        for t in graph.graph.initializer
    }


def ops(folder: Path) -> dict[str, list]:
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    found: dict[str, list] = {}
    for node in graph.graph.node:
        found.setdefault(node.op_type, []).append({a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})
    return found


def test_int4_is_edge_llms_int4_gemm_in_groups_of_128(exports):
    export = exports("random", "int4")
    gemms = ops(export.folder)["Int4GroupwiseGemmPluginV2"]
    assert len(gemms) == 4 * 7 and {g["group_size"] for g in gemms} == {128}
    stored = weights(export.folder)
    assert stored["model.layers.0.mlp.down_proj.weight"] == ("INT8", (192, 512))  # 256 x 768 in 512-byte fragments
    assert stored["model.layers.0.mlp.down_proj.weight_scale"] == ("FLOAT16", (6, 256))
    assert stored["model.layers.0.mlp.down_proj.pre_quant_scale"] == ("FLOAT16", (768,))
    assert stored["lm_head.weight"] == ("FLOAT16", (49152, 256))
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


@pytest.mark.parametrize(
    "which, width",
    # SmolLM2's calibration takes ~105 s on 2 cores (2026-11-30): long; the random Llama's, a few seconds
    [("random", 256), pytest.param("smol", 576, marks=pytest.mark.long)],
)
def test_int8_is_smoothquant(exports, which, width):
    export = exports(which, "int8")
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(ops(export.folder))
    stored = weights(export.folder)
    assert stored["model.layers.0.self_attn.q_proj.weight"] == ("INT8", (width, width))
    assert stored["model.layers.0.self_attn.q_proj.weight_scale"] == ("FLOAT", (width,))
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


def test_fp16_is_float16_throughout(exports):
    export = exports("random", "fp16")
    assert not {"Int4GroupwiseGemmPluginV2", "QuantizeLinear"} & set(ops(export.folder))
    assert {dtype for dtype, shape in weights(export.folder).values() if len(shape) == 2} == {"FLOAT16"}
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


def test_the_folder_is_what_llm_build_takes_with_the_manifest_in_the_graph(exports):
    export = exports("random", "int4")
    names = {p.name for p in export.folder.iterdir()}
    assert {"model.onnx", "model.onnx.data", "embedding.safetensors", "config.json", "tokenizer.json"} <= names
    config = json.loads((export.folder / "config.json").read_text())
    assert (config["model"], config["hidden_size"], config["num_hidden_layers"]) == ("llama", 256, 4)
    graph = onnx.load(str(export.folder / "model.onnx"), load_external_data=False)
    manifest = {p.key: p.value for p in graph.metadata_props}["kolm.manifest"]
    assert json.loads(manifest) == export.record.manifest.model_dump(mode="json", by_alias=True)
    assert export.record.payload[0].path == "model.onnx" and export.record.manifest.recipe == "int4-awq"


def test_k_is_recorded_as_not_measured_never_copied(exports):
    export = exports("random", "int4")
    assert export.record.k is None and export.record.manifest.k_score is None
    assert "kolm runs no tensorrt-edge export" in export.record.k_not_measured


def test_the_jetson_scripts_build_then_run_with_edge_llms_tools(exports):
    folder = exports("random", "int4").folder
    build, run = (folder / "build.sh").read_text(), (folder / "run.sh").read_text()
    for name in ("build.sh", "run.sh"):
        assert (folder / name).stat().st_mode & stat.S_IXUSR
        assert subprocess.run(["sh", "-n", folder / name], check=False).returncode == 0  # parses
    assert '"$TOOLS/llm_build" --onnxDir . --engineDir engine --maxBatchSize 1' in build
    assert "-DEMBEDDED_TARGET=jetson-orin" in build and "JetPack 7.2" in build
    assert '"$TOOLS/llm_inference" --engineDir engine --inputFile "${INPUT:-input.json}"' in run
    request = json.loads((folder / "input.json").read_text())
    assert request["requests"][0]["messages"][0]["role"] == "user" and request["top_k"] == 1
    unset = subprocess.run(["sh", folder / "build.sh"], capture_output=True, text=True, check=False, env={})
    assert unset.returncode != 0 and "set EDGELLM_BUILD to TensorRT-Edge-LLM/build" in unset.stderr


def test_verify_runs_four_checks_and_fails_the_two_it_cannot_run(exports, random_pack):
    code, evidence = verify(exports("random", "int4").folder, random_pack)
    assert [c["name"] for c in evidence["checks"]] == VERIFY_CHECKS
    assert failed(evidence) == [5, 6] and code != 0
    assert evidence["checks"][3]["found"].startswith("int4, recipe int4-awq")


def test_verify_catches_a_tampered_weight(exports, random_pack, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(exports("random", "int4").folder, copy)
    flip_last_byte(copy / "model.onnx.data")
    _, evidence = verify(copy, random_pack)
    assert 2 in failed(evidence)


def test_smollm2_int4_is_refused_before_converting(smol_pack, tmp_path):
    result = invoke("export", smol_pack, "--target", "jetson-agx-orin", "--backend", "tensorrt-edge", "--quant",
                    "int4", "-o", tmp_path / "out")  # fmt: skip
    assert result.exit_code != 0 and "576 wide" in result.stderr and not (tmp_path / "out").exists()


def test_the_export_report_says_what_to_run_on_the_jetson(random_pack, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per row
    out = tmp_path / "nano"
    result = invoke("export", random_pack, "--target", "orin-nano", "--backend", "tensorrt-edge", "--quant", "fp16",
                    "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "to the Jetson Orin Nano machine and run `sh nano/build.sh && sh nano/run.sh` there" in result.stdout


def test_run_and_bench_say_what_runs_it_on_the_jetson_instead(exports):
    folder = exports("random", "int4").folder
    for command in (("run", folder, "--prompt", "hi"), ("bench", folder)):
        result = invoke(*command)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "on the device instead: sh EXPORT/build.sh && sh EXPORT/run.sh (" in result.stderr.splitlines()[-1]


@pytest.mark.requires_jetson
def test_build_sh_and_run_sh_make_the_engine_and_answer_on_a_jetson(exports, tmp_path):
    """On a Jetson Orin (`tox -e tensorrt-edge -- -m requires_jetson`): the export's own scripts build
    the engine with llm_build and generate with llm_inference."""
    if not os.environ.get("EDGELLM_BUILD"):
        pytest.fail("needs a Jetson Orin with TensorRT Edge-LLM's C++ tools built: set EDGELLM_BUILD (see build.sh)")
    folder = shutil.copytree(exports("smol", "int8").folder, tmp_path / "smol")
    for script in ("build.sh", "run.sh"):
        subprocess.run(["sh", folder / script], check=True)
    answer = json.loads((folder / "output.json").read_text())["responses"][0]["output_text"]
    assert "Paris" in answer
