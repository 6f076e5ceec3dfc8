"""Running an ONNX export with onnxruntime-genai: the `Session` behind `kolm run`, K-scoring and
kolm's shared OpenAI-compatible server (`Session.serve`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property, partial
from pathlib import Path

from kolm.api import Generation, Session
from kolm.errors import BackendError, UsageError
from kolm.logprobs import continuation_start, log_softmax

from kolm_onnx.export import require_toolchain


def import_genai():
    require_toolchain("onnxruntime_genai")
    import onnxruntime_genai as og

    return og


class OnnxSession(Session):
    """An export folder opened with onnxruntime-genai; the model loads on first use."""

    def __init__(self, folder: Path, n_ctx: int = 2048, threads: int | None = None) -> None:
        self.folder, self.n_ctx, self.threads = folder, n_ctx, threads

    @cached_property
    def model(self):
        og = import_genai()
        try:
            config = og.Config(str(self.folder))
            if self.threads:
                options = {"intra_op_num_threads": self.threads}
                config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            return og.Model(config)
        except Exception as exc:  # onnxruntime-genai raises plain RuntimeError/OrtException
            raise BackendError(f"onnxruntime-genai cannot load {self.folder}: {str(exc).splitlines()[0]}") from exc

    @cached_property
    def tokenizer(self):
        return import_genai().Tokenizer(self.model)

    @cached_property
    def genai_config(self) -> dict:
        return json.loads((self.folder / "genai_config.json").read_text(encoding="utf-8"))["model"]

    def context_length(self) -> int:
        return min(self.n_ctx, self.genai_config["context_length"])

    def cache_length(self, tokens: int) -> int:
        """The KV cache length for `tokens` tokens: ONNX Runtime's sliding-window attention needs
        room for the whole window (Gemma 2), whatever the prompt and answer need."""
        window = self.genai_config["decoder"].get("sliding_window", {}).get("window_size", 0)
        return min(max(tokens, window), self.genai_config["context_length"])

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)][: self.context_length()]

    def logits(self, tokens: list[int]):
        """Logits of every position of `tokens` (positions x vocab), from one prompt pass."""
        og = import_genai()
        generator = og.Generator(self.model, og.GeneratorParams(self.model))
        generator.append_tokens(tokens)
        return generator.get_output("logits")[0]

    def position_logprobs(self, text: str):
        """log-softmax of the next-token logits at every position of `text` (positions x vocab)."""
        return log_softmax(self.logits(self.encode(text)))

    def loglikelihood(self, context: str, continuation: str) -> float:
        prefix, full = self.encode(context), self.encode(context + continuation)
        shared = continuation_start(prefix, full)
        rows = log_softmax(self.logits(full))
        return float(sum(rows[i - 1, full[i]] for i in range(max(shared, 1), len(full))))

    def tokens(self, prompt_tokens: list[int], max_tokens: int) -> Iterator[int]:
        """Greedy tokens after `prompt_tokens`, until end of sequence, `max_tokens` or the context."""
        og = import_genai()
        count = min(max_tokens, self.context_length() - len(prompt_tokens))
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.cache_length(len(prompt_tokens) + count), do_sample=False)
        generator = og.Generator(self.model, params)
        generator.append_tokens(prompt_tokens)
        for _ in range(count):
            if generator.is_done():
                return
            generator.generate_next_token()
            yield int(generator.get_next_tokens()[0])

    def pieces(self, prompt_tokens: list[int], max_tokens: int, stream: bool) -> Generation:
        """The text after `prompt_tokens`, counting tokens (the server's `usage`)."""
        tokens = self.tokens(prompt_tokens, max_tokens)
        return Generation(len(prompt_tokens), tokens, partial(self.decode, stream=stream))

    def decode(self, tokens: Iterator[int], stream: bool) -> Iterator[str]:
        """Text pieces of `tokens` as they come (one piece, the whole text, when not streaming)."""
        decoder = self.tokenizer.create_stream()
        pieces = (decoder.decode(t) for t in tokens)
        if stream:
            yield from (p for p in pieces if p)
        else:
            yield "".join(pieces)

    @cached_property
    def has_chat_template(self) -> bool:
        """Whether the export carries the model's chat template (the builder copies the tokenizer's files)."""
        if (self.folder / "chat_template.jinja").is_file():
            return True
        config = self.folder / "tokenizer_config.json"
        return config.is_file() and bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))

    def templated(self, messages: list[dict[str, str]]) -> list[int]:
        if not self.has_chat_template:
            raise UsageError(f"{self.folder.name} has no chat template (a base model): send a completion instead")
        text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return self.encode(text)

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        """Greedy text after `prompt`; with `chat`, as the user's turn in the model's chat template (a
        model without one, e.g. a base model, continues the prompt as it is)."""
        chat = chat and self.has_chat_template
        tokens = self.templated([{"role": "user", "content": prompt}]) if chat else self.encode(prompt)
        return self.pieces(tokens, max_tokens, stream)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        """A whole conversation in the model's chat template (the server's /v1/chat/completions)."""
        return self.pieces(self.templated(messages), max_tokens, stream=True)

    def close(self) -> None:
        for name in ("tokenizer", "model"):
            self.__dict__.pop(name, None)
