"""`kolm matrix` without Ray (`--serial`, and `kolm.matrix.run_matrix` with a runner that records what
it is asked): the plan, results appended and read back, the resume, the tables and the report, on
kolm-core's own `table` backend. Ray itself is tests/matrix/ (tox env `matrix`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from kolm_testing import invoke


def plan(table, packed: Path, tiers: list[str]):
    from kolm.matrix import plan

    return plan(table, [packed], ["ttb"], tiers)


def recording(asked: list):
    """A runner that records the cells it is handed and runs them in this process."""
    from kolm.matrix import serially

    def run(cells, to_bench, out):
        asked.append([c.key for c in cells])
        yield from serially(cells, to_bench, out)

    return run


def test_a_tier_the_backend_lacks_is_planned_as_not_run_with_why(table, packed):
    int8, int3 = plan(table, packed, ["int8", "int3"])
    assert int8.skip is None and int8.backend == "table" and int8.forecast_bytes > 0 and int8.fit == "pass"
    assert int3.forecast_bytes is None and "int3" in int3.skip, int3.skip


def test_serial_cells_are_appended_then_a_rerun_runs_nothing(table, packed, tmp_path):
    from kolm.matrix import CELLS, run_matrix

    out = tmp_path / "out"
    cells = plan(table, packed, ["int8", "int4", "int3"])
    asked: list = []
    results = run_matrix(cells, out, recording(asked))
    assert [r.status for r in results] == ["ok", "ok", "skipped"]
    assert asked == [["tiny-test-table-box-int8", "tiny-test-table-box-int4"]]
    ok = results[0]
    assert ok.k == 1.0 and ok.k_fp16 == 1.0 and ok.size_bytes > 0 and ok.seconds is not None
    assert (out / "exports" / ok.cell.key / "kolm-export.json").is_file()
    assert len((out / CELLS).read_text().splitlines()) == 3

    again = run_matrix(cells, out, recording(asked))
    assert asked[-1] == [] and [r.model_dump() for r in again] == [r.model_dump() for r in results]


def test_a_line_cut_by_a_kill_and_changed_inputs_run_again(table, packed, tmp_path):
    from kolm.matrix import CELLS, run_matrix

    out = tmp_path / "out"
    cells = plan(table, packed, ["int8", "int4"])
    run_matrix(cells, out, recording([]))
    lines = (out / CELLS).read_text().splitlines()
    (out / CELLS).write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # the kill cut the last write
    asked: list = []
    run_matrix(cells, out, recording(asked))
    assert asked == [[cells[1].key]]

    changed = [c.model_copy(update={"inputs": "0" * 64}) if c.tier == "int8" else c for c in cells]
    run_matrix(changed, out, recording(asked))
    assert asked[-1] == [cells[0].key]


def test_the_cli_writes_the_results_table_and_the_report(table, packed, tmp_path):
    out = tmp_path / "out"
    result = invoke("matrix", "-m", packed, "-t", "ttb", "-q", "int8,int3", "-o", out, "--serial", "--json")
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["cell"]["tier"], r["status"]) for r in printed] == [("int8", "ok"), ("int3", "skipped")]
    with open(out / "results.csv", newline="") as f:
        assert [(r["tier"], r["status"]) for r in csv.DictReader(f)] == [("int8", "ok"), ("int3", "skipped")]
    page = (out / "report.html").read_text()
    assert "tiny-llama" in page and page.count("<svg") == 1


def test_a_missing_artifact_or_unknown_device_is_one_line_before_anything_runs(table, packed, tmp_path):
    for models, target, what in ((tmp_path / "none.kolm", "ttb", "no such .kolm"), (packed, "nowhere", "nowhere")):
        result = invoke("matrix", "-m", models, "-t", target, "-q", "int8", "-o", tmp_path / "out", "--serial")
        errors = [line for line in result.stderr.splitlines() if line.startswith("kolm: error:")]
        assert result.exit_code not in (0, 1) and len(errors) == 1 and what in errors[0], result.output
        assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_the_pareto_front_is_what_nothing_smaller_beats():
    from kolm.matrix_report import pareto

    points = [(100, 0.9, "a"), (80, 0.9, "b"), (60, 0.5, "c"), (70, 0.4, "d"), (120, 0.95, "e")]
    assert pareto(points) == {"b", "c", "e"}


def test_bench_names_the_machine_and_says_why_a_backend_could_not(table, packed, tmp_path):
    out = tmp_path / "out"
    result = invoke("matrix", "-m", packed, "-t", "ttb", "-q", "int8", "-o", out, "--serial", "--bench", "--json")
    assert result.exit_code == 0, result.output
    [printed] = [json.loads(line) for line in result.stdout.splitlines()]
    bench = printed["bench"]
    from kolm.host import HostProfile

    [home] = (out / "homes").iterdir()  # the model's own KOLM_HOME, where the bench profiled this machine
    host = HostProfile.model_validate_json((home / "this-machine.json").read_text())
    assert bench["tg_tok_s"] is None and bench["machine"] == f"{host.summary()} ({host.hostname})", bench
    assert bench["note"] and "\n" not in bench["note"]  # the table backend cannot bench: why, in one line
    assert "bench not measured" in result.stderr
    with open(out / "results.csv", newline="") as f:
        [row] = csv.DictReader(f)
    assert row["bench_machine"] == bench["machine"] and row["bench_note"] == bench["note"]
    again = invoke("matrix", "-m", packed, "-t", "ttb", "-q", "int8", "-o", out, "--serial", "--json")
    assert json.loads(again.stdout)["bench"] is None  # without --bench the inputs differ: exported again


def test_a_bench_runs_on_a_node_that_is_its_device_where_one_says_so(table, packed):
    from kolm.matrix import bench_resources
    from kolm.matrix import plan as plan_cells

    [cell] = plan_cells(table, [packed], ["ttb"], ["int8"])
    slug = cell.device_row.slug
    assert bench_resources(cell, {"kolm_bench": 2.0}) == {"kolm_bench": 1}
    board = {"kolm_bench": 2.0, f"kolm_device_{slug}": 1.0}
    assert bench_resources(cell, board) == {"kolm_bench": 1, f"kolm_device_{slug}": 1}
