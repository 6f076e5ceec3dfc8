"""`kolm export --target browser`: a self-contained static bundle around the GGUF the gguf backend
writes, split into parts when large, and checked by `kolm verify` like any export."""

from __future__ import annotations

import json

from kolm.record import load_record
from kolm_testing import invoke
from wasm_harness import SMALL_PART

PAGE = ["index.html", "kolm.js", "runtime.js", "verify.js", "wllama/index.js", "wllama/wllama.wasm", "wllama/LICENSE"]


def verify_json(folder, artifact) -> dict:
    result = invoke("verify", folder, "--against", artifact, "--min-k", "0", "--json")
    return json.loads(result.stdout)


def test_bundle_holds_the_page_the_runtime_and_one_gguf(bundle, smol_pack):
    folder = bundle("int4")
    _, record = load_record(folder)
    assert all((folder / name).is_file() for name in PAGE)
    assert (folder / "wllama/wllama.wasm").read_bytes()[:4] == b"\0asm"
    assert [p.path for p in record.payload] == ["SmolLM2-135M-Instruct.Q4_K_M.gguf"]
    assert record.backend == "wasm" and record.device == "browser" and record.k is not None
    assert record.lockfile.toolchain["wllama"] == "3.13.0" and "llama-cpp-python" in record.lockfile.toolchain
    verdict = verify_json(folder, smol_pack)
    assert verdict["passed"], verdict["checks"]


def test_large_gguf_is_split_into_parts_that_llama_cpp_loads(bundle, smol_pack):
    whole, parts = bundle("int4"), bundle("int4", part_bytes=SMALL_PART)
    _, record = load_record(parts)
    names = [p.path for p in record.payload]
    assert names == [f"SmolLM2-135M-Instruct.Q4_K_M-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert all(p.size <= SMALL_PART for p in record.payload)
    assert not list(parts.glob("SmolLM2-135M-Instruct.Q4_K_M.gguf"))
    assert record.lockfile.flags["part_bytes"] == SMALL_PART
    # K was measured by llama.cpp on the parts, and equals the unsplit bundle's
    assert record.k.score == load_record(whole)[1].k.score
    verdict = verify_json(parts, smol_pack)
    assert verdict["passed"], verdict["checks"]
    assert verdict["checks"][3]["found"].startswith("int4, recipe Q4_K_M (")  # the tensor types of every part


def test_int3_bundle_exports_and_verifies(bundle, smol_pack):
    folder = bundle("int3")
    verdict = verify_json(folder, smol_pack)
    assert verdict["passed"], verdict["checks"]
    assert verdict["checks"][3]["found"].startswith("int3, recipe Q3_K_S (")


def test_without_the_gguf_backend_the_error_names_the_install(smol_pack, tmp_path, monkeypatch):
    from kolm.plugins import registry

    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "kolm-wasm")
    registry.cache_clear()
    try:
        result = invoke("export", smol_pack, "--target", "browser", "--quant", "int4", "-o", tmp_path / "x")
    finally:
        registry.cache_clear()
    assert result.exit_code == 7 and result.stderr == (
        "kolm: error: backend wasm builds on gguf, which is unusable: backend gguf is not installed; "
        "pip install kolm-gguf\n"
    )
    assert not (tmp_path / "x").exists()


def test_tier_the_gguf_backend_cannot_do_is_refused(smol_pack, tmp_path):
    result = invoke("export", smol_pack, "--target", "browser", "--quant", "int2", "-o", tmp_path / "x")
    assert result.exit_code != 0
