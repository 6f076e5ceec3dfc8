"""Quality per byte of each int4 recipe a toolchain offers (issue 15): size, K, K drop, and fidelity
(top-1 agreement and mean KL against the same backend's fp16 conversion) on the default eval pack.

Each candidate is converted by the toolchain itself (mlx-lm's `convert` with its quantization
options or a per-module `quant_predicate`; onnxruntime-genai's model builder with its
`--extra_options`) from the Hugging Face folder inside the .kolm, and scored with kolm's own K
(`kolm.kscore.score_pack`) through the backend's `Session`. The row marked `(kolm's int4)` is the
recipe `kolm export --quant int4` uses today.

    .venv/bin/python benchmarks/quality_per_bit.py --backend mlx [--model gemma3] [--recipes a,b]
    .tox/onnx/bin/python benchmarks/quality_per_bit.py --backend onnx

The gguf row of the README's table (llama.cpp Q4_K_M) is `kolm export ... --quant int4 --json`'s
own K and fidelity.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import CACHE  # noqa: E402

DEFAULT_PACK = Path(__file__).parents[1] / "kolm-core" / "src" / "kolm" / "evalpacks" / "default.jsonl"


def smollm2_folder() -> Path:
    from common import smollm2_artifact

    return unpacked(smollm2_artifact())


def gemma3_folder() -> Path:
    from kolm_testing import pack_gemma3

    artifact = CACHE / "gemma3" / "gemma3.kolm"
    if not artifact.exists():
        artifact = pack_gemma3(CACHE / "gemma3")
    return unpacked(artifact)


MODELS: dict[str, Callable[[], Path]] = {"smollm2": smollm2_folder, "gemma3": gemma3_folder}


def unpacked(artifact: Path) -> Path:
    """The artifact's Hugging Face folder (model/), extracted once beside it."""
    folder = artifact.with_suffix(".hf")
    if not folder.exists():
        with zipfile.ZipFile(artifact) as art:
            staging = Path(tempfile.mkdtemp(dir=artifact.parent))
            for name in art.namelist():
                if name.startswith("model/"):
                    (staging / name.removeprefix("model/")).write_bytes(art.read(name))
            staging.rename(folder)
    return folder


# ------------------------------------------------------------------------------------------------
# mlx-lm


def _mlx_keep(modules: tuple[str, ...], bits: int, low: int = 4, group: int = 64):
    """A `quant_predicate` for mlx_lm.convert: `modules` (path substrings) at `bits`, the rest at `low`."""

    def predicate(path, module):
        wanted = bits if any(m in path for m in modules) else low
        return {"group_size": group, "bits": wanted, "mode": "affine"}

    return predicate


EMBEDDING = ("embed_tokens", "lm_head")  # the output layer too: tied models decode through embed_tokens
MLX = {
    "fp16": {},
    "4-bit g64 (kolm's int4)": {"q_bits": 4, "q_group_size": 64},
    "4-bit g32": {"q_bits": 4, "q_group_size": 32},
    "mixed_4_6 g64 (mlx-lm recipe)": {"q_bits": 4, "q_group_size": 64, "quant_predicate": "mixed_4_6"},
    "4-bit g64, embedding 6-bit": {
        "q_bits": 4,
        "q_group_size": 64,
        "quant_predicate": _mlx_keep(("embed_tokens", "lm_head"), 6),
    },
    "4-bit g64, embedding 8-bit": {
        "q_bits": 4,
        "q_group_size": 64,
        "quant_predicate": _mlx_keep(("embed_tokens", "lm_head"), 8),
    },
    "4-bit g32, embedding 8-bit": {
        "q_bits": 4,
        "q_group_size": 32,
        "quant_predicate": _mlx_keep(EMBEDDING, 8, group=32),
    },
    # llama.cpp's Q4_K_M is mostly Q5_0 on models whose rows are not a multiple of 256 (SmolLM2: 576)
    "5-bit g64": {"q_bits": 5, "q_group_size": 64},
    "5-bit g64, embedding 8-bit": {"q_bits": 5, "q_group_size": 64, "quant_predicate": _mlx_keep(EMBEDDING, 8, 5)},
    "5-bit g32, embedding 8-bit": {
        "q_bits": 5,
        "q_group_size": 32,
        "quant_predicate": _mlx_keep(EMBEDDING, 8, 5, group=32),
    },
}


def mlx_convert(source: Path, out: Path, options: dict):
    from kolm_mlx.runtime import MlxSession
    from mlx_lm.convert import convert

    quantize = {"quantize": True, "q_mode": "affine", **options} if options else {}
    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(source), str(out), dtype="float16", **quantize)
    return sum(p.stat().st_size for p in out.glob("*.safetensors")), MlxSession(out)


# ------------------------------------------------------------------------------------------------
# onnxruntime-genai


ONNX = {
    "fp16": None,
    "RTN symmetric, block 32 (kolm's int4)": [],
    "asymmetric": ["is_symmetric=false"],
    "lm_head int8": ["matmul_mixed_precision=last_matmul:int8"],
    "k_quant": ["algo_config=k_quant"],
    "k_quant_mixed": ["algo_config=k_quant_mixed"],
    "k_quant_mixed, asymmetric": ["algo_config=k_quant_mixed", "is_symmetric=false"],
}


def onnx_convert(source: Path, out: Path, extra: list[str] | None):
    from kolm_onnx.runtime import OnnxSession

    precision = "fp32" if extra is None else "int4"
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out)]
    command += ["-p", precision, "-e", "cpu", "-c", str(out.parent / f"{out.name}-cache")]
    if extra:
        command += ["--extra_options", *extra]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    return sum(p.stat().st_size for p in out.glob("model.onnx*")), OnnxSession(out)


BACKENDS = {"mlx": (MLX, mlx_convert), "onnx": (ONNX, onnx_convert)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), required=True)
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--recipes", help="comma-separated names (default: all)")
    args = parser.parse_args()

    from kolm.errors import KolmError
    from kolm.evalpack import load_eval_pack
    from kolm.kscore import score_pack

    candidates, convert = BACKENDS[args.backend]
    chosen = [r for r in candidates if r != "fp16"]
    if args.recipes:
        chosen = [r for r in chosen if r in args.recipes.split(",")]
    source = MODELS[args.model]()
    items = load_eval_pack(DEFAULT_PACK)
    prompts = [item.prompt for item in items]
    work = Path(tempfile.mkdtemp(dir=CACHE, prefix=f"quality-{args.backend}-"))
    try:
        size, reference = convert(source, work / "fp16", candidates["fp16"])
        base = score_pack(reference, items).k
        print(f"{args.model} on {args.backend}: fp16 {size:,} B, K {base:.3f} ({len(items)} items)", file=sys.stderr)
        print("| recipe | bytes | K | drop (points) | top-1 agreement | mean KL (nats) | s |")
        print("|---|---|---|---|---|---|---|")
        for i, name in enumerate(chosen):
            start = time.perf_counter()
            try:
                size, session = convert(source, work / f"r{i}", candidates[name])
                k = score_pack(session, items).k
                fidelity = session.fidelity(reference, prompts)
            except (RuntimeError, KolmError) as exc:  # the toolchain's own failure, kept as a row
                print(f"| {name} | failed: {str(exc)[-160:]} | | | | | |", flush=True)
                continue
            row = [name, f"{size:,}", f"{k:.3f}", f"{(base - k) * 100:.1f}", f"{fidelity.top1_agreement:.1%}"]
            row += [f"{fidelity.mean_kl:.4f}", f"{time.perf_counter() - start:.0f}"]
            print("| " + " | ".join(row) + " |", flush=True)
            print(
                json.dumps({"recipe": name, "bytes": size, "K": k, "fidelity": fidelity.model_dump()}), file=sys.stderr
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
