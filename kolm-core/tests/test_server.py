"""kolm's own OpenAI-compatible server, over HTTP on 127.0.0.1, with a scripted session.

The session here is a stand-in at the Session boundary; kolm-onnx's tests put a real ONNX Runtime
session behind the same server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from kolm.api import Generation, Session
from kolm_testing import serving


class Echo(Session):
    """Generates the prompt back, one character a token, up to max_tokens; records what it was asked
    and how many tokens were generated before the generation was closed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []
        self.generated: list[int] = []

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Generation:
        self.calls.append((prompt, max_tokens, chat))
        return Generation(len(prompt), iter([ord(c) for c in prompt[:max_tokens]]), self.decode)

    def decode(self, tokens: Iterator[int]) -> Iterator[str]:
        count = 0
        try:
            for token in tokens:
                count += 1
                yield chr(token)
        finally:
            self.generated.append(count)

    def loglikelihood(self, context: str, continuation: str) -> float:
        return 0.0


@pytest.fixture
def api():
    session = Echo()
    with serving(session) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", session


def call(url: str, body: dict | bytes | None = None) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def events(body: bytes) -> list[str]:
    """The data of each server-sent event."""
    return [line.removeprefix("data: ") for line in body.decode().splitlines() if line.startswith("data: ")]


def test_models_names_the_export(api):
    base, _ = api
    status, body = call(f"{base}/models")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["tiny"]


def test_completion_is_greedy_text_with_usage_and_passes_max_tokens(api):
    base, session = api
    status, body = call(f"{base}/completions", {"prompt": "The capital", "max_tokens": 20, "temperature": 0})
    reply = json.loads(body)
    assert status == 200 and reply["object"] == "text_completion"
    assert reply["choices"][0]["text"] == "The capital" and reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 11, "completion_tokens": 11, "total_tokens": 22}
    assert session.calls == [("The capital", 20, False)]


def test_an_answer_cut_by_max_tokens_finishes_with_length(api):
    base, _ = api
    status, body = call(f"{base}/completions", {"prompt": "The capital", "max_tokens": 7})
    choice = json.loads(body)["choices"][0]
    assert status == 200 and choice == {"index": 0, "text": "The cap", "finish_reason": "length", "logprobs": None}


@pytest.mark.parametrize(
    ("stop", "text", "generated"),
    [
        ("cap", "The ", 7),
        (["zz", "ital"], "The cap", 11),
        ("e c", "Th", 5),
        ("capitals", "The capital", 11),
        (["The"], "", 3),
    ],
)
def test_stop_strings_cut_the_answer_and_stop_generating(api, stop, text, generated):
    """Echo yields one character a piece: every stop string spans pieces, held back until settled;
    generation stops at the token that completes it."""
    base, session = api
    for stream in (False, True):
        status, body = call(f"{base}/completions", {"prompt": "The capital", "stop": stop, "stream": stream})
        assert status == 200
        if stream:
            chunks = [json.loads(e) for e in events(body)[:-1]]
            got, finish = "".join(c["choices"][0]["text"] for c in chunks), chunks[-1]["choices"][0]["finish_reason"]
        else:
            got, finish = json.loads(body)["choices"][0]["text"], json.loads(body)["choices"][0]["finish_reason"]
        assert (got, finish) == (text, "stop")
    assert session.generated == [generated, generated]


def test_a_stream_ends_with_usage_when_asked(api):
    base, _ = api
    body = {"prompt": "abc", "stream": True, "stream_options": {"include_usage": True}}
    status, reply = call(f"{base}/completions", body)
    chunks = [json.loads(e) for e in events(reply)[:-1]]
    assert status == 200 and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert all("usage" not in c for c in chunks[:-1])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 0.7),
        ("temperature", True),
        ("n", 2),
        ("presence_penalty", 0.5),
        ("frequency_penalty", -1),
        ("repeat_penalty", 1.1),
        ("logit_bias", {"50256": -100}),
        ("logprobs", 5),
        ("logprobs", True),
        ("echo", True),
        ("tools", [{"type": "function"}]),
        ("response_format", {"type": "json_object"}),
        ("top_p", "0.9"),
    ],
)
def test_sampling_it_does_not_implement_is_refused_naming_the_field(api, field, value):
    base, session = api
    status, body = call(f"{base}/completions", {"prompt": "x", field: value})
    assert status == 400 and f"'{field}'" in json.loads(body)["error"]["message"]
    assert session.calls == []


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7, "n": 1},
        {"presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "logprobs": False, "echo": False},
        {"user": "someone", "metadata": {"a": 1}, "stop": []},
    ],
)
def test_fields_that_ask_for_greedy_decoding_or_that_it_does_not_know_are_accepted(api, fields):
    base, _ = api
    status, body = call(f"{base}/completions", {"prompt": "abc", **fields})
    assert status == 200 and json.loads(body)["choices"][0]["text"] == "abc"


def test_chat_completion_uses_the_chat_template(api):
    base, session = api
    status, body = call(f"{base}/chat/completions", {"messages": [{"role": "user", "content": "Hi there"}]})
    reply = json.loads(body)
    assert status == 200 and reply["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert session.calls == [("Hi there", 256, True)]


def test_chat_streams_server_sent_events(api):
    base, _ = api
    status, body = call(
        f"{base}/chat/completions", {"messages": [{"role": "user", "content": "abcd"}], "stream": True, "max_tokens": 8}
    )
    assert status == 200 and events(body)[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events(body)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "abcd"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/completions", b"{not json", 400, "not JSON"),
        ("/completions", {"prompt": 3}, 400, "'prompt' must be a string"),
        ("/chat/completions", {"messages": []}, 400, "'messages' must be"),
        (
            "/chat/completions",
            {"messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]},
            400,
            "one user message",
        ),
        ("/embeddings", {"input": "x"}, 404, "no route"),
        ("/completions", {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "up to 4"),
        ("/completions", {"prompt": "x", "stop": [""]}, 400, "non-empty strings"),
    ],
)
def test_bad_requests_get_a_json_error(api, path, body, status, message):
    base, _ = api
    got, reply = call(f"{base}{path}", body)
    assert got == status and message in json.loads(reply)["error"]["message"]


@pytest.mark.parametrize("max_tokens", [0, -1, 8193, 1.5, "7", True, [1]])
def test_max_tokens_outside_1_to_8192_is_a_400_naming_the_bound(api, max_tokens):
    base, session = api
    status, body = call(f"{base}/completions", {"prompt": "x", "max_tokens": max_tokens})
    message = json.loads(body)["error"]["message"]
    assert status == 400 and message == "'max_tokens' must be a whole number from 1 to 8192"
    assert session.calls == []


def test_a_body_over_the_bound_is_refused_from_its_length_before_it_is_read(api):
    """The header alone is sent: the answer cannot depend on reading (or racing) the body."""
    import socket
    from urllib.parse import urlsplit

    base, session = api
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
        conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 1))
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413") and "over 1048576 bytes" in json.loads(body)["error"]["message"]
    assert session.calls == []


def test_a_client_hanging_up_mid_stream_is_not_an_error_and_the_next_is_served(api, capsys):
    import socket
    from urllib.parse import urlsplit

    base, _ = api
    where = urlsplit(base)
    body = json.dumps({"prompt": "x" * 4000, "stream": True}).encode()
    with socket.create_connection((where.hostname, where.port)) as conn:
        conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.recv(16)
    status, _ = call(f"{base}/completions", {"prompt": "still here"})
    assert status == 200 and "Traceback" not in capsys.readouterr().err
