"""Exports made by NVIDIA ModelOpt on the CPU, read back file by file: the quantization record, every
tensor's stored type and shape, the config, the manifest, the serve script; then `kolm verify`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kolm.artifact import folder_inventory
from kolm_testing import VERIFY_CHECKS, cli_exporter, failed, flip_last_byte, invoke, verify


@pytest.fixture(scope="module")
def exports(random_pack: Path, smol_pack: Path, tmp_path_factory: pytest.TempPathFactory):
    """export(which, tier) for the random Llama and SmolLM2 on the RTX 4090, through `kolm export`."""
    root = tmp_path_factory.mktemp("exports")
    made = {
        "random": cli_exporter(random_pack, root, "rtx-4090", "--backend", "tensorrt"),
        "smol": cli_exporter(smol_pack, root, "rtx-4090", "--backend", "tensorrt"),
    }
    return lambda which, tier, recipe=None: made[which](tier, recipe)


def stored(folder: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {t.name: (t.dtype, t.shape) for t in folder_inventory(folder).tensors}


def test_int4_is_awq_packed_in_groups_of_128(exports):
    export = exports("random", "int4")
    quant = json.loads((export.folder / "hf_quant_config.json").read_text())["quantization"]
    assert quant["quant_algo"] == "W4A16_AWQ" and quant["group_size"] == 128
    tensors = stored(export.folder)
    assert tensors["model.layers.0.mlp.down_proj.weight"] == ("U8", (128, 768))  # 256 x 768, two int4 a byte
    assert tensors["model.layers.0.mlp.down_proj.weight_scale"] == ("F32", (256, 6))
    assert tensors["model.layers.0.mlp.down_proj.pre_quant_scale"] == ("F16", (768,))
    assert "model.layers.0.self_attn.q_proj.pre_quant_scale" not in tensors  # folded into the norm
    assert tensors["model.embed_tokens.weight"][0] == tensors["lm_head.weight"][0] == "F16"
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


def test_int8_is_weight_only_per_channel_on_smollm2(exports):
    export = exports("smol", "int8")
    tensors = stored(export.folder)
    assert tensors["model.layers.0.self_attn.q_proj.weight"] == ("I8", (576, 576))
    assert tensors["model.layers.0.self_attn.q_proj.weight_scale"] == ("F32", (576,))
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


def test_the_config_is_the_artifacts_own_with_modelopts_record_and_the_manifest(exports, random_pack):
    export = exports("random", "int4")
    config = json.loads((export.folder / "config.json").read_text())
    assert config["hidden_size"] == 256 and "rope_theta" in config  # the artifact's, not transformers 5's
    assert config["quantization_config"]["quant_method"] == "modelopt"
    assert json.loads(config["kolm_manifest"]) == export.record.manifest.model_dump(mode="json", by_alias=True)


def test_fp16_is_the_artifacts_weights_unchanged(exports):
    export = exports("random", "fp16")
    assert not (export.folder / "hf_quant_config.json").exists()
    assert {dtype for dtype, _ in stored(export.folder).values()} == {"F16"}


def test_k_is_recorded_as_not_measured_never_copied(exports):
    export = exports("random", "int4")
    assert export.record.k is None and export.record.manifest.k_score is None
    assert "kolm runs no tensorrt export" in export.record.k_not_measured


def test_serve_script_runs_trtllm_serve_on_localhost(exports):
    script = exports("random", "int4").folder / "serve.sh"
    text = script.read_text()
    assert script.stat().st_mode & stat.S_IXUSR
    assert 'exec trtllm-serve . --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"' in text


def test_verify_runs_four_checks_and_fails_the_two_it_cannot_run(exports, random_pack):
    code, evidence = verify(exports("random", "int4").folder, random_pack)
    assert [c["name"] for c in evidence["checks"]] == VERIFY_CHECKS
    assert failed(evidence) == [5, 6] and code != 0
    assert all("not run: kolm runs no tensorrt export" in c["found"] for c in evidence["checks"][4:])


def test_verify_catches_a_tampered_weight(exports, random_pack, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(exports("random", "int4").folder, copy)
    flip_last_byte(copy / "model.safetensors")
    _, evidence = verify(copy, random_pack)
    assert 2 in failed(evidence)


def test_int4_in_groups_of_64_packs_and_scales_per_64_columns(exports):
    """The recipe SmolLM2 (576 wide) takes for int4, made here on the random Llama (SmolLM2's own took
    161 s of AWQ search on 2 cores: 118,712,066 B, forecast +0.001 %; the rows test its choice)."""
    export = exports("random", "int4", "w4a16-awq-g64")
    assert export.record.manifest.recipe == "w4a16-awq-g64"
    quant = json.loads((export.folder / "hf_quant_config.json").read_text())["quantization"]
    assert quant["quant_algo"] == "W4A16_AWQ" and quant["group_size"] == 64
    tensors = stored(export.folder)
    assert tensors["model.layers.0.mlp.down_proj.weight"] == ("U8", (128, 768))
    assert tensors["model.layers.0.mlp.down_proj.weight_scale"] == ("F32", (256, 12))
    assert abs(export.printed["size_check"]["error_percent"]) < 1.0, export.printed["size_check"]


def test_int4_in_groups_of_128_is_refused_before_converting_smollm2(smol_pack, tmp_path):
    result = invoke("export", smol_pack, "--target", "rtx-4090", "--backend", "tensorrt", "--quant", "int4",
                    "--recipe", "w4a16-awq-g128", "-o", tmp_path / "out")  # fmt: skip
    assert result.exit_code != 0 and "576 wide" in result.stderr and not (tmp_path / "out").exists()


def test_run_says_what_serves_it_on_the_gpu_machine_instead(exports):
    result = invoke("run", exports("random", "int4").folder, "--prompt", "hi")
    assert result.exit_code != 0 and "on the device instead: sh EXPORT/serve.sh (trtllm-serve" in result.stderr


@pytest.mark.requires_gpu
def test_serve_sh_serves_the_smollm2_export_with_trtllm_serve_and_it_answers(exports):
    """On a machine with an NVIDIA GPU and TensorRT-LLM (`tox -e tensorrt -- -m requires_gpu`): the
    export's own serve.sh starts trtllm-serve on 127.0.0.1, which answers a chat completion."""
    if shutil.which("trtllm-serve") is None:
        pytest.fail("trtllm-serve is not installed: pip install tensorrt-llm --extra-index-url https://pypi.nvidia.com")
    folder = exports("smol", "int8").folder
    env = {**os.environ, "PORT": "8123"}
    server = subprocess.Popen(["sh", folder / "serve.sh"], env=env, start_new_session=True)
    try:
        request = {"model": ".", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        deadline = time.monotonic() + 600  # loading and compiling kernels on first start
        while True:
            try:
                post = urllib.request.Request(
                    "http://127.0.0.1:8123/v1/chat/completions",
                    data=json.dumps({**request, "max_tokens": 16, "temperature": 0}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                answer = json.loads(urllib.request.urlopen(post, timeout=60).read())
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "trtllm-serve did not come up"
                time.sleep(5)
        assert "Paris" in answer["choices"][0]["message"]["content"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
