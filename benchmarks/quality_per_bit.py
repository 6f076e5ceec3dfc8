"""Quality per byte of each recipe a backend offers (issue 15): size, K, K drop, and fidelity (top-1
agreement and mean KL against the same backend's fp16 conversion) on the default eval pack.

Every recipe kolm-gguf's, kolm-mlx's and kolm-coreml's backend.json list (the tier's default
marked), plus the toolchain's other options: mlx-lm's own `mixed_4_6`, and onnxruntime-genai's
builder with its `--extra_options`. Each candidate is converted by the toolchain itself (gguf:
kolm-gguf's export, i.e. llama.cpp's converter and quantizer; mlx: `mlx_lm.convert` with the
recipe's arguments; onnx: the builder; coreml: kolm-coreml's export, i.e. coremltools) from the
Hugging Face folder inside the .kolm, and scored with kolm's own K (`kolm.kscore.score_pack`)
through the backend's `Session`.

    .venv/bin/python benchmarks/quality_per_bit.py --backend gguf|mlx [--model gemma3] [--recipes 'a|b']
    .tox/onnx/bin/python benchmarks/quality_per_bit.py --backend onnx
    .tox/coreml/bin/python benchmarks/quality_per_bit.py --backend coreml

The README's tables are its output; each recipe's drop goes into its backend.json (`measured_drop`).
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


def smollm2_artifact() -> Path:
    from common import smollm2_artifact

    return smollm2_artifact()


def gemma3_artifact() -> Path:
    from kolm_testing import pack_gemma3

    artifact = CACHE / "gemma3" / "gemma.kolm"
    if not artifact.exists():
        (CACHE / "gemma3").mkdir(parents=True, exist_ok=True)
        artifact = pack_gemma3(CACHE / "gemma3")
    return artifact


MODELS: dict[str, Callable[[], Path]] = {"smollm2": smollm2_artifact, "gemma3": gemma3_artifact}


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


def mlx_recipes() -> dict[str, dict]:
    """Every recipe kolm-mlx's backend.json lists (named `tier: name`, the default marked), then
    mlx-lm's own mixed recipe, whose per-layer rule kolm cannot forecast and so does not offer."""
    from kolm.plugin_data import read_data

    declared = read_data("kolm_mlx", "backend")
    out = {}
    for tier, recipe in declared.recipes():
        default = " (default)" if recipe is declared.tiers[tier] else ""
        out["fp16" if tier == "fp16" else f"{tier}: {recipe.name}{default}"] = recipe.options
    plain = {k: v for k, v in declared.tiers["int4"].options.items() if k != "embedding_bits"}
    out["int4: mixed_4_6 g64 (mlx-lm's recipe, not offered)"] = plain | {
        "q_bits": 4,
        "q_group_size": 64,
        "quant_predicate": "mixed_4_6",
    }
    return out


def mlx_convert(source: Path, out: Path, options: dict):
    from kolm_mlx.quant_plan import convert_arguments
    from kolm_mlx.runtime import MlxSession
    from mlx_lm.convert import convert

    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(source), str(out), **convert_arguments(options))
    return sum(p.stat().st_size for p in out.glob("*.safetensors")), MlxSession(out)


# ------------------------------------------------------------------------------------------------
# onnxruntime-genai


ONNX: dict[str, tuple[str, list[str]]] = {  # name -> (builder precision, --extra_options)
    "fp16": ("fp32", []),
    "int8: RTN symmetric, block 32 (default)": ("int8", []),
    "int4: RTN symmetric, block 32 (default)": ("int4", []),
    "int8: fp32 compute (accuracy_level=1)": ("int8", ["accuracy_level=1"]),
    "int4: block 16": ("int4", ["block_size=16"]),
    "int4: fp32 compute (accuracy_level=1)": ("int4", ["accuracy_level=1"]),
    "int4: block 16, fp32 compute": ("int4", ["block_size=16", "accuracy_level=1"]),
    "int4: k_quant_mixed, fp32 compute": ("int4", ["algo_config=k_quant_mixed", "accuracy_level=1"]),
    "int4: asymmetric": ("int4", ["is_symmetric=false"]),
    "int4: lm_head int8": ("int4", ["matmul_mixed_precision=last_matmul:int8"]),
    "int4: k_quant": ("int4", ["algo_config=k_quant"]),
    "int4: k_quant, block 16": ("int4", ["algo_config=k_quant", "block_size=16"]),
    "int4: k_quant_mixed": ("int4", ["algo_config=k_quant_mixed"]),
    "int4: k_quant_mixed, asymmetric": ("int4", ["algo_config=k_quant_mixed", "is_symmetric=false"]),
    "int4: k_quant_mixed, block 16": ("int4", ["algo_config=k_quant_mixed", "block_size=16"]),
    "int4: rtn, lm_head and mixed layers int8": (
        "int4",
        ["algo_config=rtn", "matmul_mixed_precision=last_matmul:int8,mixed_layers:int8"],
    ),
    "int4: rtn, lm_head and mixed layers int8, fp32 compute": (
        "int4",
        ["algo_config=rtn", "matmul_mixed_precision=last_matmul:int8,mixed_layers:int8", "accuracy_level=1"],
    ),
    "int4: untied, lm_head int8": ("int4", ["shared_embeddings=false", "matmul_mixed_precision=last_matmul:int8"]),
}


def onnx_convert(source: Path, out: Path, recipe: tuple[str, list[str]]):
    from kolm_onnx.runtime import OnnxSession

    precision, extra = recipe
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out)]
    command += ["-p", precision, "-e", "cpu", "-c", str(out.parent / f"{out.name}-cache")]
    if extra:
        command += ["--extra_options", *extra]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    return sum(p.stat().st_size for p in out.glob("model.onnx*")), OnnxSession(out)


# ------------------------------------------------------------------------------------------------
# llama.cpp through kolm-gguf's own export (its converter and quantizer), and coremltools through
# kolm-coreml's (convert once, compress per tier; K on the package's own weights off macOS)


def hook_recipes(backend: str) -> Callable[[], dict[str, tuple[str, str]]]:
    def recipes() -> dict[str, tuple[str, str]]:
        from kolm.plugin_data import read_data

        return {
            "fp16" if tier == "fp16" else f"{tier}: {r.name}": (tier, r.name)
            for tier, r in read_data(f"kolm_{backend}", "backend").recipes()
        }

    return recipes


def hook_convert(backend: str) -> Callable:
    def convert(source: Path, out: Path, recipe: tuple[str, str]):
        from kolm.api import ExportRequest, RunRequest
        from kolm.artifact import Artifact
        from kolm.plugins import registry

        owner, (tier, name) = registry().backend(backend), recipe
        with Artifact(source.with_suffix(".kolm")) as art:
            manifest = art.manifest
        out.mkdir()
        request = ExportRequest(
            manifest=manifest,
            model_dir=source,
            tier=tier,
            recipe=owner.recipe(tier, name),
            device=None,
            out_dir=out,
            work_dir=out,
        )
        result = owner.export(request)
        size = sum((out / path).stat().st_size for path in result.payload)
        return size, owner.run(RunRequest(path=out, payload=result.payload))

    return convert


BACKENDS = {
    "gguf": (hook_recipes("gguf"), hook_convert("gguf")),
    "coreml": (hook_recipes("coreml"), hook_convert("coreml")),
    "mlx": (mlx_recipes, mlx_convert),
    "onnx": (lambda: ONNX, onnx_convert),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), required=True)
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--recipes", help="parts of names, separated by | (default: all)")
    args = parser.parse_args()

    from kolm.errors import KolmError
    from kolm.evalpack import load_eval_pack
    from kolm.kscore import score_pack

    recipes, convert = BACKENDS[args.backend]
    candidates = recipes()
    chosen = [r for r in candidates if r != "fp16"]
    if args.recipes:
        chosen = [r for r in chosen if any(part in r for part in args.recipes.split("|"))]
    source = unpacked(MODELS[args.model]())
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
