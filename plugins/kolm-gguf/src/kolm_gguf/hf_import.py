"""`kolm pack --from-gguf` for every architecture transformers' own GGUF loader reads (Gemma 2/3,
Qwen2/3, Phi-3, Mistral ...): it dequantizes the tensors and rebuilds the tokenizer, chat template
included, and the model is saved as float16 safetensors in Hugging Face layout. Llama-family GGUFs
take kolm's own streaming importer (`kolm_gguf.convert`), which is faster and tested equal.

Needs the `convert` extra (torch, transformers, accelerate), imported here only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from collections.abc import Iterator
from pathlib import Path

from kolm.errors import ToolchainMissingError, UnsupportedModelError

from kolm_gguf.upstream import INSTALL

NEEDS = ("torch", "transformers", "accelerate")


@contextlib.contextmanager
def one_reader(source: Path) -> Iterator[None]:
    """transformers' GGUF loader parses the whole file once for the config, once for the tokenizer
    and once for the weights; every metadata field is read one by one, which for a 262k-token
    vocabulary (Gemma 3) takes about 18 s each time. While this is open, it gets one parsed
    `gguf.GGUFReader` of `source` (read-only, memory-mapped) every time."""
    import gguf

    original = gguf.GGUFReader
    reader = original(source)

    def shared(path, *args, **kwargs):
        if args or kwargs or Path(path).resolve() != source.resolve():
            return original(path, *args, **kwargs)
        return reader

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def gguf_to_hf(source: Path, out_dir: Path) -> None:
    """Write config.json, float16 safetensors and the tokenizer files of the GGUF `source` into `out_dir`."""
    missing = [module for module in NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        raise ToolchainMissingError(f"importing {source.name} needs {', '.join(missing)}: {INSTALL}")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            one_reader(source),
        ):
            tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float16)
    except (ValueError, KeyError, NotImplementedError) as exc:
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise UnsupportedModelError(f"transformers cannot read {source.name}: {reason}") from exc
    # A GGUF-loaded model is flagged quantized and refuses save_pretrained: move its dequantized
    # weights into a plain model of the same config.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float16)
    model.load_state_dict(loaded.state_dict())
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
