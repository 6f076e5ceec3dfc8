"""`kolm ui` in headless Chromium, as a newcomer uses it: the picker loads with no network, every
cell and command follows the selection and equals what `kolm export --preview --json` prints, the
four commands it shows for SmolLM2 on a Raspberry Pi 5 at int4 run here (this machine standing in
for the Pi) and `kolm verify` passes; the /verify page passes that export and fails a tampered copy.
Screenshots of each page go to ./screenshots (kolm_testing.screenshot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from kolm_testing import PARIS_ITEM, screenshot, shell_env, smollm2_gguf, write_eval_pack

pytestmark = [pytest.mark.requires_browser, pytest.mark.slow]


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command exactly as the page shows it, in a shell whose PATH finds this env's `kolm`."""
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, env=shell_env())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding smol.kolm: SmolLM2-135M-Instruct packed on the one-item pack."""
    folder = tmp_path_factory.mktemp("newcomer")
    write_eval_pack(folder / "one.jsonl", [PARIS_ITEM])
    packed = shell(f"kolm pack --from-gguf {smollm2_gguf()} --eval one.jsonl -o smol.kolm", folder)
    assert packed.returncode == 0, packed.stderr
    return folder


@pytest.fixture(scope="module")
def ui(workdir):
    """`kolm ui --port 0 --no-open`, started in `workdir`; its URL."""
    proc = subprocess.Popen(
        ["kolm", "ui", "--port", "0", "--no-open"],
        cwd=workdir,
        env=shell_env(),  # its PATH finds this env's kolm
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def offline_page(chromium, url: str, path: str = ""):
    """A page on `url` + `path` that may reach nothing but the kolm ui server at `url`; the requests
    it tried elsewhere."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def route(r):
        if r.request.url.startswith(url):
            return r.continue_()
        elsewhere.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(url + path)
    return page, elsewhere


def settled(page) -> dict:
    """Wait until the page shows the answer for its current selection; that answer (the API's JSON)."""
    page.wait_for_function("window.kolmUi?.preview && document.body.dataset.busy === 'false'", timeout=60_000)
    error = page.text_content("#error")
    assert not error, error
    return page.evaluate("window.kolmUi.preview")


def cli_preview(workdir: Path, model: str, device: str, tier: str, login: str = "") -> dict:
    login_flag = f" --login {login}" if login else ""
    result = shell(f"kolm export {model} --target {device} --quant {tier} --preview --json{login_flag}", workdir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def shown(page) -> dict:
    """What a person reads on the page: the five cells and the four steps' commands."""
    return {
        "cells": [page.text_content(f"#cell-{name} .value") for name in ("size", "speed", "k", "fit", "backend")],
        "commands": page.eval_on_selector_all("#steps li", "li => li.map(x => x.querySelector('pre')?.textContent)"),
    }


def test_the_picker_loads_offline_with_every_device_and_tier(ui, chromium, workdir):
    page, elsewhere = offline_page(chromium, ui)
    preview = settled(page)
    page.wait_for_function("window.kolmUi.grid")
    screenshot(page, "picker")
    assert elsewhere == []  # no CDN, no font, no analytics: nothing but kolm ui itself
    devices = json.loads(shell("kolm devices --json", workdir).stdout)
    grid_rows = page.eval_on_selector_all("#grid tr", "rows => rows.slice(1).map(r => r.firstChild.textContent)")
    assert grid_rows == [d["name"] for d in devices]  # every device row of every installed plugin
    assert page.eval_on_selector_all("#grid tr:first-child th", "h => h.slice(2).map(x => x.textContent)") == [
        "fp16",
        "int8",
        "int4",
        "int3",
    ]
    assert preview["device"] == "Raspberry Pi 5" and preview["tier"] == "int4"
    assert page.get_attribute("#cell-fit", "class") == f"cell fit-{preview['fit']['verdict']}"
    page.click("#cell-size summary")  # the arithmetic behind a number, one click away
    assert preview["size_method"] in page.text_content("#cell-size .how")


def test_every_cell_and_command_follow_the_selection_and_equal_the_cli(ui, chromium, workdir):
    page, _ = offline_page(chromium, ui)
    settled(page)
    before = shown(page)
    smol, pixel = "SmolLM2-135M-Instruct", "pixel-8"

    def model(name: str):
        return lambda: (page.fill("#model", name), page.press("#model", "Enter"))

    selections = [
        ("tier", lambda: page.check("input[name=tier][value=int8]"), (smol, "raspberry-pi-5", "int8")),
        ("device", lambda: page.select_option("#device", pixel), (smol, pixel, "int8")),
        ("model", model("smol.kolm"), ("smol.kolm", pixel, "int8")),
        ("base", model("Llama-3.1-8B"), ("Llama-3.1-8B", pixel, "int8")),
    ]
    for what, change, (model, device, tier) in selections:
        change()
        page.wait_for_function(
            "([m, d, t]) => { const p = window.kolmUi.preview; return document.body.dataset.busy === 'false' && "
            "window.kolmUi.gridModel === m && p.tier === t && p.steps[0].command.includes('--target ' + d) }",
            arg=[model, device, tier],
            timeout=60_000,
        )
        preview = settled(page)
        cli = cli_preview(workdir, model, device, tier)
        assert preview == cli, what  # the page's data is the CLI's, field for field
        now = shown(page)
        assert now["commands"] == [step["command"] for step in cli["steps"]], what
        assert now["cells"][2] == f"{cli['k_loss_points']:.1f} points"
        assert now["cells"][3] == cli["fit"]["verdict"].upper() and now["cells"][4].startswith(cli["backend"])
        pairs = zip(before["cells"] + before["commands"], now["cells"] + now["commands"], strict=True)
        changed = [b != a for b, a in pairs]
        assert sum(changed) >= 2, (what, before, now)  # the change reached the page
        before = now
    screenshot(page, "picker-llama-pixel8-int8")


def test_a_newcomers_four_commands_run_here_and_verify_passes(ui, chromium, workdir, tmp_path):
    page, _ = offline_page(chromium, ui, "?model=smol.kolm&device=raspberry-pi-5&tier=int4")
    settled(page)
    page.fill("#login", "pi@raspberrypi.local")
    page.press("#login", "Enter")
    page.wait_for_function("document.querySelector('#steps li[data-step=copy] pre')?.textContent.includes('pi@')")
    settled(page)
    screenshot(page, "picker-smol-pi5-int4")
    export, copy, run, verify = shown(page)["commands"]
    cli = cli_preview(workdir, "smol.kolm", "raspberry-pi-5", "int4", "pi@raspberrypi.local")
    assert [export, copy, run, verify] == [step["command"] for step in cli["steps"]]

    exported = shell(export, workdir)
    assert exported.returncode == 0, exported.stderr
    out = "SmolLM2-135M-Instruct-raspberry-pi-5-int4"
    assert copy == f"scp -r {out} pi@raspberrypi.local:"
    device_home = tmp_path / "pi-home"  # this machine stands in for the Pi: the copy lands in its home
    shutil.copytree(workdir / out, device_home / out)
    ran = shell(run, device_home)
    assert ran.returncode == 0 and ran.stdout.strip(), ran.stderr
    verified = shell(verify, workdir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "6 of 6 checks passed" in verified.stdout


def test_the_verify_page_passes_an_export_and_fails_a_tampered_copy(ui, chromium, workdir, tmp_path):
    out = workdir / "SmolLM2-135M-Instruct-raspberry-pi-5-int4"
    if not out.exists():
        exported = shell(f"kolm export smol.kolm --target raspberry-pi-5 --quant int4 -o {out.name}", workdir)
        assert exported.returncode == 0, exported.stderr
    tampered = shutil.copytree(out, tmp_path / out.name)
    gguf = next(tampered.glob("*.gguf"))
    with open(gguf, "r+b") as f:
        f.seek(-64, 2)
        f.write(bytes(64))

    def verify_in_page(folder: Path) -> dict:
        page, elsewhere = offline_page(chromium, ui, "verify/")
        page.set_input_files("#export", str(folder))
        page.set_input_files("#artifact", str(workdir / "smol.kolm"))
        page.click("#verify")
        page.wait_for_function("window.kolmVerify.done", timeout=300_000)
        assert elsewhere == []  # nothing uploaded anywhere
        return page, page.evaluate("window.kolmVerify.result")

    page, good = verify_in_page(out)
    screenshot(page, "verify-passed")
    assert good["passed"], good
    assert [c["passed"] for c in good["checks"]] == [True] * 6
    assert page.text_content("#verdict") == "All 6 checks passed"
    page, bad = verify_in_page(tampered)
    screenshot(page, "verify-tampered")
    assert not bad["passed"]
    failed = [c["name"] for c in bad["checks"] if not c["passed"]]
    assert "payload SHA-256 matches" in failed
    assert page.text_content("#verdict").startswith("FAILED")
