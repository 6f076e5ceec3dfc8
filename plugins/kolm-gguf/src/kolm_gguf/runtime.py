"""Running a GGUF with llama-cpp-python: the `Session` behind `kolm run`, scoring and the server."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from kolm.api import Session
from kolm.errors import BackendError, ToolchainMissingError
from kolm.logprobs import continuation_start, log_softmax

FIDELITY_CTX = 512  # tokens; eval prompts are short, and the logits of every position are kept
GREEDY = {"temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}


def import_llama_cpp():
    """llama_cpp, with llama.cpp's own log (quantizer tables, loader dumps) limited to errors."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ToolchainMissingError("llama-cpp-python is not installed; pip install kolm-gguf") from exc
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    return llama_cpp


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Hold back what C code writes to stderr (llama.cpp prints per-tensor fallback warnings
    itself); yields a list that holds those lines afterwards, for error messages."""
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode(errors="replace").splitlines()


class GgufSession(Session):
    """A GGUF opened with llama.cpp; the model loads on first use, so `serve` never loads it twice."""

    def __init__(self, path: Path, n_ctx: int = 2048, threads: int | None = None, seed: int = 0) -> None:
        self.path, self.n_ctx, self.threads, self.seed = path, n_ctx, threads, seed

    def context_length(self) -> int:
        """The requested context, capped at what the model was trained for."""
        from kolm_gguf.gguf_file import read_header

        header = read_header(self.path)
        arch = header.get("general.architecture", "llama")
        return min(self.n_ctx, header.get(f"{arch}.context_length", self.n_ctx))

    @cached_property
    def llm(self):
        llama_cpp = import_llama_cpp()
        try:
            with captured_stderr() as log:  # llama.cpp's loader notes (e.g. the SWA cache) are not errors
                return llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.context_length(),
                    n_threads=self.threads,
                    seed=self.seed,
                    verbose=False,
                )
        except ValueError as exc:
            reason = next((line for line in reversed(log) if line.strip()), str(exc))
            raise BackendError(f"llama.cpp cannot load {self.path}: {reason}") from exc

    @cached_property
    def scorer(self):
        """A second context that keeps the logits of every position (fidelity needs whole rows)."""
        llama_cpp = import_llama_cpp()
        with captured_stderr():
            return llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=min(FIDELITY_CTX, self.context_length()),
                n_threads=self.threads,
                seed=self.seed,
                logits_all=True,
                verbose=False,
            )

    def position_logprobs(self, text: str):
        """log-softmax of the next-token logits at every position of `text` (positions x vocab)."""
        llm = self.scorer
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)[: llm.n_ctx()]
        llm.reset()
        llm.eval(tokens)
        return log_softmax(llm.scores[: len(tokens)])

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        """Greedy text after `prompt`; with `chat`, as the user's turn in the GGUF's own chat template
        (a model without one, e.g. a base model, continues the prompt as it is)."""
        if chat and "tokenizer.chat_template" in self.llm.metadata:
            pieces = self.chat([{"role": "user", "content": prompt}], max_tokens)
        else:
            chunks = self.llm.create_completion(prompt, max_tokens=max_tokens, stream=True, **GREEDY)
            pieces = (p for p in (c["choices"][0]["text"] for c in chunks) if p)
        if stream:
            yield from pieces
        else:
            yield "".join(pieces)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        chunks = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, stream=True, **GREEDY)
        return (p for p in (c["choices"][0]["delta"].get("content") for c in chunks) if p)

    def _last_log_prob(self, token: int) -> float:
        """log p(token) after the last evaluated position, from llama.cpp's logits row."""
        import numpy as np

        llama_cpp = import_llama_cpp()
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),))
        return float(log_softmax(row)[token])

    def loglikelihood(self, context: str, continuation: str) -> float:
        llm = self.llm
        prefix = llm.tokenize(context.encode(), add_bos=True, special=True)
        full = llm.tokenize((context + continuation).encode(), add_bos=True, special=True)
        shared = continuation_start(prefix, full)
        target = full[shared:]
        llm.reset()
        llm.eval(full[:shared])
        total = 0.0
        for i, token in enumerate(target):
            if i:
                llm.eval([target[i - 1]])
            total += self._last_log_prob(token)
        return total

    def serve_api(self, host: str, port: int, model: str) -> int:
        """Run llama.cpp's own OpenAI-compatible server on this GGUF until interrupted."""
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as exc:
            raise ToolchainMissingError(
                "the server needs llama-cpp-python[server]; pip install 'llama-cpp-python[server]'"
            ) from exc
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.path),
            "--model_alias",
            model,
            "--host",
            host,
            "--port",
            str(port),
            "--n_ctx",
            str(self.context_length()),
            "--interrupt_requests",  # its default (True) cuts a stream short when another request comes:
            "False",  # queue them instead, so every concurrent client gets its whole answer
        ]
        if self.threads:
            command += ["--n_threads", str(self.threads)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, command)  # the server takes this process over: signals reach it directly

    def close(self) -> None:
        for name in ("llm", "scorer"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
