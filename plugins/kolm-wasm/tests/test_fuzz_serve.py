"""Fuzzing `kolm serve`'s path handling and range parser (kolm_wasm.server) with Hypothesis
(kolm_testing.fuzz): request paths with `..`, encoded dots and slashes, NUL bytes and the names of
symlinks that lead out of the bundle, with any Range header.

Property: an HTTP status from the expected set, the bytes of a file inside the bundle or none,
never a byte of a file outside it, and the server alive afterwards.
"""

from __future__ import annotations

import socket
import threading
from functools import partial
from http.server import ThreadingHTTPServer

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kolm_testing.fuzz import FUZZ
from kolm_wasm.server import BundleHandler

SECRET = b"secret: outside the bundle"
INSIDE = {"index.html": b"<html>kolm</html>", "model.gguf": b"GGUF" + bytes(range(256)) * 4}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A bundle folder with two files and symlinks out of it (to a file, to its parent folder), a
    secret file beside it, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("serve")
    (root / "secret.txt").write_bytes(SECRET)
    bundle = root / "bundle"
    bundle.mkdir()
    for name, data in INSIDE.items():
        (bundle / name).write_bytes(data)
    (bundle / "leak.gguf").symlink_to(root / "secret.txt")
    (bundle / "up").symlink_to(root)
    (bundle / "ok.gguf").symlink_to(bundle / "model.gguf")  # a link that stays inside is served
    handler = partial(BundleHandler, directory=str(bundle), artifact=None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port: int, path: str, range_header: str | None = None) -> tuple[int, bytes]:
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += f"Range: {range_header}\r\n" if range_header is not None else ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode("latin-1") + b"\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2]


SEGMENTS = st.sampled_from(
    [
        "..",
        "%2e%2e",
        "%2E.",
        ".",
        "",
        "%2f",
        "%00",
        "up",
        "leak.gguf",
        "ok.gguf",
        "model.gguf",
        "index.html",
        "secret.txt",
        "__kolm__",
        "artifact.kolm",
        "..%2f",
        "%5c..",
        "//",
        "?q=1",
        "#x",
    ]
)
PATHS = st.lists(st.one_of(SEGMENTS, st.text("abc./%\\:0", max_size=6)), min_size=1, max_size=6).map(
    lambda parts: "/" + "/".join(parts)
)
RANGES = st.one_of(
    st.none(),
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.sampled_from(["", "0", "3", "1024", "99999999999999999999"]),
        st.sampled_from(["", "0", "3", "5", "1025", "99999999999999999999"]),
    ),
    st.text("bytes=0123456789-, ", max_size=16),
)


@FUZZ
@given(path=PATHS, range_header=RANGES)
@example(path="/leak.gguf", range_header=None)
@example(path="/up/secret.txt", range_header="bytes=0-5")
@example(path="/model.gguf", range_header="bytes=-")
@example(path="/ok.gguf", range_header="bytes=0-3")
def test_any_path_and_range_is_a_file_inside_the_bundle_or_an_error(served, path, range_header):
    status, body = get(served, path, range_header)
    assert status in (200, 206, 301, 400, 404, 416), (status, body[:200])
    assert SECRET not in body
    if status in (200, 206) and body and not body.startswith(b"<!DOCTYPE"):  # a file, not a listing
        assert any(body in data for data in INSIDE.values()), body[:100]
    assert get(served, "/index.html")[0] == 200


@pytest.mark.parametrize("path", ["/leak.gguf", "/up/secret.txt", "/up/", "/%2e%2e/secret.txt"])
def test_a_symlink_or_path_out_of_the_bundle_is_a_404(served, path):
    assert get(served, path) == (404, get(served, "/no-such-file")[1])


def test_a_symlink_inside_the_bundle_is_served_with_ranges(served):
    assert get(served, "/ok.gguf", "bytes=0-3") == (206, b"GGUF")
    assert get(served, "/model.gguf", "bytes=-") == (200, INSIDE["model.gguf"])
