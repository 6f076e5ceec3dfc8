"""A small OpenAI-compatible HTTP server that any `Session` can sit behind.

Backends whose toolchain ships a maintained server (llama_cpp.server, mlx_lm.server on Metal) exec
that instead; this one is for runtimes without one (ONNX Runtime, MLX on a CPU). Standard library only. Endpoints:
GET /v1/models, POST /v1/completions and /v1/chat/completions, with `"stream": true` as
server-sent events. Decoding is greedy (kolm sessions are deterministic): a sampling field is
accepted when its value asks for what greedy decoding does (temperature 0, no penalties, n 1; top_p,
top_k and min_p keep the most likely token, so any value is greedy's) and refused with a 400 naming
the field otherwise, never silently ignored. `stop` strings are honoured; answers carry `usage`
token counts where the session counts them (`kolm.api.Generation`), in a stream when asked with
`stream_options: {"include_usage": true}`. Requests are answered one at a time: a session is not
thread-safe. So that a slow, silent or absent client cannot hold the others up, each request must
arrive within a deadline, a client that stops reading is dropped, and open connections are capped
(REQUEST_S, SEND_S, MAX_CONNECTIONS).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from kolm.api import Generation
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
MAX_STOPS = 4  # as OpenAI's API: up to four stop strings
LINGER_S = 1.0  # how long a refused connection drains what its client still sends
# Slow and silent clients. Requests are answered one at a time, so none may hold a thread or the
# session for long: a request's head and body must arrive whole within REQUEST_S of its first wait
# (a kept-alive connection waiting for its next request closes after it too), a client that stops
# reading an answer for SEND_S is dropped, and beyond MAX_CONNECTIONS open connections a new one
# gets a 503 at once instead of a thread. Chosen, not measured: a request is at most MAX_BODY_BYTES
# (1 MiB in 30 s is 35 KB/s), and 64 threads waiting on sockets hold little memory.
REQUEST_S = 30.0
SEND_S = 30.0
MAX_CONNECTIONS = 64


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equals(target: float) -> Callable[[object], bool]:
    return lambda value: number(value) and value == target


# Sampling fields, with the value of each that asks for greedy decoding (what every kolm session
# does) and a test for it; any other value is refused, never ignored.
GREEDY_VALUES: dict[str, tuple[str, Callable[[object], bool]]] = {
    "temperature": ("0", equals(0)),
    "n": ("1", equals(1)),
    "best_of": ("1", equals(1)),
    "presence_penalty": ("0", equals(0)),
    "frequency_penalty": ("0", equals(0)),
    "repeat_penalty": ("1", equals(1)),
    "repetition_penalty": ("1", equals(1)),
    "logit_bias": ("{}", lambda v: v == {}),
    "logprobs": ("false", lambda v: v is False or equals(0)(v)),
    "top_logprobs": ("0", equals(0)),
    "echo": ("false", lambda v: v is False),
    "suffix": ('""', lambda v: v == ""),
    "tools": ("[]", lambda v: v == []),
    "functions": ("[]", lambda v: v == []),
    "tool_choice": ('"none"', lambda v: v == "none"),
    "response_format": ('{"type": "text"}', lambda v: v == {"type": "text"}),
}
# Truncation samplers always keep the most likely token: greedy decoding honours any value of them.
TRUNCATION = ("top_p", "top_k", "min_p", "typical_p")


class ApiError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def bad_request(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, message)


def refuse_sampling(body: dict) -> None:
    """Raise a 400 for a sampling field whose value asks for anything but greedy decoding."""
    for field, (greedy, is_greedy) in GREEDY_VALUES.items():
        value = body.get(field)
        if value is not None and not is_greedy(value):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise bad_request(
                f"'{field}': {shown} is not supported: kolm's server decodes greedily (send {greedy}, or leave it out)"
            )
    for field in TRUNCATION:
        if body.get(field) is not None and not number(body[field]):
            raise bad_request(f"'{field}' must be a number")


def requested_max_tokens(body: dict) -> int:
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS:
        raise bad_request(f"'max_tokens' must be a whole number from 1 to {MAX_TOKENS}")
    return max_tokens


def stop_strings(body: dict) -> list[str]:
    """The request's `stop`: a string, or a list of up to MAX_STOPS."""
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(s, str) and s for s in stops):
        raise bad_request(f"'stop' must be a string or a list of up to {MAX_STOPS} non-empty strings")
    return stops


class StopAt:
    """Cuts generated text before the first of `stops`. A streamed piece may end inside a stop
    string, so a tail that could begin one is held back until the next piece settles it."""

    def __init__(self, stops: list[str]) -> None:
        self.stops, self.held, self.hit = stops, "", False

    def cut(self, pieces: Iterator[str]) -> Iterator[str]:
        """The text of `pieces` up to the first stop string, piece by piece; generation stops there."""
        try:
            for piece in pieces:
                if text := self.feed(piece):
                    yield text
                if self.hit:
                    return
            if self.held:
                yield self.held
        finally:
            if hasattr(pieces, "close"):
                pieces.close()

    def feed(self, piece: str) -> str:
        text, self.held = self.held + piece, ""
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            return text[: min(found)]
        keep = max((n for s in self.stops for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        self.held = text[len(text) - keep :]
        return text[: len(text) - keep]


class Completion:
    """One request, checked before anything is generated: what to generate, where to stop, and how
    to report it (finish reason, `usage`)."""

    def __init__(self, path: str, body: dict) -> None:
        refuse_sampling(body)
        self.path, self.body, self.ident = path, body, f"kolm-{uuid.uuid4().hex[:12]}"
        self.max_tokens, self.stop = requested_max_tokens(body), StopAt(stop_strings(body))
        self.stream = bool(body.get("stream"))
        options = body.get("stream_options")
        self.stream_usage = isinstance(options, dict) and options.get("include_usage") is True
        self.generation: Iterator[str] | None = None

    def pieces(self, session: Servable) -> Iterator[str]:
        """The text to send, piece by piece, cut at a stop string."""
        if self.path == "/v1/completions":
            prompt = self.body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if not isinstance(prompt, str):
                raise bad_request("'prompt' must be a string")
            self.generation = session.generate(prompt, max_tokens=self.max_tokens, stream=True, chat=False)
        else:
            messages = self.body.get("messages")
            if (
                not isinstance(messages, list)
                or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
            ):
                raise bad_request("'messages' must be a non-empty list of {role, content} objects")
            self.generation = session.chat(messages, max_tokens=self.max_tokens)
        return self.stop.cut(self.generation)

    def finish_reason(self) -> str:
        """The finish reason: "length" when the answer ran to max_tokens, "stop" when it ended or met
        a stop string."""
        counted = isinstance(self.generation, Generation) and self.generation.completion_tokens >= self.max_tokens
        return "length" if counted and not self.stop.hit else "stop"

    def usage(self) -> dict | None:
        """Token counts, where the session counts them."""
        if not isinstance(self.generation, Generation):
            return None
        prompt, completion = self.generation.prompt_tokens, self.generation.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class SessionThread:
    """Every call into the session, on one thread of its own. Requests arrive on a thread each, and a
    runtime may keep state per thread: MLX starts a stream, and a thread that outlives the caller,
    for each thread that computes (one leaked thread per request before this)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kolm-session")

    def run(self, call: Callable, *args: object):
        """`call(*args)` on the session's thread; its result, or its exception raised here."""
        return self.pool.submit(call, *args).result()

    def iterate(self, pieces: Iterator[str]) -> Iterator[str]:
        """`pieces`, each computed on the session's thread; closing this closes them there too."""
        try:
            while (piece := self.run(next, pieces, None)) is not None:
                yield piece
        finally:
            self.run(getattr(pieces, "close", lambda: None))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Api:
    """The OpenAI wire format around one session named `model`."""

    def __init__(self, session: Servable, model: str) -> None:
        self.session, self.model, self.lock = session, model, threading.Lock()
        self.session_thread = SessionThread()

    def pieces(self, request: Completion) -> Iterator[str]:
        """The request's text to send, piece by piece, generated on the session's thread."""
        return self.session_thread.iterate(self.session_thread.run(request.pieces, self.session))

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "kolm"}]}

    def chunk(self, request: Completion, text: str, finish: str | None) -> dict:
        if request.path == "/v1/completions":
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            return self.reply(request, "text_completion", [choice])
        delta = {"role": "assistant", "content": text} if text else {}
        return self.reply(request, "chat.completion.chunk", [{"index": 0, "delta": delta, "finish_reason": finish}])

    def usage_chunk(self, request: Completion) -> dict:
        """The stream's last chunk when the client asked for usage: no choices, the counts."""
        kind = "text_completion" if request.path == "/v1/completions" else "chat.completion.chunk"
        return {**self.reply(request, kind, []), "usage": request.usage()}

    def whole(self, request: Completion, text: str) -> dict:
        finish = request.finish_reason()
        if request.path == "/v1/completions":
            answer = self.chunk(request, text, finish)
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            answer = self.reply(request, "chat.completion", [choice])
        usage = request.usage()
        return answer if usage is None else {**answer, "usage": usage}

    def reply(self, request: Completion, kind: str, choices: list[dict]) -> dict:
        return {
            "id": request.ident,
            "object": kind,
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
        }


class Handler(BaseHTTPRequestHandler):
    """One HTTP request against `server.api`."""

    server: ApiServer
    protocol_version = "HTTP/1.1"

    @property
    def timeout(self) -> float:
        """SEND_S, which socketserver sets on the connection: a bound on each send and receive."""
        return SEND_S

    def handle_one_request(self) -> None:
        self.server.deadlines.start(self.connection)
        super().handle_one_request()

    def arrived(self) -> None:
        """The request is read whole: no deadline while it waits for the session and is answered."""
        self.server.deadlines.stop(self.connection)

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
        self.arrived()
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            return self.send_json(HTTPStatus.OK, self.server.api.models())
        self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self.arrived()
            return self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        try:
            raw = self.rfile.read(self.body_length())
            self.arrived()
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise bad_request("the request body must be a JSON object")
            api, request = self.server.api, Completion(path, body)
            with api.lock:
                pieces = api.pieces(request)
                try:
                    if request.stream:
                        return self.stream(request, pieces)
                    self.send_json(HTTPStatus.OK, api.whole(request, "".join(pieces)))
                finally:
                    pieces.close()  # generation stops here, before the next request's starts
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            self.send_error_json(HTTPStatus.BAD_REQUEST, "the request body is not JSON")
        except ApiError as exc:
            self.send_error_json(exc.status, str(exc))
        except (KolmError, ValueError) as exc:
            self.send_error_json(HTTPStatus.BAD_REQUEST, str(exc))
        except (ConnectionError, TimeoutError):  # the client hung up, or stopped reading for SEND_S
            self.close_connection = True

    def body_length(self) -> int:
        """The declared body length, refused (and the connection closed) when it is not a number
        from 0 to MAX_BODY_BYTES: the body is never read past what the bound allows."""
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isdigit():
            self.close_connection = self.unread_body = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
        if int(declared) > MAX_BODY_BYTES:
            self.close_connection = self.unread_body = True
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request body is over {MAX_BODY_BYTES} bytes")
        return int(declared)

    def finish(self) -> None:
        """After refusing a body unread, close gracefully: stop sending, then discard what the
        client still sends (up to MAX_BODY_BYTES, for at most LINGER_S), so that the error reaches it
        rather than a reset that would drop it."""
        super().finish()
        self.server.deadlines.stop(self.connection)
        if getattr(self, "unread_body", False):
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(LINGER_S)
                discarded = 0
                while discarded < MAX_BODY_BYTES and (chunk := self.connection.recv(65536)):
                    discarded += len(chunk)
            except OSError:
                pass

    def stream(self, request: Completion, pieces: Iterator[str]) -> None:
        """Server-sent events: one chunk per piece, a final chunk with the finish reason, the usage
        chunk when asked for, [DONE]."""
        api = self.server.api
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for piece in pieces:
            self.event(api.chunk(request, piece, None))
        self.event(api.chunk(request, "", request.finish_reason()))
        if request.stream_usage:
            self.event(api.usage_chunk(request))
        self.wfile.write(b"data: [DONE]\n\n")

    def event(self, data: dict) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def log_message(self, format: str, *args) -> None:
        pass


class Deadlines:
    """When each connection's request must have arrived whole (`REQUEST_S` after it starts
    waiting); `cut` shuts down the connections past theirs, which ends their handlers' reads."""

    def __init__(self) -> None:
        self.due: dict[socket.socket, float] = {}
        self.lock = threading.Lock()

    def start(self, connection: socket.socket) -> None:
        with self.lock:
            self.due[connection] = time.monotonic() + REQUEST_S

    def stop(self, connection: socket.socket) -> None:
        with self.lock:
            self.due.pop(connection, None)

    def cut(self) -> None:
        now = time.monotonic()
        with self.lock:
            late = [c for c, due in self.due.items() if due < now]
            for connection in late:
                del self.due[connection]
        for connection in late:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


BUSY = json.dumps({"error": {"message": "too many open connections; try again", "type": "service_unavailable"}})


class ApiServer(ThreadingHTTPServer):
    """The HTTP server holding the `Api`: a thread per connection, up to MAX_CONNECTIONS."""

    daemon_threads = True

    def __init__(self, host: str, port: int, api: Api) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.api, self.deadlines = api, Deadlines()
        self.open_connections, self.max_connections, self.counting = 0, MAX_CONNECTIONS, threading.Lock()

    def server_close(self) -> None:
        super().server_close()
        self.api.session_thread.close()

    def service_actions(self) -> None:
        """Between accepts (serve_forever polls every 0.5 s): cut the requests past their deadline."""
        self.deadlines.cut()

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        with self.counting:
            busy = self.open_connections >= self.max_connections
            self.open_connections += not busy
        if busy:
            return self.refuse_busy(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.counting:
                self.open_connections -= 1

    def refuse_busy(self, request: socket.socket) -> None:
        """A 503 with a JSON error, from the accepting thread, and the connection closed."""
        head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(BUSY)}"
        try:
            request.settimeout(LINGER_S)
            request.sendall(f"{head}\r\nConnection: close\r\n\r\n{BUSY}".encode())
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.shutdown_request(request)


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
