"""llama-bench style measurement through llama-cpp-python: pp (one batch of n_prompt tokens) and
tg (n_gen single-token decodes), each repeated, plus load time and peak RSS of this process."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from kolm.api import BenchRequest, BenchResult, Rate, peak_rss_bytes

from kolm_gguf.runtime import import_llama_cpp


def bench_gguf(request: BenchRequest, model: Path) -> BenchResult:
    llama_cpp = import_llama_cpp()
    threads = request.threads or os.cpu_count() or 1
    start = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=request.n_prompt + request.n_gen + 16,
        n_batch=max(request.n_prompt, 32),
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=False,
    )
    load_s = time.perf_counter() - start
    try:
        rng = random.Random(0)
        tokens = [rng.randrange(llm.n_vocab()) for _ in range(request.n_prompt + request.n_gen)]
        llm.eval(tokens[:16])  # warm-up, as llama-bench does
        pp, tg = [], []
        for _ in range(request.repetitions):
            llm.reset()
            start = time.perf_counter()
            llm.eval(tokens[: request.n_prompt])
            pp.append(request.n_prompt / (time.perf_counter() - start))
            llm.reset()
            llm.eval([llm.token_bos()])
            start = time.perf_counter()
            for token in tokens[request.n_prompt :]:
                llm.eval([token])
            tg.append(request.n_gen / (time.perf_counter() - start))
    finally:
        llm.close()
    return BenchResult(
        runtime=f"llama-cpp-python {llama_cpp.__version__}",
        pp=Rate.of(pp),
        tg=Rate.of(tg),
        load_s=load_s,
        peak_rss_bytes=peak_rss_bytes(),
        n_prompt=request.n_prompt,
        n_gen=request.n_gen,
        threads=threads,
    )
