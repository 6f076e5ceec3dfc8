"""Every command in docs/ runs (datasette's documentation tests are the model), so a page cannot
drift from the CLI: ```bash blocks run here and must exit 0, ```bash server blocks must print a URL
that answers, and the commands of ```bash on-device / online / install blocks (which run on a
device, need the network, or install kolm) are checked against kolm's own argument parser and
`bash -n` here (install blocks run in tests/test_install.py). The generated tables must be current.

`kolm pack` scores a one-item eval pack here (KOLM_EVAL_PACK), so each page takes seconds."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kolm_testing import PARIS_ITEM, doc_blocks, shell_env, write_eval_pack

DOCS = Path(__file__).resolve().parents[1] / "docs"
KINDS = {"", "server", "on-device", "online", "install"}
PAGES = sorted(p.name for p in DOCS.glob("*.md"))


def blocks(page: str) -> list[tuple[str, str]]:
    return doc_blocks(DOCS / page)


def commands(body: str) -> list[str]:
    """The shell commands of a block: its lines, less comments and blank lines."""
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    pack = write_eval_pack(
        tmp_path_factory.mktemp("pack") / "one.jsonl",
        [PARIS_ITEM],
    )
    # BROWSER: `kolm ui` would open a tab
    return shell_env(KOLM_EVAL_PACK=str(pack), BROWSER="true", COLUMNS="120")


def test_every_page_is_listed_in_the_index_and_every_block_has_a_known_kind():
    index = (DOCS / "README.md").read_text()
    for page in PAGES:
        assert page == "README.md" or f"]({page})" in index, f"{page} is not linked from docs/README.md"
        for kind, _ in blocks(page):
            assert kind in KINDS, f"{page}: ```bash {kind}"


def test_the_generated_tables_are_current():
    spec = importlib.util.spec_from_file_location("generate", DOCS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.main(check=True) == 0, "run python3 dev.py docs"


def parses(line: str) -> None:
    """A `kolm ...` command line is one kolm's own parser accepts (nothing runs)."""
    from kolm.cli import cli

    argv = shlex.split(line)
    argv = argv[argv.index(next(a for a in argv if a.endswith("kolm"))) + 1 :]
    command = cli.commands.get(argv[0])
    assert command is not None, f"no command kolm {argv[0]}"
    command.make_context(argv[0], argv[1:])  # a click error (unknown option, bad value) fails the test


@pytest.mark.parametrize("page", PAGES)
def test_device_online_and_install_commands_parse(page):
    for kind, body in blocks(page):
        if kind not in ("on-device", "online", "install"):
            continue
        syntax = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{page}: {syntax.stderr}"
        for line in commands(body):
            if re.match(r"^(\S*/)?kolm ", line):
                parses(line)


RUN_PAGES = [page for page in PAGES if any(kind in ("", "server") for kind, _ in blocks(page))]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_every_command_on_the_page_runs(page, env, tmp_path):
    for kind, body in blocks(page):
        if kind == "":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, f"{page}:\n{body}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        elif kind == "server":
            for line in commands(body):
                serves(line, tmp_path, env)


def serves(line: str, cwd: Path, env: dict[str, str]) -> None:
    """The server `line` starts prints an http:// URL, and that URL answers."""
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}  # the URL may be on either
    proc = subprocess.Popen(line, shell=True, cwd=cwd, env=env, start_new_session=True, **output)
    try:
        seen = []
        for out in proc.stdout:
            seen.append(out)
            if match := re.search(r"http://[\w.\[\]:-]+\S*", out):
                threading.Thread(target=proc.stdout.read, daemon=True).start()  # never let the pipe fill
                answered(match.group(0).rstrip(".,;)"))
                return
        pytest.fail(f"{line}: exited {proc.wait()} without a URL: {''.join(seen)[-2000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the shell and the server it started
        proc.wait(timeout=10)


def answered(url: str) -> None:
    """`url` answers (within a minute: a server may print its URL before it listens) with a page,
    or, an API's base URL, with an HTTP error below 500."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                assert r.status == 200
            return
        except urllib.error.HTTPError as exc:
            assert exc.code < 500, f"{url}: HTTP {exc.code}"
            return
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
