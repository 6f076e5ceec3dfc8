"""`kolm ui`: the picker page, the docs and the pages plugins add, served on 127.0.0.1 by the
standard library. The page holds no forecast logic: it asks this server's JSON API, which calls the
same functions as `kolm pick --json` and `kolm export --preview --json`.

    GET /api/options                      bases, devices (plugins', the user's, this machine's), tiers
    GET /api/pick?model=M                 = kolm pick M --json
    GET /api/preview?model=M&device=D&tier=T[&recipe=R&memory=GB&login=U@H]
                                          = kolm export M --target D --quant T --preview --json
    GET /docs/NAME.md                     a page of docs/, rendered
    GET /matrix/                          with `kolm ui --matrix DIR`: DIR's `kolm matrix` report, as it
                                          stands (cells finished so far included)
    GET /api/matrix                       the same report's rows, as `DIR/results.csv` has them
"""

from __future__ import annotations

import json
import mimetypes
import sys
import threading
from functools import cached_property, partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kolm import __version__
from kolm.api import UiPage
from kolm.errors import KolmError, UsageError
from kolm.plugins import Registry

PAGES = files("kolm").joinpath("pages")
_lock = threading.Lock()  # plugins are not asked from two threads at once


def docs_folder() -> Traversable:
    """docs/ as the wheel ships it (kolm/docs), else the repository's (an editable install)."""
    shipped = files("kolm").joinpath("docs")
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[3] / "docs"


def options(reg: Registry, matrix: Path | None = None) -> dict:
    """What the picker's inputs offer (and the pages it links: plugins', and a matrix report)."""
    from kolm.devices import MEASURED, USER
    from kolm.modelspec import reference_bases
    from kolm.quant import TIERS

    devices = []
    for row in reg.devices().rows:
        whose = {MEASURED: "this machine", USER: "yours"}.get(row.bandwidth_gbps.source, "")
        devices.append(
            {
                "name": row.name,
                "slug": row.aliases[0] if whose == "this machine" else row.slug,  # this-machine
                "kind": row.kind,
                "memory_gb": row.memory_gb.value,
                "memory_options_gb": row.memory_options_gb,
                "backends": row.backends,
                "whose": whose,
            }
        )
    if not any(d["whose"] == "this machine" for d in devices):  # profiled (a few seconds) when chosen
        devices.append(
            {
                "name": "this machine",
                "slug": "this-machine",
                "kind": "laptop",
                "memory_gb": None,
                "memory_options_gb": [],
                "backends": ["profiled when chosen"],
                "whose": "this machine",
            }
        )
    return {
        "version": __version__,
        "bases": [b.name for b in reference_bases()],
        "devices": devices,
        "tiers": list(TIERS),
        "pages": [{"route": p.route, "title": p.title} for p in reg.ui_pages().values()]
        + ([{"route": "matrix", "title": "Matrix"}] if matrix else []),
    }


def matrix_rows(folder: Path) -> list[dict]:
    """The rows of the `kolm matrix` run in FOLDER, read from its cells.jsonl as it stands now."""
    from kolm.matrix import finished, rows

    return rows(finished(folder).values())


def matrix_page(folder: Path) -> str:
    """FOLDER's matrix report (kolm.matrix_report), with the picker's links above it."""
    from kolm.matrix_report import report_html

    nav = '<nav><a href="/">Picker</a> · <a href="/docs/">Docs</a></nav>'
    return report_html(matrix_rows(folder), f"kolm matrix: {folder.name}", nav)


def pick_rows(reg: Registry, model: str) -> list[dict]:
    """`kolm pick MODEL --json`."""
    from kolm.forecast import pick
    from kolm.modelspec import resolve_model

    return [row.model_dump() for row in pick(reg, resolve_model(model), reg.devices().rows)]


def preview(
    reg: Registry,
    model: str,
    device: str,
    tier: str,
    recipe: str | None = None,
    memory_gb: float | None = None,
    login: str | None = None,
) -> dict:
    """`kolm export MODEL --target DEVICE --quant TIER --preview --json`: the forecast and its steps."""
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.quant import parse_tier
    from kolm.steps import declared, deployment_steps, preview_json

    spec, row = resolve_model(model), reg.device(device)
    result = forecast(reg, spec, row, parse_tier(tier), None, memory_gb, None, recipe)
    return preview_json(result, deployment_steps(result, spec, row, login, backend=declared(reg, result)))


def render_doc(name: str, pages: list[UiPage] = ()) -> str:
    """docs/NAME as an HTML page (markdown-it, which rich already brings; raw HTML in the source is
    escaped, its comments, the generated tables' markers, dropped), linking the plugins' `pages`."""
    import html
    import re

    from markdown_it import MarkdownIt

    if "/" in name or not name.endswith(".md"):
        raise UsageError(f"no such page: {name}")
    page = docs_folder().joinpath(name)
    if not page.is_file():
        raise UsageError(f"no such page: {name}")
    text = re.sub(r"^<!--.*?-->\n", "", page.read_text(), flags=re.M | re.S)
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    nav = "".join(f'<a href="/{p.route}/">{html.escape(p.title)}</a>' for p in pages)
    template = PAGES.joinpath("doc.html").read_text()
    return template.replace("{{nav}}", nav).replace("{{body}}", body).replace("{{name}}", html.escape(name))


class UiHandler(BaseHTTPRequestHandler):
    """Routes GET requests to the API, the docs, plugin pages and the picker's own files."""

    server_version = f"kolm-ui/{__version__}"

    def __init__(self, *args, registry: Registry, matrix: Path | None = None, **kwargs) -> None:
        self.registry = registry
        self.matrix = matrix
        super().__init__(*args, **kwargs)

    @cached_property
    def url(self):
        return urlsplit(self.path)

    def query(self, name: str, required: bool = True) -> str | None:
        values = parse_qs(self.url.query).get(name)
        if not values or not values[0]:
            if required:
                raise UsageError(f"missing query parameter {name}")
            return None
        return values[0]

    def do_GET(self) -> None:
        if not self.host_allowed():
            return self.send_error(HTTPStatus.FORBIDDEN, "unexpected Host header")
        path = unquote(self.url.path)
        if path.startswith("/api/"):
            return self.api(path[len("/api/") :])
        if path in ("/", "/index.html"):
            return self.send_file(PAGES, "picker.html")
        if path.startswith("/static/"):
            return self.send_file(PAGES, path[len("/static/") :])
        if path.startswith("/docs/"):
            name = path[len("/docs/") :] or "README.md"
            try:
                page = render_doc(name, list(self.registry.ui_pages().values()))
                return self.send_bytes(page.encode(), "text/html; charset=utf-8")
            except KolmError as exc:
                return self.send_error(HTTPStatus.NOT_FOUND, str(exc))
        if path == "/matrix/" and self.matrix:
            return self.send_bytes(matrix_page(self.matrix).encode(), "text/html; charset=utf-8")
        route, _, rest = path.strip("/").partition("/")
        page = self.registry.ui_pages().get(route)
        if page is None:
            return self.send_error(HTTPStatus.NOT_FOUND)
        if not path.startswith(f"/{route}/"):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{route}/")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        self.send_file(files(page.package).joinpath(page.folder), rest or page.entry)

    def host_allowed(self) -> bool:
        """On a loopback address, only requests naming it (a page elsewhere that rebinds its DNS name
        to 127.0.0.1 cannot read the API); on another address (`--host`), any."""
        bound = self.server.server_address[0]
        if bound not in ("127.0.0.1", "::1"):
            return True
        host = self.headers.get("Host", "").rsplit(":", 1)[0]
        return host in ("127.0.0.1", "localhost", "[::1]")

    def api(self, name: str) -> None:
        try:
            with _lock:
                if name == "options":
                    data = options(self.registry, self.matrix)
                elif name == "matrix" and self.matrix:
                    data = matrix_rows(self.matrix)
                elif name == "pick":
                    data = pick_rows(self.registry, self.query("model"))
                elif name == "preview":
                    memory = self.query("memory", required=False)
                    data = preview(
                        self.registry,
                        self.query("model"),
                        self.query("device"),
                        self.query("tier"),
                        self.query("recipe", required=False),
                        float(memory) if memory else None,
                        self.query("login", required=False),
                    )
                else:
                    return self.send_json({"error": f"no such API: {name}"}, HTTPStatus.NOT_FOUND)
        except KolmError as exc:
            return self.send_json({"error": str(exc), "exit_code": exc.exit_code}, HTTPStatus.BAD_REQUEST)
        except ValueError as exc:
            return self.send_json({"error": str(exc), "exit_code": UsageError.exit_code}, HTTPStatus.BAD_REQUEST)
        self.send_json(data)

    def send_json(self, data, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_bytes(json.dumps(data, default=str).encode(), "application/json", status)

    def send_file(self, folder: Traversable, name: str) -> None:
        """The file `name` of `folder`, never one outside it."""
        parts = [p for p in name.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p for p in parts):
            return self.send_error(HTTPStatus.NOT_FOUND)
        file = folder.joinpath(*parts)
        if not file.is_file():
            return self.send_error(HTTPStatus.NOT_FOUND)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        kind = {".js": "text/javascript", ".wasm": "application/wasm"}.get(Path(file.name).suffix, kind)
        self.send_bytes(file.read_bytes(), kind)

    def send_bytes(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        # cross-origin isolated, so a plugin page may run multi-threaded WebAssembly (wllama)
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve_ui(reg: Registry, host: str, port: int, on_ready=None, matrix: Path | None = None) -> int:
    """Serve the picker (and MATRIX's report, if given) until interrupted; `on_ready(url)` once
    listening. Returns an exit code."""
    with ThreadingHTTPServer((host, port), partial(UiHandler, registry=reg, matrix=matrix)) as httpd:
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{httpd.server_address[1]}/"
        print(f"kolm ui on {url} (Ctrl-C stops)", flush=True)
        if on_ready:
            on_ready(url)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
