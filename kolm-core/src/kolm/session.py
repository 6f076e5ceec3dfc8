"""Running an export: the request a backend opens, and the `Session` it returns."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kolm.datamodel import KolmModel
from kolm.errors import BackendError, UsageError

if TYPE_CHECKING:
    from kolm.manifest import ExportRecord, Fidelity
    from kolm.plugins import Registry


class RunRequest(KolmModel):
    """Open the export in folder `path` with `backend`; `payload` lists its files, main file first."""

    path: Path
    backend: str
    payload: list[str]
    n_ctx: int = 2048
    threads: int | None = None
    seed: int = 0


class PayloadFacts(KolmModel):
    """What a payload says about itself: its embedded manifest and the tier its tensor types show
    (`types` summarises them, e.g. "16 Q4_K, 14 Q6_K, 166 Q5_0")."""

    manifest_json: str | None
    tier: str | None
    types: str


def log_softmax(logits):
    """Row-wise log-softmax of a (positions x vocab) array, in float64."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True))


def continuation_start(prefix: list[int], full: list[int]) -> int:
    """Where the continuation's tokens begin in `full` (the tokens of context + continuation), given
    `prefix` (the context's tokens): after their common prefix, leaving at least one token to score
    (a tokenizer may merge the context's last token with the continuation's first)."""
    start = 0
    while start < min(len(prefix), len(full) - 1) and prefix[start] == full[start]:
        start += 1
    return start


class Session(ABC):
    """An open model. `kolm run`, K-scoring and the server all go through these two methods."""

    @abstractmethod
    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        """Greedy continuation of `prompt`, yielded piece by piece (one piece when not streaming).
        With `chat`, the prompt is one user turn wrapped in the model's chat template."""

    @abstractmethod
    def loglikelihood(self, context: str, continuation: str) -> float:
        """Sum of log-probabilities of `continuation`'s tokens given `context`."""

    def position_logprobs(self, text: str):
        """log-softmax of the next-token logits at every position of `text` (a numpy array,
        positions x vocab). Backends that expose logits implement this; fidelity needs it."""
        raise BackendError(f"{type(self).__name__} cannot compare token distributions")

    def fidelity(self, reference: Session, texts: list[str]) -> Fidelity:
        """Compare this model's next-token distributions with `reference`'s (the fp16 export of
        the same backend) over `texts`: top-1 agreement and mean KL(reference || this)."""
        import numpy as np

        from kolm.manifest import Fidelity

        if type(reference) is not type(self):
            raise BackendError(f"{type(self).__name__} can only be compared with a reference of its own backend, "
                               f"not {type(reference).__name__}")
        agree, kl, positions = 0, 0.0, 0
        for text in texts:
            ours, theirs = self.position_logprobs(text), reference.position_logprobs(text)
            n = min(len(ours), len(theirs))
            agree += int((ours[:n].argmax(axis=1) == theirs[:n].argmax(axis=1)).sum())
            kl += float((np.exp(theirs[:n]) * (theirs[:n] - ours[:n])).sum())
            positions += n
        return Fidelity(top1_agreement=agree / positions, mean_kl=kl / positions, positions=positions)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        """Greedy reply to `messages` ({role, content} dicts) in the model's chat template, piece by
        piece. The default takes one user turn; backends that can template a conversation override it."""
        if len(messages) != 1 or messages[0].get("role") != "user":
            raise UsageError(f"{type(self).__name__} answers one user message at a time, not a conversation")
        return self.generate(messages[0]["content"], max_tokens=max_tokens, stream=True, chat=True)

    def serve(self, host: str, port: int, model: str, verify: Path | None = None) -> int:
        """Serve the export on host:port until interrupted (`kolm serve`, `kolm run --port`); returns
        an exit code. Here: the OpenAI-compatible API as `model`. Backends whose export is a web page
        (the browser bundle) override this to host the page, and the `.kolm` at `verify` with it."""
        if verify is not None:
            raise UsageError("--verify serves a .kolm beside a browser page; export with --target browser")
        print(f"serving {model} on http://{host}:{port}/v1 (OpenAI-compatible; Ctrl-C stops)", file=sys.stderr,
              flush=True)
        return self.serve_api(host, port, model)

    def serve_api(self, host: str, port: int, model: str) -> int:
        """The OpenAI-compatible API: kolm's own server (`kolm.server`) by default; backends whose
        toolchain ships a maintained server override this to run it instead."""
        from kolm.server import serve

        return serve(self, model, host, port)

    def close(self) -> None:
        """Release the model."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(registry: Registry, folder: Path, record: ExportRecord, n_ctx: int = 2048,
                 threads: int | None = None) -> Session:
    """The backend's `Session` on an export folder (the model loads on first use)."""
    request = RunRequest(path=folder, backend=record.backend, payload=[p.path for p in record.payload],
                         n_ctx=n_ctx, threads=threads)
    session = registry.hook.run(request=request)
    if session is None:
        raise BackendError(f"backend {record.backend} is not installed or cannot run here; "
                           f"pip install kolm-{record.backend}")
    return session


def port_free(host: str, port: int) -> None:
    """Raise a one-line error if host:port cannot be bound (in use, or not an address here)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
