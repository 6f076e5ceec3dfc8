"""`kolm serve` for a browser bundle: static files with the headers wllama's multi-threaded build
needs (COOP/COEP make the page cross-origin isolated, so SharedArrayBuffer exists), the right MIME
types, and byte ranges. Only files inside the bundle are served: a path or symlink that leads out of
it is a 404. Every request is logged to stderr, one line each."""

from __future__ import annotations

import json
import os
import re
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ARTIFACT_URL = "/__kolm__/artifact.kolm"  # the .kolm given to --verify, read by the page's verify panel
CONFIG_URL = "/__kolm__/serve.json"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class BundleHandler(SimpleHTTPRequestHandler):
    """Serves one bundle folder (and, with `artifact`, a .kolm at ARTIFACT_URL)."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".gguf": "application/octet-stream",
        ".kolm": "application/zip",
    }

    def __init__(self, *args, artifact: Path | None = None, **kwargs) -> None:
        self.artifact = artifact
        super().__init__(*args, **kwargs)

    def inside(self, path: Path) -> bool:
        """Whether `path`, symlinks followed, is the bundle folder, in it, or the served artifact."""
        try:
            real = path.resolve()
        except (OSError, ValueError):  # a NUL byte in the path, a symlink loop
            return False
        root = Path(self.directory).resolve()
        return real == root or root in real.parents or (self.artifact is not None and real == self.artifact.resolve())

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        if path.split("?")[0] == ARTIFACT_URL and self.artifact is not None:
            return str(self.artifact)
        return super().translate_path(path)

    def send_head(self):
        if self.path.split("?")[0] == CONFIG_URL:
            body = json.dumps({"verify": ARTIFACT_URL if self.artifact else None}).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return _Body(body)
        path = Path(self.translate_path(self.path))
        if not self.inside(path):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        match = _RANGE.match(self.headers.get("Range", ""))
        if not match or not any(match.groups()) or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        start = size - int(last) if not first else int(first)
        end = size - 1 if not first or not last else min(int(last), size - 1)
        if start < 0 or start > end:
            self.send_error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        self._remaining = None
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


class _Body:
    """A bytes body with the file interface `copyfile` expects."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        data, self.data = self.data, b""
        return data

    def close(self) -> None:
        pass


def serve_bundle(folder: Path, host: str, port: int, artifact: Path | None = None) -> int:
    """Serve `folder` on host:port until interrupted; prints the page's URL; returns an exit code."""
    handler = partial(BundleHandler, directory=os.fspath(folder), artifact=artifact)
    with ThreadingHTTPServer((host, port), handler) as httpd:
        bound = httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"serving {folder} on http://{shown}:{bound}/ (Ctrl-C stops)"
            + (f"; verify panel checks {artifact.name}" if artifact else ""),
            flush=True,
        )
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
