#!/usr/bin/env python3
"""kolm's cost on top of the raw llama.cpp toolchain, on SmolLM2-135M-Instruct.

1. export: `kolm export` (K scoring off, as K is work the raw path does not do) vs calling the
   same steps directly (kolm_gguf.convert.hf_to_gguf, then llama_model_quantize). Goal <= 1.05x.
2. generation: `kolm bench`'s tg tok/s vs raw llama-cpp-python on the same file — its own
   llm.eval loop (what llama-bench does) and create_completion. Goal >= 0.97x.
3. memory: peak RSS of the F16 conversion vs the F16 model size (tensors are streamed).

    .venv/bin/python benchmarks/gguf_overhead.py [--runs 3] [--tier int4]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import llama_eval_tg, smollm2_artifact, summary, timed  # noqa: E402


def kolm_export(artifact: Path, tier: str, out: Path) -> None:
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry

    reg = registry()
    device = reg.devices().find("raspberry-pi-5")
    planned = forecast(reg, resolve_model(str(artifact)), device, tier)
    export_artifact(
        reg, artifact, device, tier, "gguf", out, planned.size_bytes, planned.read_per_token_bytes, score=False
    )


def raw_export(model_dir: Path, spelling: str, out: Path) -> None:
    import llama_cpp
    from kolm_gguf.convert import hf_to_gguf
    from kolm_gguf.export import captured_stderr

    f16 = out.with_suffix(".f16.gguf")
    hf_to_gguf(model_dir, f16)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{spelling}")
    params.nthread = os.cpu_count()
    with captured_stderr():  # llama.cpp prints a line per fallback tensor
        assert llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params)) == 0
    f16.unlink()


def raw_tg(model: Path, n_gen: int) -> tuple[float, float]:
    """One run of raw llama-cpp-python: (llm.eval loop tok/s, create_completion tok/s)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=os.cpu_count(), verbose=False)
    loop = llama_eval_tg(llm, n_gen)
    start = time.perf_counter()
    out = llm.create_completion("Once upon a time", max_tokens=n_gen, temperature=0.0, repeat_penalty=1.0)
    completion = out["usage"]["completion_tokens"] / (time.perf_counter() - start)
    llm.close()
    return loop, completion


def peak_rss_of_conversion(model_dir: Path, out: Path) -> int:
    code = (
        "import resource, sys; from kolm_gguf.convert import hf_to_gguf; hf_to_gguf(sys.argv[1], sys.argv[2]);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(out)], capture_output=True, text=True, check=True
    )
    return int(proc.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tier", default="int4")
    args = parser.parse_args()
    from kolm.api import BenchRequest
    from kolm.artifact import Artifact
    from kolm.plugins import registry

    artifact = smollm2_artifact()
    spelling = registry().backend("gguf").recipe(args.tier).spelling
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        work = Path(work)
        with Artifact(artifact) as art:
            model_dir = art.extract_model(work / "hf")
        kolm_t = timed(lambda: kolm_export(artifact, args.tier, work / "kolm"), args.runs)
        raw_t = timed(lambda: raw_export(model_dir, spelling, work / f"raw.{spelling}.gguf"), args.runs)
        payload = next((work / "kolm").glob("*.gguf"))
        request = BenchRequest(path=work / "kolm", payload=[payload.name], n_prompt=64, n_gen=128, repetitions=1)
        kolm_tg, raw_loop, raw_completion = [], [], []
        for _ in range(args.runs + 2):  # interleaved, so machine noise hits both sides alike
            kolm_tg.append(registry().backend("gguf").bench(request).tg.mean)
            loop, completion = raw_tg(payload, 128)
            raw_loop.append(loop)
            raw_completion.append(completion)
        tg, loop, completion = (statistics.median(x) for x in (kolm_tg, raw_loop, raw_completion))
        rss = peak_rss_of_conversion(model_dir, work / "rss.gguf")
        f16_bytes = (work / "rss.gguf").stat().st_size

    print(
        f"SmolLM2-135M-Instruct, {args.tier} ({spelling}), {args.runs} export runs, {args.runs + 2} "
        f"interleaved tg runs, {os.cpu_count()} cores\n"
    )
    print(f"{'export':<58}{'min s':>7} {'median':>7}")
    print(f"{'kolm export (sha check, extract, convert, quantize, embed, hash)':<58}{summary(kolm_t)}")
    print(f"{'raw: hf_to_gguf + llama_model_quantize':<58}{summary(raw_t)}")
    print(
        f"ratio kolm / raw (median): {sorted(kolm_t)[len(kolm_t) // 2] / sorted(raw_t)[len(raw_t) // 2]:.2f}x"
        "  (goal <= 1.05x)\n"
    )
    print(f"{'generation, tg128':<58}{'tok/s':>7}")
    print(f"{'kolm bench (median of runs)':<58}{tg:7.1f}")
    print(f"{'raw llama-cpp-python llm.eval loop (median)':<58}{loop:7.1f}")
    print(f"{'raw llama-cpp-python create_completion (median)':<58}{completion:7.1f}")
    print(
        f"ratio kolm / raw eval loop: {tg / loop:.2f}x, / create_completion: {tg / completion:.2f}x  (goal >= 0.97x)\n"
    )
    print(
        f"peak RSS of the F16 conversion: {rss / 2**20:.0f} MiB for a {f16_bytes / 2**20:.0f} MiB model "
        f"({rss / f16_bytes:.2f}x; includes the interpreter, numpy and gguf)"
    )


if __name__ == "__main__":
    main()
