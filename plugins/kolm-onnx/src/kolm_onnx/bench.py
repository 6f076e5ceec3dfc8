"""llama-bench style measurement through onnxruntime-genai, as kolm-gguf's bench does it so the numbers
compare: pp (one pass over n_prompt random tokens) and tg (n_gen single-token decode steps after one
token, end of sequence ignored), each repeated, plus load time and peak RSS of this process.

tg uses `generate_next_token` (greedy argmax over the logits, a negligible cost) rather than feeding
tokens one by one with `append_tokens`: in onnxruntime-genai 0.18 that path is ~2x slower per token
than decoding (40 vs 87 tok/s, int4 SmolLM2-135M here), so it would measure the API, not the model."""

from __future__ import annotations

import os
import random
import time
from importlib.metadata import version

from kolm.api import BenchRequest, BenchResult, Rate, peak_rss_bytes

from kolm_onnx.runtime import OnnxSession, import_genai


def bench_onnx(request: BenchRequest) -> BenchResult:
    og = import_genai()
    # ONNX Runtime's own thread pool unless --threads: forcing intra_op_num_threads=2 on this 2-core,
    # shared machine halved tg (43 vs 88 tok/s, int4 SmolLM2-135M).
    session = OnnxSession(request.path, n_ctx=request.n_prompt + request.n_gen + 16, threads=request.threads)
    threads = request.threads or os.cpu_count() or 1
    start = time.perf_counter()
    model = session.model
    load_s = time.perf_counter() - start
    rng = random.Random(0)
    vocab = int(session.logits([0]).shape[-1])  # also the warm-up, as llama-bench does
    tokens = [rng.randrange(vocab) for _ in range(request.n_prompt + request.n_gen)]
    pp, tg = [], []
    for _ in range(request.repetitions):
        generator = og.Generator(model, og.GeneratorParams(model))
        start = time.perf_counter()
        generator.append_tokens(tokens[: request.n_prompt])
        pp.append(request.n_prompt / (time.perf_counter() - start))
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=request.n_gen + 1, min_length=request.n_gen + 1, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(tokens[request.n_prompt :][:1])
        start = time.perf_counter()
        while not generator.is_done():
            generator.generate_next_token()
        tg.append(request.n_gen / (time.perf_counter() - start))
    session.close()
    return BenchResult(
        runtime=f"onnxruntime-genai {version('onnxruntime-genai')}",
        pp=Rate.of(pp),
        tg=Rate.of(tg),
        load_s=load_s,
        peak_rss_bytes=peak_rss_bytes(),
        n_prompt=request.n_prompt,
        n_gen=request.n_gen,
        threads=threads,
    )
