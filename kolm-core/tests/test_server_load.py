"""kolm's own server under load and under slow, silent, non-reading and too many clients, over
HTTP on 127.0.0.1 (issue 19). The deadlines are shortened to a second so that this runs in CI in
seconds; `benchmarks/server_load.py` runs the same clients against real models for longer.

The session is a stand-in at the Session boundary (a real ONNX Runtime and MLX session sit behind
the same server in their plugins' tests). Waits poll for an outcome with a generous bound; nothing
asserts how long anything took.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from kolm import server as kolm_server
from kolm.api import Generation, Session
from kolm_testing import serving

# One token's text. 8,192 tokens of it (34 MB of events) outgrow the socket buffers a client that
# never reads leaves room in: its own, pinned to 4 KB (SO_RCVBUF), and the server's send buffer, which
# grows to tcp_wmem's maximum (4 MB by Linux's default and on this machine, 2026-11-30).
PIECE = "x" * 4096


class Talker(Session):
    """Answers any prompt with `max_tokens` tokens of PIECE each."""

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Generation:
        return Generation(len(prompt), iter(range(max_tokens)), lambda tokens: (PIECE for _ in tokens))

    def loglikelihood(self, context: str, continuation: str) -> float:
        return 0.0


class ThreadNoter(Talker):
    """A Talker that notes the thread of each call into it: `generate`, and each token."""

    def __init__(self) -> None:
        self.threads: set[threading.Thread] = set()  # the objects: a finished thread's ident is reused

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Generation:
        self.threads.add(threading.current_thread())

        def tokens() -> Iterator[int]:
            for token in range(max_tokens):
                self.threads.add(threading.current_thread())
                yield token

        return Generation(len(prompt), tokens(), lambda tokens: (PIECE for _ in tokens))


@pytest.fixture
def limits(monkeypatch) -> Callable[..., None]:
    """set(request_s, send_s, max_connections) before the server starts."""

    def set_limits(request_s: float = 1.0, send_s: float = 1.0, max_connections: int = 64) -> None:
        monkeypatch.setattr(kolm_server, "REQUEST_S", request_s)
        monkeypatch.setattr(kolm_server, "SEND_S", send_s)
        monkeypatch.setattr(kolm_server, "MAX_CONNECTIONS", max_connections)

    return set_limits


@pytest.fixture
def start() -> Iterator[Callable[..., kolm_server.ApiServer]]:
    """start(session=Talker()): a server started after `limits` set its bounds; all closed after."""
    with ExitStack() as servers:
        yield lambda session=None: servers.enter_context(serving(session or Talker(), "talker"))


def until(condition: Callable[[], bool], limit: float = 20) -> bool:
    """Poll `condition` until it holds or `limit` seconds pass (a bound on a hang, not a timing)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port(api: kolm_server.ApiServer) -> int:
    return api.server_address[1]


def completion(api: kolm_server.ApiServer, max_tokens: int = 4, stream: bool = False) -> str:
    """The text of one completion (streamed or whole), read to its end."""
    body = json.dumps({"prompt": "hi", "max_tokens": max_tokens, "stream": stream}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port(api)}/v1/completions", data=body)
    with urllib.request.urlopen(request, timeout=30) as response:
        if not stream:
            return json.load(response)["choices"][0]["text"]
        lines = [line.removeprefix(b"data: ") for line in response if line.startswith(b"data: {")]
        return "".join(json.loads(line)["choices"][0]["text"] for line in lines if b'"choices": []' not in line)


def raw_request(max_tokens: int = 4, stream: bool = True) -> bytes:
    body = json.dumps({"prompt": "hi", "max_tokens": max_tokens, "stream": stream}).encode()
    return b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def closed_by_server(conn: socket.socket) -> bool:
    """Read until the server closes the connection (True) or 20 s pass with it open (False)."""
    conn.settimeout(20)
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_silent_connection_is_closed_and_its_thread_ends(limits, start):
    limits()
    api = start()
    with socket.create_connection(("127.0.0.1", port(api))) as conn:
        assert until(lambda: api.open_connections == 1)
        assert closed_by_server(conn)
    assert until(lambda: api.open_connections == 0)


def test_a_request_sent_a_byte_at_a_time_is_cut_at_its_deadline_while_others_are_served(limits, start):
    limits()
    api = start()
    request, sent = raw_request(), 0
    with socket.create_connection(("127.0.0.1", port(api))) as conn:
        while sent < len(request):  # a byte every 0.1 s: each arrives within the receive timeout
            try:
                conn.send(request[sent : sent + 1])
            except OSError:
                break
            sent += 1
            if sent == 3:
                assert completion(api) == PIECE * 4
            time.sleep(0.1)
        assert closed_by_server(conn)
    assert sent < len(request), "the whole request went through: no deadline cut it"
    assert until(lambda: api.open_connections == 0)


def test_a_client_that_stops_reading_is_dropped_and_the_next_is_answered(limits, start):
    limits()
    api = start()
    with socket.socket() as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", port(api)))
        reader.sendall(raw_request(max_tokens=kolm_server.MAX_TOKENS))  # ~34 MB of events, never read
        assert until(lambda: api.api.lock.locked())
        assert completion(api) == PIECE * 4  # answered once the stalled send gives up
    assert until(lambda: api.open_connections == 0)


def test_connections_over_the_cap_get_a_503_at_once(limits, start):
    limits(request_s=30, send_s=30, max_connections=3)
    api = start()
    idle = [socket.create_connection(("127.0.0.1", port(api))) for _ in range(3)]
    try:
        assert until(lambda: api.open_connections == 3)
        with socket.create_connection(("127.0.0.1", port(api))) as extra:
            extra.settimeout(20)
            answer = b""
            while chunk := extra.recv(4096):
                answer += chunk
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503") and "too many open connections" in json.loads(body)["error"]["message"]
    finally:
        for conn in idle:
            conn.close()
    assert until(lambda: api.open_connections == 0)
    assert completion(api) == PIECE * 4


def test_under_load_every_client_is_answered_beside_slow_and_vanishing_ones(limits, start):
    """4 clients streaming back to back for 2 s, beside one sending its request a byte every 0.1 s
    and one hanging up after the first bytes, over and over: every request answered whole, the slow
    one cut at its deadline, and no connection left open after."""
    limits()
    api = start()
    stop, answers, errors, cuts = threading.Event(), [], [], []

    def client() -> None:
        while not stop.is_set():
            try:
                answers.append(completion(api, max_tokens=8, stream=True))
            except (OSError, ValueError) as exc:
                errors.append(repr(exc))

    def slowloris() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port(api))) as conn:
                try:
                    for byte in raw_request():
                        if stop.is_set():
                            return
                        conn.send(bytes([byte]))
                        time.sleep(0.1)
                except OSError:
                    cuts.append(1)

    def hang_up() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port(api))) as conn:
                conn.sendall(raw_request(max_tokens=kolm_server.MAX_TOKENS))
                conn.recv(64)

    threads = [threading.Thread(target=f, daemon=True) for f in (client, client, client, client, slowloris, hang_up)]
    for thread in threads:
        thread.start()
    assert until(lambda: len(cuts) >= 1 and len(answers) >= 8)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert set(answers) == {PIECE * 8}
    assert until(lambda: api.open_connections == 0)


def test_every_call_into_the_session_runs_on_one_thread_whatever_the_connection(start):
    """Each connection has a thread of its own; the session sees one (MLX keeps a stream, and a
    thread, per thread that computes: one leaked per request before)."""
    session = ThreadNoter()
    api = start(session)
    for stream in (False, True, False):
        assert completion(api, stream=stream) == PIECE * 4
    assert len(session.threads) == 1 and threading.current_thread() not in session.threads
