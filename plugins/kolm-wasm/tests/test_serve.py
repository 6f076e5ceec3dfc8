"""`kolm serve BUNDLE`: 127.0.0.1, the printed URL, COOP/COEP, MIME types and byte ranges."""

from __future__ import annotations

import urllib.request

from wasm_harness import kolm_serve


def fetch(url: str, headers: dict | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return response.status, response.headers, response.read()


def test_serve_prints_the_url_and_sends_isolation_headers_mime_types_and_ranges(bundle):
    folder = bundle("int4")
    gguf = next(folder.glob("*.gguf"))
    with kolm_serve(folder) as served:
        assert served.url.startswith("http://127.0.0.1:")
        status, headers, body = fetch(served.url)
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"kolm.js" in body
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert fetch(served.url + "wllama/wllama.wasm")[1]["Content-Type"] == "application/wasm"
        assert fetch(served.url + "kolm.js")[1]["Content-Type"].startswith("text/javascript")
        assert fetch(served.url + "kolm-export.json")[1]["Content-Type"].startswith("application/json")
        status, headers, body = fetch(served.url + gguf.name, {"Range": "bytes=0-3"})
        assert (status, body) == (206, b"GGUF")
        assert headers["Content-Range"] == f"bytes 0-3/{gguf.stat().st_size}"
        status, _, body = fetch(served.url + gguf.name, {"Range": "bytes=-5"})
        assert (status, body) == (206, gguf.read_bytes()[-5:])
        assert fetch(served.url + "__kolm__/serve.json")[2] == b'{"verify": null}'
        assert served.requests(r'"GET /kolm\.js HTTP/1\.1" 200')


def test_verify_needs_a_browser_bundle(smol_pack, tmp_path):
    from kolm_testing import export_unscored, invoke

    out = tmp_path / "pi"
    export_unscored(smol_pack, "raspberry-pi-5", "int8", out)  # a gguf export; its K is not what is tested
    result = invoke("serve", out, "--port", "0", "--verify", smol_pack)
    assert result.exit_code != 0 and "--target browser" in result.stderr
