#!/usr/bin/env python3
"""The OpenAI-compatible server `kolm run EXPORT --port` starts, under load on loopback: N clients
streaming chat completions back to back for a bounded time, beside one client that sends its
request a byte at a time (slowloris) and one that hangs up after the first chunk, every round.

Reports requests/s, time to the first streamed chunk (p50, p99), errors, the peak RSS of the
server's processes, and their threads before the load and once the clients are gone (a leak shows).
The ratio is against the same load on the maintained server run by hand where kolm wraps one
(llama.cpp's, through llama-cpp-python's `llama_cpp.server`, for gguf; `mlx_lm.server` for mlx,
which kolm runs on Metal only; with the flags kolm passes); there is none for kolm's own server
(onnx, and mlx on a CPU). SmolLM2-135M-Instruct at int8. Requests name no `model` (mlx_lm.server
would load one by that name). The clients run on the same CPUs as the server: on a small machine
they take part of its time.

    .venv/bin/python benchmarks/server_load.py [--backend gguf|mlx|onnx] [--clients 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import smollm2_artifact  # noqa: E402
from kolm_testing import export_unscored, free_port  # noqa: E402

TARGETS = {"gguf": "raspberry-pi-5", "mlx": "m3-pro", "onnx": "pixel-8"}
REQUEST = {"messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 16, "stream": True}


def wait_up(port: int, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before answering")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not answer /v1/models in time")


def stream_once(port: int) -> float:
    """Seconds to the first streamed piece of text of one chat completion read to its end; a stream
    without text (a server that cut it short) raises."""
    body = json.dumps(REQUEST).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    first = None
    with urllib.request.urlopen(request, timeout=60) as response:
        for line in response:
            if first is None and line.startswith(b"data:") and b'"content"' in line:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("a stream without text")
    return first


def raw_request() -> bytes:
    """The streamed chat completion as the bytes of one HTTP/1.1 request."""
    body = json.dumps(REQUEST).encode()
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


def slowloris(port: int, stop: threading.Event) -> None:
    """Send a request one byte every 0.2 s, over and over, while the others are served."""
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            for byte in raw_request():
                if stop.is_set():
                    return
                conn.send(bytes([byte]))
                time.sleep(0.2)


def hang_up(port: int, stop: threading.Event) -> None:
    """Start a streamed completion, read its first bytes, close the socket; again. A server that
    sends nothing within the timeout is hung up on all the same."""
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(raw_request())
            try:
                conn.recv(64)
            except TimeoutError:
                pass


def status_total(pid: int, field: str) -> int:
    """The sum of a /proc status field over the process and its children (llama.cpp's server runs in
    kolm's own process or its child)."""
    total = 0
    pids = [pid] + [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1])
    return total


def threads_settled(pid: int, before: int, limit: float = 40) -> int:
    """The server's thread count once it is back to `before`, or after `limit` s (kolm's server cuts a
    half-sent request at 30 s): what the clients left behind."""
    deadline = time.monotonic() + limit
    while (now := status_total(pid, "Threads")) > before and time.monotonic() < deadline:
        time.sleep(0.5)
    return now


def load(command: list[str], port: int, clients: int, seconds: float) -> dict:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        wait_up(port, proc)
        try:  # one request first: the model loads and the runtime starts its threads before the count
            stream_once(port)
        except Exception:  # a server that answers nothing: the load counts its errors
            pass
        threads_before = status_total(proc.pid, "Threads")
        stop, firsts, errors = threading.Event(), [], []

        def client() -> None:
            while not stop.is_set():
                try:
                    firsts.append(stream_once(port))
                except Exception as exc:  # a benchmark counts every failure, whatever it is
                    errors.append(type(exc).__name__)

        rude = [threading.Thread(target=f, args=(port, stop), daemon=True) for f in (slowloris, hang_up)]
        workers = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        start = time.perf_counter()
        for t in rude + workers:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in workers:
            t.join(timeout=90)
        elapsed = time.perf_counter() - start
        for t in rude:
            t.join(timeout=90)
        rss = status_total(proc.pid, "VmHWM") / 1024
        threads = (threads_before, threads_settled(proc.pid, threads_before))
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    firsts.sort()
    return {
        "requests": len(firsts),
        "req_s": len(firsts) / elapsed,
        "ttft_p50_ms": 1000 * statistics.median(firsts) if firsts else float("nan"),
        "ttft_p99_ms": 1000 * firsts[min(len(firsts) - 1, int(0.99 * len(firsts)))] if firsts else float("nan"),
        "errors": len(errors),
        "peak_rss_mib": rss,
        "threads": threads,
        "alive": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(TARGETS), default="gguf")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    kolm = Path(sys.executable).with_name("kolm")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "export"
        export_unscored(smollm2_artifact(), TARGETS[args.backend], "int8", folder, args.backend)
        rows = {}
        port = free_port()
        rows["kolm run --port"] = load(
            [str(kolm), "run", str(folder), "--port", str(port)], port, args.clients, args.seconds
        )
        if args.backend == "gguf":
            gguf = next(folder.glob("*.gguf"))
            port = free_port()
            raw = [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--interrupt_requests",  # the flags kolm passes (kolm-gguf's runtime.serve_api)
                "False",
                "--n_ctx",
                "2048",
                "--n_threads",
                str(os.cpu_count()),
            ]
            rows["llama_cpp.server by hand"] = load(raw, port, args.clients, args.seconds)
        if args.backend == "mlx":
            port = free_port()
            raw = [sys.executable, "-m", "mlx_lm.server", "--model", str(folder), "--host", "127.0.0.1"]
            rows["mlx_lm.server by hand"] = load([*raw, "--port", str(port)], port, args.clients, args.seconds)
    print(
        f"SmolLM2-135M int8 ({args.backend}), {args.clients} streaming clients + 1 slowloris + 1 hang-up, "
        f"{args.seconds:g} s, {os.cpu_count()} CPUs"
    )
    header = ("server", "requests", "req/s", "TTFT p50", "TTFT p99", "errors", "peak RSS", "threads", "alive")
    print("{:28} {:>8} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {}".format(*header))
    for name, r in rows.items():
        threads = "{} -> {}".format(*r["threads"])
        print(
            f"{name:28} {r['requests']:8d} {r['req_s']:7.2f} {r['ttft_p50_ms']:7.0f}ms {r['ttft_p99_ms']:7.0f}ms "
            f"{r['errors']:6d} {r['peak_rss_mib']:7.0f}MiB {threads:>9} {r['alive']}"
        )
    if len(rows) == 2:
        kolm_row, raw_row = rows.values()
        if not (kolm_row["requests"] and raw_row["requests"]):
            print("no ratio: a server completed no request in the time (each client waits 60 s for a stream)")
            return
        print(
            f"ratio kolm / by hand: req/s {kolm_row['req_s'] / raw_row['req_s']:.2f}x, "
            f"TTFT p50 {kolm_row['ttft_p50_ms'] / raw_row['ttft_p50_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
