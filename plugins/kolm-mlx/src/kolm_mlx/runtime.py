"""Running an MLX export with mlx-lm: the `Session` behind `kolm run`, K-scoring, fidelity and the
server (`mlx_lm.server` on Metal, kolm's own on a CPU). Greedy decoding throughout, so K is
reproducible."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from functools import cached_property, partial
from pathlib import Path

from kolm.api import Fidelity, Generation, Session
from kolm.errors import BackendError, ToolchainMissingError, UsageError
from kolm.logprobs import continuation_start, log_softmax

FIDELITY_CTX = 512  # tokens; eval prompts are short
BATCH_POSITIONS = 512  # positions per padded fidelity batch: 512 x SmolLM2's 49,152 float32 logits = 100 MB
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
    """(model, tokenizer) as `mlx_lm.load` gives them; on a CPU (Linux) with float32 weights and
    the matmuls by numpy's BLAS (`kolm_mlx.cpu`: mlx's CPU kernels are unusably slow). The packed
    weights, hence the quantization error, are those of the payload; on Metal the model runs as
    stored."""
    mlx_lm = import_mlx_lm()
    import mlx.core as mx

    try:
        model, tokenizer = mlx_lm.load(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise BackendError(f"mlx-lm cannot load {path}: {exc}") from exc
    if mx.default_device().type == mx.cpu:
        from kolm_mlx.cpu import use_blas

        use_blas(model)
    return model, tokenizer


def runtime_name() -> str:
    """What computes: mlx-lm and mlx, and on a CPU the float32 path with numpy's BLAS."""
    mlx_lm = import_mlx_lm()
    import mlx.core as mx
    import numpy as np

    if mx.default_device().type == mx.cpu:
        how = f"cpu: float32, matmuls by numpy {np.__version__}'s BLAS"
    else:
        how = f"{mx.default_device()}: as stored"
    return f"mlx-lm {mlx_lm.__version__} (mlx {mx.__version__}, {how})"


class MlxSession(Session):
    """An mlx-lm model folder; the model loads on first use, so `serve` never loads it twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._head = None  # (tokens, KV cache, next-token logits) of the last scored context
        self._ready = {}  # text -> position log-probs computed ahead by `prefetch`

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
        ready = self._ready.pop(text, None)
        return ready if ready is not None else self.logprobs(self.tokens(text)[:FIDELITY_CTX])

    def fidelity(self, reference: Session, texts: list[str]) -> Fidelity:
        """`Session.fidelity`, group by group, each session computing a group's log-probs in one
        padded batch (twice as fast on the CPU as one text at a time)."""
        if not isinstance(reference, MlxSession):
            return super().fidelity(reference, texts)  # its one-line refusal
        parts = []
        for group in self.groups(texts):
            self.prefetch(group)
            reference.prefetch(group)
            parts.append(super().fidelity(reference, group))
        positions = sum(p.positions for p in parts)
        return Fidelity(
            top1_agreement=sum(round(p.top1_agreement * p.positions) for p in parts) / positions,
            mean_kl=sum(p.mean_kl * p.positions for p in parts) / positions,
            positions=positions,
        )

    def groups(self, texts: list[str]) -> Iterator[list[str]]:
        """`texts` in order, in groups padded to no more than BATCH_POSITIONS positions (or one text)."""
        group, width = [], 0
        for text in texts:
            n = min(len(self.tokens(text)), FIDELITY_CTX)
            if group and max(width, n) * (len(group) + 1) > BATCH_POSITIONS:
                yield group
                group, width = [], 0
            group.append(text)
            width = max(width, n)
        if group:
            yield group

    def prefetch(self, texts: list[str]) -> None:
        """Log-probs of `texts` for `position_logprobs`, from one batch padded on the right: a causal
        model's positions never attend to what follows them, so each text's rows are its own."""
        import mlx.core as mx
        import numpy as np

        ids = {text: self.tokens(text)[:FIDELITY_CTX] for text in texts}
        ids = {text: x for text, x in ids.items() if x}  # nothing to score: left to position_logprobs
        if not ids:
            return
        width = max(len(x) for x in ids.values())
        padded = mx.array([x + [0] * (width - len(x)) for x in ids.values()])
        logits = np.array(self.loaded[0](padded).astype(mx.float32))
        self._ready.update(
            (text, log_softmax(row[: len(x)])) for (text, x), row in zip(ids.items(), logits, strict=True)
        )

    @property
    def runtime(self) -> str:
        return f"MlxSession, {runtime_name()}"

    def generate_all(self, prompts: list[str], max_tokens: int) -> list[str]:
        """Greedy continuations of `prompts` in one batch through mlx-lm's own `batch_generate`
        (left-padded), decoded as `generate` decodes them."""
        from mlx_lm import batch_generate

        model, tokenizer = self.loaded
        ids = [self.prompt_tokens(p, chat=False) for p in prompts]
        done = batch_generate(model, tokenizer, ids, max_tokens=max_tokens, return_token_ids=True)
        return [tokenizer.decode(t, skip_special_tokens=True).rstrip("\ufffd") for t in done.token_ids]

    def prompt_tokens(self, prompt: str, chat: bool) -> list[int]:
        """`prompt`'s token ids as `mlx_lm.generate` encodes a text (BOS added unless it starts with
        one); with `chat`, the user's turn in the model's chat template (a model without one, e.g. a
        base model, continues the prompt as it is)."""
        tokenizer = self.loaded[1]
        if chat and tokenizer.has_chat_template:
            return self.templated([{"role": "user", "content": prompt}])
        bos = tokenizer.bos_token
        return list(tokenizer.encode(prompt, add_special_tokens=bos is None or not prompt.startswith(bos)))

    def templated(self, messages: list[dict[str, str]]) -> list[int]:
        tokenizer = self.loaded[1]
        if not tokenizer.has_chat_template:
            raise UsageError(f"{self.path.name} has no chat template (a base model): send a completion instead")
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer.encode(text, add_special_tokens=False))

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        return self.pieces(self.prompt_tokens(prompt, chat), max_tokens, stream)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        """A whole conversation in the model's chat template (kolm's server's /v1/chat/completions)."""
        return self.pieces(self.templated(messages), max_tokens, stream=True)

    def pieces(self, prompt_tokens: list[int], max_tokens: int, stream: bool) -> Generation:
        """The text after `prompt_tokens`, counting tokens (the server's `usage`)."""
        return Generation(
            len(prompt_tokens), self.next_tokens(prompt_tokens, max_tokens), partial(self.decode, stream=stream)
        )

    def next_tokens(self, prompt_tokens: list[int], max_tokens: int) -> Iterator[int]:
        """Greedy tokens from `mlx_lm.stream_generate` until end of sequence or `max_tokens`."""
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        model, tokenizer = self.loaded
        for response in stream_generate(
            model, tokenizer, prompt_tokens, max_tokens=max_tokens, sampler=make_sampler(temp=0.0)
        ):
            if response.token in tokenizer.eos_token_ids:
                return
            yield response.token

    def decode(self, tokens: Iterator[int], stream: bool) -> Iterator[str]:
        """Text pieces of `tokens`, decoded as a whole each step so the first token keeps its leading
        space (mlx-lm's streaming detokenizer drops it); a piece ending in half a UTF-8 character
        waits for the next token. One piece, the whole text, when not streaming."""
        tokenizer = self.loaded[1]
        ids, shown = [], ""
        for token in tokens:
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if stream and len(text) > len(shown) and not text.endswith("\ufffd"):
                yield text[len(shown) :]
                shown = text
        if not stream:
            yield tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd")

    def loglikelihood(self, context: str, continuation: str) -> float:
        prefix, full = self.tokens(context), self.tokens(context + continuation)
        shared = continuation_start(prefix, full)
        if shared == 0:  # nothing to condition the first token on: start from BOS
            tokenizer = self.loaded[1]
            full = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id, *full]
            shared = 1
        rows = self.continuation_logprobs(full[:shared], full[shared:])
        return float(sum(rows[i, token] for i, token in enumerate(full[shared:])))

    def continuation_logprobs(self, head: list[int], tail: list[int]):
        """log-softmax rows predicting each token of `tail` after `head`. The KV cache of `head` is
        kept for the next call with the same head (K-scoring asks for each choice after the same
        prompt), and each tail is trimmed off it again."""
        import mlx.core as mx
        import numpy as np
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        model = self.loaded[0]
        if self._head is None or self._head[0] != head:
            cache = make_prompt_cache(model)
            if not can_trim_prompt_cache(cache):  # a cache mlx-lm cannot trim: one pass over both
                return self.logprobs([*head, *tail[:-1]])[len(head) - 1 :]
            self._head = (head, cache, model(mx.array([head]), cache=cache)[0, -1:])
        _, cache, last = self._head
        rows = [last]
        if len(tail) > 1:
            rows.append(model(mx.array([tail[:-1]]), cache=cache)[0])
            trim_prompt_cache(cache, len(tail) - 1)
        return log_softmax(np.array(mx.concatenate(rows).astype(mx.float32)))

    def serve_api(self, host: str, port: int, model: str) -> int:
        """On Metal, mlx-lm's own OpenAI-compatible server on this folder, until interrupted (it has
        no model alias: /v1/models lists the folder's absolute path, and requests omit `model`). On a
        CPU (Linux), kolm's own server over this session: mlx_lm.server runs the model on mlx's CPU
        kernels, and with SmolLM2's int8 export it answered nothing within 60 s here
        (docs/reliability.md), where this session's matmuls run on numpy's BLAS (kolm_mlx.cpu)."""
        import_mlx_lm()
        import mlx.core as mx

        if mx.default_device().type == mx.cpu:
            return super().serve_api(host, port, model)
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
        self._head, self._ready = None, {}
