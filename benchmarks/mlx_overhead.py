#!/usr/bin/env python3
"""kolm's cost on top of the raw mlx-lm toolchain, on SmolLM2-135M-Instruct.

1. export: `kolm export` (K scoring off, as K is work the raw path does not do) vs calling
   `mlx_lm.convert.convert` directly with the same flags. Goal <= 1.05x.
2. generation: `kolm bench`'s tg tok/s vs a raw mlx-lm decode loop on the same folder (model(x,
   cache) one token at a time, each awaited) and vs `mlx_lm.stream_generate` (which, like `kolm
   bench`, queues the next step before awaiting the last).
   Goal >= 0.97x. Both raw paths load the model as kolm does on a CPU (float16 tensors computed
   in float32, kolm_mlx.runtime.load_model); the as-stored load is timed once for comparison.

    python benchmarks/mlx_overhead.py [--runs 3] [--tier int4] [--n-gen 64]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import smollm2_artifact, summary, timed  # noqa: E402
from kolm_testing import export_unscored  # noqa: E402


def kolm_export(artifact: Path, tier: str, out: Path) -> None:
    """`kolm export` without K, through kolm_testing.export_unscored (the call the tests make)."""
    export_unscored(artifact, "m3-pro", tier, out, "mlx")


def raw_export(model_dir: Path, tier: str, out: Path) -> None:
    import shutil

    from kolm.plugins import registry
    from mlx_lm.convert import convert

    shutil.rmtree(out, ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the tier's recipe: mlx_lm.convert's own arguments
        convert(str(model_dir), str(out), **registry().backend("mlx").recipe(tier).options)


def raw_tg(folder: Path, n_gen: int, as_stored: bool = False) -> tuple[float, float]:
    """One run of raw mlx-lm: (decode loop tok/s, stream_generate tok/s)."""
    import random

    import mlx.core as mx
    import mlx_lm
    from kolm_mlx.runtime import load_model
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = mlx_lm.load(str(folder)) if as_stored else load_model(folder)
    rng = random.Random(0)
    tokens = [rng.randrange(model.args.vocab_size) for _ in range(n_gen)]
    cache = make_prompt_cache(model)
    mx.eval(model(mx.array([[tokenizer.bos_token_id or 0]]), cache=cache))
    start = time.perf_counter()
    for token in tokens:
        mx.eval(model(mx.array([[token]]), cache=cache))
    loop = n_gen / (time.perf_counter() - start)
    if as_stored:
        return loop, 0.0
    start = time.perf_counter()
    made = sum(
        1
        for _ in mlx_lm.stream_generate(
            model, tokenizer, "Once upon a time", max_tokens=n_gen, sampler=make_sampler(temp=0.0)
        )
    )
    return loop, made / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tier", default="int4")
    parser.add_argument("--n-gen", type=int, default=64)
    args = parser.parse_args()
    from kolm.api import BenchRequest
    from kolm.artifact import Artifact
    from kolm.plugins import registry

    artifact = smollm2_artifact()
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        work = Path(work)
        with Artifact(artifact) as art:
            model_dir = art.extract_model(work / "hf")
        kolm_t, raw_t = [], []
        for _ in range(args.runs):  # interleaved, so machine noise hits both sides alike
            kolm_t += timed(lambda: kolm_export(artifact, args.tier, work / "kolm"), 1)
            raw_t += timed(lambda: raw_export(model_dir, args.tier, work / "raw"), 1)
        folder = work / "kolm"
        payload = [p.name for p in folder.iterdir() if p.name != "kolm-export.json"]
        request = BenchRequest(path=folder, payload=payload, n_prompt=64, n_gen=args.n_gen, repetitions=1)
        kolm_tg, raw_loop, raw_stream = [], [], []
        for _ in range(args.runs + 2):
            kolm_tg.append(registry().backend("mlx").bench(request).tg.mean)
            loop, stream = raw_tg(folder, args.n_gen)
            raw_loop.append(loop)
            raw_stream.append(stream)
        stored, _ = raw_tg(folder, 8, as_stored=True)
        tg, loop, stream = (statistics.median(x) for x in (kolm_tg, raw_loop, raw_stream))

    print(
        f"SmolLM2-135M-Instruct, mlx {args.tier}, {args.runs} export runs, {args.runs + 2} interleaved tg runs, "
        f"{os.cpu_count()} cores (mlx CPU)\n"
    )
    print(f"{'export':<58}{'min s':>7} {'median':>7}")
    print(f"{'kolm export (sha check, extract, convert, embed, hash)':<58}{summary(kolm_t)}")
    print(f"{'raw: mlx_lm.convert.convert':<58}{summary(raw_t)}")
    print(f"ratio kolm / raw (median): {statistics.median(kolm_t) / statistics.median(raw_t):.2f}x  (goal <= 1.05x)\n")
    print(f"{f'generation, tg{args.n_gen}':<58}{'tok/s':>7}")
    print(f"{'kolm bench (median of runs)':<58}{tg:7.1f}")
    print(f"{'raw mlx-lm decode loop (median)':<58}{loop:7.1f}")
    print(f"{'raw mlx_lm.stream_generate (median)':<58}{stream:7.1f}")
    print(f"{'raw mlx-lm decode loop, model as stored (float16 scales), tg8':<58}{stored:7.2f}")
    print(f"ratio kolm / raw decode loop: {tg / loop:.2f}x, / stream_generate: {tg / stream:.2f}x  (goal >= 0.97x)")


if __name__ == "__main__":
    main()
