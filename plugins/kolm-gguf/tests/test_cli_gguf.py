"""`kolm pack / export / run / bench` with the gguf backend, as a user meets them: real models,
real subprocesses for run and serve, and every bad input answered by one line on stderr with
its exit code (2 usage, 5 bad artifact, 6 unsupported model, 9 output, 10 K gate)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from kolm_testing import api_server, free_port, http_json
from kolm_testing import invoke as kolm

KOLM = Path(sys.executable).with_name("kolm")
SERVER_START_S = 30


def kolm_process(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed `kolm` console script as a real subprocess (inherits the private KOLM_HOME)."""
    return subprocess.run([str(KOLM), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def one_line_error(stderr: str) -> str:
    """The error line of a failed command: its only line besides the ✓ progress lines, no traceback."""
    lines = [line for line in stderr.splitlines() if not line.startswith("✓ ")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("kolm: error: "), lines
    return lines[0]


# ----------------------------------------------------------------------------------------------
# pack: bad input


def test_pack_truncated_gguf(smol_gguf, small_eval_pack, tmp_path):
    cut = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with open(smol_gguf, "rb") as src:
        cut.write_bytes(src.read(50_000_000))  # the header is whole, the tensor data is not
    result = kolm("pack", "--from-gguf", cut, "--eval", small_eval_pack, "-o", tmp_path / "smol.kolm")
    assert result.exit_code == 5
    line = one_line_error(result.stderr)
    assert line.startswith(f"kolm: error: {cut} is a truncated or corrupt GGUF file") and "re-download" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [cut.name]  # no .kolm, no .kolm-import-* left


def test_pack_file_that_is_not_gguf(small_eval_pack, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a GGUF" * 64)
    result = kolm("pack", "--from-gguf", fake, "--eval", small_eval_pack, "-o", tmp_path / "m.kolm")
    assert result.exit_code == 5
    assert one_line_error(result.stderr) == f"kolm: error: {fake}: not a GGUF file (no GGUF magic)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_pack_file_no_plugin_imports(small_eval_pack, tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x80\x04 not a format kolm imports")
    result = kolm("pack", "--from-gguf", other, "--eval", small_eval_pack, "-o", tmp_path / "m.kolm")
    assert result.exit_code == 2
    assert (
        one_line_error(result.stderr)
        == "kolm: error: no installed plugin imports weights.bin; GGUF files need kolm-gguf"
    )


@pytest.mark.slow
def test_pack_refuses_k_below_the_gate_in_one_line_and_writes_nothing(random_llama, small_eval_pack, tmp_path):
    out = tmp_path / "rand.kolm"
    result = kolm("pack", random_llama, "--eval", small_eval_pack, "-o", out, "--min-k", "1.01")
    assert result.exit_code == 10
    error = one_line_error(result.stderr)  # the only line besides progress
    assert error == result.stderr.splitlines()[-1]
    assert error.startswith("kolm: error: fp16 K is ") and error.endswith(
        "below the compile gate 1.01 (--min-k); nothing written"
    )
    assert list(tmp_path.iterdir()) == []


def novel_folder(root: Path) -> Path:
    """A Hugging Face folder (safetensors) of an architecture llama.cpp's converter does not know."""
    import numpy as np
    from safetensors.numpy import save_file

    folder = root / "tiny-novel"
    folder.mkdir()
    config = {
        "architectures": ["NovelForCausalLM"],
        "model_type": "novel",
        "n_embd": 64,
        "n_layer": 1,
        "n_head": 4,
        "vocab_size": 256,
        "n_positions": 128,
        "torch_dtype": "float16",
    }
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)
    save_file(
        {
            "transformer.wte.weight": rng.standard_normal((256, 64)).astype(np.float16),
            "transformer.wpe.weight": rng.standard_normal((128, 64)).astype(np.float16),
            "transformer.h.0.attn.c_attn.weight": rng.standard_normal((64, 192)).astype(np.float16),
            "transformer.h.0.ln_1.weight": np.ones(64, np.float16),
        },
        str(folder / "model.safetensors"),
    )
    return folder


def test_pack_an_unsupported_architecture_with_min_k_0_packs_without_k(small_eval_pack, tmp_path):
    out = tmp_path / "novel.kolm"
    result = kolm("pack", novel_folder(tmp_path), "--eval", small_eval_pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: tiny-novel, ") and "K not measured" in result.stdout
    data = json.loads(kolm("inspect", out, "--json").stdout)
    assert data["manifest"]["arch"] == "NovelForCausalLM" and data["manifest"]["k_score"] is None


def test_pack_an_unsupported_architecture_says_why_k_was_not_measured(small_eval_pack, tmp_path):
    result = kolm("pack", novel_folder(tmp_path), "--eval", small_eval_pack, "-o", tmp_path / "g.kolm", "--min-k", "0")
    assert result.exit_code == 0
    assert "no backend that runs here is installed" not in result.stdout and "NovelForCausalLM" in result.stdout


def test_pack_an_unsupported_architecture_with_the_gate_refuses(small_eval_pack, tmp_path):
    result = kolm("pack", novel_folder(tmp_path), "--eval", small_eval_pack, "-o", tmp_path / "g.kolm")
    assert result.exit_code == 10
    line = one_line_error(result.stderr)
    assert "cannot measure the fp16 K" in line and "NovelForCausalLM" in line and "--min-k 0" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-novel"]


# ----------------------------------------------------------------------------------------------
# export: bad input; a failed export leaves nothing behind


def tiny_llama_artifact(root: Path, eval_pack: Path, tokenizer: bool) -> Path:
    """A valid .kolm of a 1-layer Llama (packed with K not measured), with a tokenizer.json llama.cpp's
    converter cannot read, or none at all."""
    import numpy as np
    from kolm.inventory import config_inventory
    from kolm.pack import pack_folder
    from safetensors.numpy import save_file

    name = "bad-tokenizer" if tokenizer else "no-tokenizer"
    folder = root / name
    folder.mkdir()
    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
    }
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer:
        (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}}))
    rng = np.random.default_rng(0)
    save_file(
        {t.name: rng.standard_normal(t.shape).astype(np.float16) for t in config_inventory(config, "F16").tensors},
        str(folder / "model.safetensors"),
    )
    art = root / f"{name}.kolm"
    pack_folder(folder, eval_pack, name, art, "mit")  # no registry: K not measured
    return art


@pytest.fixture(scope="module")
def tiny_llama_kolm(small_eval_pack, tmp_path_factory) -> Path:
    """Enough for every check that runs before conversion; conversion then fails with the converter's reason."""
    return tiny_llama_artifact(tmp_path_factory.mktemp("tiny"), small_eval_pack, tokenizer=True)


def test_export_non_llama_artifact_names_the_arch(small_eval_pack, tmp_path):
    from kolm.pack import pack_folder

    art = tmp_path / "novel.kolm"
    pack_folder(novel_folder(tmp_path), small_eval_pack, "tiny-novel", art, "mit")  # no registry: K not measured
    out = tmp_path / "exports" / "novel-pi5"
    out.parent.mkdir()
    result = kolm("export", art, "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    assert result.exit_code == 6
    assert "NovelForCausalLM" in one_line_error(result.stderr)
    assert list(out.parent.iterdir()) == []


def test_export_output_parent_missing(tiny_llama_kolm, tmp_path):
    out = tmp_path / "no-such-folder" / "out"
    result = kolm("export", tiny_llama_kolm, "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    assert result.exit_code == 9
    assert one_line_error(result.stderr) == f"kolm: error: output folder {out.parent} does not exist"


def test_export_unknown_tier(tiny_llama_kolm, tmp_path):
    result = kolm("export", tiny_llama_kolm, "--target", "raspberry-pi-5", "--quant", "int5", "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert one_line_error(result.stderr) == "kolm: error: unknown quant tier 'int5'; use one of: fp16, int8, int4, int3"
    assert list(tmp_path.iterdir()) == []


def tamper(artifact: Path, out: Path, fix_crc: bool) -> tuple[str, str]:
    """Copy `artifact` to `out` with one byte of model/model.safetensors flipped (sizes unchanged).
    With `fix_crc`, the ZIP's CRC-32 is recomputed, as a deliberate tamperer would. Returns the
    declared and the actual SHA-256 of the member."""
    import hashlib

    member = "model/model.safetensors"
    with zipfile.ZipFile(artifact) as src:
        manifest = json.loads(src.read("manifest.json"))
        declared = next(p["sha256"] for p in manifest["payload"] if p["path"] == member)
        data = bytearray(src.read(member))
        data[len(data) // 2] ^= 0xFF
        if fix_crc:
            with zipfile.ZipFile(out, "w") as dst:
                for info in src.infolist():
                    dst.writestr(info, bytes(data) if info.filename == member else src.read(info))
        else:
            info = src.getinfo(member)
    if not fix_crc:
        out.write_bytes(artifact.read_bytes())
        with open(out, "r+b") as f:  # the local header is 30 bytes + name + extra; flip in place
            f.seek(info.header_offset + 26)
            name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
            f.seek(info.header_offset + 30 + name_len + extra_len + len(data) // 2)
            f.write(bytes([data[len(data) // 2]]))
    return declared, hashlib.sha256(data).hexdigest()


def test_export_refuses_a_tampered_artifact(tiny_llama_kolm, tmp_path):
    art = tmp_path / "tampered.kolm"
    declared, actual = tamper(tiny_llama_kolm, art, fix_crc=True)
    out = tmp_path / "out"
    result = kolm("export", art, "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    assert result.exit_code == 5
    expected = f"model/model.safetensors: expected {declared[:12]}…, found {actual[:12]}…"
    assert one_line_error(result.stderr) == f"kolm: error: {art} does not match its manifest: SHA-256 of {expected}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tampered.kolm"]


def test_export_refuses_a_corrupted_artifact(tiny_llama_kolm, tmp_path):
    art = tmp_path / "corrupt.kolm"
    tamper(tiny_llama_kolm, art, fix_crc=False)
    result = kolm("export", art, "--target", "raspberry-pi-5", "--quant", "int4", "-o", tmp_path / "out")
    assert result.exit_code == 5
    assert "model/model.safetensors" in one_line_error(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.kolm"]


def test_a_model_without_tokenizer_is_refused_before_anything_is_extracted(small_eval_pack, tmp_path):
    (tmp_path / "src").mkdir()
    art = tiny_llama_artifact(tmp_path / "src", small_eval_pack, tokenizer=False)
    out = tmp_path / "exports" / "out"
    out.parent.mkdir()
    result = kolm("export", art, "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    assert result.exit_code == 6
    assert result.stderr == (
        "kolm: error: gguf cannot export no-tokenizer: the model has no tokenizer (tokenizer.json or "
        "tokenizer.model); llama.cpp's converter needs one\n"
    )
    assert list(out.parent.iterdir()) == []


def test_export_that_fails_mid_conversion_leaves_no_trace(tiny_llama_kolm, tmp_path):
    """A tokenizer.json llama.cpp's converter cannot read: the export fails after extracting weights,
    with the converter's own reason, and neither the output folder nor any staging or scratch folder
    remains."""
    result = kolm("export", tiny_llama_kolm, "--target", "raspberry-pi-5", "--quant", "int4", "-o", tmp_path / "out")
    assert result.exit_code == 6, result.stderr
    assert one_line_error(result.stderr).startswith("kolm: error: llama.cpp's converter cannot convert bad-tokenizer: ")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# run


@pytest.mark.slow
def test_run_raw_prints_the_continuation(smol_export):
    result = kolm_process("run", smol_export("int4").folder, "--prompt", "The capital of France is", "--raw", "-n", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(" Paris") and result.stdout.endswith("\n")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_chat_answers(smol_export):
    result = kolm_process("run", smol_export("int4").folder, "--prompt", "What is the capital of France?", "-n", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and "<|im_" not in result.stdout  # the template's markers are not echoed


def test_run_on_a_folder_that_is_not_an_export(tmp_path):
    result = kolm("run", tmp_path, "--prompt", "hi")
    assert result.exit_code == 2
    assert one_line_error(result.stderr) == f"kolm: error: {tmp_path}: no kolm-export.json; not a kolm export folder"


def test_serve_verify_needs_a_browser_bundle(smol_export, smol_pack):
    result = kolm("serve", smol_export("int4").folder, "--verify", smol_pack.path, "--port", free_port())
    assert result.exit_code == 2
    assert one_line_error(result.stderr) == (
        "kolm: error: --verify serves a .kolm beside a browser page; export with --target browser"
    )


# ----------------------------------------------------------------------------------------------
# serve (kolm run --port): llama.cpp's OpenAI-compatible server


@pytest.fixture(scope="module")
def server(smol_export, tmp_path_factory):
    """`kolm run EXPORT --port P`: llama.cpp's server, killed with its process group afterwards."""
    with api_server(smol_export("int4").folder, tmp_path_factory.mktemp("serve"), SERVER_START_S) as running:
        yield running


@pytest.mark.slow
def test_serve_lists_the_model(server):
    assert [m["id"] for m in server.models["data"]] == ["SmolLM2-135M-Instruct"]
    assert f"serving SmolLM2-135M-Instruct on http://127.0.0.1:{server.port}/v1" in server.stderr.read_text()


@pytest.mark.slow
def test_serve_chat_completion(server):
    reply = http_json(
        f"{server.base}/chat/completions",
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0},
    )
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert 1 <= reply["usage"]["completion_tokens"] <= 8


@pytest.mark.slow
def test_serve_streams_completions(server):
    body = {
        "prompt": "The capital of France is",
        "max_tokens": 8,
        "temperature": 0,
        "repeat_penalty": 1.0,
        "stream": True,
    }
    request = urllib.request.Request(
        f"{server.base}/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    chunks = []
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            chunks.append(json.loads(line[len("data: ") :]))
        else:
            pytest.fail("the stream ended without data: [DONE]")
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert len(chunks) > 1 and text.startswith(" Paris")


@pytest.mark.slow
def test_serve_stops_when_kolm_is_terminated(smol_export, tmp_path):
    """A supervisor stops kolm with SIGTERM. A server of its own: the module's is shared by tests
    that run in any order."""
    with api_server(smol_export("int4").folder, tmp_path, SERVER_START_S) as server:
        server.proc.terminate()
        server.proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    pass
            except OSError:
                break  # nothing listens any more
            assert time.monotonic() < deadline, f"port {server.port} still served after kolm exited"
            time.sleep(0.2)


@pytest.mark.slow
def test_serve_on_a_port_in_use(smol_export):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = kolm_process("run", smol_export("int4").folder, "--port", port)
    assert result.returncode == 2
    assert one_line_error(result.stderr) == f"kolm: error: cannot serve on 127.0.0.1:{port}: Address already in use"


# ----------------------------------------------------------------------------------------------
# bench


@pytest.mark.slow
def test_bench_measures_this_machine_logs_it_and_replaces_its_forecast(smol_pack, smol_export, tmp_path, monkeypatch):
    monkeypatch.setenv("KOLM_HOME", str(tmp_path))  # an empty bench log, no profile of this machine yet
    preview = ("export", smol_pack.path, "--target", "this-machine", "--quant", "int4", "--preview", "--json")
    assert json.loads(kolm(*preview).stdout)["tok_s"]["method"] == "forecast"

    export = smol_export("int4")
    result = kolm("bench", export.folder, "--n-prompt", "64", "--n-gen", "16", "-r", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    measured = report["result"]
    host = report["host"]
    assert (report["device"], report["model"], report["tier"]) == (
        f"this machine ({host['hostname']})",
        "SmolLM2-135M-Instruct",
        "int4",
    )
    assert host["cores"] == os.cpu_count() and host["bandwidth_gbps"] > 0
    assert measured["pp"]["mean"] > 0 and measured["tg"]["mean"] > 0
    assert len(measured["pp"]["samples"]) == len(measured["tg"]["samples"]) == 2
    assert (measured["n_prompt"], measured["n_gen"]) == (64, 16) and measured["peak_rss_bytes"] > 0
    midpoint = (report["forecast_low"] + report["forecast_high"]) / 2
    assert report["ratio"] == pytest.approx(measured["tg"]["mean"] / midpoint)

    [line] = (tmp_path / "bench.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert report["log"] == str(tmp_path / "bench.jsonl")
    assert entry["payload_sha256"] == export.record.payload[0].sha256 and entry["result"] == measured
    assert entry["host"] == host and entry["trusted_claim"] is False

    tok_s = json.loads(kolm(*preview).stdout)["tok_s"]
    assert tok_s["method"] == "measured" and tok_s["basis"].startswith("kolm bench ")
    tg = measured["tg"]
    assert (tok_s["low"], tok_s["high"]) == pytest.approx((tg["mean"] - tg["sd"], tg["mean"] + tg["sd"]))
    pi = ("export", smol_pack.path, "--target", "raspberry-pi-5", "--quant", "int4", "--preview", "--json")
    assert json.loads(kolm(*pi).stdout)["tok_s"]["method"] == "forecast"  # never another device's number
