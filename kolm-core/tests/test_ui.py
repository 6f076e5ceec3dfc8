"""`kolm ui`'s server over real HTTP (the page itself is driven in Chromium in tests/test_ui.py): its
API answers what the CLI prints, errors are JSON with kolm's exit code, files never escape their
folder, and a request naming another host is refused. Also the four steps themselves."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer

import pytest
from kolm_testing import invoke


@pytest.fixture
def matrix_dir(request, table, packed, tmp_path):
    """None: `kolm ui` without --matrix; parametrized indirectly with True, a `kolm matrix` results
    folder (one cell exported at int8, one skipped: int3, which the table backend lacks)."""
    if not getattr(request, "param", False):
        return None
    from kolm.matrix import plan, run_matrix, serially

    run_matrix(plan(table, [packed], ["ttb"], ["int8", "int3"]), tmp_path / "results", serially)
    return tmp_path / "results"


@pytest.fixture
def ui(table, matrix_dir):
    """The ui server on a free port of 127.0.0.1, in a thread; get(path) -> (status, body)."""
    from kolm.ui import UiHandler

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(UiHandler, registry=table, matrix=matrix_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def get(path: str, headers: dict | None = None) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers or {})) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    yield get
    server.shutdown()
    server.server_close()


def test_the_preview_api_is_the_cli_preview(ui, packed):
    status, body = ui(f"/api/preview?model={packed}&device=ttb&tier=int4&login=me@box")
    assert status == 200
    cli = invoke("export", packed, "--target", "ttb", "--quant", "int4", "--preview", "--json", "--login", "me@box")
    assert json.loads(body) == json.loads(cli.stdout)
    steps = [step["command"] for step in json.loads(body)["steps"]]
    assert steps[1] == "scp -r tiny-llama-test-table-box-int4 me@box:"
    assert steps[3].startswith(f"kolm verify tiny-llama-test-table-box-int4 --against {packed}")


def test_the_pick_api_is_kolm_pick_json(ui, packed):
    status, body = ui(f"/api/pick?model={packed}")
    assert status == 200 and json.loads(body) == json.loads(invoke("pick", packed, "--json").stdout)


def test_options_list_every_device_and_this_machine(ui):
    options = json.loads(ui("/api/options")[1])
    names = [d["name"] for d in options["devices"]]
    assert {"Test Table Box", "Test Board 4", "this machine"} <= set(names)
    assert options["tiers"] == ["fp16", "int8", "int4", "int3"]
    assert "SmolLM2-135M-Instruct" in options["bases"]


@pytest.mark.parametrize(
    "path, code, message",
    [
        ("/api/preview?model=Llama-3.1-8B&device=nowhere&tier=int4", 3, "unknown device 'nowhere'"),
        ("/api/preview?model=Llama-3.1-8B&device=ttb&tier=int2", 2, "unknown quant tier 'int2'"),
        ("/api/preview?model=Llama-3.1-8B&device=ttb", 2, "missing query parameter tier"),
        ("/api/preview?model=Llama-3.1-8B&device=ttb&tier=int4&memory=lots", 2, "could not convert string to float"),
    ],
)
def test_bad_input_is_one_json_error_with_the_cli_exit_code(ui, path, code, message):
    status, body = ui(path)
    error = json.loads(body)
    assert status == 400 and error["exit_code"] == code and message in error["error"]


@pytest.mark.parametrize("path", ["/static/../ui.py", "/static/%2e%2e/ui.py", "/static/", "/nope/", "/api/nope"])
def test_nothing_outside_the_page_folders_is_served(ui, path):
    assert ui(path)[0] == 404


def test_a_request_naming_another_host_is_refused(ui):
    """A page elsewhere whose DNS name was rebound to 127.0.0.1 cannot read the API."""
    assert ui("/api/options", {"Host": "attacker.example:80"})[0] == 403
    assert ui("/api/options", {"Host": "localhost:1"})[0] == 200


def test_the_picker_and_the_docs_are_served(ui):
    status, page = ui("/")
    assert status == 200 and b'src="/static/picker.js"' in page
    status, doc = ui("/docs/architecture.md")
    assert status == 200 and b"<h1>" in doc and b"<table>" in doc  # markdown rendered, tables too
    status, quickstart = ui("/docs/quickstart-raspberry-pi-5.md")
    assert status == 200 and b"<table>" in quickstart and b"generated:" not in quickstart  # markers dropped
    assert ui("/docs/../README.md")[0] == 404


def test_the_steps_say_what_a_pick_lacks(table, packed):
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.steps import deployment_steps

    spec, board = resolve_model("Llama-3.1-8B"), table.device("tb4")  # its backend is not installed
    export, copy, run, verify = deployment_steps(forecast(table, spec, board, "int4"), spec, board)
    assert export.command.startswith("kolm export Llama-3.1-8B.kolm --target test-board-4 --quant int4 -o ")
    assert "kolm pack FOLDER -o Llama-3.1-8B.kolm" in export.note  # a base: the weights come first
    assert "install the testbe backend here first" in export.note and "it will not fit" in export.note
    assert copy.command.endswith(" USER@HOST:") and "replace USER@HOST" in copy.note
    assert run.where == "the Test Board 4 (ssh USER@HOST)"
    assert verify.command == "kolm verify Llama-3.1-8B-test-board-4-int4 --against Llama-3.1-8B.kolm"


def test_a_backends_handoff_replaces_scp_for_a_device_without_ssh(table):
    from kolm.api import Backend, DeviceRun, Handoff
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.steps import deployment_steps

    spec, board = resolve_model("Llama-3.1-8B"), table.device("tb4")
    f = forecast(table, spec, board, "int4")
    phone = Backend(
        name="phone",
        description="d",
        tiers={"int4": "I4"},
        install="i",
        handoff=Handoff(transfer="build it into an app", run_where="a desk machine", run_note="the app runs it"),
    )
    _, copy, run, _ = deployment_steps(f, spec, board, backend=phone)
    assert copy.command is None and copy.note == "build it into an app"
    assert run.where == "a desk machine" and run.note == "the app runs it"
    assert run.command == "kolm run Llama-3.1-8B-test-board-4-int4 --prompt 'What is the capital of France?'"
    gpu = phone.model_copy(update={"handoff": None, "device_run": DeviceRun(command="sh {out}/serve.sh", note="n")})
    _, copy, run, verify = deployment_steps(f, spec, board, backend=gpu)
    assert copy.command.startswith("scp -r ") and run.command == "sh Llama-3.1-8B-test-board-4-int4/serve.sh"
    assert run.where == "the Test Board 4 (ssh USER@HOST)" and run.note == "n" and "5 and 6 fail" in verify.note


@pytest.mark.parametrize("matrix_dir", [True], indirect=True)
def test_kolm_ui_matrix_serves_the_report_as_it_stands(ui, matrix_dir):
    from kolm.matrix import finished, rows

    assert {"route": "matrix", "title": "Matrix"} in json.loads(ui("/api/options")[1])["pages"]
    status, page = ui("/matrix/")
    assert status == 200 and b"kolm matrix: results" in page
    assert page.count(b"<tr class=") == 2 and b'<tr class="skipped">' in page and page.count(b"<svg") == 1
    assert json.loads(ui("/api/matrix")[1]) == json.loads(json.dumps(rows(finished(matrix_dir).values())))


def test_without_matrix_there_is_no_matrix_page(ui):
    assert ui("/matrix/")[0] == 404 and ui("/api/matrix")[0] == 404
    assert all(p["route"] != "matrix" for p in json.loads(ui("/api/options")[1])["pages"])
