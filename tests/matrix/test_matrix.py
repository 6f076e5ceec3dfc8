"""`kolm matrix` on a local Ray of 2 CPUs (tox's `matrix` env: kolm-core[matrix], kolm-gguf, kolm-wasm):
SmolLM2 and a tiny random Llama x a Raspberry Pi 5 (gguf) and the browser (wasm) x int8 and int4,
every cell exported and scored by a Ray task, and a user's own 0.5 GB board whose cells the plan
records as not run (they do not fit). A Ray run killed part-way keeps what finished, the next run does
only the rest, and the results equal a serial run's cell by cell."""

from __future__ import annotations

import csv
import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kolm_testing import SMOL_EVAL_ITEMS, invoke, pack_smollm2, random_llama_pack, screenshot, shell_env

pytestmark = pytest.mark.slow

KOLM = Path(sys.executable).with_name("kolm")
TARGETS = "raspberry-pi-5,browser"
TIERS = "int8,int4"
MEASURED = ("status", "size_bytes", "k", "k_fp16", "k_drop_points", "top1_agreement")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> str:
    """`smol.kolm,random.kolm`: SmolLM2 packed from its GGUF and a random Llama with its tokenizer."""
    root = tmp_path_factory.mktemp("models")
    pack_smollm2(root, SMOL_EVAL_ITEMS, "--min-k", "0")
    random = random_llama_pack(root, root / "smol.kolm")
    return f"{root / 'smol.kolm'},{random}"


BENCH = ("--bench", "--n-prompt", "16", "--n-gen", "8", "-r", "1")  # each export benched here, briefly


def matrix(models: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    command = [KOLM, "matrix", "-m", models, "-t", TARGETS, "-q", TIERS, "-o", out, "--json", *BENCH, *options]
    return subprocess.run(command, capture_output=True, text=True)


def by_key(printed: str) -> dict[str, dict]:
    return {r["cell"]["key"]: r for r in map(json.loads, printed.splitlines())}


@pytest.fixture(scope="module")
def serial_out(models, tmp_path_factory) -> Path:
    """The results folder of the matrix run serially; its JSON lines in OUT/printed.jsonl."""
    out = tmp_path_factory.mktemp("serial") / "out"
    done = matrix(models, out, "--serial")
    assert done.returncode == 0, done.stderr
    (out / "printed.jsonl").write_text(done.stdout)
    return out


@pytest.fixture(scope="module")
def serial(serial_out) -> dict[str, dict]:
    return by_key((serial_out / "printed.jsonl").read_text())


def test_the_plan_forecasts_every_cell_and_says_which_will_not_run(models):
    # a user's own board of 0.5 GB: no cell fits beside the 1 GB runtime allowance
    own = invoke("export", "SmolLM2-135M-Instruct", "--target", "small-box", "--bandwidth", "10", "--memory",
                 "0.5", "--kind", "sbc", "--quant", "int4", "--preview")  # fmt: skip
    assert own.exit_code == 0, own.output
    result = invoke("matrix", "-m", models, "-t", f"{TARGETS},small-box", "-q", TIERS, "--plan", "--json")
    assert result.exit_code == 0, result.output
    cells = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(cells) == 2 * 3 * 2
    small = [c for c in cells if c["device"] == "small-box"]
    assert all(c["fit"] == "over" and c["skip"].startswith("does not fit: need ") for c in small), small
    assert all(c["skip"] is None and c["forecast_bytes"] > 0 for c in cells if c not in small)


def test_a_ray_run_killed_part_way_then_run_again_equals_a_serial_run(models, serial, tmp_path):
    out = tmp_path / "out"
    command = [KOLM, "matrix", "-m", models, "-t", TARGETS, "-q", TIERS, "-o", out, "--cpus", "2", *BENCH]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = out / "cells.jsonl"
    deadline = time.monotonic() + 600
    while not (cells.is_file() and len(cells.read_text().splitlines()) >= 2) and proc.poll() is None:
        assert time.monotonic() < deadline, "no cell finished in 10 minutes"
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {json.loads(line)["cell"]["key"] for line in cells.read_text().splitlines()}
    assert 2 <= len(kept) < 8, "the run finished before it was killed: nothing to resume"

    again = matrix(models, out, "--cpus", "2")
    assert again.returncode == 0, again.stderr
    lines = [line.split("] ")[1] for line in again.stderr.splitlines() if line.startswith("[")]
    exported = [line.split(":")[0] for line in lines if ": bench" not in line]
    benched = [line.split(":")[0] for line in lines if ": bench" in line]
    assert set(exported) == set(serial) - kept, "the second run redid finished cells or missed some"
    assert sorted(benched) == sorted(serial), "every export is benched once, the first run's exports too"
    ray = by_key(again.stdout)
    assert set(ray) == set(serial) and len(ray) == 8
    for key, result in ray.items():
        assert result["status"] == "ok", result
        for field in MEASURED:
            assert result[field] == pytest.approx(serial[key][field], abs=1e-9), (key, field)
        assert result["mean_kl"] == pytest.approx(serial[key]["mean_kl"], rel=1e-6, abs=1e-9), key
        bench = result["bench"]  # this machine's speed, named; never the device's
        assert bench["tg_tok_s"] > 0 and bench["pp_tok_s"] > 0 and f"({platform.node()})" in bench["machine"], bench
        assert (out / "exports" / key / "kolm-export.json").is_file()
    assert not [p for p in (out / "exports").iterdir() if p.name.startswith(".")]  # no staging left
    with open(out / "results.csv", newline="") as f:
        assert {(r["model"], r["device"], r["tier"]) for r in csv.DictReader(f)} == {
            (r["cell"]["base"], r["cell"]["device"], r["cell"]["tier"]) for r in ray.values()
        }
    import pyarrow.parquet as pq

    assert pq.read_table(out / "results.parquet").num_rows == 8
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 2 and "Pareto front" in page


@pytest.mark.requires_browser
def test_kolm_ui_links_the_report_from_the_picker(serial_out, serial, chromium):
    proc = subprocess.Popen(
        [KOLM, "ui", "--port", "0", "--no-open", "--matrix", serial_out],
        env=shell_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.click("nav >> text=Matrix")
        page.wait_for_selector("table")
        assert page.locator("tbody tr").count() == len(serial) == 8
        assert page.locator("svg").count() == 2 and page.locator("circle[fill='#c33']").count() >= 2
        assert "Raspberry Pi 5" in page.text_content("table") and page.title().startswith("kolm matrix")
        screenshot(page, "matrix-report")
        page.click("nav >> text=Picker")
        page.wait_for_selector("#cell-size")
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
