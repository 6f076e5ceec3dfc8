"""llama-bench style measurement through mlx-lm, the same method as kolm-gguf's: pp (one forward
pass over n_prompt tokens) and tg (n_gen single-token decodes with a KV cache, each step queued
before the previous one is awaited, as mlx-lm's own generation loop does), each repeated after a
16-token warm-up, plus load time and peak RSS of this process. The model is loaded as
`kolm run` loads it (`load_model`: on a CPU, float32 with numpy's BLAS for the matmuls)."""

from __future__ import annotations

import os
import random
import time

from kolm.api import BenchRequest, BenchResult, Rate, peak_rss_bytes

from kolm_mlx.runtime import import_mlx_lm, load_model, runtime_name


def bench_mlx(request: BenchRequest) -> BenchResult:
    import_mlx_lm()
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    start = time.perf_counter()
    model, tokenizer = load_model(request.path)
    load_s = time.perf_counter() - start
    rng = random.Random(0)
    vocab = model.args.vocab_size
    tokens = [rng.randrange(vocab) for _ in range(request.n_prompt + request.n_gen)]

    def forward(batch: list[int], cache) -> None:
        mx.eval(model(mx.array([batch]), cache=cache))

    forward(tokens[:16], make_prompt_cache(model))  # warm-up, as llama-bench does
    start_token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokens[0]
    pp, tg = [], []
    for _ in range(request.repetitions):
        start = time.perf_counter()
        forward(tokens[: request.n_prompt], make_prompt_cache(model))
        pp.append(request.n_prompt / (time.perf_counter() - start))
        cache = make_prompt_cache(model)
        forward([start_token], cache)
        start = time.perf_counter()
        pending = None
        for token in tokens[request.n_prompt :]:  # as mlx_lm.generate_step: queue step n+1, then wait for n
            logits = model(mx.array([[token]]), cache=cache)
            mx.async_eval(logits)
            if pending is not None:
                mx.eval(pending)
            pending = logits
        mx.eval(pending)
        tg.append(request.n_gen / (time.perf_counter() - start))
    return BenchResult(
        runtime=runtime_name(),
        pp=Rate.of(pp),
        tg=Rate.of(tg),
        load_s=load_s,
        peak_rss_bytes=peak_rss_bytes(),
        n_prompt=request.n_prompt,
        n_gen=request.n_gen,
        threads=request.threads or os.cpu_count() or 1,
    )
