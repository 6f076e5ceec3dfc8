"""A small OpenAI-compatible HTTP server that any `Session` can sit behind.

Backends whose toolchain ships a maintained server (llama_cpp.server, mlx_lm.server) exec that
instead; this one is for runtimes without one (ONNX Runtime). Standard library only. Endpoints:
GET /v1/models, POST /v1/completions and /v1/chat/completions, with `"stream": true` as
server-sent events. Decoding is greedy (kolm sessions are deterministic), so sampling fields are
accepted and ignored. Requests are answered one at a time: a session is not thread-safe.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from kolm.errors import KolmError, UsageError


class Servable(Protocol):
    """What the server needs of a `kolm.api.Session`."""

    def generate(self, prompt: str, max_tokens: int, stream: bool, chat: bool) -> Iterator[str]: ...

    def chat(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]: ...

    def __enter__(self) -> Servable: ...

    def __exit__(self, *exc: object) -> None: ...


DEFAULT_MAX_TOKENS = 256
MAX_TOKENS = 8192  # the most one request may ask for: a bound on the work one client can queue
MAX_BODY_BYTES = 1 << 20  # a chat request is text; a larger body is refused before it is read


class ApiError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def completion_pieces(session: Servable, path: str, body: dict) -> Iterator[str]:
    """The generated text of one request, piece by piece."""
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"'max_tokens' must be a whole number from 1 to {MAX_TOKENS}")
    if path == "/v1/completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise ApiError(HTTPStatus.BAD_REQUEST, "'prompt' must be a string")
        return session.generate(prompt, max_tokens=max_tokens, stream=True, chat=False)
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    ):
        raise ApiError(HTTPStatus.BAD_REQUEST, "'messages' must be a non-empty list of {role, content} objects")
    return session.chat(messages, max_tokens=max_tokens)


class Api:
    """The OpenAI wire format around one session named `model`."""

    def __init__(self, session: Servable, model: str) -> None:
        self.session, self.model, self.lock = session, model, threading.Lock()

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "kolm"}]}

    def chunk(self, path: str, ident: str, text: str, finish: str | None) -> dict:
        if path == "/v1/completions":
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            return {
                "id": ident,
                "object": "text_completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [choice],
            }
        delta = {"role": "assistant", "content": text} if text else {}
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def whole(self, path: str, ident: str, text: str) -> dict:
        if path == "/v1/completions":
            return self.chunk(path, ident, text, "stop")
        message = {"role": "assistant", "content": text}
        return {
            "id": ident,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }


class Handler(BaseHTTPRequestHandler):
    """One HTTP request against `server.api`."""

    server: ApiServer
    protocol_version = "HTTP/1.1"

    def send_json(self, status: HTTPStatus, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status: HTTPStatus, message: str) -> None:
        self.send_json(status, {"error": {"message": message, "type": status.phrase.lower().replace(" ", "_")}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            return self.send_json(HTTPStatus.OK, self.server.api.models())
        self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            return self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        try:
            body = json.loads(self.rfile.read(self.body_length()) or b"{}")
            if not isinstance(body, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
            api, ident = self.server.api, f"kolm-{uuid.uuid4().hex[:12]}"
            with api.lock:
                pieces = completion_pieces(api.session, path, body)
                if body.get("stream"):
                    return self.stream(path, ident, pieces)
                self.send_json(HTTPStatus.OK, api.whole(path, ident, "".join(pieces)))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            self.send_error_json(HTTPStatus.BAD_REQUEST, "the request body is not JSON")
        except ApiError as exc:
            self.send_error_json(exc.status, str(exc))
        except (KolmError, ValueError) as exc:
            self.send_error_json(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError):  # the client hung up mid-answer: nothing to tell it
            self.close_connection = True

    def body_length(self) -> int:
        """The declared body length, refused (and the connection closed) when it is not a number
        from 0 to MAX_BODY_BYTES: the body is never read past what the bound allows."""
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isdigit():
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
        if int(declared) > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request body is over {MAX_BODY_BYTES} bytes")
        return int(declared)

    def stream(self, path: str, ident: str, pieces: Iterator[str]) -> None:
        """Server-sent events: one chunk per piece, a final chunk with the finish reason, [DONE]."""
        api = self.server.api
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for piece in pieces:
            self.wfile.write(f"data: {json.dumps(api.chunk(path, ident, piece, None))}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(f"data: {json.dumps(api.chunk(path, ident, '', 'stop'))}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, format: str, *args) -> None:
        pass


class ApiServer(ThreadingHTTPServer):
    """The HTTP server holding the `Api`."""

    daemon_threads = True

    def __init__(self, host: str, port: int, api: Api) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.api = api


def serve(session: Servable, model: str, host: str, port: int) -> int:
    """Serve `session` as `model` on host:port until interrupted; returns the exit code."""
    with session, ApiServer(host, port, Api(session, model)) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def port_free(host: str, port: int) -> None:
    """Raise a one-line error if host:port cannot be bound (in use, or not an address here)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
