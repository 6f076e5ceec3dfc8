"""llama-bench style measurement through Core ML, the same method as kolm-gguf's: pp (one prediction
over n_prompt random tokens) and tg (n_gen single-token predictions with the KV-cache state), each
repeated after a 16-token warm-up, plus load time and peak RSS of this process. Core ML exists only
on Apple's OSes: elsewhere this is one line naming macOS."""

from __future__ import annotations

import os
import random
import time

from kolm.api import BenchRequest, BenchResult, Rate, peak_rss_bytes

from kolm_coreml.runtime import CoreMLSession, needs_macos, on_apple


def bench_coreml(request: BenchRequest) -> BenchResult:
    if not on_apple():
        raise needs_macos()
    session = CoreMLSession(request.path)
    start = time.perf_counter()
    model = session.model
    load_s = time.perf_counter() - start
    rng = random.Random(0)
    vocab = session.text.config["vocab_size"]
    tokens = [rng.randrange(vocab) for _ in range(request.n_prompt + request.n_gen)]
    session.step(model.make_state(), tokens[:16], 0)  # warm-up, as llama-bench does
    pp, tg = [], []
    for _ in range(request.repetitions):
        start = time.perf_counter()
        session.step(model.make_state(), tokens[: request.n_prompt], 0)
        pp.append(request.n_prompt / (time.perf_counter() - start))
        state = model.make_state()
        session.step(state, tokens[:1], 0)
        start = time.perf_counter()
        for past, token in enumerate(tokens[request.n_prompt :], start=1):
            session.step(state, [token], past)
        tg.append(request.n_gen / (time.perf_counter() - start))
    return BenchResult(
        runtime=session.runtime,
        pp=Rate.of(pp),
        tg=Rate.of(tg),
        load_s=load_s,
        peak_rss_bytes=peak_rss_bytes(),
        n_prompt=request.n_prompt,
        n_gen=request.n_gen,
        threads=os.cpu_count() or 1,
    )
