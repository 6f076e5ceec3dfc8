#!/usr/bin/env python3
"""kolm's cost on top of the raw llama.cpp toolchain, on SmolLM2-135M-Instruct or a random-weight
1.07 B Llama (Llama-3.2-1B's shapes, `--model random-1b`).

1. export: `kolm export` (K scoring off, as K is work the raw path does not do; kolm-gguf's F16
   cache empty, a fresh KOLM_HOME per run) vs the same upstream steps run by hand: llama.cpp's
   convert_hf_to_gguf.py (the copy kolm-gguf vendors) --outtype f16, then llama_model_quantize.
   Goal <= 1.05x. Also: a second tier of the same model, which reuses the cached F16 GGUF.
2. generation: `kolm bench`'s tg tok/s vs raw llama-cpp-python on the same file — its own
   llm.eval loop (what llama-bench does) and create_completion. Goal >= 0.97x.
3. memory: peak RSS of each process: the converter `kolm export` runs vs the converter run alone
   on the same model (goal <= 1.1x), and kolm's own process, which quantizes in-process, vs a bare
   Python calling llama_model_quantize on the same F16 GGUF.

    .venv/bin/python benchmarks/gguf_overhead.py [--runs 3] [--tier int4] [--model random-1b]
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
from common import llama_eval_tg, random_1b_artifact, smollm2_artifact, summary, timed  # noqa: E402
from kolm_testing import export_unscored  # noqa: E402

MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct", smollm2_artifact),
    "random-1b": ("random Llama 1.07B", random_1b_artifact),
}


def kolm_export(artifact: Path, tier: str, out: Path) -> None:
    """`kolm export` without K, through kolm_testing.export_unscored (the call the tests make)."""
    export_unscored(artifact, "raspberry-pi-5", tier, out)


def raw_convert(model_dir: Path, f16: Path) -> None:
    from kolm_gguf.upstream import CONVERTER

    subprocess.run(
        [sys.executable, str(CONVERTER), str(model_dir), "--outtype", "f16", "--outfile", str(f16)],
        check=True,
        capture_output=True,
    )


def raw_quantize(f16: Path, out: Path, spelling: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{spelling}")
    params.nthread = os.cpu_count()
    assert llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params)) == 0


def raw_export(model_dir: Path, spelling: str, out: Path) -> None:
    from kolm_gguf.runtime import captured_stderr

    f16 = out.with_suffix(".f16.gguf")
    raw_convert(model_dir, f16)
    with captured_stderr():  # llama.cpp prints a line per fallback tensor
        raw_quantize(f16, out, spelling)
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


def peak_rss(code: str, *args: str) -> tuple[int, int]:
    """(peak RSS of `python -c code args` itself, the largest of the processes it ran and waited
    for), read by a fresh parent so that nothing measured earlier counts."""
    wrapper = (
        "import resource, sys; exec(sys.argv[1], {'__name__': 'measured', 'sys': sys});"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)"
    )
    run = subprocess.run([sys.executable, "-c", wrapper, code, *args], check=True, capture_output=True, text=True)
    own, children = run.stdout.split()[-2:]
    return int(own), int(children)


def memory_peaks(artifact: Path, model_dir: Path, work: Path) -> dict[str, int]:
    """Peak RSS of each process, kolm's and the raw path's, each in a fresh parent: the converter
    kolm runs and the converter alone; kolm's own process (which quantizes in-process) and a bare
    Python calling llama_model_quantize on the same F16."""
    here = str(Path(__file__).parent)
    setup = f"sys.path.insert(0, {here!r}); from gguf_overhead import kolm_export, raw_convert, raw_quantize;"
    setup += "from pathlib import Path;"
    _, converter = peak_rss(
        setup + "raw_convert(Path(sys.argv[2]), Path(sys.argv[3]))", str(model_dir), str(work / "alone.f16.gguf")
    )
    quantizer, _ = peak_rss(
        setup + "raw_quantize(Path(sys.argv[2]), Path(sys.argv[3]), 'Q4_K_M')",
        str(work / "alone.f16.gguf"),
        str(work / "alone.Q4_K_M.gguf"),
    )
    kolm_own, kolm_converter = peak_rss(
        setup + "kolm_export(Path(sys.argv[2]), 'int4', Path(sys.argv[3]))", str(artifact), str(work / "rss-kolm")
    )
    return {"converter": converter, "quantizer": quantizer, "kolm": kolm_own, "kolm converter": kolm_converter}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tier", default="int4")
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    args = parser.parse_args()
    from kolm.api import BenchRequest
    from kolm.artifact import Artifact
    from kolm.plugins import registry

    title, make = MODELS[args.model]
    artifact = make()
    spelling = registry().backend("gguf").recipe(args.tier).spelling
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        work = Path(work)
        with Artifact(artifact) as art:
            model_dir = art.extract_model(work / "hf")
        os.environ["KOLM_HOME"] = str(work / "home-rss")
        rss = memory_peaks(artifact, model_dir, work)
        homes = iter(work / f"home-{i}" for i in range(args.runs))

        def cold_export() -> None:  # an empty F16 cache: kolm converts, as the raw path does
            os.environ["KOLM_HOME"] = str(next(homes))
            kolm_export(artifact, args.tier, work / "kolm")

        kolm_t = timed(cold_export, args.runs)
        second = "int8" if args.tier != "int8" else "int4"
        warm_t = timed(lambda: kolm_export(artifact, second, work / "kolm-second"), args.runs)
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
        f16_bytes = (work / "alone.f16.gguf").stat().st_size

    print(
        f"{title}, {args.tier} ({spelling}), {args.runs} export runs, {args.runs + 2} "
        f"interleaved tg runs, {os.cpu_count()} cores\n"
    )
    print(f"{'export':<58}{'min s':>7} {'median':>7}")
    print(f"{'kolm export (sha check, extract, convert, quantize, embed, hash)':<58}{summary(kolm_t)}")
    print(f"{'raw: convert_hf_to_gguf.py + llama_model_quantize':<58}{summary(raw_t)}")
    print(f"{f'kolm export {second} after it (the F16 GGUF cached)':<58}{summary(warm_t)}")
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
    mib = {name: value / 2**20 for name, value in rss.items()}
    print(f"{'peak RSS of each process (MiB)':<58}{'kolm':>7} {'raw':>7}  ratio")
    print(
        f"{'conversion: the converter kolm runs / the converter alone':<58}{mib['kolm converter']:7.0f} "
        f"{mib['converter']:7.0f}  {rss['kolm converter'] / rss['converter']:.2f}x  (goal <= 1.1x)"
    )
    print(
        f"{'quantization: kolm (in-process) / llama_model_quantize alone':<58}{mib['kolm']:7.0f} "
        f"{mib['quantizer']:7.0f}  {rss['kolm'] / rss['quantizer']:.2f}x"
    )
    largest = max(rss["kolm"], rss["kolm converter"]) / max(rss["quantizer"], rss["converter"])
    print(f"largest process, kolm export / the raw steps: {largest:.2f}x; F16 model {f16_bytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
