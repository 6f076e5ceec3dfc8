"""Running an MLX export with mlx-lm: the `Session` behind `kolm run`, K-scoring, fidelity and the
server (`mlx_lm.server`). Greedy decoding throughout, so K is reproducible."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from kolm.api import Session
from kolm.errors import BackendError, ToolchainMissingError
from kolm.logprobs import continuation_start, log_softmax

FIDELITY_CTX = 512  # tokens; eval prompts are short
INSTALL = "pip install kolm-mlx (on Linux: pip install 'mlx[cpu]' mlx-lm)"


def import_mlx_lm():
    """mlx_lm, or a one-line error naming the install (plain `mlx` on Linux lacks the CPU library)."""
    try:
        import mlx.core  # noqa: F401
        import mlx_lm
    except ImportError as exc:
        raise ToolchainMissingError(f"mlx-lm is not installed or mlx cannot load here ({exc}); {INSTALL}") from exc
    return mlx_lm


def load_model(path: Path):
    """(model, tokenizer) as `mlx_lm.load` gives them. On the CPU (Linux), float16 tensors, the
    quantization scales and biases included, are computed in float32: mlx 0.32's CPU kernels for
    float16 are slow and its quantized matmul with float16 scales took ~35x longer (80 s for a
    17-token forward of SmolLM2-135M at 8-bit). The packed weights, hence the quantization error,
    are those of the payload; on Metal the model runs as stored."""
    mlx_lm = import_mlx_lm()
    import mlx.core as mx
    from mlx.utils import tree_map

    try:
        model, tokenizer = mlx_lm.load(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise BackendError(f"mlx-lm cannot load {path}: {exc}") from exc
    if mx.default_device().type == mx.cpu:
        model.update(tree_map(lambda v: v.astype(mx.float32) if v.dtype == mx.float16 else v, model.parameters()))
    return model, tokenizer


class MlxSession(Session):
    """An mlx-lm model folder; the model loads on first use, so `serve` never loads it twice."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def loaded(self):
        return load_model(self.path)

    def tokens(self, text: str) -> list[int]:
        return list(self.loaded[1].encode(text))

    def logprobs(self, tokens: list[int]):
        """log-softmax of the next-token logits after each of `tokens` (positions x vocab)."""
        import mlx.core as mx
        import numpy as np

        logits = self.loaded[0](mx.array([tokens]))[0].astype(mx.float32)
        return log_softmax(np.array(logits))

    def position_logprobs(self, text: str):
        return self.logprobs(self.tokens(text)[:FIDELITY_CTX])

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        pieces = self._pieces(prompt, max_tokens, chat)
        if stream:
            yield from (p for p in pieces if p)
        else:
            yield "".join(pieces)

    def _pieces(self, prompt: str, max_tokens: int, chat: bool) -> Iterator[str]:
        """Greedy tokens from `mlx_lm.stream_generate`, decoded as a whole each step so the first
        token keeps its leading space (mlx-lm's streaming detokenizer drops it); a piece ending in
        half a UTF-8 character waits for the next token."""
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        model, tokenizer = self.loaded
        if chat:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            prompt = tokenizer.encode(text, add_special_tokens=False)
        tokens, shown = [], ""
        for response in stream_generate(
            model, tokenizer, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=0.0)
        ):
            if response.token in tokenizer.eos_token_ids:
                break
            tokens.append(response.token)
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            if not text.endswith("\ufffd"):
                yield text[len(shown) :]
                shown = text

    def loglikelihood(self, context: str, continuation: str) -> float:
        prefix, full = self.tokens(context), self.tokens(context + continuation)
        shared = continuation_start(prefix, full)
        if shared == 0:  # nothing to condition the first token on: start from BOS
            tokenizer = self.loaded[1]
            full = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id, *full]
            shared = 1
        rows = self.logprobs(full[:-1])[shared - 1 :]
        return float(sum(rows[i, token] for i, token in enumerate(full[shared:])))

    def serve_api(self, host: str, port: int, model: str) -> int:
        """Run mlx-lm's own OpenAI-compatible server on this folder until interrupted. It has no
        model alias: /v1/models lists the folder's absolute path, and requests omit `model`."""
        import_mlx_lm()
        from huggingface_hub.constants import HF_HUB_CACHE

        Path(HF_HUB_CACHE).mkdir(parents=True, exist_ok=True)  # /v1/models scans it and fails without it
        command = [
            sys.executable,
            "-m",
            "mlx_lm.server",
            "--model",
            str(self.path),
            "--host",
            host,
            "--port",
            str(port),
        ]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, command)  # the server takes this process over: signals reach it directly

    def close(self) -> None:
        self.__dict__.pop("loaded", None)
