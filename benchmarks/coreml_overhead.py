#!/usr/bin/env python3
"""kolm's cost on top of coremltools, on a random-weight 1.07 B Llama (Llama-3.2-1B's shapes,
`--model random-1b`, the default) or SmolLM2-135M-Instruct.

export: `kolm export --target iphone-15-pro` (K scoring off, as K is work the raw path does not do;
a fresh KOLM_HOME per run, so kolm-coreml's float16 package cache starts empty) vs the same
coremltools steps called directly on the extracted Hugging Face folder: trace the stateful wrapper,
`ct.convert`, `linear_quantize_weights` / `palettize_weights` with the tier's options, `save`.
Each side runs in its own process; wall time and that process's peak RSS. Goal <= 1.05x on both.

    .tox/coreml/bin/python benchmarks/coreml_overhead.py [--runs 1] [--tier int4] [--model random-1b]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import random_1b_artifact, smollm2_artifact  # noqa: E402

MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct", smollm2_artifact),
    "random-1b": ("random Llama 1.07B", random_1b_artifact),
}
KOLM = """
import sys
from pathlib import Path
from kolm_testing import export_unscored
export_unscored(Path(sys.argv[1]), "iphone-15-pro", sys.argv[2], Path(sys.argv[3]), "coreml")
"""
RAW = """
import json, os, sys
from pathlib import Path
import coremltools as ct
import coremltools.optimize.coreml as cto
import numpy as np
import torch
from transformers import AutoModelForCausalLM
from kolm.plugins import registry
from kolm_coreml.convert import cache_shape, context_length, stateful
model_dir, tier, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
config = json.loads((model_dir / "config.json").read_text())
context = context_length(config)
shape = cache_shape(config, context)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, attn_implementation="sdpa")
with torch.no_grad():
    example = [torch.zeros((1, 2), dtype=torch.int32), torch.zeros((1, 1, 2, 5), dtype=torch.float16)]
    traced = torch.jit.trace(stateful(model.eval(), shape), example)
del model
n, seen = ct.RangeDim(1, context, 1), ct.RangeDim(1, context, 1)
state = ct.TensorType(shape=shape, dtype=np.float16)
ml = ct.convert(traced, inputs=[ct.TensorType(shape=(1, n), dtype=np.int32, name="inputIds"),
    ct.TensorType(shape=(1, 1, n, seen), dtype=np.float16, name="causalMask")],
    outputs=[ct.TensorType(dtype=np.float16, name="logits")],
    states=[ct.StateType(wrapped_type=state, name="keyCache"), ct.StateType(wrapped_type=state, name="valueCache")],
    minimum_deployment_target=ct.target.iOS18, skip_model_load=True)
options = {**registry().backend("coreml").recipe(tier).options, "weight_threshold": 2048}
if "dtype" in options:
    ml = cto.linear_quantize_weights(ml, cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(**options)))
elif "nbits" in options:
    config = cto.OpPalettizerConfig(**options, num_kmeans_workers=os.cpu_count())
    ml = cto.palettize_weights(ml, cto.OptimizationConfig(global_config=config))
ml.save(str(out / "model.mlpackage"))
"""


def run(code: str, *args: str, home: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of `python -c code args` in its own process (os.wait4's rusage)."""
    env = {**os.environ, "KOLM_HOME": str(home)}
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stderr=log, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            log.seek(0)
            raise SystemExit(log.read().decode()[-2000:])
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tier", default="int4")
    parser.add_argument("--model", choices=MODELS, default="random-1b")
    args = parser.parse_args()
    from kolm.artifact import Artifact

    label, make = MODELS[args.model]
    artifact = make()
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        work = Path(work)
        with Artifact(artifact) as art:
            model_dir = art.extract_model(work / "hf")
        kolm, raw = [], []
        for i in range(args.runs):
            (work / f"raw{i}").mkdir()
            raw.append(run(RAW, str(model_dir), args.tier, str(work / f"raw{i}"), home=work / f"home-raw{i}"))
            kolm.append(run(KOLM, str(artifact), args.tier, str(work / f"kolm{i}"), home=work / f"home{i}"))
    t_kolm, t_raw = statistics.median(w for w, _ in kolm), statistics.median(w for w, _ in raw)
    m_kolm, m_raw = max(m for _, m in kolm), max(m for _, m in raw)
    print(f"{label}, coreml {args.tier}, {args.runs} run(s) each, {os.cpu_count()} cores\n")
    print(f"{'':<62}{'wall s':>8} {'peak RSS':>10}")
    print(
        f"{'kolm export (sha check, extract, convert, cache, compress, hash)':<62}{t_kolm:8.1f} {m_kolm / 2**30:9.2f}G"
    )
    print(f"{'raw: trace + ct.convert + compress + save':<62}{t_raw:8.1f} {m_raw / 2**30:9.2f}G")
    print(f"ratio kolm / raw: time {t_kolm / t_raw:.2f}x, peak RSS {m_kolm / m_raw:.2f}x  (goal <= 1.05x)")


if __name__ == "__main__":
    main()
