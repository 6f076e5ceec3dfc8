"""Fuzzing the readers of untrusted bytes with Hypothesis: the RS-1 reader (ZIP directory, members,
manifest JSON, eval pack, safetensors headers, extraction), the eval pack parser, the safetensors
header parser and the OpenAI-compatible server's request handling.

Property: a `KolmError` with a one-line message (or an HTTP 4xx with a JSON error), never another
exception, never a file outside the folder it was asked to write. Each reader tries
KOLM_FUZZ_EXAMPLES inputs (1,000 by default; the figures in docs/reliability.md name the long run's).
The seeds are the valid files themselves and the `@example` cases (the shapes of past findings).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kolm.artifact import Artifact, folder_inventory
from kolm.errors import KolmError
from kolm.evalpack import parse_eval_pack
from kolm.server import GREEDY_VALUES, MAX_BODY_BYTES, TRUNCATION
from kolm_testing import serving
from kolm_testing.fuzz import FUZZ, mutated, one_line


def member_mutations(seed: Path) -> st.SearchStrategy[dict[str, bytes]]:
    """The artifact's members, each possibly replaced by a mutation of itself, re-zipped validly: the
    ZIP is sound and the damage is inside (manifest JSON, eval pack, config, safetensors header)."""
    with zipfile.ZipFile(seed) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    small = {name: data[:4096] for name, data in members.items()}
    return st.fixed_dictionaries(
        {name: st.one_of(st.just(data), mutated(small[name])) for name, data in members.items()}
    )


def read_everything(path: Path, out: Path) -> None:
    with Artifact(path) as art:
        art.eval_items()
        art.inventory()
        art.config()
        art.extract_model(out)


def outside(root: Path, allowed: set[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if not any(p == a or a in p.parents for a in allowed)]


@FUZZ
@given(data=st.data())
def test_a_damaged_archive_is_one_line_never_a_traceback_or_a_stray_write(artifact, tmp_path, data):
    seed, work = artifact.read_bytes(), tmp_path / "fuzz"
    work.mkdir(exist_ok=True)
    candidate, out = work / "candidate.kolm", work / "out"
    if data.draw(st.booleans(), label="damage the ZIP itself"):
        candidate.write_bytes(data.draw(mutated(seed), label="bytes"))
    else:
        with zipfile.ZipFile(candidate, "w", zipfile.ZIP_STORED) as zf:
            for name, raw in data.draw(member_mutations(artifact), label="members").items():
                zf.writestr(name, raw)
    shutil.rmtree(out, ignore_errors=True)
    try:
        read_everything(candidate, out)
    except KolmError as exc:
        one_line(exc)
    assert outside(work, {candidate, out}) == []


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=400),
        st.lists(
            st.dictionaries(
                st.text(max_size=8),
                st.one_of(
                    st.none(),
                    st.booleans(),
                    st.integers(),
                    st.text(max_size=20),
                    st.lists(st.text(max_size=5), max_size=3),
                ),
                max_size=6,
            ),
            max_size=4,
        ).map(lambda items: "\n".join(json.dumps(i) for i in items)),
    )
)
@example(text='{"id": "a", "kind": "choice", "prompt": "p", "choices": [], "answer": 3}')
@example(text="\ufeff{}\n")
def test_an_eval_pack_of_any_text_is_items_or_one_line(text):
    try:
        parse_eval_pack(text, "fuzz.jsonl")
    except KolmError as exc:
        one_line(exc)


@FUZZ
@given(
    header=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    ),
    declared=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
)
@example(header=b'{"w": {"dtype": "F16", "shape": [-1, 2], "data_offsets": [0, 0]}}', declared=None)
@example(header=b"{}", declared=2**63)
def test_a_safetensors_header_of_any_bytes_is_tensors_or_one_line(tmp_path, header, declared):
    folder = tmp_path / "st"
    folder.mkdir(exist_ok=True)
    size = len(header) if declared is None else declared
    (folder / "model.safetensors").write_bytes(size.to_bytes(8, "little") + header)
    try:
        folder_inventory(folder)
    except KolmError as exc:
        one_line(exc)


class Quiet:
    """A session that answers every request with one piece (the parsing is under test, not generation)."""

    def generate(self, prompt, max_tokens, stream, chat):
        yield "ok"

    def chat(self, messages, max_tokens):
        yield "ok"


@pytest.fixture(scope="module")
def server():
    with serving(Quiet(), "fuzz") as api:
        yield api.server_address[1]


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(OSError):  # the server may refuse (and close) before the body is sent
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=25,
)
TEXT = st.one_of(st.text(max_size=20), JSON_VALUES)
SAMPLING = st.one_of(
    st.sampled_from([0, 1, 0.0, 1.0, False, True, "none", {}, [], {"type": "text"}]), st.floats(), JSON_VALUES
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "prompt": JSON_VALUES,
        "messages": st.one_of(JSON_VALUES, st.lists(st.fixed_dictionaries({"role": JSON_VALUES, "content": TEXT}))),
        "max_tokens": st.one_of(JSON_VALUES, st.integers(-(2**70), 2**70)),
        "stream": JSON_VALUES,
        "stop": st.one_of(JSON_VALUES, st.lists(st.text(max_size=3), max_size=5)),
        "stream_options": JSON_VALUES,
        "unknown": JSON_VALUES,
        **{field: SAMPLING for field in [*GREEDY_VALUES, *TRUNCATION]},
    },
)


@FUZZ
@given(
    path=st.sampled_from(["/v1/completions", "/v1/chat/completions", "/v1/embeddings"]),
    body=st.one_of(FIELDS.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200)),
    length=st.one_of(st.none(), st.sampled_from(["-1", "abc", str(MAX_BODY_BYTES + 1), "99999999999999999999"])),
)
@example(path="/v1/completions", body=b'{"prompt": "x", "max_tokens": [1]}', length=None)
@example(path="/v1/chat/completions", body=b"[" * 100000, length=None)
def test_any_request_gets_a_json_answer_and_the_server_lives_on(server, path, body, length):
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    answer = exchange(server, head.encode() + body)
    status = int(answer.split(b" ", 2)[1])
    assert status in (200, 400, 404, 413), answer[:300]
    if status != 200:
        assert "message" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    models = exchange(server, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert models.startswith(b"HTTP/1.1 200")
