"""Running an export: the request a backend opens, and the `Session` it returns."""

from __future__ import annotations

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


class Session(ABC):
    """An open model. `kolm run`, K-scoring and the server all go through these two methods."""

    @abstractmethod
    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        """Greedy continuation of `prompt`, yielded piece by piece (one piece when not streaming).
        With `chat`, the prompt is one user turn wrapped in the model's chat template."""

    @abstractmethod
    def loglikelihood(self, context: str, continuation: str) -> float:
        """Sum of log-probabilities of `continuation`'s tokens given `context`."""

    def fidelity(self, reference: Session, texts: list[str]) -> Fidelity:
        """Compare this model's next-token distributions with `reference`'s (the fp16 export of
        the same backend) over `texts`. Backends that expose logits override this."""
        raise BackendError(f"{type(self).__name__} cannot compare token distributions")

    def serve(self, host: str, port: int) -> int:
        """Serve an OpenAI-compatible API on host:port until interrupted; returns an exit code.
        Backends override this with their toolchain's own server."""
        raise BackendError(f"{type(self).__name__} has no server")

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
