"""The browser bundle's `Session`: generation and scoring delegate to the gguf backend's session
on the same GGUF (wllama is llama.cpp compiled to WebAssembly, so the core measures K natively);
`serve` hosts the static bundle instead of an OpenAI-compatible API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kolm.api import Session
from kolm.errors import UsageError


class WasmSession(Session):
    """A bundle folder, with the gguf backend's session on its GGUF for everything but `serve`."""

    def __init__(self, folder: Path, native: Session) -> None:
        self.folder, self.native = folder, native

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        return self.native.generate(prompt, max_tokens=max_tokens, stream=stream, chat=chat)

    def loglikelihood(self, context: str, continuation: str) -> float:
        return self.native.loglikelihood(context, continuation)

    def position_logprobs(self, text: str):
        return self.native.position_logprobs(text)

    def serve(self, host: str, port: int, model: str = "", verify: Path | None = None) -> int:
        """Host the bundle (page, wllama, GGUF parts) on host:port; with `verify`, the page's verify
        panel checks that .kolm automatically. Nothing is uploaded: the checks run in the tab."""
        from kolm_wasm.server import serve_bundle

        if verify is not None and not Path(verify).is_file():
            raise UsageError(f"--verify {verify}: no such file")
        return serve_bundle(self.folder, host, port, Path(verify) if verify is not None else None)

    def close(self) -> None:
        self.native.close()
