#!/usr/bin/env python3
"""ONNX Runtime (onnxruntime-genai, kolm-onnx's runtime) vs llama.cpp on SmolLM2-135M-Instruct, and
kolm's cost on top of the raw ONNX toolchain.

1. generation: tg tok/s of `kolm bench` on the ONNX export vs `kolm bench` on the GGUF export of the
   same artifact at the same tier (llama.cpp, run in a Python env that has llama-cpp-python), both
   with the same method (n_gen single-token steps after a BOS, llama-bench style), plus pp tok/s.
2. generation overhead: OnnxSession.generate (what `kolm run` streams) vs a raw onnxruntime-genai
   greedy loop on the same folder.
3. export: `kolm export` (K scoring off) vs the raw builder command it wraps. Goal <= 1.05x.

    python benchmarks/onnx_runtime.py [--runs 3] [--tiers int4,int8,fp16] [--llama-python .venv/bin/python]

Run it in kolm-onnx's env (onnxruntime-genai, transformers >= 5, torch); `--llama-python` is a Python
with kolm-core, kolm-gguf and llama-cpp-python (the repository's dev venv).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import smollm2_artifact, summary, timed  # noqa: E402
from kolm_testing import export_unscored  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LAPTOP = "snapdragon-x-elite"  # an onnx target without model.ort, so both exports hold the same model
N_PROMPT, N_GEN = 64, 128


def kolm_export(artifact: Path, tier: str, out: Path) -> None:
    """`kolm export` without K, through kolm_testing.export_unscored (the call the tests make)."""
    export_unscored(artifact, LAPTOP, tier, out, "onnx")


def raw_export(model_dir: Path, spelling: str, out: Path, cache: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "onnxruntime_genai.models.builder",
            "-i",
            str(model_dir),
            "-o",
            str(out),
            "-p",
            spelling,
            "-e",
            "cpu",
            "-c",
            str(cache),
        ],
        check=True,
        capture_output=True,
    )


def onnx_bench(folder: Path, runs: int) -> tuple[float, float]:
    from kolm.api import BenchRequest
    from kolm.plugins import registry

    payload = sorted(p.name for p in folder.iterdir() if p.is_file())
    request = BenchRequest(path=folder, payload=payload, n_prompt=N_PROMPT, n_gen=N_GEN, repetitions=runs)
    result = registry().backend("onnx").bench(request)
    return result.pp.mean, result.tg.mean


def gguf_bench(llama_python: str, artifact: Path, tier: str, runs: int) -> tuple[float, float]:
    """`kolm bench ART --quant TIER --json` in a Python with llama-cpp-python (it exports the GGUF first)."""
    proc = subprocess.run(
        [
            llama_python,
            "-m",
            "kolm.cli",
            "bench",
            str(artifact),
            "--quant",
            tier,
            "--n-prompt",
            str(N_PROMPT),
            "--n-gen",
            str(N_GEN),
            "-r",
            str(runs),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_WAIT_POLICY": "passive"},
    )
    result = json.loads(proc.stdout)["result"]
    return result["pp"]["mean"], result["tg"]["mean"]


def generation(folder: Path, n: int) -> tuple[float, float]:
    """(kolm OnnxSession.generate tok/s, raw onnxruntime-genai greedy loop tok/s), same prompt, n tokens."""
    import onnxruntime_genai as og
    from kolm_onnx.runtime import OnnxSession

    prompt = "Once upon a time"
    session = OnnxSession(folder)
    session.generate(prompt, 4)  # load
    start = time.perf_counter()
    pieces = list(session.generate(prompt, max_tokens=n))
    kolm = len(pieces) / (time.perf_counter() - start)  # pieces <= tokens: a lower bound
    model = session.model
    tokenizer = og.Tokenizer(model)
    ids = tokenizer.encode(prompt)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + n, do_sample=False)
    start = time.perf_counter()
    generator = og.Generator(model, params)
    generator.append_tokens(ids)
    count = 0
    while not generator.is_done():
        generator.generate_next_token()
        tokenizer.decode(generator.get_next_tokens())
        count += 1
    raw = count / (time.perf_counter() - start)
    session.close()
    return kolm, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiers", default="int4,int8,fp16")
    parser.add_argument("--llama-python", default=str(ROOT / ".venv/bin/python"))
    args = parser.parse_args()
    from kolm.artifact import Artifact

    os.environ.setdefault("KOLM_HOME", tempfile.mkdtemp(prefix="kolm-bench-home-"))
    artifact = smollm2_artifact()
    rows = []
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        work = Path(work)
        with Artifact(artifact) as art:
            model_dir = art.extract_model(work / "hf")
        for tier in args.tiers.split(","):
            folder = work / f"kolm-{tier}"
            kolm_export(artifact, tier, folder)
            onnx_pp, onnx_tg = onnx_bench(folder, args.runs)
            gguf_pp, gguf_tg = gguf_bench(args.llama_python, artifact, tier, args.runs)
            kolm_gen, raw_gen = generation(folder, N_GEN)
            rows.append((tier, onnx_pp, onnx_tg, gguf_pp, gguf_tg, kolm_gen, raw_gen))
        export_tier = args.tiers.split(",")[0]
        spelling = {"fp16": "fp32"}.get(export_tier, export_tier)
        kolm_t, raw_t = [], []
        for run in range(args.runs):  # interleaved, so machine noise hits both sides alike
            kolm_t += timed(lambda run=run: kolm_export(artifact, export_tier, work / f"again-{run}"), 1)
            raw_t += timed(lambda run=run: raw_export(model_dir, spelling, work / f"raw{run}", work / f"c{run}"), 1)

    load = os.getloadavg()[0]
    print(
        f"SmolLM2-135M-Instruct, pp{N_PROMPT} / tg{N_GEN}, {args.runs} runs each, {os.cpu_count()} cores, "
        f"1-min load average at the end {load:.1f}\n"
    )
    print(
        f"{'tier':<6}{'ORT pp':>9}{'ORT tg':>9}{'llama pp':>10}{'llama tg':>10}{'tg ratio':>10}"
        f"{'kolm gen':>10}{'raw gen':>9}{'ratio':>7}"
    )
    for tier, opp, otg, gpp, gtg, kgen, rgen in rows:
        print(
            f"{tier:<6}{opp:9.1f}{otg:9.1f}{gpp:10.1f}{gtg:10.1f}{otg / gtg:9.2f}x{kgen:10.1f}{rgen:9.1f}"
            f"{kgen / rgen:6.2f}x"
        )
    print(
        "(tok/s; ORT = onnxruntime-genai via `kolm bench`, llama = llama.cpp via `kolm bench` (fp16 = F16 GGUF, "
        "ONNX fp16 runs fp32 on the CPU EP); tg ratio = ORT / llama; kolm gen = OnnxSession.generate, raw gen = "
        "onnxruntime-genai greedy loop, both with detokenisation)\n"
    )
    print(f"{'export ' + export_tier:<52}{'min s':>7} {'median':>7}")
    print(f"{'kolm export (sha check, extract, build, embed, hash)':<52}{summary(kolm_t)}")
    print(f"{'raw: python -m onnxruntime_genai.models.builder':<52}{summary(raw_t)}")
    print(f"ratio kolm / raw (median): {statistics.median(kolm_t) / statistics.median(raw_t):.2f}x  (goal <= 1.05x)")


if __name__ == "__main__":
    main()
